"""The booking platform's HTTP API (网上预约 intake), mounted under ``/api/v1`` by the web app.

Every call but the OpenAPI document needs ``Authorization: Bearer <token>`` of a client added with
``hall-devices booking-client add NAME`` (tokens kept hashed, :mod:`hall_devices.web.api_clients`).
The web server's TLS protects the tokens on the wire. Bookings are decided by the coordinator (staff
commands over MQTT): idempotent by the platform's booking id, capacity per service and time band.
ID numbers are hashed with the hall key here and never sent on or kept in clear.
Answers: 200 with the booking; 400 ``bad_field`` naming the field; 401 ``bad_token``; 404 unknown
booking; 409 refused by the rules (full, exists with other content, checked in, cancelled); 503
coordinator unreachable. Shapes: :mod:`hall_devices.web.booking_models`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hall_devices.contract import AppointmentsAnswer, QueryKind, Reply, StaffAction
from hall_devices.idcard.identity import id_hash
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import BusError
from hall_devices.web.api_clients import ApiClients
from hall_devices.web.booking_import import ImportFileError, RowProblem, read_rows, to_booking
from hall_devices.web.booking_models import (
    BOOKING_ID,
    ApiError,
    BookingCancelled,
    BookingChange,
    BookingIn,
    BookingList,
    BookingOut,
    ImportReport,
    first_problem,
)
from hall_devices.web.booking_openapi import openapi
from hall_devices.web.hub import Hub

MAX_BODY = 5 * 1024 * 1024  # an import file
MAX_JSON = 64 * 1024  # one booking
# The coordinator's refusal codes: (HTTP status, request field at fault).
REFUSALS: dict[str, tuple[int, str | None]] = {
    "unknown_service": (400, "service_id"), "bad_slot": (400, "slot_end"), "no_slot": (400, "slot_start"),
    "slot_past": (400, "slot_end"), "missing_field": (400, None), "unknown_appointment": (404, None),
    "appointment_exists": (409, None), "slot_full": (409, None), "appointment_used": (409, None),
    "appointment_cancelled": (409, None), "slot_too_far": (400, "slot_start"),
}


def problem(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = ApiError.model_validate({"error": {"code": code, "field": field, "message": message}})
    return JSONResponse(body.model_dump(), status_code=status)


def bad_booking_id(booking_id: str) -> JSONResponse | None:
    """400 naming ``booking_id`` for an id the API never accepts; an id is never truncated (a cut id
    could name another booking)."""
    if BOOKING_ID.fullmatch(booking_id):
        return None
    return problem(400, "bad_field", f"booking_id: 1-32 characters of A-Z a-z 0-9 _ . : - "
                   f"(got {len(booking_id)} characters), never cut short", "booking_id")


async def read_capped(request: Request, limit: int) -> bytes | JSONResponse:
    """The request body, refused with 413 naming ``limit`` (bytes) as soon as it is known to be larger:
    from Content-Length before reading, else while streaming, never holding more than ``limit``."""
    declared = request.headers.get("content-length", "")
    too_large = problem(413, "too_large", f"the body is larger than the limit of {limit} bytes")
    if declared:
        if not declared.isdigit():
            return problem(400, "bad_request", f"Content-Length {declared[:20]!r} is not a number")
        if int(declared) > limit:
            return too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large
        chunks.append(chunk)
    return b"".join(chunks)


class BookingApi:
    def __init__(self, hub: Hub, layout: Layout, key: bytes, clients: ApiClients) -> None:
        self.hub = hub
        self.layout = layout
        self.key = key
        self.clients = clients

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/openapi.json", self.openapi_json, methods=["GET"]),
            Route("/api/v1/bookings", self.guard(self.list_day), methods=["GET"]),
            Route("/api/v1/bookings", self.guard(self.create), methods=["POST"]),
            Route("/api/v1/bookings/import", self.guard(self.import_file), methods=["POST"]),
            Route("/api/v1/bookings/{booking_id}", self.guard(self.change), methods=["PUT"]),
            Route("/api/v1/bookings/{booking_id}", self.guard(self.cancel), methods=["DELETE"]),
        ]

    def guard(self, handler: Callable[[Request, str], Awaitable[Response]]
              ) -> Callable[[Request], Awaitable[Response]]:
        async def checked(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            client = self.clients.who(token.strip()) if scheme.lower() == "bearer" and token else None
            if client is None:
                return problem(401, "bad_token", "缺少或无效的接口令牌 / missing or unknown API token")
            try:
                return await handler(request, client)
            except BusError as exc:
                return problem(503, "unavailable", f"协调服务暂时无法访问 / coordinator unreachable: {exc}")
        return checked

    async def openapi_json(self, _request: Request) -> Response:
        return JSONResponse(openapi())

    async def _body(self, request: Request, model: type[BaseModel]) -> BaseModel | JSONResponse:
        raw = await read_capped(request, MAX_JSON)
        if isinstance(raw, JSONResponse):
            return raw
        try:
            data = json.loads(raw or b"null")
        except ValueError as exc:
            return problem(400, "bad_json", f"the body is not JSON: {exc}")
        if not isinstance(data, dict):
            return problem(400, "bad_json", "the body must be a JSON object")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            field, message = first_problem(exc)
            return problem(400, "bad_field", f"{field}: {message}", field)

    async def _book(self, booking: BookingIn, client: str, find: bool = True) -> JSONResponse:
        hashed = id_hash(self.key, booking.id_number) if booking.id_number else None
        reply = await self.hub.staff(StaffAction.BOOK_APPOINTMENT, f"api:{client}"[:32],
                                     appointment_code=booking.booking_id, service_id=booking.service_id,
                                     slot_start=booking.slot_start, slot_end=booking.slot_end, id_hash=hashed,
                                     phone=booking.phone)
        # An import's report needs only ok/error per row: no listing of the day per row (which made
        # 1,000 rows take 40 s, each listing the whole day again).
        return await self._answer(reply, booking.booking_id, booking.slot_start if find else None)

    async def _answer(self, reply: Reply, booking_id: str, slot_start: dt.datetime | None) -> JSONResponse:
        if not reply.ok:
            code = reply.error.code if reply.error else "refused"
            status, field = REFUSALS.get(code, (409, None))
            return problem(status, code if status != 400 else "bad_field",
                           reply.error.message if reply.error else code, field)
        found = await self._find(booking_id, slot_start)
        if found is None:
            return JSONResponse({"booking_id": booking_id})
        return JSONResponse(found.model_dump())

    async def _find(self, booking_id: str, slot_start: dt.datetime | None) -> BookingOut | None:
        if slot_start is None:
            return None
        for row in await self._day(self.layout.hall.business_day(slot_start)):
            if row.booking_id == booking_id:
                return row
        return None

    async def _slot_of(self, booking_id: str) -> dt.datetime | None:
        """The slot start of a booking held by the coordinator (bookings of the last and next weeks)."""
        today = dt.date.fromisoformat(self.layout.hall.business_day(dt.datetime.now(dt.UTC)))
        for offset in (0, 1, -1, *range(2, 15), *range(-7, -1)):
            for row in await self._day((today + dt.timedelta(days=offset)).isoformat()):
                if row.booking_id == booking_id:
                    return dt.datetime.fromisoformat(row.slot_start)
        return None

    async def _day(self, day: str) -> list[BookingOut]:
        reply = await self.hub.query(QueryKind.APPOINTMENTS, first_day=day)
        found = reply.answer_as(AppointmentsAnswer)
        if found is None:
            raise BusError(reply.error.message if reply.error else "query refused")
        return [BookingOut.model_validate({"booking_id": r.code, **r.model_dump(exclude={"code"})})
                for r in found.appointments]

    async def create(self, request: Request, client: str) -> Response:
        booking = await self._body(request, BookingIn)
        if isinstance(booking, JSONResponse):
            return booking
        assert isinstance(booking, BookingIn)
        return await self._book(booking, client)

    async def change(self, request: Request, client: str) -> Response:
        change = await self._body(request, BookingChange)
        if isinstance(change, JSONResponse):
            return change
        assert isinstance(change, BookingChange)
        booking_id = request.path_params["booking_id"]
        if (bad := bad_booking_id(booking_id)) is not None:
            return bad
        hashed = id_hash(self.key, change.id_number) if change.id_number else None
        reply = await self.hub.staff(StaffAction.CHANGE_APPOINTMENT, f"api:{client}"[:32],
                                     appointment_code=booking_id, service_id=change.service_id,
                                     slot_start=change.slot_start, slot_end=change.slot_end, id_hash=hashed)
        return await self._answer(reply, booking_id, change.slot_start or await self._slot_of(booking_id))

    async def cancel(self, request: Request, client: str) -> Response:
        booking_id = request.path_params["booking_id"]
        if (bad := bad_booking_id(booking_id)) is not None:
            return bad
        reply = await self.hub.staff(StaffAction.CANCEL_APPOINTMENT, f"api:{client}"[:32],
                                     appointment_code=booking_id)
        if reply.ok:
            return JSONResponse(BookingCancelled(booking_id=booking_id).model_dump())
        return await self._answer(reply, booking_id, None)

    async def list_day(self, request: Request, _client: str) -> Response:
        day = request.query_params.get("day", "")
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            return problem(400, "bad_field", f"day {day!r} is not YYYY-MM-DD", "day")
        listing = BookingList(day=day, bookings=await self._day(day))
        return JSONResponse(listing.model_dump())

    async def import_file(self, request: Request, client: str) -> Response:
        raw = await read_capped(request, MAX_BODY)
        if isinstance(raw, JSONResponse):
            return raw
        try:  # a large workbook takes seconds to parse: off the event loop, so the web stays up
            rows = await asyncio.to_thread(read_rows, raw, request.query_params.get("filename", ""))
        except ImportFileError as exc:
            return problem(400, "bad_file", str(exc))
        report: list[dict[str, Any]] = []
        for number, values in rows:
            booking = to_booking(values, self.layout.hall.utc_offset_hours)
            if isinstance(booking, RowProblem):
                report.append({"row": number, "booking_id": values.get("booking_id") or None, "ok": False,
                               "error": {"code": "bad_field", "field": booking.field,
                                         "message": booking.message}})
                continue
            answer = await self._book(booking, client, find=False)
            body = json.loads(bytes(answer.body))
            report.append({"row": number, "booking_id": booking.booking_id, "ok": answer.status_code == 200,
                           "error": body.get("error")})
        accepted = sum(1 for r in report if r["ok"])
        out = ImportReport.model_validate({"accepted": accepted, "refused": len(report) - accepted,
                                           "rows": report})
        return JSONResponse(out.model_dump())
