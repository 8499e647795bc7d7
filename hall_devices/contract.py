"""The MQTT contract: every topic and payload shape the parts of the hall exchange.

This module is the only place a topic string or a payload shape is written. Each :class:`Route`
names a topic pattern, who publishes and who subscribes, its QoS, whether it is retained, its
payload model and, for requests, the route its answer goes to. ``docs/contract.md`` is generated
from :data:`ROUTES` (``hall-devices contract docs``) and a test keeps it in sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum, StrEnum
from functools import cached_property, lru_cache
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION: Literal[1] = 1
# The largest payload any route carries, in bytes. The bus refuses a bigger one (``too_large``)
# before parsing it, and the generated mosquitto.conf sets Mosquitto's ``message_size_limit`` to the
# same figure, so the broker drops it first. 1 MiB: a month of one window's ratings still fits.
MAX_PAYLOAD_BYTES = 1024 * 1024
# Every datetime field is an AwareDatetime: a naive one is refused (bad_schema), because the engine
# compares it with its own zone-aware clock and a naive one would raise there.
CommandId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
# HMAC-SHA256 of an ID number under the hall's key (hall_devices.idcard.identity): never the number.
IdHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Payload(BaseModel):
    """Base of every payload: a schema version and no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SCHEMA_VERSION


class Text(Payload):
    zh: str
    en: str


class Problem(Payload):
    """Why something was refused: a stable code for programs and a message for people."""

    code: str = Field(description="bad_json, bad_schema, bad_topic, too_large, internal_error, "
                                  "wrong_sender, unknown_service, wrong_state, request_expired, "
                                  "clock_skew, ...")
    message: str


class Request(Payload):
    """Base of every payload that carries its own unique id: a command, job, rating, card read...

    ``ID_FIELD`` names the field holding the id (``command_id`` unless a subclass says otherwise);
    :attr:`request_key` reads it whatever its name. The id is what the coordinator deduplicates
    on and what the answer's ``command_id`` repeats, so this is the one place that says which
    field it is.
    """

    ID_FIELD: ClassVar[str] = "command_id"

    @property
    def request_key(self) -> str:
        """The request's id (the value of its ``ID_FIELD``): 1..64 ASCII characters."""
        return str(getattr(self, self.ID_FIELD))


def request_id_field(model: type[Payload]) -> str | None:
    """The field naming a payload model's id, or None for a model that is no :class:`Request`."""
    return model.ID_FIELD if issubclass(model, Request) else None


class Reply(Payload):
    """Base of every answer. ``command_id`` is None only when the request had no readable id."""

    command_id: str | None
    ok: bool
    error: Problem | None = None


# --- domain vocabulary shared by all parts -------------------------------------------------------


class TicketClass(StrEnum):
    """Highest first: the order in which a window serves classes."""

    GREEN = "green"  # 绿色通道, issued by staff
    APPOINTMENT = "appointment"  # 预约, checked in within its slot
    TRANSFERRED = "transferred"  # 转办, keeps its original issue time
    PRIORITY = "priority"  # 优先: elderly, disabled, pregnant
    NORMAL = "normal"


