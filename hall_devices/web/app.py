"""The manager's dashboard and the clerk's console: Starlette, Jinja2 templates, SSE.

Roles: a manager sees and does everything; a clerk signs in to one window and may operate only it
(any request for another window is refused with 403). Every page but sign-in and the public ticket
page needs a session; every state-changing request is a POST checked against the session's role and
window. Session cookies are signed, HttpOnly and SameSite=Strict (no cross-site form can post).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from hall_devices.contract import RATING_NAMES, QueryKind, StaffAction, WindowAction
from hall_devices.coordinator.calendar import business_day
from hall_devices.coordinator.report import COLUMN_ZH, COLUMNS
from hall_devices.coordinator.tables import CASE_STATE_ZH, WINDOW_STATUS_ZH
from hall_devices.layout import Layout
from hall_devices.web.bookings_page import BookingsPage
from hall_devices.web.hub import Hub
from hall_devices.web.users import User, check_password

HERE = Path(__file__).resolve().parent
Handler = Callable[[Request], Awaitable[Response]]
CASE_ACTIONS = {"verify": StaffAction.CASE_VERIFY, "appeal": StaffAction.CASE_APPEAL,
                "revisit": StaffAction.CASE_REVISIT, "close": StaffAction.CASE_CLOSE,
                "revoke": StaffAction.CASE_REVOKE, "reject_appeal": StaffAction.CASE_REJECT_APPEAL}
CONSOLE_ACTIONS = {a.value: a for a in WindowAction}


def plotly_js() -> bytes:
    """The charting library, served by the hall server itself (no CDN): plotly's own bundle."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).encode("utf-8")


