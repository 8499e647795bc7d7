"""The regional dashboard: every hall's state now, comparisons by day range, a hall's detail.

Its own small Starlette app (same stack and stylesheet as the hall's), reading the region's
PostgreSQL in a worker thread (psycopg is blocking). Roles of its own, in a users file of the hall's
format (``region/users.py``): ``region_manager`` and ``auditor`` (read only). Every page needs a
session; sign-in, sessions, throttling and the audit trail are ``region/access.py``, the Origin
check on every POST and the security headers the hall's :class:`~hall_devices.web.security.Guard`;
``/audit`` shows the trail (both roles: the auditor's is a read-only one). Both roles see every
hall's events PostgreSQL refused and the region parked (a count per hall of those not stored since
from a later copy of their seq, a hall's list on its page with those marked: for a rating, a 好差评
record may be missing). Served over TLS
with the region's certificate (``region-web``). Times are shown in China Standard Time (UTC+8), the
halls' time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from hall_devices.catalog import PARKED_WORDS, audit_outcome, audit_words
from hall_devices.contract import RATING_NAMES, param_level
from hall_devices.region import views
from hall_devices.region.access import RegionAccess
from hall_devices.region.db import RATING_KINDS, RECORD_SOURCE_KINDS
from hall_devices.region.users import ROLE_ZH, RegionRole, RegionUser
from hall_devices.web.access import AccessOptions
from hall_devices.web.audit import COLUMNS as AUDIT_COLUMNS
from hall_devices.web.audit import LIMIT as AUDIT_LIMIT
from hall_devices.web.audit import AuditLog, Entry
from hall_devices.web.export import csv_download
from hall_devices.web.params import BadRequestError, day_param, text_param
from hall_devices.web.security import Guard

HERE = Path(__file__).resolve().parent
STATIC = HERE.parent / "web" / "static"
CST = dt.timezone(dt.timedelta(hours=8))
PUSH_ZH = {"pending": "待答复", "applied": "已生效", "refused": "被拒绝"}
Handler = Callable[[Request], Awaitable[Response]]


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} 分钟"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{share * 100:.1f}%"


def _hall_time(value: object) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")
    return "—"


class RegionPages:
    def __init__(self, db_url: str, access: RegionAccess) -> None:
        self.db_url = db_url
        self.access = access
        # The region's own templates first; the hall's account.html (extending the region's base.html)
        # after them, one password-change form for both.
        self.templates = Jinja2Templates(directory=[HERE / "templates", HERE.parent / "web" / "templates"])
        self.templates.env.globals.update(role_zh=ROLE_ZH, push_zh=PUSH_ZH, rating_names=RATING_NAMES,
                                          minutes=_minutes, percent=_percent, hall_time=_hall_time,
                                          parked_words=PARKED_WORDS, audit_words=audit_words,
                                          audit_outcome=audit_outcome)

    async def read(self, query: Callable[[psycopg.Connection[tuple[object, ...]]], Any]) -> Any:
        def run() -> Any:
            with psycopg.connect(self.db_url) as conn:
                return query(conn)
        return await asyncio.to_thread(run)

    def user_of(self, request: Request) -> RegionUser | None:
        return self.access.user_of(request)

    def page(self, name: str, request: Request, status_code: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, {"user": self.user_of(request), **context},
                                               status_code=status_code)

    def signed_in(self, handler: Handler, role: RegionRole | None = None) -> Handler:
        async def guarded(request: Request) -> Response:
            user = self.user_of(request)
            if user is None:
                ended = "?notice=expired" if self.access.cookie in request.cookies else ""
                return RedirectResponse(f"/login{ended}", status_code=303)
            if role is not None and user.role != role:
                return PlainTextResponse("无权操作 / not allowed for your role", status_code=403)
            return await handler(request)
        return guarded

    async def retry_reports(self, request: Request) -> Response:
        """Region manager: send a hall's undelivered 好差评 records at the next round, not after
        their backoff (after the province's platform is back)."""
        hall_id = request.path_params["hall_id"]
        if not _hall_shaped(hall_id):
            return _no_hall(hall_id)
        done = await self.read(lambda c: c.execute(
            "UPDATE rating_records SET next_attempt_at = now() WHERE hall_id = %s AND delivered_at IS NULL "
            "AND not_wanted_at IS NULL",
            (hall_id,)).rowcount)
        user = self.user_of(request)
        await self.access.audit(request, user.name if user else "", "retry_reports", hall_id,
                                detail=f"{done} record(s) due now")
        return RedirectResponse(f"/hall/{hall_id}", status_code=303)

    def audit_rows(self, filters: dict[str, str], limit: int | None) -> list[Entry]:
        """Rows of China Standard Time days ``first``..``last`` (:meth:`audit_filters`), times in it."""
        midnight = dt.time(0, tzinfo=CST)
        since = dt.datetime.combine(dt.date.fromisoformat(filters["first"]), midnight)
        until = dt.datetime.combine(dt.date.fromisoformat(filters["last"]), midnight) + dt.timedelta(days=1)
        rows = self.access.audit_log.entries(since, until, filters["actor"] or None,
                                             filters["action"] or None, limit)
        return [replace(r, at=dt.datetime.fromisoformat(r.at).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"))
                for r in rows]

    def audit_filters(self, request: Request) -> dict[str, str]:
        """``from``/``to`` (days, default today), ``actor``, ``action``; raises BadRequestError."""
        today = dt.datetime.now(CST).date().isoformat()
        first = day_param(request.query_params.get("from"), "from") or today
        return {"first": first, "last": day_param(request.query_params.get("to"), "to") or first,
                "actor": text_param(request.query_params.get("actor"), "actor", 64) or "",
                "action": text_param(request.query_params.get("action"), "action", 64) or ""}

    async def audit_page(self, request: Request) -> Response:
        """The hall's audit page (its template) over the dashboard's own trail."""
        try:
            filters = self.audit_filters(request)
        except BadRequestError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        rows = await asyncio.to_thread(self.audit_rows, filters, AUDIT_LIMIT)
        actions = await asyncio.to_thread(self.access.audit_log.actions)
        return self.page("audit.html", request, rows=rows, actions=actions, limit=AUDIT_LIMIT,
                         query=str(request.url.query), first=filters["first"], last=filters["last"],
                         actor=filters["actor"], action=filters["action"])

    async def audit_csv(self, request: Request) -> Response:
        try:
            filters = self.audit_filters(request)
        except BadRequestError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        rows = await asyncio.to_thread(self.audit_rows, filters, None)
        return csv_download(AUDIT_COLUMNS, [[getattr(r, c) for c in AUDIT_COLUMNS] for r in rows],
                            f"region-audit-{filters['first']}-{filters['last']}.csv")

    async def login_form(self, request: Request) -> Response:
        return self.page("login.html", request, error=None, notice=self.access.notice(request))

    async def login(self, request: Request) -> Response:
        return await self.access.login(request, self.page)

    async def logout(self, request: Request) -> Response:
        return await self.access.logout(request)

    async def account(self, request: Request) -> Response:
        return self.page("account.html", request, error=None)

    async def change_password(self, request: Request) -> Response:
        return await self.access.change_password(request, self.page)

    async def halls(self, request: Request) -> Response:
        now = dt.datetime.now(dt.UTC)
        day = _day(request.query_params.get("day")) or now.astimezone(CST).date().isoformat()
        rows = await self.read(lambda c: views.overview(c, day, now))
        return self.page("halls.html", request, halls=rows, day=day)

    async def compare(self, request: Request) -> Response:
        now = dt.datetime.now(dt.UTC)
        today = now.astimezone(CST).date().isoformat()
        first = _day(request.query_params.get("first")) or today
        last = _day(request.query_params.get("last")) or first
        if last < first:
            return PlainTextResponse("结束日期早于开始日期 / the last day is before the first",
                                     status_code=400)
        rows = await self.read(lambda c: views.compare(c, first, last, now))
        return self.page("compare.html", request, figures=rows, first=first, last=last)

    async def hall(self, request: Request) -> Response:
        hall_id = request.path_params["hall_id"]
        if not _hall_shaped(hall_id):
            return _no_hall(hall_id)

        def detail(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[Any, ...]:
            known = conn.execute("SELECT 1 FROM halls WHERE hall_id = %s", (hall_id,)).fetchone()
            return known, views.pushes(conn, hall_id), views.bad_ratings(conn, hall_id), views.alerts(
                conn, hall_id), views.parked(conn, hall_id)

        known, pushes, bad, alerts, parked = await self.read(detail)
        if known is None:
            return _no_hall(hall_id)
        bad = [(_hall_time(r[0]), *r[1:]) for r in bad]
        return self.page("hall.html", request, hall_id=hall_id, pushes=pushes, bad=bad, alerts=alerts,
                         parked=parked, rating_kinds=RATING_KINDS,
                         record_source_kinds=RECORD_SOURCE_KINDS)

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name != "app.css":
            return PlainTextResponse("not found", status_code=404)
        return Response((STATIC / name).read_bytes(), media_type="text/css")


def _hall_shaped(hall_id: str) -> bool:
    """Whether ``hall_id`` can be a hall's id (a topic level): anything else is no hall, answered
    404 before the database, which refuses some text (a NUL byte) with an error (a 500)."""
    return re.fullmatch(param_level("hall"), hall_id, flags=re.ASCII) is not None


def _no_hall(hall_id: str) -> Response:
    return PlainTextResponse(f"没有大厅 {hall_id!r} / no hall {hall_id!r}", status_code=404)


def _day(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def create_region_app(db_url: str, users_file: Path, audit: AuditLog, options: AccessOptions) -> Starlette:
    """The dashboard's app; ``options.secure``: served over HTTPS (``__Host-`` cookie, Secure).
    Raises :class:`~hall_devices.region.users.RegionWebError` when the users file cannot be read."""
    access = RegionAccess(users_file, audit, options)
    pages = RegionPages(db_url, access)
    guard = pages.signed_in
    routes = [
        Route("/login", pages.login_form, methods=["GET"]), Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]), Route("/", guard(pages.halls)),
        Route("/account", guard(pages.account)), Route("/audit", guard(pages.audit_page)),
        Route("/audit.csv", guard(pages.audit_csv)),
        Route("/account/password", guard(pages.change_password), methods=["POST"]),
        Route("/compare", guard(pages.compare)), Route("/hall/{hall_id}", guard(pages.hall)),
        Route("/hall/{hall_id}/retry-reports", guard(pages.retry_reports, "region_manager"),
              methods=["POST"]),
        Route("/static/{name}", pages.static),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            access.close()  # the hashing processes

    return Starlette(routes=routes, middleware=[Middleware(Guard)], lifespan=lifespan)


def region_web_config(app: ASGIApp, host: str, port: int, *, tls_cert: Path | None, tls_key: Path | None,
                      proxies: list[str]) -> uvicorn.Config:
    """The dashboard's server: TLS when ``tls_cert`` is given; ``X-Forwarded-For`` believed only
    from ``proxies`` (IP addresses or networks), else the peer's address is the browser's. uvicorn
    alone believes the header from 127.0.0.1, so any local process could pick the address the
    sign-in throttle and the audit trail see."""
    return uvicorn.Config(app, host=host, port=port, log_level="warning",
                          ssl_certfile=str(tls_cert) if tls_cert else None,
                          ssl_keyfile=str(tls_key) if tls_key else None,
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)