class TicketStatus(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    NO_SHOW = "no_show"  # 过号
    HELD = "held"  # 挂起
    DONE = "done"  # 办结
    EXPIRED = "expired"  # not served by the end of the day


class WindowStatus(StrEnum):
    CLOSED = "closed"  # nobody signed in
    IDLE = "idle"  # signed in, no ticket
    CALLING = "calling"
    SERVING = "serving"
    PAUSED = "paused"  # 暂停服务


class WindowAction(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    NEXT = "next"
    RECALL = "recall"
    START = "start"  # the applicant arrived: calling → serving
    NO_SHOW = "no_show"
    REACTIVATE = "reactivate"
    HOLD = "hold"
    CALL_BACK = "call_back"
    TRANSFER = "transfer"
    PAUSE = "pause"
    RESUME = "resume"
    FINISH = "finish"
    CALL_TICKET = "call_ticket"  # 特呼: a chosen waiting ticket out of turn; needs ticket_number and reason


# Which window action is legal in which window status, and the status it leads to: the engine refuses
# a missing pair (wrong_state); the console enables exactly these buttons. docs/coordinator.md.
_W = WindowStatus
_A = WindowAction
WINDOW_TABLE: dict[tuple[WindowStatus, WindowAction], WindowStatus] = {
    (_W.CLOSED, _A.LOGIN): _W.IDLE,
    (_W.IDLE, _A.LOGOUT): _W.CLOSED,
    (_W.IDLE, _A.NEXT): _W.CALLING,
    (_W.IDLE, _A.CALL_BACK): _W.CALLING,
    (_W.IDLE, _A.PAUSE): _W.PAUSED,
    (_W.IDLE, _A.REACTIVATE): _W.IDLE,
    (_W.IDLE, _A.CALL_TICKET): _W.CALLING,
    (_W.CALLING, _A.RECALL): _W.CALLING,
    (_W.CALLING, _A.START): _W.SERVING,
    (_W.CALLING, _A.NO_SHOW): _W.IDLE,
    (_W.CALLING, _A.HOLD): _W.IDLE,
    (_W.CALLING, _A.TRANSFER): _W.IDLE,
    (_W.CALLING, _A.FINISH): _W.IDLE,  # keypads have no "arrived" key: finishing a call is fine
    (_W.CALLING, _A.REACTIVATE): _W.CALLING,
    (_W.SERVING, _A.HOLD): _W.IDLE,
    (_W.SERVING, _A.TRANSFER): _W.IDLE,
    (_W.SERVING, _A.FINISH): _W.IDLE,
    (_W.SERVING, _A.REACTIVATE): _W.SERVING,
    (_W.PAUSED, _A.RESUME): _W.IDLE,
    (_W.PAUSED, _A.LOGOUT): _W.CLOSED,
    (_W.PAUSED, _A.REACTIVATE): _W.PAUSED,
}


class RatingLevel(IntEnum):
    """GB/T 39734-2020 好差评 levels."""

    VERY_SATISFIED = 5  # 非常满意
    SATISFIED = 4  # 满意
    BASICALLY_SATISFIED = 3  # 基本满意
    DISSATISFIED = 2  # 不满意
    VERY_DISSATISFIED = 1  # 非常不满意


RATING_NAMES: dict[int, Text] = {
    5: Text(zh="非常满意", en="very satisfied"),
    4: Text(zh="满意", en="satisfied"),
    3: Text(zh="基本满意", en="basically satisfied"),
    2: Text(zh="不满意", en="dissatisfied"),
    1: Text(zh="非常不满意", en="very dissatisfied"),
}


class DeviceState(StrEnum):
    OK = "ok"
    WARNING = "warning"  # works, needs attention soon (paper near end)
    FAULT = "fault"  # cannot do its job (paper out, not responding)
    OFFLINE = "offline"  # its agent is gone (Last Will)


class DeviceFault(StrEnum):
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    CUTTER_ERROR = "cutter_error"
    MECHANICAL_ERROR = "mechanical_error"
    PRINTER_ERROR = "printer_error"  # unrecoverable or auto-recoverable error
    PRINTER_OFFLINE = "printer_offline"
    NOT_RESPONDING = "not_responding"
    PORT_MISSING = "port_missing"
    NACK = "nack"
    GARBLED = "garbled"
    UNENCODABLE = "unencodable"  # a screen's frame cannot be built in its protocol (address, length)
    CLOCK_SKEW = "clock_skew"  # a kiosk's clock differs from the coordinator's by over CLOCK_SKEW_MAX_S


class PrintFailure(StrEnum):
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    CUTTER_ERROR = "cutter_error"
    PRINTER_ERROR = "printer_error"
    OFFLINE = "offline"
    INTERRUPTED = "interrupted"  # the agent stopped mid-job: maybe half printed, never reprinted
    NOT_RESPONDING = "not_responding"
    PORT_MISSING = "port_missing"
    BAD_JOB = "bad_job"


class Channel(StrEnum):
    PAD = "pad"
    KIOSK = "kiosk"
    WEB = "web"
    QR = "qr"


# --- payloads --------------------------------------------------------------------------------


# A kiosk's ticket request carries a deadline: its send time + TICKET_REQUEST_TTL_S by the kiosk's
# clock. The coordinator refuses it (request_expired) once its own clock has passed the deadline, and
# (clock_skew) when the deadline lies more than TTL + CLOCK_SKEW_MAX_S ahead of its clock: the kiosk's
# clock runs ahead. A kiosk that hears nothing tells the applicant "no number" only after the deadline
# + CLOCK_SKEW_MAX_S (+ a grace for a reply in flight), when any copy still on its way is refused.
TICKET_REQUEST_TTL_S = 10.0
CLOCK_SKEW_MAX_S = 2.0  # hall clocks agree within this (NTP on the LAN); larger skews are refused


class TicketRequest(Request):
    command_id: CommandId
    deadline: AwareDatetime | None = Field(
        None, description="issue no ticket after this (coordinator's clock); every kiosk sets it; "
        "none: nobody waits at a screen (traffic simulator, load tests)")
    service_id: str | None = Field(None, description="may be left out for an appointment: its booking has it")
    ticket_class: Literal[TicketClass.NORMAL, TicketClass.PRIORITY, TicketClass.APPOINTMENT] = (
        TicketClass.NORMAL
    )
    appointment_code: str | None = Field(None, max_length=32)
    id_hash: IdHash | None = Field(None, description="appointment check-in by ID card: the keyed hash "
                                   "the kiosk's reader computed (no code needed)")
    language: Literal["zh", "en"] = "zh"
    paper: bool = Field(True, description="false: the kiosk shows the number on screen only")
    phone: str | None = Field(None, pattern=r"^1[3-9][0-9]{9}$", description="mobile number the applicant "
                              "left for SMS reminders; kept apart from the event store until the day ends")


class TicketInfo(Payload):
    ticket_id: str
    number: str = Field(description="prefix + digits, e.g. A001")
    service_id: str
    service_name: Text
    department_name: Text
    ticket_class: TicketClass
    status: TicketStatus
    issued_at: AwareDatetime
    people_ahead: int
    estimated_minutes: int
    windows: list[int]
    materials: list[Text] = []
    status_url: str | None = None
    complete_by: AwareDatetime | None = Field(None, description="承诺件 (限时办结): end of the last of the "
                                         "service's time_limit_days working days from issue")


class TicketReply(Reply):
    ticket: TicketInfo | None = None
    print_job_id: str | None = Field(None, description="set when a print job was sent")


class PrintJob(Request):
    ID_FIELD: ClassVar[str] = "job_id"

    job_id: CommandId
    kiosk_id: str
    hall_name: Text
    ticket: TicketInfo
    print_materials: bool = True
    reprint: bool = False
    footer: Text | None = None


class PrintExpected(Payload):
    """Heads-up: a print job is likely to follow (the agent checks the printer is online meanwhile).

    Sent when a paper ticket request from the printer's kiosk reaches the coordinator, before its
    commit, so the job follows within milliseconds. Nothing of the applicant or the ticket: the
    printer's account may not read kiosks' requests (they can carry an applicant's data)."""

    printer_id: str = Field(description="the printer the job would go to (the topic's)")
    request_id: CommandId = Field(description="the kiosk's ticket request's command_id, to correlate "
                                              "in logs; the job's id is not known yet")


class PrintResult(Reply):
    """``command_id`` is the job id."""

    reason: PrintFailure | None = None


class WindowCommand(Request):
    command_id: CommandId
    action: WindowAction
    clerk_id: str | None = Field(None, max_length=32)
    ticket_number: str | None = Field(None, description="for call_back and reactivate")
    target_service: str | None = Field(None, description="transfer to a service")
    target_window: int | None = Field(None, description="transfer to a window")
    reason: str | None = Field(None, max_length=64, description="pause reason shown on screens")
    source: Channel = Channel.PAD


class WindowState(Payload):
    window: int
    name: Text
    status: WindowStatus
    clerk_id: str | None = None
    ticket_id: str | None = None
    ticket_number: str | None = None
    service_id: str | None = None
    since: AwareDatetime
    pause_reason: str | None = None
    waiting: int = Field(0, description="tickets this window could serve now")
    held: list[str] = []
    pause_notice: Text | None = Field(None, description="临时有事，请稍候: paused long_pause_minutes or "
                                      "more, by the coordinator's clock (screens show it as is)")
    screen: Text = Field(description="what its window screen shows, composed by the coordinator: "
                         "请A001号到3号窗口, 正在办理\\nA001号, the pause reason or pause_notice, 暂停服务, "
                         "欢迎光临\\n(name); lines split at \\n; screens render it as is")
    window_label: Text = Field(description="3号窗口  市场监管 / Window 3  Market regulation: the window "
                               "where the TV hall screen lists a ticket")
    pad_text: str = Field(description="what its keypad's display shows: the ticket number, else the "
                          "waiting count; empty while closed or paused (pads render the digits)")


class WindowCommandResult(Reply):
    window: int | None = None
    action: WindowAction | None = None
    ticket: TicketInfo | None = None
    state: WindowState | None = None


class Call(Payload):
    call_id: str
    ticket_id: str
    ticket_number: str
    window: int
    window_name: Text
    service_id: str
    attempt: int = Field(1, description="1 for the first call, 2.. for recalls")
    called_at: AwareDatetime
    text: Text = Field(description="请A001号到3号窗口 / Ticket A001, please go to window 3")
    window_label: Text = Field(description="3号窗口  市场监管 / Window 3  Market regulation: the window "
                               "where the TV hall screen lists the ticket")
    speech: Text = Field(description="the sentence spoken, words split by spaces: 请 A 零零一 号 到 三 "
                         "号窗口 办理 (announcer, BX-6 voice) / Ticket A001, please go to window 3")


class ServiceQueue(Payload):
    service_id: str
    prefix: str
    waiting: int
    longest_wait_s: int
    estimated_minutes: int
    open_windows: int = Field(0, description="windows serving it with a clerk signed in")
    accepting: bool = Field(True, description="false: 暂停取号, no window open and the hall stops "
                            "issuing (policy no_window_kiosk = stop)")
    ahead: int | None = Field(None, description="people ahead of a normal ticket taken now: the "
                              "figure its ticket will show (前面还有 N 人); None from an older coordinator")


class WaitingGroup(Payload):
    """Waiting per department (its ticket letters), as the hall screens show it."""

    department_id: str
    name: Text
    prefixes: list[str]
    waiting: int
    line: Text = Field(description="公安局(B) 等候4人 / Public Security Bureau (B): 4 waiting: "
                       "an LED hall screen's waiting row joins the lines of groups with someone waiting")
    count: Text = Field(description="4 人 / 4 waiting: the TV hall screen's cell beside the name")


class QueueSummary(Payload):
    updated_at: AwareDatetime
    total_waiting: int
    services: list[ServiceQueue]
    groups: list[WaitingGroup] = Field([], description="one per department of the layout, in its "
                                       "order, composed by the coordinator; empty only in a summary "
                                       "with no services")


class RatingPrompt(Payload):
    prompt_id: str
    window: int
    ticket_id: str
    ticket_number: str
    clerk_id: str | None
    service_id: str
    expires_at: AwareDatetime
    timeout_s: int | None = Field(None, description="seconds the rating stays open from now: the pad "
                                  "counts them on its own monotonic clock, not against expires_at")


class Rating(Request):
    ID_FIELD: ClassVar[str] = "rating_id"

    rating_id: CommandId = Field(description="made by the producing agent; a redelivery keeps it")
    prompt_id: str
    window: int
    level: RatingLevel
    reasons: list[str] = Field([], max_length=8)
    channel: Channel = Channel.PAD
    rated_at: AwareDatetime
    answered_after_s: float | None = Field(None, ge=0, description="seconds from the prompt's arrival "
                                           "to the key press, by the pad's monotonic clock")


class RatingAck(Reply):
    """``command_id`` is the rating id."""

    duplicate: bool = False


# The most devices one bus status may name (a pad bus's pad addresses are 1..254).
MAX_BUS_MEMBERS = 255


class DeviceStatus(Payload):
    device_id: str
    kind: str
    state: DeviceState
    faults: list[DeviceFault] = []
    detail: str | None = None
    members: dict[str, DeviceState] = Field({}, max_length=MAX_BUS_MEMBERS,
                                            description="state of each device on a bus")
    member_faults: dict[str, list[DeviceFault]] = Field(
        {}, max_length=MAX_BUS_MEMBERS, description="each bus member's own faults (a member not "
        "named here: the bus's faults are shown for it)")
    updated_at: AwareDatetime


def can_work(status: DeviceStatus | DeviceState | None) -> bool:
    """The one rule for "this device can do its job" (print a ticket, show a call, read a key).

    A device in state ``fault`` or ``offline`` cannot; ``ok`` and ``warning`` (e.g. paper near end)
    can. Which faults make a device ``fault`` is decided once, by the agent that knows the device
    (for a printer: ``printer/status.py``), so coordinator, kiosk and agent all read the state.
    A device not heard of yet (None) counts as able: the job's own result will tell.
    """
    state = status.state if isinstance(status, DeviceStatus) else status
    return state not in (DeviceState.FAULT, DeviceState.OFFLINE)


class Alert(Payload):
    alert_id: str
    kind: Literal["long_wait", "overtime", "paused_with_waiting", "device_offline", "device_fault",
                  "paper_near_end", "paper_out", "print_failed", "clock_step", "no_open_window",
                  "calendar_uncovered", "case_overdue"]
    subject: str = Field(description="ticket number, window number, device id or (case_overdue) case id")
    message: Text
    raised_at: AwareDatetime
    cleared: bool = False


class CaseState(StrEnum):
    """差评 follow-up case states."""

    VERIFYING = "verifying"  # 待核实
    RECTIFYING = "rectifying"  # 整改中
    REVISITED = "revisited"  # 已回访
    CLOSED = "closed"  # 已办结
    APPEALED = "appealed"  # 申诉
    REVOKED = "revoked"  # 撤销


class StaffAction(StrEnum):
    ISSUE_GREEN = "issue_green"  # 绿色通道 ticket issued by staff
    REPRINT = "reprint"
    BOOK_APPOINTMENT = "book_appointment"  # the same code and content again: accepted, nothing changes
    CHANGE_APPOINTMENT = "change_appointment"  # another slot or service, capacity permitting
    CANCEL_APPOINTMENT = "cancel_appointment"  # cancelling a cancelled booking again: accepted
    CASE_VERIFY = "case_verify"  # 核实 → 整改中
    CASE_APPEAL = "case_appeal"  # 申诉
    CASE_REVISIT = "case_revisit"  # 回访
    CASE_CLOSE = "case_close"  # 办结
    CASE_REVOKE = "case_revoke"  # appeal upheld: 撤销
    CASE_REJECT_APPEAL = "case_reject_appeal"  # appeal refused: back to 整改中
    CASE_ASSIGN = "case_assign"  # a person responsible (``assignee``), in any open state


class StaffCommand(Request):
    command_id: CommandId
    action: StaffAction
    staff_id: str = Field(min_length=1, max_length=32)
    service_id: str | None = None
    ticket_id: str | None = None
    kiosk_id: str | None = Field(None, description="reprint at this kiosk's printer")
    case_id: str | None = None
    note: str | None = Field(None, max_length=500)
    assignee: str | None = Field(None, min_length=1, max_length=64,
                                 description="case_assign: the staff member responsible (id or user name)")
    appointment_code: str | None = Field(None, max_length=32)
    id_hash: IdHash | None = Field(None, description="book_appointment: the applicant's ID number, "
                                   "keyed hash (check-in by ID card)")
    phone: str | None = Field(None, pattern=r"^1[3-9][0-9]{9}$", description="book_appointment: mobile "
                              "number for reminders; kept apart from the event store until the day ends")
    slot_start: AwareDatetime | None = None
    slot_end: AwareDatetime | None = None


class CaseStep(Payload):
    state: CaseState
    at: AwareDatetime
    by: str
    note: str | None = None


class CaseInfo(Payload):
    case_id: str
    rating_id: str
    level: RatingLevel
    ticket_number: str
    service_id: str
    department_id: str
    window: int
    clerk_id: str | None
    state: CaseState
    opened_at: AwareDatetime
    deadline: AwareDatetime = Field(description="end of the last working day allowed")
    history: list[CaseStep]
    assignee: str | None = Field(None, description="the person responsible (case_assign), if any")
    assigned_by: str | None = None
    assigned_at: AwareDatetime | None = None


class StaffResult(Reply):
    ticket: TicketInfo | None = None
    case: CaseInfo | None = None


class QueryKind(StrEnum):
    RATINGS = "ratings"
    CASES = "cases"
    STATISTICS = "statistics"
    WINDOW_QUEUE = "window_queue"  # the waiting tickets a window could call, in call order
    TICKET = "ticket"  # one ticket by its page token (the QR code)
    TICKET_BY_NUMBER = "ticket_by_number"
    DEAD_LETTERS = "dead_letters"  # commands the coordinator failed on, newest first (manager)
    APPOINTMENTS = "appointments"  # the bookings whose slot starts on first_day, with their state


def _day(value: str) -> str:
    """A business day as ``YYYY-MM-DD`` (ASCII digits, a real calendar date)."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError(f"{value[:20]!r} is not a day (YYYY-MM-DD)")
    date.fromisoformat(value)  # raises ValueError naming the problem (month 13, February 30, ...)
    return value


Day = Annotated[str, AfterValidator(_day)]


class QueryRequest(Request):
    """A read of the coordinator's state or store; changes nothing, so it is not deduplicated."""

    command_id: CommandId
    kind: QueryKind
    first_day: Day | None = None
    last_day: Day | None = None
    window: int | None = None
    level: int | None = Field(None, ge=1, le=5)
    token: str | None = Field(None, max_length=64)
    ticket_number: str | None = Field(None, max_length=16)

    @model_validator(mode="after")
    def _days_in_order(self) -> QueryRequest:
        if self.first_day and self.last_day and self.last_day < self.first_day:
            raise ValueError(f"last_day {self.last_day} is before first_day {self.first_day}")
        return self


# --- query answers: one model per kind, told apart by ``kind`` ----------------------------------


class Row(BaseModel):
    """Part of a query answer: no unknown fields and no version of its own (the reply has one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Number = int | float  # a figure as computed: an int stays an int (3, not 3.0) on the page


class RatingRow(Row):
    rating_id: str
    ticket_number: str
    service: str = Field(description="the service's Chinese name (its id when no longer in the layout)")
    department: str = Field(description="the department's Chinese name (or its id)")
    window: int
    clerk_id: str | None
    level: int = Field(ge=1, le=5)
    level_name: str = Field(description="the level's Chinese name (RATING_NAMES)")
    channel: str
    rated_at: str = Field(description="ISO 8601 with zone")
    reasons: list[str]
    case_id: str | None = Field(description="its 差评 case, if one was opened")
    case_state: CaseState | None


class RatingsAnswer(Row):
    """``ratings``: the ratings of first_day..last_day (optionally one window and level), newest first."""

    kind: Literal[QueryKind.RATINGS] = QueryKind.RATINGS
    ratings: list[RatingRow]


class CaseRow(CaseInfo):
    overdue: bool = Field(description="past its deadline and not closed, revoked or revisited")
    service: str = Field(description="the service's Chinese name (or its id)")


class CasesAnswer(Row):
    """``cases``: every 差评 case the coordinator holds, earliest deadline first."""

    kind: Literal[QueryKind.CASES] = QueryKind.CASES
    cases: list[CaseRow]


class StatisticsRow(Row):
    """One line of the statistics table (hall_devices/coordinator/report.py); minutes and percents
    are None when there is nothing to average."""

    dimension: Literal["total", "department", "service", "window", "clerk"]
    key: str = Field(description="the department, service, window or clerk; empty for the total")
    name: str
    issued: int
    served: int
    no_show: int
    avg_wait_min: Number | None
    p90_wait_min: Number | None
    avg_service_min: Number | None
    rated: int
    unrated: int
    satisfaction_pct: Number | None
    participation_pct: Number | None
    bad: int
    level_5: int
    level_4: int
    level_3: int
    level_2: int
    level_1: int


class WaitHistogram(Row):
    labels: list[str] = Field(description="upper bounds in minutes, ≤5 .. >60")
    counts: list[int]


class WindowSatisfaction(Row):
    window: str
    satisfaction_pct: Number | None
    rated: int


class AppointmentFigures(Row):
    booked: int
    checked_in: int
    no_show: int
    cancelled: int
    no_show_pct: Number | None = Field(description="未到 over those due (checked in or not), percent")


class StatisticsAnswer(Row):
    """``statistics``: the figures of first_day..last_day."""

    kind: Literal[QueryKind.STATISTICS] = QueryKind.STATISTICS
    first_day: str
    last_day: str
    rows: list[StatisticsRow]
    tickets_per_hour: dict[str, int] = Field(description="hour of the day (hall time) → tickets")
    wait_minutes: WaitHistogram
    satisfaction_per_window: list[WindowSatisfaction]
    cases: dict[str, int] = Field(description="差评 case state → cases")
    appointments: AppointmentFigures


class QueuedTicket(Row):
    number: str
    ticket_class: TicketClass
    service: str
    waited_min: int


class TicketAtWindow(Row):
    """The ticket called or served at a window, for its console."""

    number: str
    ticket_class: TicketClass
    service: str
    status: TicketStatus
    waited_min: int = Field(description="minutes from issue to first call")
    materials: list[str]


class WindowQueueAnswer(Row):
    """``window_queue``: the tickets a window could call (the first 50, in call order), its current
    ticket and the no-shows it may still reactivate."""

    kind: Literal[QueryKind.WINDOW_QUEUE] = QueryKind.WINDOW_QUEUE
    window: int
    waiting: list[QueuedTicket]
    count: int = Field(description="all tickets it could call")
    current: TicketAtWindow | None
    no_show: list[str]


class FoundTicket(TicketInfo):
    window: int | None = Field(description="the window calling or serving it, if any")


class TicketAnswer(Row):
    """``ticket`` and ``ticket_by_number``: one ticket of today."""

    kind: Literal[QueryKind.TICKET, QueryKind.TICKET_BY_NUMBER]
    ticket: FoundTicket


class DeadLetterRow(Row):
    at: str = Field(description="ISO 8601 with zone")
    at_local: str = Field(description="hall time, YYYY-MM-DD HH:MM:SS")
    topic: str
    command: str | None = Field(description="route:id of the command, when it could be read")
    excerpt: str
    error: str


class DeadLettersAnswer(Row):
    """``dead_letters``: the latest commands the coordinator failed on, newest first."""

    kind: Literal[QueryKind.DEAD_LETTERS] = QueryKind.DEAD_LETTERS
    dead_letters: list[DeadLetterRow]
    total: int


class AppointmentRow(Row):
    code: str
    service_id: str
    service: str
    slot_start: str = Field(description="ISO 8601 with zone")
    slot_end: str
    slot: str = Field(description="HH:MM-HH:MM, hall time")
    state: Literal["booked", "checked_in", "no_show", "cancelled"]
    ticket_number: str | None
    by_id_card: bool


class AppointmentsAnswer(Row):
    """``appointments``: the bookings whose slot starts on first_day, by slot then service."""

    kind: Literal[QueryKind.APPOINTMENTS] = QueryKind.APPOINTMENTS
    appointments: list[AppointmentRow]


QueryAnswer = Annotated[
    RatingsAnswer | CasesAnswer | StatisticsAnswer | WindowQueueAnswer | TicketAnswer
    | DeadLettersAnswer | AppointmentsAnswer, Field(discriminator="kind")]


A = TypeVar("A", bound=Row)


class QueryReply(Reply):
    data: QueryAnswer | None = Field(None, description="the answer, when ok; its kind is the query's")

    def answer_as(self, model: type[A]) -> A | None:
        """``data`` when it is a ``model`` (the answer of the kind asked), else None (refused:
        see ``error``)."""
        return self.data if isinstance(self.data, model) else None


class ActiveAlerts(Payload):
    updated_at: AwareDatetime
    alerts: list[Alert]


class HelpRequest(Request):
    """呼叫帮办: an applicant at a kiosk asks for staff (帮办代办, a service the hall standard
    names). The kiosk raises it (``open``); staff answer it (``answered``: on the way) and close it
    (``closed``) from the dashboard. One per kiosk at a time, retained: the latest state wins."""

    ID_FIELD: ClassVar[str] = "request_id"

    request_id: CommandId
    kiosk_id: str
    location: Text = Field(description="where the kiosk stands, from the layout")
    state: Literal["open", "answered", "closed"] = "open"
    raised_at: AwareDatetime
    answered_by: str | None = Field(None, max_length=64)
    answered_at: AwareDatetime | None = None
    closed_by: str | None = Field(None, max_length=64)
    closed_at: AwareDatetime | None = None


class ErrorReport(Payload):
    """Published for every refused message, also when it has an answer route, for the dashboard."""

    topic: str
    problem: Problem
    excerpt: str = Field(description="the first bytes of the bad payload, for the log")
    reported_by: str
    at: AwareDatetime


# --- region (issue 20): hall → regional broker over a Mosquitto bridge --------------------------


class ForwardedEvent(Payload):
    """One committed event of a hall's store, as the region receives it."""

    seq: int = Field(ge=1, description="the hall's event sequence number: (hall, seq) is its key")
    at: AwareDatetime
    day: str = Field(description="the hall's business day, YYYY-MM-DD")
    kind: str
    body: str = Field(description="the event as the hall's store holds it (JSON text)")


class RegionEvents(Payload):
    """Committed events of one hall, consecutive by ``seq``: after every commit, or a resend."""

    hall_id: str
    events: list[ForwardedEvent]
    head: int = Field(ge=0, description="the hall's last committed sequence number when sent")
    resend_of: str | None = Field(None, description="the resend request this answers, if any")


class RegionHead(Payload):
    """The hall's last committed sequence number, every few seconds: a lost tail shows as a gap."""

    hall_id: str
    head: int = Field(ge=0)
    at: AwareDatetime
    layout_version: int | None = Field(None, description="the pushed layout version it runs, if any")


class ConfigPush(Request):
    """A new layout version for a hall, from the region: validated there and applied at once, queues
    and signed-in clerks kept; refused with the hall's reasons otherwise."""

    command_id: CommandId
    version: int = Field(ge=1, description="the region's layout version; a hall only moves forward")
    layout_toml: str = Field(max_length=1_000_000, description="the whole layout file (TOML)")


class ConfigResult(Reply):
    version: int | None = Field(None, description="the version answered; None when the push was unreadable")
    running_version: int | None = Field(None, description="the version the hall runs after this")
    reasons: list[str] = Field([], description="why it was refused, one line per problem")


class ResendRequest(Request):
    """The region asks a hall to publish its events ``first_seq..last_seq`` again (from its store)."""

    command_id: CommandId
    first_seq: int = Field(ge=1)
    last_seq: int = Field(ge=1)


class HallLayout(Payload):
    """The layout the hall's coordinator runs (retained): every process that reads the layout swaps
    to it at run time, after parsing it with the same parser (``layout.parse_layout``); one that
    does not parse is refused and the old layout kept (docs/region.md)."""

    version: int = Field(ge=0, description="the region's layout version; 0: the hall's own file")
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of layout_toml (UTF-8), hex")
    layout_toml: str = Field(max_length=1_000_000, description="the whole layout file (TOML)")


# --- topics ----------------------------------------------------------------------------------

_PARAM = re.compile(r"\{([a-z_]+)\}")
# What a topic level may hold, per parameter: ASCII only, so "²" (``isdigit()`` is true, ``int()``
# fails) or a full-width digit never reaches code that expects a number or an id.
IDENT_LEVEL = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
PARAM_LEVELS: dict[str, str] = {"window": r"[1-9][0-9]{0,3}"}  # layout: 1..9999


def param_level(name: str) -> str:
    """The regular expression a topic parameter's level must match in full."""
    return PARAM_LEVELS.get(name, IDENT_LEVEL)


@lru_cache(maxsize=64)
def _level(expression: str) -> re.Pattern[str]:
    """A level's expression compiled (not looked up in ``re``'s cache for every message)."""
    return re.compile(expression)


# A hall's own topic tree: every hall route's pattern starts with it (tests/test_contract.py checks),
# so one filter covers the hall in the broker's ACL (coordinator, monitor, watchers) and for a watcher.
HALL_PREFIX = "hall/{hall}/"


def hall_subtree(hall: str) -> str:
    """The subscription/ACL filter of every topic of hall ``hall``: ``hall/<hall>/#``.

    Raises ``ValueError`` when ``hall`` is not a topic level (:func:`param_level`), as
    :meth:`Route.topic` would."""
    if not re.fullmatch(param_level("hall"), hall):
        raise ValueError(f"hall {hall!r} is not a topic level")
    return HALL_PREFIX.format(hall=hall) + "#"


# The bridge's topic prefixes: a hall's local region/ subtree and where it appears on the regional
# broker, keyed by the hall's 行政区划 code (``district``, GB/T 2260, six digits) and hall id (``site``).
REGION_LOCAL_PREFIX = HALL_PREFIX + "region/"
REGION_REMOTE_PREFIX = "region/{district}/{site}/"
REGION_LEAVES = {"events": "out", "head": "out", "resend": "in", "config": "in",
                 "config/result": "out"}  # leaf → bridge direction


P_co = TypeVar("P_co", bound="Payload", covariant=True)  # read-only: a Route[Rating] is a Route[Payload]
Req = TypeVar("Req", bound="Request")
Rep = TypeVar("Rep", bound="Reply")


@dataclass(frozen=True)
class Route(Generic[P_co]):
    """One MQTT route: its topic pattern and payload model (``P_co``), who publishes and who takes it."""

    name: str
    pattern: str
    model: type[P_co]
    publisher: str
    subscriber: str
    qos: int = 1
    retained: bool = False
    # (payload field, topic parameter): the field naming the sender must equal the topic's, since
    # the broker's ACL ties the topic, not the payload, to the sender's account.
    identity: tuple[str, str] | None = None

    def misattributed(self, params: dict[str, str], payload: Payload) -> Problem | None:
        """A ``wrong_sender`` problem naming both parties when ``payload`` names another sender
        than the topic it came on (``params`` from :meth:`match`); None when they agree."""
        if self.identity is None:
            return None
        field_name, param = self.identity
        claimed, actual = str(getattr(payload, field_name)), params.get(param)
        if claimed == actual:
            return None
        return Problem(code="wrong_sender", message=(
            f"主题属于 {param} {actual}，消息却自称 {claimed}，已拒收 / the topic names {param} {actual!r} "
            f"but the payload's {field_name} names {claimed!r}: refused (the sender is who the topic says)"))

    # Made once per route (the pattern is fixed): a topic is made or matched for every message.
    @cached_property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.pattern))

    def topic(self, **params: object) -> str:
        """The concrete topic; every parameter must be given and match :func:`param_level`."""
        missing = set(self.params) - params.keys()
        if missing:
            raise ValueError(f"topic {self.name} needs {sorted(missing)}")
        for key, value in params.items():
            if not _level(param_level(key)).fullmatch(str(value)):
                raise ValueError(f"topic {self.name}: {key}={value!r} is not a topic level")
        return self.pattern.format(**params)

    def filter(self, **params: object) -> str:
        """A subscription filter: parameters not given become ``+``."""
        full = {p: params.get(p, "+") for p in self.params}
        return self.pattern.format(**full)

    def match(self, topic: str) -> dict[str, str] | None:
        """The parameters of a concrete topic of this route, or None if it is not one (also when a
        level does not match its parameter's :func:`param_level`)."""
        found = self._matcher.fullmatch(topic)
        return found.groupdict() if found else None

    @cached_property
    def _matcher(self) -> re.Pattern[str]:
        levels = []
        for level in self.pattern.split("/"):
            param = _PARAM.fullmatch(level)
            levels.append(f"(?P<{param.group(1)}>{param_level(param.group(1))})" if param
                          else re.escape(level))
        return re.compile("/".join(levels), flags=re.ASCII)


