"""Sign-in, sign-out and one's own password change: sessions on the server, throttled, audited.

- Passwords are checked in worker processes of their own (``hash_workers``) that run at a lower
  CPU priority (nice 10, :class:`~hall_devices.web.hashing.PasswordChecks`): never on the event
  loop, never in the thread pool the pages' MQTT requests use, and never ahead of the web's own
  process for the CPU, so a flood of sign-ins leaves every other page, live feed and console button
  about as fast as before (benchmarks/web.py); with more than ``max_pending_hashes`` checks
  waiting, a sign-in is answered 503 at once.
- An unknown user name costs the same PBKDF2 check as a known one (against a throw-away hash), so
  the answer time does not tell which names exist.
- Backoff per user name and per address (:class:`~hall_devices.web.guard.Throttle`): 429 with
  ``Retry-After`` and a message in Chinese and English; the real user signs in once it is over.
- Outside the demo a demo password never signs in (production mode).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hall_devices.web.audit import AuditError, AuditLog
from hall_devices.web.guard import Session, Sessions, Throttle, ThrottleRules
from hall_devices.web.hashing import PasswordChecks
from hall_devices.web.params import BadRequestError, int_param
from hall_devices.web.users import (
    DEMO_PASSWORDS,
    FileDirectory,
    User,
    UserDirectory,
    UsersError,
    password_problem,
    set_password,
)

log = logging.getLogger(__name__)
Render = Callable[..., Response]
WRONG = "用户名或密码错误 / wrong user name or password"
NOTICES = {"password": "密码已更改，请重新登录 / password changed: please sign in again",
           "signed_out": "已退出 / signed out",
           "expired": "登录已失效，请重新登录 / your session has ended: please sign in again"}
BUSY = "系统繁忙，请稍后再试 / busy: try again in a moment"


def too_many_attempts(wait_s: float) -> tuple[str, int]:
    """The throttled page's message (Chinese / English) and its whole seconds (``Retry-After``)."""
    seconds = math.ceil(wait_s)
    return f"尝试次数过多，请 {seconds} 秒后再试 / too many attempts: try again in {seconds} s", seconds


def client_address(request: Request) -> str:
    """The browser's address (a trusted proxy's ``X-Forwarded-For`` applied by uvicorn), '' if none
    or not an IP address: uvicorn takes the proxy's header as it stands, and a proxy that passes on
    what the browser wrote would put any text in the audit trail and the throttle's keys."""
    host = request.client.host if request.client else ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return ""


async def record_audit(audit_log: AuditLog, request: Request, actor: str, action: str, target: str = "",
                       *, outcome: str = "ok", detail: str = "") -> None:
    """Append to ``audit_log`` with the request's address (in a worker thread); a failure is logged,
    never shown."""
    try:
        await asyncio.to_thread(functools.partial(audit_log.record, actor, action, target, outcome=outcome,
                                                  detail=detail, address=client_address(request)))
    except AuditError as exc:
        log.error("%s", exc)


def throttle_keys(name: str, request: Request) -> list[str]:
    """What a sign-in is throttled by: the user name (any letter case) and the address."""
    return [f"user:{name.lower()}", f"address:{client_address(request)}"]


@dataclass(frozen=True)
class AccessOptions:
    secure: bool  # served over HTTPS: the cookie is Secure and named __Host-…
    demo: bool  # `hall-devices up`: demo passwords allowed
    idle_s: float = 3600.0
    absolute_s: float = 12 * 3600.0
    throttle: ThrottleRules = field(default_factory=ThrottleRules)
    hash_workers: int = 2
    max_pending_hashes: int = 64


class Account(Protocol):
    """What sign-in needs of a users file's entry (the hall's :class:`User`, the region's own)."""

    @property
    def name(self) -> str: ...

    @property
    def password_hash(self) -> str: ...

    @property
    def stamp(self) -> str: ...


A = TypeVar("A", bound=Account)


