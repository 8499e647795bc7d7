"""The regional dashboard's sign-in, sign-out and one's own password change, with the hall web's
defences (docs/security.md):

- sessions on the server (:class:`~hall_devices.web.guard.Sessions`: the cookie is a random key,
  only its SHA-256 is kept), bound to the user's stamp: sign-out ends the session at once, and a
  password change (``/account``), or a new password, a new role or a removed entry in the users
  file, ends every session of that user; idle and absolute timeouts;
- backoff per user name and per address (:class:`~hall_devices.web.guard.Throttle`): 429 with
  ``Retry-After``; the real user signs in once the wait is over;
- passwords checked in the hall's hashing processes
  (:class:`~hall_devices.web.hashing.PasswordChecks`), never on the event loop, the same cost for
  an unknown name;
- sign-ins, failed sign-ins, sign-outs and password changes in an audit trail
  (:class:`~hall_devices.web.audit.AuditLog`, a SQLite file of the dashboard's own).

Options are the hall's :class:`~hall_devices.web.access.AccessOptions` (``demo`` is not used: the
region has no demo passwords of the hall's). Origin checks and security headers are the hall's
:class:`~hall_devices.web.security.Guard` middleware (``web.py``).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hall_devices.region.users import RegionUser, RegionWebError, region_directory, set_region_password
from hall_devices.web.access import (
    BUSY,
    NOTICES,
    WRONG,
    AccessOptions,
    Render,
    record_audit,
    throttle_keys,
    too_many_attempts,
)
from hall_devices.web.audit import AuditLog
from hall_devices.web.guard import Session, Sessions, Throttle
from hall_devices.web.hashing import PasswordChecks
from hall_devices.web.users import password_problem

log = logging.getLogger(__name__)


class RegionAccess:
    def __init__(self, users_file: Path, audit: AuditLog, options: AccessOptions) -> None:
        self.users = region_directory(users_file)  # raises RegionWebError: checked at start
        self.audit_log = audit
        self.options = options
        self.sessions = Sessions(options.idle_s, options.absolute_s)
        self.throttle = Throttle(options.throttle)
        self.checks = PasswordChecks(options.hash_workers, options.max_pending_hashes)
        self.cookie = "__Host-region_session" if options.secure else "region_session"

    def close(self) -> None:
        self.checks.close()

    async def audit(self, request: Request, actor: str, action: str, target: str = "", *,
                    outcome: str = "ok", detail: str = "") -> None:
        await record_audit(self.audit_log, request, actor, action, target, outcome=outcome, detail=detail)

    def refresh_users(self) -> None:
        try:
            self.users.refresh()  # a stat, and a read of a small file only when it changed
        except RegionWebError as exc:
            log.error("keeping the users read before: %s", exc)

    def session_of(self, request: Request) -> Session | None:
        if "region.session" not in request.scope:
            self.refresh_users()
            stamps = {name: user.stamp for name, user in self.users.users.items()}
            request.scope["region.session"] = self.sessions.find(request.cookies.get(self.cookie), stamps,
                                                                 time.monotonic())
        found: Session | None = request.scope["region.session"]
        return found

    def user_of(self, request: Request) -> RegionUser | None:
        session = self.session_of(request)
        return self.users.get(session.user) if session else None

    async def login(self, request: Request, render: Render) -> Response:
        form = await request.form()
        name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))

        def again(error: str, status: int, **headers: str) -> Response:
            page = render("login.html", request, error=error, status_code=status)
            page.headers.update(headers)
            return page

        keys = throttle_keys(name, request)
        wait = self.throttle.attempt(keys, time.monotonic())
        if wait > 0:
            message, seconds = too_many_attempts(wait)
            return again(message, 429, **{"Retry-After": str(seconds)})
        self.refresh_users()
        user = self.users.get(name)
        right = await self.checks.check(password, user.password_hash if user else None)
        if right is None:
            return again(BUSY, 503, **{"Retry-After": "1"})
        if not right or user is None:
            locked = self.throttle.wait_s(keys, time.monotonic())
            await self.audit(request, name, "sign_in_failed", outcome="refused",
                             detail=f"locked for {math.ceil(locked)} s" if locked else "")
            return again(WRONG, 401)
        self.throttle.succeeded(keys)
        self.sessions.end(request.cookies.get(self.cookie))  # a session from before never carries on
        cookie = self.sessions.begin(user.name, user.stamp, time.monotonic())
        await self.audit(request, user.name, "sign_in")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(self.cookie, cookie, max_age=int(self.options.absolute_s), path="/",
                            secure=self.options.secure, httponly=True, samesite="strict")
        return response

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
        """The signed-in user's own password: the current one, then the new one twice (the hall's
        rules, :func:`~hall_devices.web.users.password_problem`). Every session of that user ends."""
        user = self.user_of(request)
        assert user is not None  # the route is for signed-in users only
        form = await request.form()
        current, new, confirm = (str(form.get(k, "")) for k in ("current", "new", "confirm"))

        def refuse(error: str, status: int) -> Response:
            return render("account.html", request, error=error, status_code=status)

        keys = throttle_keys(user.name, request)
        wait = self.throttle.attempt(keys, time.monotonic())
        if wait > 0:
            return refuse(too_many_attempts(wait)[0], 429)
        right = await self.checks.check(current, user.password_hash)
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
            await self.checks.run(set_region_password, self.users.path, user.name, new)
        except (RegionWebError, OSError) as exc:
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