@dataclass(frozen=True)
class RequestRoute(Route[Req], Generic[Req, Rep]):
    """A route whose payload (``Req``) is answered on another route (``answer``, carrying ``Rep``)
    with the same topic parameters; the answer's ``command_id`` is the request's
    :attr:`Request.request_key`."""

    answer: Route[Rep] = field(kw_only=True)


class CardRead(Request):
    """An ID card read at a kiosk's reader: its keyed hash and masked forms, never the clear number."""

    ID_FIELD: ClassVar[str] = "read_id"

    read_id: CommandId
    ok: bool
    id_hash: IdHash | None = None
    masked_id: str | None = Field(None, pattern=r"^[0-9X*]{18}$", description="e.g. 420***********001X")
    masked_name: str | None = Field(None, max_length=15, description="e.g. 张**")
    problem: Literal["unreadable", "not_valid"] | None = Field(
        None, description="when ok is false: the card could not be read, or its number is not valid")
    read_at: AwareDatetime


def _routes(*routes: Route[Payload]) -> dict[str, Route[Payload]]:
    return {r.name: r for r in routes}


TICKET_REPLY = Route("ticket_reply", "hall/{hall}/kiosk/{kiosk}/ticket/reply", TicketReply,
                     "coordinator", "kiosk")
TICKET_REQUEST = RequestRoute("ticket_request", "hall/{hall}/kiosk/{kiosk}/ticket/request", TicketRequest,
                              "kiosk", "coordinator", answer=TICKET_REPLY)