class SignIn(Generic[A]):
    """Sessions on the server for the users of ``users``, with throttled, audited sign-in, sign-out
    and one's own password change: what the hall web and the regional dashboard share. ``cookie``:
    the session cookie's name over plain HTTP (``__Host-`` is prefixed over HTTPS); ``save_password``
    (path, name, new password) writes a new password into the users file, raising ``users_error``
    or OSError; ``users_error``: what reading the file raises."""

    def __init__(self, users: FileDirectory[A], audit: AuditLog, options: AccessOptions, cookie: str, *,
                 save_password: Callable[[Path, str, str], None], users_error: type[Exception]) -> None:
        self.users = users
        self.audit_log = audit
        self.options = options
        self.sessions = Sessions(options.idle_s, options.absolute_s)
        self.throttle = Throttle(options.throttle)
        self.cookie = f"__Host-{cookie}" if options.secure else cookie
        self.checks = PasswordChecks(options.hash_workers, options.max_pending_hashes)
        self._save_password = save_password
        self._users_error = users_error

    def close(self) -> None:
        self.checks.close()

    # --- who is asking ---------------------------------------------------------------------------

    def refresh_users(self) -> None:
        try:
            self.users.refresh()  # a stat, and a read of a small file only when it changed
        except self._users_error as exc:
            log.error("keeping the users read before: %s", exc)

    def _stamps(self) -> dict[str, str]:
        self.refresh_users()
        return {name: user.stamp for name, user in self.users.users.items()}

    def session_of(self, request: Request) -> Session | None:
        if "access.session" not in request.scope:
            request.scope["access.session"] = self.sessions.find(request.cookies.get(self.cookie),
                                                                 self._stamps(), time.monotonic())
        found: Session | None = request.scope["access.session"]
        return found

    def alive(self, cookie: str | None) -> bool:
        """Whether ``cookie``'s session still stands (a live feed asks; it does not renew it)."""
        return self.sessions.find(cookie, self._stamps(), time.monotonic(), renew=False) is not None

    def user_of(self, request: Request) -> A | None:
        session = self.session_of(request)
        return self.users.get(session.user) if session else None

    @staticmethod
    def address(request: Request) -> str:
        return client_address(request)

    async def audit(self, request: Request, actor: str, action: str, target: str = "", *,
                    outcome: str = "ok", detail: str = "") -> None:
        """Append to the audit trail (in a worker thread); a failure is logged, never shown."""
        await record_audit(self.audit_log, request, actor, action, target, outcome=outcome, detail=detail)

    async def _check(self, password: str, user: A | None) -> bool | None:
        """Whether the password is right (same cost for an unknown user); None when too busy."""
        return await self.checks.check(password, user.password_hash if user else None)

    # --- pages -----------------------------------------------------------------------------------

    async def _password_gate(self, request: Request, name: str, password: str,
                             again: Callable[..., Response]) -> A | Response:
        """The sign-in's password step: throttled per name and address, the file re-read (a user
        added a moment ago signs in without a restart), the password checked; the user, or the page
        that refuses (429, 503, 401; a refusal is audited)."""
        keys = throttle_keys(name, request)
        wait = self.throttle.attempt(keys, time.monotonic())
        if wait > 0:
            message, seconds = too_many_attempts(wait)
            return again(message, 429, **{"Retry-After": str(seconds)})
        self.refresh_users()
        user = self.users.get(name)
        right = await self._check(password, user)
        if right is None:
            return again(BUSY, 503, **{"Retry-After": "1"})
        if not right or user is None:
            locked = self.throttle.wait_s(keys, time.monotonic())
            await self.audit(request, name, "sign_in_failed", outcome="refused",
                             detail=f"locked for {math.ceil(locked)} s" if locked else "")
            return again(WRONG, 401)
        return user

    async def logout(self, request: Request) -> Response:
        session = self.session_of(request)
        self.sessions.end(request.cookies.get(self.cookie))
        if session is not None:
            await self.audit(request, session.user, "sign_out")
        return self.signed_out("signed_out")

    def signed_out(self, notice: str) -> Response:
        response = RedirectResponse(f"/login?notice={notice}", status_code=303)
        response.delete_cookie(self.cookie, path="/", secure=self.options.secure, httponly=True,
                               samesite="strict")
        return response

    async def change_password(self, request: Request, render: Render) -> Response:
        """The signed-in user's own password: the current one, then the new one twice. Every
        session of that user ends (this one too)."""
        user = self.user_of(request)
        assert user is not None
        form = await request.form()
        current, new, confirm = (str(form.get(k, "")) for k in ("current", "new", "confirm"))

        def refuse(error: str, status: int) -> Response:
            return render("account.html", request, error=error, status_code=status)

        keys = throttle_keys(user.name, request)
        wait = self.throttle.attempt(keys, time.monotonic())
        if wait > 0:
            return refuse(too_many_attempts(wait)[0], 429)
        right = await self._check(current, user)
        if right is None:
            return refuse(BUSY, 503)
        if not right:
            await self.audit(request, user.name, "password_change", target=user.name, outcome="refused",
                             detail="wrong current password")
            return refuse("当前密码错误 / the current password is wrong", 401)
        self.throttle.succeeded(keys)
        problem = password_problem(user.name, new) or (
            None if new == confirm else "两次输入的新密码不一致 / the new passwords differ")
        if problem:
            return refuse(problem, 400)
        try:
            await self.checks.run(self._save_password, self.users.path, user.name, new)
        except (self._users_error, OSError) as exc:
            log.error("cannot change the password of %s: %s", user.name, exc)
            return refuse("无法保存新密码，请联系管理员 / the new password could not be saved: "
                          "ask the administrator", 500)
        ended = self.sessions.end_user(user.name)
        self.refresh_users()
        await self.audit(request, user.name, "password_changed", target=user.name,
                         detail=f"{ended} session(s) ended")
        return self.signed_out("password")

    def notice(self, request: Request) -> str | None:
        return NOTICES.get(request.query_params.get("notice", ""))

    def _accepted(self, request: Request, name: str) -> None:
        """The password was right: the name's and address's throttle cleared, and any session this
        browser had before ended (a session from before never carries on)."""
        self.throttle.succeeded(throttle_keys(name, request))
        self.sessions.end(request.cookies.get(self.cookie))

    def _session_cookie(self, user: A, where: str, window: int | None = None) -> Response:
        """A new session for ``user`` (at ``window``, a clerk's) and the way to ``where``."""
        cookie = self.sessions.begin(user.name, user.stamp, time.monotonic(), window)
        response = RedirectResponse(where, status_code=303)
        response.set_cookie(self.cookie, cookie, max_age=int(self.options.absolute_s), path="/",
                            secure=self.options.secure, httponly=True, samesite="strict")
        return response

