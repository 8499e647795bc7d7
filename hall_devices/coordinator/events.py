"""Events: the facts the coordinator commits, one model per kind, and their JSON form."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hall_devices.contract import CaseState, PrintFailure, RatingLevel, TicketClass


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: datetime


class DayStarted(_Event):
    kind: Literal["day_started"] = "day_started"
    day: str  # business day: numbers restart, leftovers of the previous day expire


class TicketIssued(_Event):
    kind: Literal["ticket_issued"] = "ticket_issued"
    ticket_id: str
    number: str
    prefix: str
    seq: int
    day: str
    service_id: str
    ticket_class: TicketClass
    token: str
    kiosk_id: str | None = None
    appointment_code: str | None = None
    staff_id: str | None = None
    counter: str | None = None  # the number range (号段) counted; None: the whole prefix


class WindowOpened(_Event):
    kind: Literal["window_opened"] = "window_opened"
    window: int
    clerk_id: str


class WindowClosed(_Event):
    kind: Literal["window_closed"] = "window_closed"
    window: int


class TicketCalled(_Event):
    kind: Literal["ticket_called"] = "ticket_called"
    ticket_id: str
    window: int
    higher_class: bool  # counts toward the starvation guard
    call_back: bool = False
    out_of_turn: str | None = None  # 特呼: why this ticket was called before its turn


class TicketRecalled(_Event):
    kind: Literal["ticket_recalled"] = "ticket_recalled"
    ticket_id: str
    window: int


class ServiceStarted(_Event):
    kind: Literal["service_started"] = "service_started"
    ticket_id: str
    window: int


class TicketNoShow(_Event):
    kind: Literal["ticket_no_show"] = "ticket_no_show"
    ticket_id: str
    window: int


class TicketReactivated(_Event):
    kind: Literal["ticket_reactivated"] = "ticket_reactivated"
    ticket_id: str
    sort_at: datetime  # kept for old stores; the place below decides
    place: tuple[int, int] | None = None  # (issue order, tie); None in events written before it


class TicketHeld(_Event):
    kind: Literal["ticket_held"] = "ticket_held"
    ticket_id: str
    window: int


class TicketTransferred(_Event):
    kind: Literal["ticket_transferred"] = "ticket_transferred"
    ticket_id: str
    window: int
    to_service: str
    to_window: int | None = None


class WindowPaused(_Event):
    kind: Literal["window_paused"] = "window_paused"
    window: int
    reason: str | None = None


class WindowResumed(_Event):
    kind: Literal["window_resumed"] = "window_resumed"
    window: int


class TicketFinished(_Event):
    kind: Literal["ticket_finished"] = "ticket_finished"
    ticket_id: str
    window: int
    clerk_id: str | None = None  # who served, for statistics
    prompt_id: str
    rating_expires_at: datetime


class RatingRecorded(_Event):
    kind: Literal["rating_recorded"] = "rating_recorded"
    rating_id: str
    prompt_id: str
    ticket_id: str
    ticket_number: str
    service_id: str
    department_id: str
    window: int
    clerk_id: str | None
    level: RatingLevel
    reasons: list[str] = []
    channel: str
    rated_at: datetime
    case_deadline: datetime | None = None  # set for 差评: a follow-up case opens


class RatingTimedOut(_Event):
    kind: Literal["rating_timed_out"] = "rating_timed_out"
    prompt_id: str


class CaseMoved(_Event):
    kind: Literal["case_moved"] = "case_moved"
    case_id: str
    to_state: CaseState
    by: str
    note: str | None = None


class CaseAssigned(_Event):
    """A manager made ``assignee`` responsible for the case (``by``: who assigned it)."""

    kind: Literal["case_assigned"] = "case_assigned"
    case_id: str
    assignee: str
    by: str
    note: str | None = None


class ClockStepped(_Event):
    """The wall clock jumped (NTP, a wrong clock at boot): times held are moved by the step."""

    kind: Literal["clock_stepped"] = "clock_stepped"
    step_s: float  # new clock minus where the old one would be; negative: stepped back
    # Only times held from this one on move (None: all): a correction soon after a start whose
    # first reading was unrelated to the store's concerns the times recorded since that start.
    held_from: datetime | None = None


class TicketsReturned(_Event):
    """Tickets transferred to a window that closes go back to their service's queue."""

    kind: Literal["tickets_returned"] = "tickets_returned"
    window: int
    ticket_ids: list[str]


class AppointmentBooked(_Event):
    kind: Literal["appointment_booked"] = "appointment_booked"
    code: str
    service_id: str
    slot_start: datetime
    slot_end: datetime
    id_hash: str | None = None


class AppointmentChanged(_Event):
    """A booking moved to another slot or service (the platform's change, or a manager's move)."""

    kind: Literal["appointment_changed"] = "appointment_changed"
    code: str
    service_id: str
    slot_start: datetime
    slot_end: datetime
    id_hash: str | None = None


class AppointmentCancelled(_Event):
    kind: Literal["appointment_cancelled"] = "appointment_cancelled"
    code: str


class PrintJobSent(_Event):
    kind: Literal["print_job_sent"] = "print_job_sent"
    job_id: str
    ticket_id: str
    kiosk_id: str
    printer_id: str


class PrintJobEnded(_Event):
    kind: Literal["print_job_ended"] = "print_job_ended"
    job_id: str
    ok: bool
    reason: PrintFailure | None = None


class NumbersReserved(_Event):
    """A restore: numbers given out after the backup, which the restored store does not know.

    ``floors`` is business day → prefix → the highest number known issued that day (from the
    replaced store and the coordinator's high-water file); numbering of that day starts above it.
    """

    kind: Literal["numbers_reserved"] = "numbers_reserved"
    floors: dict[str, dict[str, int]]
    backup: str  # the backup file's name, for the record
    backup_seq: int  # the last event of the backup


Event = Annotated[
    DayStarted | TicketIssued | WindowOpened | WindowClosed | TicketCalled | TicketRecalled
    | ServiceStarted | TicketNoShow | TicketReactivated | TicketHeld | TicketTransferred
    | WindowPaused | WindowResumed | TicketFinished | RatingRecorded | RatingTimedOut | CaseMoved
    | AppointmentBooked | PrintJobSent | PrintJobEnded | ClockStepped | TicketsReturned
    | NumbersReserved | AppointmentChanged | AppointmentCancelled | CaseAssigned,
    Field(discriminator="kind"),
]
# cast: mypy cannot see an Annotated union as a type argument; pydantic reads it fine.
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(cast(Any, Event))


def event_json(event: Event) -> bytes:
    return event.model_dump_json().encode("utf-8")


def event_from_json(raw: bytes | str) -> Event:
    return EVENT_ADAPTER.validate_json(raw)