PRINT_RESULT = Route("print_result", "hall/{hall}/printer/{printer}/result", PrintResult,
                     "printer", "coordinator")
PRINT_JOB = RequestRoute("print_job", "hall/{hall}/printer/{printer}/job", PrintJob,
                         "coordinator", "printer", answer=PRINT_RESULT)
# QoS 0, not retained: worth something only for the next few milliseconds; a lost one costs the job
# one DLE EOT 1 round trip, as before the route existed.
PRINT_EXPECTED = Route("print_expected", "hall/{hall}/printer/{printer}/expect", PrintExpected,
                       "coordinator", "printer", qos=0)
WINDOW_RESULT = Route("window_result", "hall/{hall}/window/{window}/result", WindowCommandResult,
                      "coordinator", "pad agent, web")
WINDOW_COMMAND = RequestRoute("window_command", "hall/{hall}/window/{window}/command", WindowCommand,
                              "pad agent, web", "coordinator", answer=WINDOW_RESULT)
WINDOW_STATE = Route("window_state", "hall/{hall}/window/{window}/state", WindowState,
                     "coordinator", "displays, pad agent, web", retained=True)
CALL = Route("call", "hall/{hall}/call", Call, "coordinator", "displays, announcer, web")
QUEUE_SUMMARY = Route("queue_summary", "hall/{hall}/queue/summary", QueueSummary,
                      "coordinator", "kiosks, hall screens, web", retained=True)