class Access(SignIn[User]):
    """The hall web's sign-in: a clerk signs in to one of the account's windows, one session per
    window; outside the demo a demo password never signs in."""

    def __init__(self, users: UserDirectory, audit: AuditLog, options: AccessOptions,
                 window_numbers: set[int]) -> None:
        super().__init__(users, audit, options, "hall_session", save_password=set_password,
                         users_error=UsersError)
        self.windows = window_numbers

    async def login(self, request: Request, render: Render) -> Response:
        form = await request.form()
        name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))
        target = str(form.get("next", "/"))

        def again(error: str, status: int, **headers: str) -> Response:
            page = render("login.html", request, error=error, next="/", status_code=status)
            page.headers.update(headers)
            return page

        user = await self._password_gate(request, name, password, again)
        if isinstance(user, Response):
            return user
        if not self.options.demo and (user.demo or password in DEMO_PASSWORDS):
            await self.audit(request, name, "sign_in_failed", outcome="refused", detail="demo password")
            return again("演示密码不能用于正式系统，请管理员重设密码 / a demo password is not accepted "
                         "here: ask the administrator to set a real one", 403)
        self._accepted(request, name)
        window = None
        if user.role == "clerk":
            try:
                window = int_param(str(form.get("window", "")), "window", 1, 9999)
            except BadRequestError:
                window = None
            if window is None or window not in self.windows:
                return again("请选择窗口 / choose your window", 400)
            refused = self._window_refused(user, window)
            if refused:
                await self.audit(request, name, "sign_in_failed", target=f"window {window}",
                                 outcome="refused", detail=refused[1])
                return again(refused[0], 403 if refused[1] == "not this clerk's window" else 409)
            self.sessions.end_window(window)  # only this clerk's own earlier session can be there
        await self.audit(request, user.name, "sign_in", target=f"window {window}" if window else "")
        if user.role == "clerk":
            where = "/console"
        else:
            where = target if target.startswith("/") and not target.startswith("//") else "/"
        return self._session_cookie(user, where, window)

    def _window_refused(self, user: User, window: int) -> tuple[str, str] | None:
        """Why ``user`` may not sign in to ``window`` now (the page's message, the audit's detail):
        not one of the windows of the account, or held by another clerk's live session. One web
        session per window: the second clerk is refused until the first signs out or the session
        ends (idle or absolute timeout, a manager's `web-user` change); it is never taken over."""
        if not user.may_open(window):
            allowed = "、".join(map(str, user.windows)) or "无 / none"
            return (f"您的账号不能登录 {window} 号窗口（可登录：{allowed}）/ your account may not open "
                    f"window {window} (yours: {', '.join(map(str, user.windows)) or 'none'}): "
                    "ask a manager", "not this clerk's window")
        holder = self.sessions.holder(window, self._stamps(), time.monotonic())
        if holder is not None and holder.user != user.name:
            return (f"{window} 号窗口已由 {holder.user} 登录，请其先退出 / window {window} is in use by "
                    f"{holder.user}: they must sign out first", f"window held by {holder.user}")
        return None
