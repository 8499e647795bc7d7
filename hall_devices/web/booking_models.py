"""The booking API's request and answer shapes (pydantic): the OpenAPI document is made from them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from hall_devices.idcard.identity import IdNumberError, normalise

BookingId = str
BOOKING_ID = re.compile(r"[A-Za-z0-9_.:-]{1,32}")  # a booking id (BookingIn.booking_id), whole
BAD_CODE = "预约号须为 1-32 位字母、数字或 _ . : - / a booking id is 1-32 of A-Z a-z 0-9 _ . : -"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _id_number(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise(value)
    except IdNumberError as exc:
        raise ValueError(str(exc)) from None  # the message never repeats the number


class BookingIn(_Strict):
    """Create a booking. Sent again with the same content: accepted, booked once."""

    booking_id: str = Field(pattern=rf"^{BOOKING_ID.pattern}$",
                            description="the platform's booking id; also the code the applicant types "
                            "or shows as a QR code at the kiosk")
    service_id: str = Field(min_length=1, max_length=64, description="a service id of the hall layout")
    slot_start: AwareDatetime = Field(description="ISO 8601 with its UTC offset")
    slot_end: AwareDatetime
    id_number: str | None = Field(None, description="resident ID number (18 characters) for check-in "
                                  "by ID card; only a keyed hash of it is kept")
    phone: str | None = Field(None, pattern=r"^1[3-9][0-9]{9}$", description="mobile number for SMS "
                              "reminders before the call; deleted when the day of the slot ends")

    _check_id = field_validator("id_number")(_id_number)

    @field_validator("phone", mode="before")
    @classmethod
    def _national(cls, value: object) -> object:
        """+86 138 0013 8000, 0086-13800138000 → 13800138000 (a mainland mobile number)."""
        if not isinstance(value, str):
            return value
        digits = value.replace(" ", "").replace("-", "")
        for prefix in ("+86", "0086"):
            if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
                return digits.removeprefix(prefix)
        return digits


class BookingChange(_Strict):
    """Change a booking: the fields given replace the booking's; the same change again is accepted."""

    service_id: str | None = Field(None, min_length=1, max_length=64)
    slot_start: AwareDatetime | None = None
    slot_end: AwareDatetime | None = None
    id_number: str | None = None

    _check_id = field_validator("id_number")(_id_number)


class BookingOut(_Strict):
    booking_id: str
    service_id: str
    service: str = Field(description="the service's Chinese name")
    slot_start: str
    slot_end: str
    slot: str = Field(description="HH:MM-HH:MM, hall time")
    state: Literal["booked", "checked_in", "cancelled", "no_show"]
    ticket_number: str | None = None
    by_id_card: bool = Field(description="an ID number was given: the card checks the booking in")


class BookingCancelled(_Strict):
    booking_id: str
    state: Literal["cancelled"] = "cancelled"


class BookingList(_Strict):
    day: str
    bookings: list[BookingOut]


class ApiProblem(_Strict):
    code: str = Field(description="bad_field, bad_token, slot_full, appointment_exists, unknown_appointment, "
                      "appointment_used, appointment_cancelled, unavailable, ...")
    field: str | None = Field(None, description="the request field at fault, for a 400")
    message: str


class ApiError(_Strict):
    error: ApiProblem


class ImportRow(_Strict):
    row: int = Field(description="row number in the file; the header is row 1")
    booking_id: str | None = None
    ok: bool
    error: ApiProblem | None = None


class ImportReport(_Strict):
    accepted: int
    refused: int
    rows: list[ImportRow]


def first_problem(exc: ValidationError) -> tuple[str | None, str]:
    """(field, message) of a validation error; the message never carries the input value."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or None
    return field, str(err["msg"]).removeprefix("Value error, ")