RATING_PROMPT = Route("rating_prompt", "hall/{hall}/window/{window}/rating/prompt", RatingPrompt,
                      "coordinator", "pad agent")
RATING_ACK = Route("rating_ack", "hall/{hall}/window/{window}/rating/ack", RatingAck,
                   "coordinator", "pad agent")
RATING = RequestRoute("rating", "hall/{hall}/window/{window}/rating", Rating,
                      "pad agent", "coordinator", answer=RATING_ACK, identity=("window", "window"))
DEVICE_STATUS = Route("device_status", "hall/{hall}/device/{device}/status", DeviceStatus,
                      "every agent (Last Will: offline)", "coordinator, web", retained=True,
                      identity=("device_id", "device"))
ALERT = Route("alert", "hall/{hall}/alert", Alert, "coordinator", "web")
ACTIVE_ALERTS = Route("active_alerts", "hall/{hall}/alerts/active", ActiveAlerts, "coordinator", "web",
                      retained=True)
STAFF_RESULT = Route("staff_result", "hall/{hall}/staff/{staff}/result", StaffResult, "coordinator", "web")
STAFF_COMMAND = RequestRoute("staff_command", "hall/{hall}/staff/{staff}/command", StaffCommand,
                             "web", "coordinator", answer=STAFF_RESULT)
