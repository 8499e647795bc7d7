"""The coordinator's state: plain dataclasses, serialisable for snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, TypeAdapter

from hall_devices.contract import (
    CaseState,
    PrintFailure,
    RatingLevel,
    TicketClass,
    TicketStatus,
    WindowStatus,
)

CLASS_RANK = {TicketClass.GREEN: 0, TicketClass.APPOINTMENT: 1, TicketClass.TRANSFERRED: 2,
              TicketClass.PRIORITY: 3, TicketClass.NORMAL: 4}


@dataclass
class Ticket:
    ticket_id: str
    number: str
    day: str
    service_id: str
    ticket_class: TicketClass
    issued_at: datetime
    # Its place in the queue: (issue order, tie) — the hall-wide issue sequence, never the wall
    # clock (a clock stepped back must not put a later applicant first); kept by a transfer, moved
    # by a reactivation. Required, so a snapshot from before it fails to load and is replayed.
    place: tuple[int, int]
    token: str  # the secret in the QR link of this ticket's page
    kiosk_id: str | None = None
    status: TicketStatus = TicketStatus.WAITING
    window: int | None = None  # where it is called, served or held
    target_window: int | None = None  # transferred to one window: only it may call the ticket
    attempts: int = 0  # calls of the current call, recalls included
    calls: int = 0  # every call of this ticket, for unique call ids
    clerk_id: str | None = None
    first_called_at: datetime | None = None
    called_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    no_show_at: datetime | None = None
    appointment_code: str | None = None


@dataclass
class WindowRuntime:
    number: int
    status: WindowStatus
    since: datetime
    clerk_id: str | None = None
    ticket_id: str | None = None
    pause_reason: str | None = None
    held: list[str] = field(default_factory=list)
    higher_in_row: int = 0  # higher-class calls in a row, for the starvation guard


class PromptState(StrEnum):
    PENDING = "pending"
    RATED = "rated"
    TIMED_OUT = "timed_out"  # 未评价


@dataclass
class Prompt:
    prompt_id: str
    ticket_id: str
    window: int
    clerk_id: str | None
    service_id: str
    expires_at: datetime
    state: PromptState = PromptState.PENDING
    rating_id: str | None = None


@dataclass
class CaseRecord:
    case_id: str
    rating_id: str
    level: RatingLevel
    ticket_number: str
    service_id: str
    department_id: str
    window: int
    clerk_id: str | None
    opened_at: datetime
    deadline: datetime
    state: CaseState = CaseState.VERIFYING
    history: list[tuple[CaseState, datetime, str, str | None]] = field(default_factory=list)
    assignee: str | None = None  # the person responsible, and who made them so when
    assigned_by: str | None = None
    assigned_at: datetime | None = None


@dataclass
class Appointment:
    code: str
    service_id: str
    slot_start: datetime
    slot_end: datetime
    used_by: str | None = None  # ticket id after check-in
    id_hash: str | None = None  # keyed hash of the applicant's ID number: check-in by ID card
    cancelled: bool = False


class JobState(StrEnum):
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"


@dataclass
class PrintJobRecord:
    job_id: str
    ticket_id: str
    kiosk_id: str
    printer_id: str
    state: JobState = JobState.SENT
    reason: PrintFailure | None = None


@dataclass
class State:
    # A snapshot of another shape (another version) must fail to load, not load as empty.
    __pydantic_config__ = ConfigDict(extra="forbid")

    day: str = ""  # the business day of the tickets held
    tickets: dict[str, Ticket] = field(default_factory=dict)
    windows: dict[int, WindowRuntime] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)  # prefix → last number of the day
    prompts: dict[str, Prompt] = field(default_factory=dict)
    cases: dict[str, CaseRecord] = field(default_factory=dict)
    appointments: dict[str, Appointment] = field(default_factory=dict)
    jobs: dict[str, PrintJobRecord] = field(default_factory=dict)
    service_seconds: dict[str, list[float]] = field(default_factory=dict)
    last_seq: int = 0
    issued_total: int = 0  # tickets ever issued: the issue order behind each ticket's place
    clock_at: datetime | None = None  # the time of the latest event, on the current clock's scale
    # Recent clock steps: (when, on today's scale; seconds; when, as the clock said then — its id).
    clock_steps: list[tuple[datetime, float, str]] = field(default_factory=list)
    # day → prefix → numbers issued outside this store's events (before a restore): never reissued
    reserved: dict[str, dict[str, int]] = field(default_factory=dict)


STATE_ADAPTER: TypeAdapter[State] = TypeAdapter(State)
