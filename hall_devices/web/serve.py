"""`hall-devices web`: production checks, then HTTPS (and, if asked, a plain-HTTP port that only
redirects to it).

Production mode (the default; ``HALL_WEB_DEMO`` is set only by `hall-devices up`) refuses to start
without a readable TLS certificate and key, with a key file others can read, or with a user whose
password is a demo one. The demo may serve plain HTTP, and only on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from hall_devices.layout import Layout
from hall_devices.settings import Settings
from hall_devices.web.access import Access, AccessOptions
from hall_devices.web.alert_log import AlertLog, alert_file
from hall_devices.web.audit import AuditError, AuditLog, audit_file
from hall_devices.web.guard import ThrottleRules
from hall_devices.web.security import proxy_list
from hall_devices.web.users import DEMO_ACCOUNTS, UserDirectory, UsersError, check_password


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def trusted_proxies(settings: Settings) -> list[str]:
    """``web_trusted_proxies`` as a list for uvicorn's ``forwarded_allow_ips``; raises ValueError
    naming an entry that is not an IP address or network (``*``, trusting anyone, is refused)."""
    return proxy_list(settings.web_trusted_proxies, "web_trusted_proxies")


def problems(settings: Settings, users: UserDirectory) -> list[str]:
    """Why this web must not start (empty: it may)."""
    found: list[str] = []
    try:
        trusted_proxies(settings)
    except ValueError as exc:
        found.append(str(exc))
    cert, key = settings.web_tls_cert_file, settings.web_tls_key_file
    if cert is None or key is None:
        if not settings.web_demo:
            found.append("no TLS certificate: set HALL_WEB_TLS_CERT_FILE and HALL_WEB_TLS_KEY_FILE (made by "
                         "`hall-devices broker provision` as tls/web.crt and tls/web.key)")
        elif not _loopback(settings.web_host):
            found.append(f"the demo serves plain HTTP only on 127.0.0.1, not on {settings.web_host}")
    else:
        for path in (cert, key):
            if not path.is_file():
                found.append(f"TLS file not found: {path}")
        if key.is_file() and key.stat().st_mode & 0o077:
            found.append(f"{key} can be read by other accounts: chmod 600 {key}")
    demo = sorted(name for name, user in users.users.items() if user.demo or (
        name in DEMO_ACCOUNTS and check_password(DEMO_ACCOUNTS[name], user.password_hash)))
    if demo and not settings.web_demo:
        found.append(f"user(s) {', '.join(demo)} have a demo password: set real ones with "
                     "`hall-devices web-user passwd NAME`, or remove them")
    return found


class _Quiet(uvicorn.Server):
    """The redirect server: the main server owns the signals and stops this one."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _CancelledRequests(logging.Filter):
    """uvicorn logs a request task it cancelled at shutdown (:class:`_Server` on a second Ctrl-C,
    uvicorn itself once the graceful wait ran out) as an application error with a traceback: a
    request cut short on the operator's word is no error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


class _Server(uvicorn.Server):
    """The main server. Ctrl-C or SIGTERM: uvicorn's graceful shutdown, ``before_shutdown`` first
    (live pages' streams end), other open requests get ``timeout_graceful_shutdown``, then the
    app's lifespan ends (MQTT offline, files closed). A second Ctrl-C cancels the requests still
    open, quietly, and the shutdown goes on at once.

    Unlike uvicorn, the signal is not raised again after the shutdown (it became a KeyboardInterrupt
    inside asyncio, and every task still pending was logged with a traceback): :attr:`signalled`
    says one came."""

    signalled = False
    _loop: asyncio.AbstractEventLoop | None = None

    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown  # e.g. end the live pages' streams

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._before_shutdown()
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn's own handle_exit records the signal to raise it again later; not called.
        again = self.signalled and sig == signal.SIGINT
        self.signalled = self.should_exit = True
        if again and self._loop is not None:  # a signal handler: the loop does the cancelling
            self._loop.call_soon_threadsafe(self._cancel_requests)

    def _cancel_requests(self) -> None:
        for task in self.server_state.tasks:
            task.cancel()


def redirect_app(https_port: int) -> ASGIApp:
    """Every plain-HTTP request answered 308 to the same path over HTTPS."""
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope)
        host = request.url.hostname or "localhost"
        response: Response
        if not host.replace(".", "").replace("-", "").replace(":", "").isalnum():
            response = PlainTextResponse("bad Host header", status_code=400)
        else:
            shown = f"[{host}]" if ":" in host else host
            port = "" if https_port == 443 else f":{https_port}"
            response = RedirectResponse(f"https://{shown}{port}{request.url.path}", status_code=308)
        await response(scope, receive, send)
    return app


def run(settings: Settings, layout: Layout) -> int:
    from hall_devices.idcard.identity import hall_key
    from hall_devices.web.api_clients import ApiClients
    from hall_devices.web.app import create_app
    from hall_devices.web.bookings import BookingApi
    from hall_devices.web.hub import Hub

    try:
        users = UserDirectory(settings.web_users)
    except UsersError as exc:
        found = [str(exc)]
    else:
        found = problems(settings, users)
    if found:
        for problem in found:
            print(f"网页无法启动 / web cannot start: {problem}", file=sys.stderr)
        return 1
    idle = sorted(n for n, u in users.users.items() if u.role == "clerk" and not u.windows)
    if idle:  # e.g. a users file from before clerks carried windows: they cannot sign in
        print(f"警告 / warning: clerk(s) {', '.join(idle)} have no window to open: "
              "`hall-devices web-user role NAME --role clerk --windows 3`", file=sys.stderr)
    try:
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        audit = AuditLog(audit_file(settings.data_dir))
        alerts = AlertLog(alert_file(settings.data_dir))
    except (OSError, sqlite3.Error, AuditError) as exc:
        print(f"网页无法启动 / web cannot start: {exc}", file=sys.stderr)
        return 1
    cert, key = settings.web_tls_cert_file, settings.web_tls_key_file
    secure = cert is not None and key is not None
    access = Access(users, audit, AccessOptions(
        secure=secure, demo=settings.web_demo, idle_s=settings.web_session_idle_minutes * 60,
        absolute_s=settings.web_session_max_hours * 3600,
        throttle=ThrottleRules(free=settings.web_login_free_attempts, backoff_s=settings.web_login_backoff_s,
                               max_backoff_s=settings.web_login_max_backoff_s)),
        {w.number for w in layout.windows})
    hub = Hub(settings, layout, alerts)
    bookings = BookingApi(hub, layout, hall_key(settings), ApiClients(settings.data_dir / "api-clients.json"))
    app = create_app(hub, access, layout, bookings.routes())
    # X-Forwarded-For only from the proxies named: else anyone sets the address the sign-in
    # throttle and the audit trail see (uvicorn believes it from 127.0.0.1 by default).
    proxies = trusted_proxies(settings)
    # Live pages' event streams end as the shutdown begins; other requests get 3 s.
    main = _Server(uvicorn.Config(
        app, host=settings.web_host, port=settings.web_port, log_level="warning",
        timeout_graceful_shutdown=3, ssl_certfile=str(cert) if secure else None,
        ssl_keyfile=str(key) if secure else None, proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None), hub.end_streams)
    logging.getLogger("uvicorn.error").addFilter(_CancelledRequests())  # after Config set logging up
    if not (secure and settings.web_http_redirect_port):
        return _until_interrupted(main, main.run)
    redirect = _Quiet(uvicorn.Config(redirect_app(settings.web_port), host=settings.web_host,
                                     port=settings.web_http_redirect_port, log_level="warning",
                                     lifespan="off"))

    async def both() -> None:
        side = asyncio.create_task(redirect.serve())
        try:
            await main.serve()
        finally:
            redirect.should_exit = True
            await side

    return _until_interrupted(main, lambda: asyncio.run(both()))


def _until_interrupted(main: _Server, serve: Callable[[], object]) -> int:
    """Run the server; 0 when it stopped, with one line when a signal stopped it. Ctrl-C before
    uvicorn's handlers are in place reaches asyncio's own as a KeyboardInterrupt: the same line,
    not a traceback (no shutdown was needed)."""
    try:
        serve()
    except KeyboardInterrupt:
        main.signalled = True
    if main.signalled:
        print("网页已停止 / web stopped", file=sys.stderr)
    return 0