QUERY_REPLY = Route("query_reply", "hall/{hall}/query/{client}/reply", QueryReply, "coordinator", "web")
QUERY = RequestRoute("query", "hall/{hall}/query/{client}/request", QueryRequest, "web", "coordinator",
                     answer=QUERY_REPLY)
ERROR = Route("error", "hall/{hall}/error/{reporter}", ErrorReport, "any part", "web, logs",
              identity=("reported_by", "reporter"))
CARD_READ = Route("card_read", "hall/{hall}/kiosk/{kiosk}/card", CardRead, "ID card reader agent", "kiosk")
HALL_LAYOUT = Route("hall_layout", "hall/{hall}/layout", HallLayout, "coordinator",
                    "kiosks, displays, hall screens, web", retained=True)
# Region (issue 20). The hall's broker bridges hall/{hall}/region/<leaf> to the regional broker's
# region/{district}/{site}/<leaf> (REGION_LOCAL_PREFIX ↔ REGION_REMOTE_PREFIX, see region/bridge.py).
REGION_EVENTS = Route("region_events", REGION_LOCAL_PREFIX + "events", RegionEvents, "coordinator",
                      "bridge → region", identity=("hall_id", "hall"))
REGION_HEAD = Route("region_head", REGION_LOCAL_PREFIX + "head", RegionHead, "coordinator",
                    "bridge → region", qos=0, identity=("hall_id", "hall"))
