"""The manager's dashboard and the clerk's console: Starlette, Jinja2 templates, SSE.

Roles: a manager sees and does everything; a clerk signs in to one window and may operate only it
(any request for another window is refused with 403). Every page but sign-in and the public ticket
page needs a session; every state-changing request is a POST checked against the session's role and
window, and against its Origin (:mod:`hall_devices.web.security`). Sessions live on the server
(:mod:`hall_devices.web.access`); the cookie holds only a random key and is HttpOnly,
SameSite=Strict and, over HTTPS, Secure. Bad query or form values answer 400 with a message.
Manager and staff actions, and sign-ins, go to the audit trail (``/audit``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
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

from hall_devices.catalog import (
    CASE_STATE_ZH,
    DIMENSION_ZH,
    STAT_COLUMNS,
    WINDOW_STATUS_ZH,
    audit_outcome,
    audit_words,
    both,
)
from hall_devices.contract import (
    RATING_NAMES,
    CasesAnswer,
    DeadLettersAnswer,
    QueryKind,
    RatingsAnswer,
    StaffAction,
    StatisticsAnswer,
    TicketAnswer,
    WindowAction,
    WindowQueueAnswer,
)
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import BusError
from hall_devices.mqtt.requests import NoReplyError
from hall_devices.web.access import Access
from hall_devices.web.audit import COLUMNS as AUDIT_COLUMNS
from hall_devices.web.audit import AuditLog, Entry
from hall_devices.web.bookings_page import BookingsPage
from hall_devices.web.export import csv_download
from hall_devices.web.exports import download
from hall_devices.web.hub import CoordinatorOfflineError, Hub
from hall_devices.web.params import BadRequestError, day_param, from_validation, int_param, text_param
from hall_devices.web.present import console_context, device_places, device_words, filters, refusal
from hall_devices.web.security import Guard
from hall_devices.web.sheets import (
    NOTE_LONGEST,
    NOTE_REQUIRED,
    PAGE_SIZE,
    CaseFilter,
    assignees,
    cases_sheet,
    clerk_names,
    page_of,
    ratings_sheet,
    statistics_sheet,
)
from hall_devices.web.users import User

HERE = Path(__file__).resolve().parent
NO_TICKET = "没有这张号票 / no such ticket"
log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
CASE_ACTIONS = {"verify": StaffAction.CASE_VERIFY, "appeal": StaffAction.CASE_APPEAL,
                "revisit": StaffAction.CASE_REVISIT, "close": StaffAction.CASE_CLOSE,
                "revoke": StaffAction.CASE_REVOKE, "reject_appeal": StaffAction.CASE_REJECT_APPEAL,
                "assign": StaffAction.CASE_ASSIGN}
CONSOLE_ACTIONS = {a.value: a for a in WindowAction}
STAFF_AUDIT = {"green": "green_ticket", "reprint": "reprint"}  # /staff/<action> -> its audit code
HELP_STATES = {"answer": "answered", "close": "closed"}  # /help/<kiosk>/<action> -> the request's state
AUDIT_LIMIT = 1000  # rows on the page; the CSV has every row of the filter


def plotly_js() -> bytes:
    """The charting library, served by the hall server itself (no CDN): plotly's own bundle."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).encode("utf-8")


