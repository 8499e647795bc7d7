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

The steps are the hall web's own (:class:`~hall_devices.web.access.SignIn`, shared with the hall's
``Access``); only what a sign-in leads to is the region's. Options are the hall's
:class:`~hall_devices.web.access.AccessOptions` (``demo`` is not used: the
region has no demo passwords of the hall's). Origin checks and security headers are the hall's
:class:`~hall_devices.web.security.Guard` middleware (``web.py``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from hall_devices.region.users import RegionUser, RegionWebError, region_directory, set_region_password
from hall_devices.web.access import AccessOptions, Render, SignIn
from hall_devices.web.audit import AuditLog


class RegionAccess(SignIn[RegionUser]):
    """The regional dashboard's sign-in: a region manager or an auditor, no windows, no demo."""

    def __init__(self, users_file: Path, audit: AuditLog, options: AccessOptions) -> None:
        # region_directory raises RegionWebError: checked at start
        super().__init__(region_directory(users_file), audit, options, "region_session",
                         save_password=set_region_password, users_error=RegionWebError)

    async def login(self, request: Request, render: Render) -> Response:
        form = await request.form()
        name, password = str(form.get("username", ""))[:64], str(form.get("password", ""))

        def again(error: str, status: int, **headers: str) -> Response:
            page = render("login.html", request, error=error, status_code=status)
            page.headers.update(headers)
            return page

        user = await self._password_gate(request, name, password, again)
        if isinstance(user, Response):
            return user
        self._accepted(request, name)
        await self.audit(request, user.name, "sign_in")
        return self._session_cookie(user, "/")