REGION_RESEND = Route("region_resend", REGION_LOCAL_PREFIX + "resend", ResendRequest, "region → bridge",
                      "coordinator")
REGION_CONFIG_RESULT = Route("region_config_result", REGION_LOCAL_PREFIX + "config/result", ConfigResult,
                             "coordinator", "bridge → region")
REGION_CONFIG = RequestRoute("region_config", REGION_LOCAL_PREFIX + "config", ConfigPush, "region → bridge",
                             "coordinator", answer=REGION_CONFIG_RESULT)
REGION_CONFIG_OUT = Route("region_config_out", REGION_REMOTE_PREFIX + "config", ConfigPush, "region",
                          "bridge of a hall")
REGION_CONFIG_RESULT_IN = Route("region_config_result_in", REGION_REMOTE_PREFIX + "config/result",
                                ConfigResult, "bridge of a hall", "region")
REGION_ALERTS_IN = Route("region_alerts_in", REGION_REMOTE_PREFIX + "alerts/active", ActiveAlerts,
                         "bridge of a hall", "region", retained=True)
REGION_EVENTS_IN = Route("region_events_in", REGION_REMOTE_PREFIX + "events", RegionEvents,
                         "bridge of a hall", "region", identity=("hall_id", "site"))
REGION_HEAD_IN = Route("region_head_in", REGION_REMOTE_PREFIX + "head", RegionHead, "bridge of a hall",
                       "region", qos=0, identity=("hall_id", "site"))