class Pages:
    """Every handler, as a method; the role each needs is declared with the routes."""

    def __init__(self, hub: Hub, users: dict[str, User], layout: Layout) -> None:
        self.hub = hub
        self.users = users
        self.layout = layout
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(hall=layout.hall, window_status_zh=WINDOW_STATUS_ZH,
                                          case_state_zh=CASE_STATE_ZH, rating_names=RATING_NAMES)
        self.chart_js = plotly_js()

    def user_of(self, request: Request) -> User | None:
        name = request.session.get("user")
        return self.users.get(name) if isinstance(name, str) else None

    def page(self, name: str, request: Request, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, {"user": self.user_of(request), **context})

    def signed_in(self, role: str | None = None) -> Callable[[Handler], Handler]:
        def wrap(handler: Handler) -> Handler:
            async def guarded(request: Request) -> Response:
                user = self.user_of(request)
                if user is None:
                    if request.method == "GET" and "json" not in request.url.path:
                        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
                    return PlainTextResponse("请先登录 / sign in first", status_code=401)
                if role is not None and user.role != role:
                    return PlainTextResponse("无权访问 / not allowed for your role", status_code=403)
                return await handler(request)
            return guarded
        return wrap

    def own_window(self, request: Request, window: int) -> bool:
        user = self.user_of(request)
        return user is not None and (user.role == "manager" or request.session.get("window") == window)

    async def login_form(self, request: Request) -> Response:
        return self.page("login.html", request, windows=self.layout.windows, error=None,
                    next=request.query_params.get("next", "/"))

    async def login(self, request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("username", "")), str(form.get("password", ""))
        user = self.users.get(name)
        if user is None or not check_password(password, user.password_hash):
            return self.page("login.html", request, windows=self.layout.windows, next="/",
                             error="用户名或密码错误 / wrong user name or password")
        request.session.clear()
        request.session["user"] = user.name
        if user.role == "clerk":
            window = int(str(form.get("window", "0")) or 0)
            if window not in {w.number for w in self.layout.windows}:
                request.session.clear()
                return self.page("login.html", request, windows=self.layout.windows, next="/",
                            error="请选择窗口 / choose your window")
            request.session["window"] = window
            return RedirectResponse("/console", status_code=303)
        target = str(form.get("next", "/"))
        return RedirectResponse(target if target.startswith("/") and not target.startswith("//") else "/",
                                status_code=303)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def home(self, request: Request) -> Response:
        user = self.user_of(request)
        assert user is not None
        if user.role == "clerk":
            return RedirectResponse("/console", status_code=303)
        return self.page("overview.html", request, snapshot=self.hub.snapshot())

    async def devices(self, request: Request) -> Response:
        return self.page("devices.html", request, snapshot=self.hub.snapshot())

    async def state_json(self, request: Request) -> Response:
        return JSONResponse(self.hub.snapshot())

    async def events(self, request: Request) -> Response:
        listener = self.hub.listen()

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"  # the browser reconnects by itself after 2 s
                yield f"data: {json.dumps(self.hub.snapshot(), ensure_ascii=False)}\n\n"
                while True:
                    try:
                        data = await asyncio.wait_for(listener.get(), timeout=15)
                        yield f"data: {data}\n\n"
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                self.hub.forget(listener)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def today(self) -> str:
        return business_day(self.layout.hall, dt.datetime.now(dt.UTC))

    async def ratings(self, request: Request) -> Response:
        first = request.query_params.get("from") or self.today()
        last = request.query_params.get("to") or first
        window = request.query_params.get("window")
        level = request.query_params.get("level")
        reply = await self.hub.query(QueryKind.RATINGS, first_day=first, last_day=last,
                                window=int(window) if window else None, level=int(level) if level else None)
        return self.page("ratings.html", request, rows=reply.data.get("ratings", []), first=first, last=last,
                    window=window or "", level=level or "", error=reply.error)

    async def cases(self, request: Request) -> Response:
        reply = await self.hub.query(QueryKind.CASES)
        return self.page("cases.html", request, cases=reply.data.get("cases", []),
                    message=request.query_params.get("message"))

    async def case_action(self, request: Request) -> Response:
        form = await request.form()
        action = CASE_ACTIONS.get(request.path_params["action"])
        if action is None:
            return PlainTextResponse("unknown action", status_code=404)
        user = self.user_of(request)
        assert user is not None
        reply = await self.hub.staff(action, user.name, case_id=request.path_params["case_id"],
                                note=str(form.get("note", "")) or None)
        message = "" if reply.ok else (reply.error.message if reply.error else "refused")
        return RedirectResponse(f"/cases?message={message}", status_code=303)

    async def statistics_data(self, request: Request) -> dict[str, Any]:
        first = request.query_params.get("from") or self.today()
        last = request.query_params.get("to") or first
        reply = await self.hub.query(QueryKind.STATISTICS, first_day=first, last_day=last)
        if not reply.ok:
            return {"first_day": first, "last_day": last, "rows": [], "error": reply.error}
        return reply.data

    async def statistics(self, request: Request) -> Response:
        data = await self.statistics_data(request)
        return self.page("stats.html", request, data=data, columns=COLUMNS, column_names=COLUMN_ZH,
                    chart_data=json.dumps({k: data.get(k) for k in (
                        "tickets_per_hour", "wait_minutes", "satisfaction_per_window")}, ensure_ascii=False))

    async def statistics_csv(self, request: Request) -> Response:
        data = await self.statistics_data(request)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["dimension", "key", "name", *COLUMNS], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data.get("rows", []))
        name = f"hall-statistics-{data['first_day']}-{data['last_day']}.csv"
        return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def console(self, request: Request) -> Response:
        user = self.user_of(request)
        assert user is not None
        window = request.session.get("window") if user.role == "clerk" else int(
            request.query_params.get("window", self.layout.windows[0].number))
        if not isinstance(window, int) or not self.own_window(request, window):
            return PlainTextResponse("不是您的窗口 / not your window", status_code=403)
        return self.page("console.html", request, window=self.layout.window(window),
                         services=self.layout.services, windows=self.layout.windows,
                         message=request.query_params.get("message"))

    async def console_queue(self, request: Request) -> Response:
        window = int(request.path_params["window"])
        if not self.own_window(request, window):
            return PlainTextResponse("不是您的窗口 / not your window", status_code=403)
        reply = await self.hub.query(QueryKind.WINDOW_QUEUE, window=window)
        return JSONResponse({**reply.data, "state": self.hub.windows.get(window)})

    async def console_action(self, request: Request) -> Response:
        window = int(request.path_params["window"])
        if not self.own_window(request, window):
            return PlainTextResponse("不是您的窗口 / not your window", status_code=403)
        action = CONSOLE_ACTIONS.get(request.path_params["action"])
        if action is None:
            return PlainTextResponse("unknown action", status_code=404)
        form = await request.form()
        user = self.user_of(request)
        assert user is not None
        fields: dict[str, Any] = {}
        for name in ("ticket_number", "target_service", "reason"):
            if form.get(name):
                fields[name] = str(form.get(name))
        if form.get("target_window"):
            fields["target_window"] = int(str(form.get("target_window")))
        if action is WindowAction.LOGIN:
            fields["clerk_id"] = user.name
        reply = await self.hub.window_command(window, action, **fields)
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse(json.loads(reply.model_dump_json()), status_code=200 if reply.ok else 409)
        message = "" if reply.ok else (reply.error.message if reply.error else "refused")
        suffix = f"&window={window}" if user.role == "manager" else ""
        return RedirectResponse(f"/console?message={message}{suffix}", status_code=303)

    async def staff_page(self, request: Request) -> Response:
        return self.page("staff.html", request, services=self.layout.services,
                         message=request.query_params.get("message"),
                         kiosks=[d.id for d in self.layout.devices if d.kind == "kiosk"])

    async def staff_action(self, request: Request) -> Response:
        form = await request.form()
        user = self.user_of(request)
        assert user is not None
        kiosk = str(form.get("kiosk_id", "")) or None
        if request.path_params["action"] == "green":
            reply = await self.hub.staff(StaffAction.ISSUE_GREEN, user.name,
                                         service_id=str(form.get("service_id")), kiosk_id=kiosk)
        else:
            number = str(form.get("number", ""))
            found = await self.hub.query(QueryKind.TICKET_BY_NUMBER, ticket_number=number)
            if not found.ok:
                return RedirectResponse(f"/staff?message={found.error.message if found.error else ''}",
                                        status_code=303)
            reply = await self.hub.staff(StaffAction.REPRINT, user.name, kiosk_id=kiosk,
                                    ticket_id=found.data["ticket"]["ticket_id"])
        ticket = getattr(reply, "ticket", None)
        message = (f"✓ {ticket.number}" if ticket else "✓") if reply.ok else (
            reply.error.message if reply.error else "refused")
        return RedirectResponse(f"/staff?message={message}", status_code=303)

    async def ticket_page(self, request: Request) -> Response:
        return self.page("ticket.html", request, token=request.path_params["token"])

    async def ticket_state(self, request: Request) -> Response:
        """Public: one ticket, by the unguessable token in its QR code; nothing about any other."""
        reply = await self.hub.query(QueryKind.TICKET, token=request.path_params["token"])
        if not reply.ok:
            return JSONResponse({"error": "no such ticket today"}, status_code=404)
        ticket = reply.data["ticket"]
        shown = {k: ticket[k] for k in ("number", "status", "people_ahead", "estimated_minutes", "windows",
                                        "service_name", "window", "ticket_class")}
        return JSONResponse(shown)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return Response(self.chart_js, media_type="application/javascript",
                            headers={"Cache-Control": "max-age=86400"})
        path = HERE / "static" / name
        if "/" in name or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        kind = "text/css" if name.endswith(".css") else "application/javascript"
        return Response(path.read_bytes(), media_type=kind)