class Pages:
    """Every handler, as a method; the role each needs is declared with the routes."""

    def __init__(self, hub: Hub, access: Access, layout: Layout) -> None:
        self.hub = hub
        self.access = access
        self.audit: AuditLog = access.audit_log
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(hall=layout.hall, window_status_zh=WINDOW_STATUS_ZH,
                                          case_state_zh=CASE_STATE_ZH, rating_names=RATING_NAMES,
                                          audit_words=audit_words, audit_outcome=audit_outcome)
        self.templates.env.filters.update(filters(layout))
        self.chart_js = plotly_js()

    @property
    def layout(self) -> Layout:
        """The layout the coordinator runs: names and services follow a region's push."""
        return self.hub.layout

    def user_of(self, request: Request) -> User | None:
        return self.access.user_of(request)

    def page(self, name: str, request: Request, status_code: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(
            request, name, {"user": self.user_of(request), "windows": self.layout.windows,
                            "csp_nonce": request.scope.get("state", {}).get("csp_nonce", ""), **context},
            status_code=status_code)

    def signed_in(self, role: str | None = None) -> Callable[[Handler], Handler]:
        def wrap(handler: Handler) -> Handler:
            async def guarded(request: Request) -> Response:
                user = self.user_of(request)
                if user is None:
                    if request.method == "GET" and "json" not in request.url.path:
                        ended = "&notice=expired" if self.access.cookie in request.cookies else ""
                        return RedirectResponse(f"/login?next={request.url.path}{ended}", status_code=303)
                    return PlainTextResponse("请先登录 / sign in first", status_code=401)
                if role is not None and user.role != role:
                    return PlainTextResponse("无权访问 / not allowed for your role", status_code=403)
                return await handler(request)
            return guarded
        return wrap

    def own_window(self, request: Request, window: int) -> bool:
        user = self.user_of(request)
        session = self.access.session_of(request)
        return user is not None and session is not None and (
            user.role == "manager" or session.window == window)

    async def login_form(self, request: Request) -> Response:
        return self.page("login.html", request, error=None, notice=self.access.notice(request),
                         next=request.query_params.get("next", "/"))

    async def login(self, request: Request) -> Response:
        response = await self.access.login(request, self.page)
        if response.status_code != 303 or response.headers.get("location") != "/console":
            return response
        # One step: a clerk signed in to a window is put on duty there (上岗) under the account's
        # name, so ratings go to whoever really serves. Refused (someone is already on duty
        # there): the console says who, in the catalog's words.
        # access.login let this clerk in to this window only if the account carries it (issue 15)
        form = await request.form()
        name = str(form.get("username", ""))[:64]
        window = int_param(str(form.get("window", "")), "window", 1, 9999) or 0
        reply = await self.hub.window_command(window, WindowAction.LOGIN, clerk_id=name)
        message = "" if reply.ok else refusal(reply.error, self.layout.hall)
        if reply.error is not None and reply.error.code == "wrong_state":  # the window is open already
            on_duty = (self.hub.windows.get(window) or {}).get("clerk_id")
            # By this account (signed in again after a closed browser or an ended session): nothing
            # is wrong. By someone else: say so; the console shows who.
            message = "" if on_duty == name else both("window_taken", (
                self.layout.hall.info_desk.zh, self.layout.hall.info_desk.en))
        await self.access.audit(request, name, "window_login", f"window {window}",
                                outcome=message or "ok")
        if message:  # in the catalog's words (percent-encoded: a header)
            response.headers["location"] = f"/console?message={quote(message)}"
        return response

    async def logout(self, request: Request) -> Response:
        return await self.access.logout(request)

    async def account(self, request: Request) -> Response:
        return self.page("account.html", request, error=None)

    async def change_password(self, request: Request) -> Response:
        return await self.access.change_password(request, self.page)

    async def home(self, request: Request) -> Response:
        user = self.user_of(request)
        assert user is not None
        if user.role == "clerk":
            return RedirectResponse("/console", status_code=303)
        return self.page("overview.html", request, snapshot=self.hub.snapshot())

    async def devices(self, request: Request) -> Response:
        # Messages the coordinator failed on (issue 14), next to the devices; the page must not wait
        # long for a coordinator that is down, which is when it is looked at most.
        dead_total: int | str
        try:
            reply = await asyncio.wait_for(self.hub.query(QueryKind.DEAD_LETTERS), 2.0)
            dead = reply.answer_as(DeadLettersAnswer)
            dead_letters, dead_total = (dead.dead_letters, dead.total) if dead else ([], 0)
        except (TimeoutError, BusError):
            dead_letters, dead_total = [], "?"
        return self.page("devices.html", request, snapshot=self.hub.snapshot(),
                         places=device_places(self.layout), words=device_words(),
                         dead_letters=dead_letters, dead_total=dead_total)

    async def state_json(self, request: Request) -> Response:
        return JSONResponse(self.hub.snapshot())

    async def events(self, request: Request) -> Response:
        listener = self.hub.listen()
        cookie = request.cookies.get(self.access.cookie)

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"  # the browser reconnects by itself after 2 s
                yield f"data: {json.dumps(self.hub.snapshot(), ensure_ascii=False)}\n\n"
                # A session ended (sign-out, password, role, removal) ends its feed within 5 s.
                while self.access.alive(cookie) and not self.hub.closing:
                    try:
                        data = await asyncio.wait_for(listener.get(), timeout=5)
                        if self.hub.closing:  # the server is stopping (Hub.end_streams)
                            break
                        yield f"data: {data}\n\n"
                    except TimeoutError:
                        yield ": keep-alive\n\n"
            finally:
                self.hub.forget(listener)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    def today(self) -> str:
        return self.layout.hall.business_day(dt.datetime.now(dt.UTC))

    async def ratings(self, request: Request) -> Response:
        first = day_param(request.query_params.get("from"), "from") or self.today()
        last = day_param(request.query_params.get("to"), "to") or first
        window = int_param(request.query_params.get("window"), "window", 1, 9999)
        level = int_param(request.query_params.get("level"), "level", 1, 5)
        reply = await self.hub.query(QueryKind.RATINGS, first_day=first, last_day=last, window=window,
                                     level=level)
        found = reply.answer_as(RatingsAnswer)
        every = [r.model_dump(mode="json") for r in found.ratings] if found else []
        number = int_param(request.query_params.get("page"), "page", 1, 100000) or 1
        rows, pages = page_of(every, number)
        if request.path_params.get("kind") in ("csv", "xlsx"):
            return download(ratings_sheet(every, self.layout), f"评价 {first}-{last}",
                            request.path_params["kind"])
        return self.page("ratings.html", request, rows=rows, first=first, last=last,
                    window=window or "", level=str(level or ""), error=reply.error,
                    page_number=min(number, pages), pages=pages, total=len(every),
                    query=str(request.url.query))

    def assignees(self) -> dict[str, str]:
        """Who a case may be assigned to: the layout's staff list and the web's accounts."""
        return assignees(self.layout, list(self.access.users.users))

    async def cases(self, request: Request) -> Response:
        reply = await self.hub.query(QueryKind.CASES)
        params = request.query_params
        user = self.user_of(request)
        assert user is not None
        chosen = CaseFilter(state=text_param(params.get("state", "open"), "state", 16) or "",
                            department=text_param(params.get("department"), "department", 64) or "",
                            window=int_param(params.get("window"), "window", 1, 9999) or 0,
                            order="opened" if params.get("order") == "opened" else "deadline",
                            assignee=text_param(params.get("assignee"), "assignee", 64) or "", me=user.name)
        found = reply.answer_as(CasesAnswer)
        cases = chosen.apply([c.model_dump(mode="json") for c in found.cases] if found else [])
        if request.path_params.get("kind") in ("csv", "xlsx"):
            return download(cases_sheet(cases, self.layout), "差评整改", request.path_params["kind"])
        number = int_param(params.get("page"), "page", 1, 100000) or 1
        shown, pages = page_of(cases, number)
        return self.page("cases.html", request, cases=shown, message=params.get("message"),
                         chosen=chosen, departments=self.layout.departments, pages=pages,
                         page_number=min(number, pages), note_required=NOTE_REQUIRED,
                         total=len(cases), query=str(request.url.query), clerks=clerk_names(self.layout),
                         assignees=self.assignees(), note_longest=NOTE_LONGEST)

    async def case_action(self, request: Request) -> Response:
        form = await request.form()
        action = CASE_ACTIONS.get(request.path_params["action"])
        if action is None:
            return PlainTextResponse("unknown action", status_code=404)
        user = self.user_of(request)
        assert user is not None
        note = text_param(str(form.get("note", "")), "note", NOTE_LONGEST)
        case_id = text_param(request.path_params["case_id"], "case_id", 64) or ""
        if request.path_params["action"] in NOTE_REQUIRED and not (note or "").strip():
            return RedirectResponse("/cases?message=请填写说明后再提交：该步骤须写明理由 / a note is "
                                    f"required for this step#{case_id}", status_code=303)
        assignee, detail = None, note or ""
        if action is StaffAction.CASE_ASSIGN:
            assignee = text_param(str(form.get("assignee", "")), "assignee", 64)
            if assignee not in self.assignees():
                return RedirectResponse("/cases?state=&message=请从名单中选择责任人 / choose the person "
                                        f"responsible from the staff list#{case_id}", status_code=303)
            detail = f"指派给 {assignee}" + (f"：{note}" if note else "")
        try:
            reply = await self.hub.staff(action, user.name, case_id=case_id, note=note, assignee=assignee)
        except ValidationError as exc:
            raise from_validation(exc) from None
        message = "" if reply.ok else refusal(reply.error, self.layout.hall)
        await self.access.audit(request, user.name, f"case_{request.path_params['action']}", case_id,
                                outcome=message or "ok", detail=detail)
        # all states: the case just changed stays in view, even when it was closed
        return RedirectResponse(f"/cases?state=&message={message}#{case_id}", status_code=303)

    async def statistics_data(self, request: Request) -> dict[str, Any]:
        first = day_param(request.query_params.get("from"), "from") or self.today()
        last = day_param(request.query_params.get("to"), "to") or first
        reply = await self.hub.query(QueryKind.STATISTICS, first_day=first, last_day=last)
        found = reply.answer_as(StatisticsAnswer)
        if found is None:
            return {"first_day": first, "last_day": last, "rows": [], "error": reply.error}
        return found.model_dump(mode="json", exclude={"kind"})  # the page's and the sheet's rows

    async def daily(self, first: str, last: str) -> dict[str, list[Any]]:
        """Day-by-day trend of a range (at most 62 days): issued, served and satisfaction per day,
        one statistics query per day."""
        days: dict[str, list[Any]] = {"days": [], "issued": [], "served": [], "satisfaction": []}
        day, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        if day >= end or (end - day).days > 62:
            return days
        while day <= end:
            reply = await self.hub.query(QueryKind.STATISTICS, first_day=day.isoformat(),
                                         last_day=day.isoformat())
            found = reply.answer_as(StatisticsAnswer)
            total = next((r for r in found.rows if r.dimension == "total"), None) if found else None
            days["days"].append(day.strftime("%m-%d"))
            days["issued"].append(total.issued if total else None)
            days["served"].append(total.served if total else None)
            days["satisfaction"].append(total.satisfaction_pct if total else None)
            day += dt.timedelta(days=1)
        return days

    async def statistics(self, request: Request) -> Response:
        data = await self.statistics_data(request)
        daily = await self.daily(data["first_day"], data["last_day"])
        return self.page("stats.html", request, data=data, columns=list(STAT_COLUMNS),
                    column_names=list(STAT_COLUMNS.values()),
                    dimension_zh=DIMENSION_ZH, daily=bool(daily["days"]),
                    chart_data=json.dumps({**{k: data.get(k) for k in (
                        "tickets_per_hour", "wait_minutes", "satisfaction_per_window")}, "daily": daily},
                        ensure_ascii=False)
                    .replace("</", "<\\/"))  # inside a <script>: no name may close it

    async def statistics_csv(self, request: Request) -> Response:
        """The statistics as CSV or .xlsx (``/stats.csv``, ``/stats.xlsx``): Chinese headers, names."""
        data = await self.statistics_data(request)
        kind = "xlsx" if request.url.path.endswith(".xlsx") else "csv"
        return download(statistics_sheet(data, self.layout), f"hall-statistics-{data['first_day']}-"
                        f"{data['last_day']}", kind)

    async def console(self, request: Request) -> Response:
        user = self.user_of(request)
        assert user is not None
        session = self.access.session_of(request)
        window = session.window if session and user.role == "clerk" else int_param(
            request.query_params.get("window") or str(self.layout.windows[0].number), "window", 1, 9999)
        if not isinstance(window, int) or not self.own_window(request, window):
            return PlainTextResponse("不是您的窗口 / not your window", status_code=403)
        if window not in {w.number for w in self.layout.windows}:
            raise BadRequestError(f"没有 {window} 号窗口 / window {window} is not in this hall's layout")
        return self.page("console.html", request, window=self.layout.window(window),
                         services=self.layout.services, windows=self.layout.windows,
                         message=request.query_params.get("message"), **console_context(self.layout))

    def path_window(self, request: Request) -> int:
        """The ``{window}`` of the path: a window of this hall's layout, else 400 with a message (the
        route takes any text, so that 5000 digits are a message and not a 500)."""
        window = int_param(request.path_params["window"], "window", 1, 9999)
        if window is None or window not in {w.number for w in self.layout.windows}:
            raise BadRequestError(f"没有 {window} 号窗口 / window {window} is not in this hall's layout")
        return window

    async def console_queue(self, request: Request) -> Response:
        window = self.path_window(request)
        if not self.own_window(request, window):
            return PlainTextResponse("不是您的窗口 / not your window", status_code=403)
        reply = await self.hub.query(QueryKind.WINDOW_QUEUE, window=window)
        state = self.hub.windows.get(window)
        clerk = (state or {}).get("clerk_id")
        named = f"{self.hub.clerk_names[clerk]}（{clerk}）" if clerk in self.hub.clerk_names else clerk
        found = reply.answer_as(WindowQueueAnswer)
        shown = found.model_dump(mode="json", exclude={"kind"}) if found else {}
        return JSONResponse({**shown, "state": state, "clerk_name": named})

    async def console_action(self, request: Request) -> Response:
        window = self.path_window(request)
        if not self.own_window(request, window):
            return PlainTextResponse("不是您的窗口 / not your window", status_code=403)
        action = CONSOLE_ACTIONS.get(request.path_params["action"])
        if action is None:
            return PlainTextResponse("unknown action", status_code=404)
        form = await request.form()
        user = self.user_of(request)
        assert user is not None
        fields: dict[str, Any] = {}
        for name, longest in (("ticket_number", 16), ("target_service", 64), ("reason", 64)):
            value = text_param(str(form.get(name, "")), name, longest)
            if value is not None:
                fields[name] = value
        target = int_param(str(form.get("target_window", "")), "target_window", 1, 9999)
        if target is not None:
            fields["target_window"] = target
        if action is WindowAction.LOGIN:
            fields["clerk_id"] = user.name
        try:
            reply = await self.hub.window_command(window, action, **fields)
        except ValidationError as exc:
            raise from_validation(exc) from None
        refused = reply.error.message if reply.error else "refused"
        await self.access.audit(request, user.name, f"window_{action.value}", f"window {window}",
                                outcome="ok" if reply.ok else refused,
                                detail=" ".join(f"{k}={v}" for k, v in fields.items() if k != "clerk_id"))
        if request.headers.get("accept", "").startswith("application/json"):
            return JSONResponse(json.loads(reply.model_dump_json()), status_code=200 if reply.ok else 409)
        message = "" if reply.ok else refusal(reply.error, self.layout.hall)
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
        code = STAFF_AUDIT.get(request.path_params["action"])
        if code is None:
            return PlainTextResponse("unknown action", status_code=404)
        kiosk = text_param(str(form.get("kiosk_id", "")), "kiosk_id", 32)
        if request.path_params["action"] == "green":
            service = text_param(str(form.get("service_id", "")), "service_id", 64)
            if service is None:
                raise BadRequestError("请选择事项 / choose a service (service_id is empty)")
            reply = await self.hub.staff(StaffAction.ISSUE_GREEN, user.name, service_id=service,
                                         kiosk_id=kiosk)
            target = service
        else:
            number = text_param(str(form.get("number", "")), "number", 16) or ""
            found = await self.hub.query(QueryKind.TICKET_BY_NUMBER, ticket_number=number)
            numbered = found.answer_as(TicketAnswer)
            if numbered is None:
                await self.access.audit(request, user.name, code, number,
                                        outcome=found.error.message if found.error else "refused")
                return RedirectResponse(f"/staff?message={refusal(found.error, self.layout.hall)}",
                                        status_code=303)
            reply = await self.hub.staff(StaffAction.REPRINT, user.name, kiosk_id=kiosk,
                                    ticket_id=numbered.ticket.ticket_id)
            target = number
        ticket = reply.ticket
        message = (f"✓ {ticket.number}" if ticket else "✓") if reply.ok else (
            refusal(reply.error, self.layout.hall))
        detail = (f"ticket {ticket.number}" if ticket else "") + (f" at kiosk {kiosk}" if kiosk else "")
        await self.access.audit(request, user.name, code, target, outcome="ok" if reply.ok else message,
                                detail=detail)
        return RedirectResponse(f"/staff?message={message}", status_code=303)

    async def alerts_page(self, request: Request) -> Response:
        """Alert history, paged, kept across restarts of the web (web-alerts.sqlite3), each with its
        acknowledgement and its action; acknowledgements are also in the audit trail."""
        number = int_param(request.query_params.get("page"), "page", 1, 100000) or 1
        rows, total = await self.hub.history(number, PAGE_SIZE)
        pages = max(1, -(-total // PAGE_SIZE))
        return self.page("alerts.html", request, history=rows, alert_kinds=device_words()["alerts"],
                         page_number=min(number, pages), pages=pages, total=total,
                         query=str(request.url.query))

    async def alert_ack(self, request: Request) -> Response:
        form = await request.form()
        user = self.user_of(request)
        assert user is not None
        alert_id = text_param(str(form.get("alert_id", "")), "alert_id", 128) or ""
        raised_at = text_param(str(form.get("raised_at", "")), "raised_at", 64) or ""
        done = await self.hub.acknowledge(alert_id, raised_at, user.name, dt.datetime.now(dt.UTC))
        await self.access.audit(request, user.name, "alert_ack", alert_id,
                                outcome="ok" if done else "unknown or already acknowledged")
        back = f"/alerts?page={int_param(str(form.get('page', '')), 'page', 1, 100000) or 1}" if str(
            form.get("back", "")) == "alerts" else "/"
        return RedirectResponse(back, status_code=303)

    async def help_action(self, request: Request) -> Response:
        """呼叫帮办 from a kiosk: staff answer it (on the way) or close it; audited."""
        state = HELP_STATES.get(request.path_params["action"])
        if state is None:
            return PlainTextResponse("unknown action", status_code=404)
        user = self.user_of(request)
        assert user is not None
        kiosk = text_param(request.path_params["kiosk"], "kiosk", 32) or ""
        done = self.hub.update_help(kiosk, state, user.name, dt.datetime.now(dt.UTC))
        await self.access.audit(request, user.name, f"help_{request.path_params['action']}", kiosk,
                                outcome="ok" if done else "no open help request")
        return RedirectResponse("/", status_code=303)

    def audit_filters(self, request: Request) -> dict[str, Any]:
        """The audit page's filters: hall days ``from``/``to`` (inclusive), ``actor``, ``action``."""
        first = day_param(request.query_params.get("from"), "from") or self.today()
        last = day_param(request.query_params.get("to"), "to") or first
        actor = text_param(request.query_params.get("actor"), "actor", 64)
        action = text_param(request.query_params.get("action"), "action", 64)
        return {"first": first, "last": last, "actor": actor or "", "action": action or ""}

    def audit_rows(self, filters: dict[str, Any], limit: int | None) -> list[Entry]:
        zone = dt.timezone(dt.timedelta(hours=self.layout.hall.utc_offset_hours))
        hour = dt.time(self.layout.hall.day_starts_at_hour, tzinfo=zone)
        since = dt.datetime.combine(dt.date.fromisoformat(filters["first"]), hour)
        until = dt.datetime.combine(dt.date.fromisoformat(filters["last"]), hour) + dt.timedelta(days=1)
        rows = self.audit.entries(since, until, filters["actor"] or None, filters["action"] or None, limit)
        # Shown in hall time, as every time on these pages.
        return [replace(r, at=dt.datetime.fromisoformat(r.at).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"))
                for r in rows]

    async def audit_page(self, request: Request) -> Response:
        filters = self.audit_filters(request)
        rows = await asyncio.to_thread(self.audit_rows, filters, AUDIT_LIMIT)
        actions = await asyncio.to_thread(self.audit.actions)
        return self.page("audit.html", request, rows=rows, actions=actions, limit=AUDIT_LIMIT,
                         query=str(request.url.query), **filters)

    async def audit_csv(self, request: Request) -> Response:
        filters = self.audit_filters(request)
        rows = await asyncio.to_thread(self.audit_rows, filters, None)
        return csv_download(AUDIT_COLUMNS, [[getattr(r, c) for c in AUDIT_COLUMNS] for r in rows],
                            f"hall-audit-{filters['first']}-{filters['last']}.csv")

    async def ticket_page(self, request: Request) -> Response:
        if not ticket_token(request.path_params["token"]):
            return PlainTextResponse(NO_TICKET, status_code=404)
        return self.page("ticket.html", request, token=request.path_params["token"])

    async def ticket_state(self, request: Request) -> Response:
        """Public: one ticket, by the unguessable token in its QR code; nothing about any other."""
        if not ticket_token(request.path_params["token"]):
            return JSONResponse({"error": "no such ticket today"}, status_code=404)
        reply = await self.hub.query(QueryKind.TICKET, token=request.path_params["token"])
        found = reply.answer_as(TicketAnswer)
        if found is None:
            return JSONResponse({"error": "no such ticket today"}, status_code=404)
        return JSONResponse(found.ticket.model_dump(mode="json", include={
            "number", "status", "people_ahead", "estimated_minutes", "windows", "service_name", "window",
            "ticket_class"}))

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return Response(self.chart_js, media_type="application/javascript",
                            headers={"Cache-Control": "max-age=86400"})
        path = HERE / "static" / name
        # A name too long for the file system (OSError) is not found either, not a 500.
        if "/" in name or "\0" in name or len(name) > 100 or not path.is_file():
            return PlainTextResponse("未找到 / not found", status_code=404)
        kind = "text/css" if name.endswith(".css") else "application/javascript"
        return Response(path.read_bytes(), media_type=kind)



def ticket_token(token: str) -> bool:
    """Whether ``token`` can be a ticket page's token (the contract's: at most 64 URL-safe
    characters); anything else is answered 404 without asking the coordinator."""
    return 0 < len(token) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in token)


async def server_error(request: Request, exc: Exception) -> Response:
    """The last line: an unexpected exception is logged with its trace and answered with a plain
    page that says nothing about the code (the cases known to be bad input are 400s and 404s)."""
    log.error("%s %s failed", request.method, request.url.path[:200], exc_info=exc)
    return PlainTextResponse("服务器内部错误，请稍后再试或联系管理员 / internal error: try again or tell "
                             "the administrator", status_code=500)


async def bad_request(request: Request, exc: Exception) -> Response:
    if request.headers.get("accept", "").startswith("application/json"):
        return JSONResponse({"error": str(exc)}, status_code=400)
    return PlainTextResponse(str(exc), status_code=400)


def unreachable(templates: Jinja2Templates) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The coordinator did not answer (stopped, or the broker is down): a page saying so in the
    hall's words, 503, instead of a bare 500; JSON for the pages' own fetches."""
    async def answer(request: Request, exc: Exception) -> Response:
        if request.headers.get("accept", "").startswith("application/json") or request.url.path.endswith(
                ".json"):
            return JSONResponse({"error": "coordinator_unreachable"}, status_code=503)
        # Known offline (its retained status, answered at once) or no reply within the timeout.
        since = exc.since if isinstance(exc, CoordinatorOfflineError) else None
        return templates.TemplateResponse(request, "unreachable.html", {
            "user": None, "path": request.url.path, "offline_since": since,
            "csp_nonce": request.scope.get("state", {}).get("csp_nonce", "")}, status_code=503)
    return answer


def create_app(hub: Hub, access: Access, layout: Layout,
               extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The web application; ``access`` holds the users, sessions and audit trail; ``extra_routes``:
    routes of their own modules (the booking API, web/bookings.py)."""
    pages = Pages(hub, access, layout)
    anyone = pages.signed_in()
    manager = pages.signed_in("manager")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        hub.start()
        try:
            yield
        finally:
            hub.stop()
            access.close()

    routes = [
        Route("/login", pages.login_form, methods=["GET"]), Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]), Route("/", anyone(pages.home)),
        Route("/account", anyone(pages.account)),
        Route("/account/password", anyone(pages.change_password), methods=["POST"]),
        Route("/devices", manager(pages.devices)), Route("/state.json", anyone(pages.state_json)),
        Route("/events", anyone(pages.events)), Route("/ratings", manager(pages.ratings)),
        Route("/cases", manager(pages.cases)),
        Route("/cases/{case_id}/{action}", manager(pages.case_action), methods=["POST"]),
        Route("/stats", manager(pages.statistics)), Route("/stats.csv", manager(pages.statistics_csv)),
        Route("/stats.xlsx", manager(pages.statistics_csv)),
        Route("/export/ratings/{kind}", manager(pages.ratings)),
        Route("/export/cases/{kind}", manager(pages.cases)),
        Route("/audit", manager(pages.audit_page)), Route("/audit.csv", manager(pages.audit_csv)),
        Route("/console", anyone(pages.console)),
        Route("/console/{window}/queue.json", anyone(pages.console_queue)),
        Route("/console/{window}/{action}", anyone(pages.console_action), methods=["POST"]),
        Route("/staff", manager(pages.staff_page)),
        Route("/staff/{action}", manager(pages.staff_action), methods=["POST"]),
        Route("/help/{kiosk}/{action}", manager(pages.help_action), methods=["POST"]),
        Route("/alerts", manager(pages.alerts_page)),
        Route("/alerts/ack", manager(pages.alert_ack), methods=["POST"]),
        Route("/t/{token}", pages.ticket_page), Route("/t/{token}/state.json", pages.ticket_state),
        Route("/static/{name}", pages.static), *BookingsPage(pages).routes(), *extra_routes,
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard)], lifespan=lifespan,
                     exception_handlers={BadRequestError: bad_request,
                                         NoReplyError: unreachable(pages.templates),
                                         Exception: server_error})