REGION_RESEND_OUT = Route("region_resend_out", REGION_REMOTE_PREFIX + "resend", ResendRequest, "region",
                          "bridge of a hall")
HELP_REQUEST = Route("help_request", "hall/{hall}/kiosk/{kiosk}/help", HelpRequest,
                     "kiosk (open), web (answered, closed)", "web, kiosk", retained=True,
                     identity=("kiosk_id", "kiosk"))

ROUTES: dict[str, Route[Payload]] = _routes(
    TICKET_REQUEST, TICKET_REPLY, PRINT_EXPECTED, PRINT_JOB, PRINT_RESULT, WINDOW_COMMAND, WINDOW_RESULT,
    WINDOW_STATE, CALL, QUEUE_SUMMARY, RATING_PROMPT, RATING, RATING_ACK, DEVICE_STATUS, ALERT,
    ACTIVE_ALERTS, STAFF_COMMAND, STAFF_RESULT, QUERY, QUERY_REPLY, ERROR, CARD_READ, HALL_LAYOUT,
    REGION_EVENTS, REGION_HEAD, REGION_RESEND, REGION_CONFIG, REGION_CONFIG_RESULT, REGION_CONFIG_OUT,
    REGION_CONFIG_RESULT_IN, REGION_ALERTS_IN, REGION_EVENTS_IN, REGION_HEAD_IN, REGION_RESEND_OUT,
    HELP_REQUEST,
)


def route(name: str) -> Route[Payload]:
    """The route named ``name``: for the generated docs, the broker's ACL and tests only; code
    that speaks a route uses its typed constant (``WINDOW_STATE``...)."""
    return ROUTES[name]


def find_route(topic: str) -> tuple[Route[Payload], dict[str, str]] | None:
    for candidate in ROUTES.values():
        params = candidate.match(topic)
        if params is not None:
            return candidate, params
    return None


def describe_fields(model: type[BaseModel]) -> list[tuple[str, str, bool, str]]:
    """(name, type, required, description) of each field, for the generated docs."""
    rows = []
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        shown = getattr(annotation, "__name__", None) or str(annotation)
        if shown in ("Optional", "Union") and _payload_types(annotation):  # QueryAnswer: its members
            shown = " | ".join(m.__name__ for m in _payload_types(annotation)) + (
                " | None" if type(None) in getattr(annotation, "__args__", ()) else "")
        shown = shown.replace("hall_devices.contract.", "").replace("typing.", "")
        rows.append((name, shown, info.is_required(), info.description or ""))
    return rows


def contract_markdown() -> str:
    """``docs/contract.md``, generated from :data:`ROUTES`."""
    out = [
        "# MQTT contract",
        "",
        "Generated from `hall_devices/contract.py` by `hall-devices contract docs`; a test fails when",
        "this file and the code differ. `{hall}` is the hall id of the layout; all payloads are JSON",
        f"with `schema_version` = {SCHEMA_VERSION}. Every request carries a unique id and is applied",
        "once; its answer carries the same id. A refused message is answered on the request's answer",
        "route with `ok: false` and an `error` naming the problem, and reported on the `error` route.",
        "A sender is who its topic names: a payload naming another device (`device_id` of a status,",
        "`window` of a rating, `reported_by` of an error) is refused with the problem `wrong_sender`.",
        f"Every datetime carries its zone (ISO 8601 with an offset); a payload is at most "
        f"{MAX_PAYLOAD_BYTES} bytes (the broker drops a bigger one); a topic parameter is ASCII: "
        f"`{{window}}` matches `{PARAM_LEVELS['window']}`, every other one `{IDENT_LEVEL}`.",
        "",
        "| route | topic | publisher → subscriber | QoS | retained | payload | answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ROUTES.values():
        out.append(f"| {r.name} | `{r.pattern}` | {r.publisher} → {r.subscriber} | {r.qos} | "
                   f"{'yes' if r.retained else 'no'} | {r.model.__name__} | "
                   f"{r.answer.name if isinstance(r, RequestRoute) else ''} |")
    models: list[type[BaseModel]] = []
    for r in ROUTES.values():
        for m in (r.model, *_nested(r.model)):
            if m not in models:
                models.append(m)
    for model in models:
        out += ["", f"## {model.__name__}", ""]
        doc = (model.__doc__ or "").strip()
        if doc:
            out += [doc.splitlines()[0], ""]
        if issubclass(model, Request):
            out += [f"Its id is `{model.ID_FIELD}` (`request_key`); an answer, where its route "
                    "has one, repeats it as `command_id`.", ""]
        out += ["| field | type | required | meaning |", "|---|---|---|---|"]
        for name, shown, required, description in describe_fields(model):
            out.append(f"| {name} | `{shown}` | {'yes' if required else 'no'} | {description} |")
    return "\n".join(out) + "\n"


def _nested(model: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for info in model.model_fields.values():
        for candidate in _payload_types(info.annotation):
            if candidate not in found:
                found.append(candidate)
                found += [m for m in _nested(candidate) if m not in found]
    return found


def _payload_types(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        out += _payload_types(arg)
    return out