def create_app(hub: Hub, users: dict[str, User], secret: str, layout: Layout,
               extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """``extra_routes``: routes of their own modules (the booking API, web/bookings.py)."""
    pages = Pages(hub, users, layout)
    anyone = pages.signed_in()
    manager = pages.signed_in("manager")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            hub.stop()

    routes = [
        Route("/login", pages.login_form, methods=["GET"]), Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]), Route("/", anyone(pages.home)),
        Route("/devices", manager(pages.devices)), Route("/state.json", anyone(pages.state_json)),
        Route("/events", anyone(pages.events)), Route("/ratings", manager(pages.ratings)),
        Route("/cases", manager(pages.cases)),
        Route("/cases/{case_id}/{action}", manager(pages.case_action), methods=["POST"]),
        Route("/stats", manager(pages.statistics)), Route("/stats.csv", manager(pages.statistics_csv)),
        Route("/console", anyone(pages.console)),
        Route("/console/{window:int}/queue.json", anyone(pages.console_queue)),
        Route("/console/{window:int}/{action}", anyone(pages.console_action), methods=["POST"]),
        Route("/staff", manager(pages.staff_page)),
        Route("/staff/{action}", manager(pages.staff_action), methods=["POST"]),
        Route("/t/{token}", pages.ticket_page), Route("/t/{token}/state.json", pages.ticket_state),
        Route("/static/{name}", pages.static), *BookingsPage(pages).routes(), *extra_routes,
    ]
    middleware = [Middleware(SessionMiddleware, secret_key=secret, same_site="strict", https_only=False,
                             session_cookie="hall_session", max_age=12 * 3600)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
