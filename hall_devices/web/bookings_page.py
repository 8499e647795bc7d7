"""The managers' bookings page: a day's bookings by slot and service; create, move, cancel; who
checked in and who did not come (未到). Mounted by web/app.py; every change is a staff command the
coordinator decides, under the signed-in manager's name."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import quote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hall_devices.contract import AppointmentsAnswer, QueryKind, Reply, StaffAction
from hall_devices.web.booking_models import BAD_CODE, BOOKING_ID, BookingIn, first_problem

if TYPE_CHECKING:
    from hall_devices.web.app import Pages

STATE_ZH = {"booked": "已预约", "checked_in": "已签到", "cancelled": "已取消", "no_show": "未到"}


class BookingsPage:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.zone = dt.timezone(dt.timedelta(hours=pages.layout.hall.utc_offset_hours))

    def routes(self) -> list[Route]:
        manager = self.pages.signed_in("manager")
        return [Route("/bookings", manager(self.show)),
                Route("/bookings/create", manager(self.create), methods=["POST"]),
                Route("/bookings/{code}/move", manager(self.move), methods=["POST"]),
                Route("/bookings/{code}/cancel", manager(self.cancel), methods=["POST"])]

    async def show(self, request: Request) -> Response:
        day = request.query_params.get("day") or self.pages.today()
        reply = await self.pages.hub.query(QueryKind.APPOINTMENTS, first_day=day)
        found = reply.answer_as(AppointmentsAnswer)
        booked = found.appointments if found else []
        rows = [r.model_dump(mode="json") for r in booked]
        counts = Counter(r.state for r in booked)
        return self.pages.page("bookings.html", request, day=day, rows=rows, counts=counts,
                               state_zh=STATE_ZH, services=self.pages.layout.services,
                               message=request.query_params.get("message"),
                               error=None if reply.ok else reply.error)

    def _slot(self, day: str, start: str, end: str) -> tuple[dt.datetime, dt.datetime]:
        """Raises ValueError with a message for the manager."""
        try:
            first = dt.datetime.combine(dt.date.fromisoformat(day), dt.time.fromisoformat(start), self.zone)
            return first, dt.datetime.combine(first.date(), dt.time.fromisoformat(end), self.zone)
        except ValueError:
            raise ValueError(f"时段请写成 HH:MM / write the slot as HH:MM (got {start!r}-{end!r})") from None

    def _back(self, day: str, message: str) -> Response:
        return RedirectResponse(f"/bookings?day={quote(day)}&message={quote(message)}", status_code=303)

    def _done(self, day: str, reply: Reply, refused: str) -> Response:
        why = reply.error.message if reply.error else ""
        return self._back(day, "✓" if reply.ok else f"{refused}: {why}")

    async def create(self, request: Request) -> Response:
        form = await request.form()
        day = str(form.get("day", ""))
        try:
            start, end = self._slot(day, str(form.get("start", "")), str(form.get("end", "")))
            booking = BookingIn(booking_id=str(form.get("code", "")),
                                service_id=str(form.get("service_id", "")), slot_start=start, slot_end=end,
                                phone=str(form.get("phone", "")) or None)
        except ValidationError as exc:
            field, message = first_problem(exc)
            return self._back(day, f"未能预约 / not booked: {field}: {message}")
        except ValueError as exc:
            return self._back(day, f"未能预约 / not booked: {exc}")
        user = self.pages.user_of(request)
        assert user is not None
        reply = await self.pages.hub.staff(StaffAction.BOOK_APPOINTMENT, user.name,
                                           appointment_code=booking.booking_id, service_id=booking.service_id,
                                           slot_start=booking.slot_start, slot_end=booking.slot_end,
                                           phone=booking.phone)
        return self._done(day, reply, "未能预约 / not booked")

    async def move(self, request: Request) -> Response:
        form = await request.form()
        day = str(form.get("day", ""))
        try:
            start, end = self._slot(day, str(form.get("start", "")), str(form.get("end", "")))
        except ValueError as exc:
            return self._back(day, f"未能改约 / not moved: {exc}")
        if not BOOKING_ID.fullmatch(request.path_params["code"]):  # never cut: a cut code names another
            return self._back(day, f"未能改约 / not moved: {BAD_CODE}")
        user = self.pages.user_of(request)
        assert user is not None
        reply = await self.pages.hub.staff(StaffAction.CHANGE_APPOINTMENT, user.name,
                                           appointment_code=request.path_params["code"],
                                           slot_start=start, slot_end=end)
        return self._done(day, reply, "未能改约 / not moved")

    async def cancel(self, request: Request) -> Response:
        form = await request.form()
        day = str(form.get("day", ""))
        if not BOOKING_ID.fullmatch(request.path_params["code"]):
            return self._back(day, f"未能取消 / not cancelled: {BAD_CODE}")
        user = self.pages.user_of(request)
        assert user is not None
        reply = await self.pages.hub.staff(StaffAction.CANCEL_APPOINTMENT, user.name,
                                           appointment_code=request.path_params["code"])
        return self._done(day, reply, "未能取消 / not cancelled")
