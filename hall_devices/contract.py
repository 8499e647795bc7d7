"""The MQTT contract: every topic and payload shape the parts of the hall exchange.

This module is the only place a topic string or a payload shape is written. Each :class:`Route`
names a topic pattern, who publishes and who subscribes, its QoS, whether it is retained, its
payload model and, for requests, the route its answer goes to. ``docs/contract.md`` is generated
from :data:`ROUTES` (``hall-devices contract docs``) and a test keeps it in sync.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1
CommandId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Payload(BaseModel):
    """Base of every payload: a schema version and no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1] = SCHEMA_VERSION


class Text(Payload):
    zh: str
    en: str


class Problem(Payload):
    """Why something was refused: a stable code for programs and a message for people."""

    code: str = Field(description="bad_json, bad_schema, unknown_service, wrong_state, "
                      "request_expired, clock_skew, ...")
    message: str


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


class TicketRequest(Payload):
    command_id: CommandId
    deadline: AwareDatetime | None = Field(
        None, description="issue no ticket after this (coordinator's clock); every kiosk sets it; "
        "none: nobody waits at a screen (traffic simulator, load tests)")
    service_id: str | None = Field(None, description="may be left out for an appointment: its booking has it")
    ticket_class: Literal[TicketClass.NORMAL, TicketClass.PRIORITY, TicketClass.APPOINTMENT] = (
        TicketClass.NORMAL
    )
    appointment_code: str | None = Field(None, max_length=32)
    language: Literal["zh", "en"] = "zh"
    paper: bool = Field(True, description="false: the kiosk shows the number on screen only")


class TicketInfo(Payload):
    ticket_id: str
    number: str = Field(description="prefix + digits, e.g. A001")
    service_id: str
    service_name: Text
    department_name: Text
    ticket_class: TicketClass
    status: TicketStatus
    issued_at: datetime
    people_ahead: int
    estimated_minutes: int
    windows: list[int]
    materials: list[Text] = []
    status_url: str | None = None
    complete_by: datetime | None = Field(None, description="承诺件 (限时办结): end of the last of the "
                                         "service's time_limit_days working days from issue")


class TicketReply(Reply):
    ticket: TicketInfo | None = None
    print_job_id: str | None = Field(None, description="set when a print job was sent")


class PrintJob(Payload):
    job_id: CommandId
    kiosk_id: str
    hall_name: Text
    ticket: TicketInfo
    print_materials: bool = True
    reprint: bool = False
    footer: Text | None = None


class PrintResult(Reply):
    """``command_id`` is the job id."""

    reason: PrintFailure | None = None


class WindowCommand(Payload):
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
    since: datetime
    pause_reason: str | None = None
    waiting: int = Field(0, description="tickets this window could serve now")
    held: list[str] = []
    pause_notice: Text | None = Field(None, description="临时有事，请稍候: paused long_pause_minutes or "
                                      "more, by the coordinator's clock (screens show it as is)")


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
    called_at: datetime
    text: Text = Field(description="请A001号到3号窗口 / Ticket A001, please go to window 3")


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


class QueueSummary(Payload):
    updated_at: datetime
    total_waiting: int
    services: list[ServiceQueue]


class RatingPrompt(Payload):
    prompt_id: str
    window: int
    ticket_id: str
    ticket_number: str
    clerk_id: str | None
    service_id: str
    expires_at: datetime
    timeout_s: int | None = Field(None, description="seconds the rating stays open from now: the pad "
                                  "counts them on its own monotonic clock, not against expires_at")


class Rating(Payload):
    rating_id: CommandId = Field(description="made by the producing agent; a redelivery keeps it")
    prompt_id: str
    window: int
    level: RatingLevel
    reasons: list[str] = Field([], max_length=8)
    channel: Channel = Channel.PAD
    rated_at: datetime
    answered_after_s: float | None = Field(None, ge=0, description="seconds from the prompt's arrival "
                                           "to the key press, by the pad's monotonic clock")


class RatingAck(Reply):
    """``command_id`` is the rating id."""

    duplicate: bool = False


class DeviceStatus(Payload):
    device_id: str
    kind: str
    state: DeviceState
    faults: list[DeviceFault] = []
    detail: str | None = None
    members: dict[str, DeviceState] = Field({}, description="state of each device on a bus")
    updated_at: datetime


class Alert(Payload):
    alert_id: str
    kind: Literal["long_wait", "overtime", "paused_with_waiting", "device_offline", "device_fault",
                  "paper_near_end", "paper_out", "print_failed", "clock_step", "no_open_window",
                  "calendar_uncovered"]
    subject: str = Field(description="ticket number, window number or device id")
    message: Text
    raised_at: datetime
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
    BOOK_APPOINTMENT = "book_appointment"
    CASE_VERIFY = "case_verify"  # 核实 → 整改中
    CASE_APPEAL = "case_appeal"  # 申诉
    CASE_REVISIT = "case_revisit"  # 回访
    CASE_CLOSE = "case_close"  # 办结
    CASE_REVOKE = "case_revoke"  # appeal upheld: 撤销
    CASE_REJECT_APPEAL = "case_reject_appeal"  # appeal refused: back to 整改中


class StaffCommand(Payload):
    command_id: CommandId
    action: StaffAction
    staff_id: str = Field(min_length=1, max_length=32)
    service_id: str | None = None
    ticket_id: str | None = None
    kiosk_id: str | None = Field(None, description="reprint at this kiosk's printer")
    case_id: str | None = None
    note: str | None = Field(None, max_length=500)
    appointment_code: str | None = Field(None, max_length=32)
    slot_start: datetime | None = None
    slot_end: datetime | None = None


class CaseStep(Payload):
    state: CaseState
    at: datetime
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
    opened_at: datetime
    deadline: datetime = Field(description="end of the last working day allowed")
    history: list[CaseStep]


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


class QueryRequest(Payload):
    """A read of the coordinator's state or store; changes nothing, so it is not deduplicated."""

    command_id: CommandId
    kind: QueryKind
    first_day: str | None = None
    last_day: str | None = None
    window: int | None = None
    level: int | None = Field(None, ge=1, le=5)
    token: str | None = Field(None, max_length=64)
    ticket_number: str | None = Field(None, max_length=16)


class QueryReply(Reply):
    data: dict[str, Any] = {}


class ActiveAlerts(Payload):
    updated_at: datetime
    alerts: list[Alert]


class HelpRequest(Payload):
    """呼叫帮办: an applicant at a kiosk asks for staff (帮办代办, a service the hall standard
    names). The kiosk raises it (``open``); staff answer it (``answered``: on the way) and close it
    (``closed``) from the dashboard. One per kiosk at a time, retained: the latest state wins."""

    request_id: CommandId
    kiosk_id: str
    location: Text = Field(description="where the kiosk stands, from the layout")
    state: Literal["open", "answered", "closed"] = "open"
    raised_at: datetime
    answered_by: str | None = Field(None, max_length=64)
    answered_at: datetime | None = None
    closed_by: str | None = Field(None, max_length=64)
    closed_at: datetime | None = None


class ErrorReport(Payload):
    """Published for every refused message, also when it has an answer route, for the dashboard."""

    topic: str
    problem: Problem
    excerpt: str = Field(description="the first bytes of the bad payload, for the log")
    reported_by: str
    at: datetime


# --- topics ----------------------------------------------------------------------------------

_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    model: type[Payload]
    publisher: str
    subscriber: str
    qos: int = 1
    retained: bool = False
    answer: str | None = None
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

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.pattern))

    def topic(self, **params: object) -> str:
        """The concrete topic; every parameter must be given and may not contain / + #."""
        missing = set(self.params) - params.keys()
        if missing:
            raise ValueError(f"topic {self.name} needs {sorted(missing)}")
        for key, value in params.items():
            if re.search(r"[/+#]", str(value)) or str(value) == "":
                raise ValueError(f"topic {self.name}: {key}={value!r} is not a topic level")
        return self.pattern.format(**params)

    def filter(self, **params: object) -> str:
        """A subscription filter: parameters not given become ``+``."""
        full = {p: params.get(p, "+") for p in self.params}
        return self.pattern.format(**full)

    def match(self, topic: str) -> dict[str, str] | None:
        """The parameters of a concrete topic of this route, or None if it is not one."""
        levels = []
        for level in self.pattern.split("/"):
            param = _PARAM.fullmatch(level)
            levels.append(f"(?P<{param.group(1)}>[^/]+)" if param else re.escape(level))
        found = re.fullmatch("/".join(levels), topic)
        return found.groupdict() if found else None


def _routes(*routes: Route) -> dict[str, Route]:
    return {r.name: r for r in routes}


ROUTES: dict[str, Route] = _routes(
    Route("ticket_request", "hall/{hall}/kiosk/{kiosk}/ticket/request", TicketRequest,
          "kiosk", "coordinator", answer="ticket_reply"),
    Route("ticket_reply", "hall/{hall}/kiosk/{kiosk}/ticket/reply", TicketReply,
          "coordinator", "kiosk"),
    Route("print_job", "hall/{hall}/printer/{printer}/job", PrintJob,
          "coordinator", "printer", answer="print_result"),
    Route("print_result", "hall/{hall}/printer/{printer}/result", PrintResult,
          "printer", "coordinator"),
    Route("window_command", "hall/{hall}/window/{window}/command", WindowCommand,
          "pad agent, web", "coordinator", answer="window_result"),
    Route("window_result", "hall/{hall}/window/{window}/result", WindowCommandResult,
          "coordinator", "pad agent, web"),
    Route("window_state", "hall/{hall}/window/{window}/state", WindowState,
          "coordinator", "displays, pad agent, web", retained=True),
    Route("call", "hall/{hall}/call", Call, "coordinator", "displays, announcer, web"),
    Route("queue_summary", "hall/{hall}/queue/summary", QueueSummary,
          "coordinator", "kiosks, hall screens, web", retained=True),
    Route("rating_prompt", "hall/{hall}/window/{window}/rating/prompt", RatingPrompt,
          "coordinator", "pad agent"),
    Route("rating", "hall/{hall}/window/{window}/rating", Rating,
          "pad agent", "coordinator", answer="rating_ack", identity=("window", "window")),
    Route("rating_ack", "hall/{hall}/window/{window}/rating/ack", RatingAck,
          "coordinator", "pad agent"),
    Route("device_status", "hall/{hall}/device/{device}/status", DeviceStatus,
          "every agent (Last Will: offline)", "coordinator, web", retained=True,
          identity=("device_id", "device")),
    Route("alert", "hall/{hall}/alert", Alert, "coordinator", "web"),
    Route("active_alerts", "hall/{hall}/alerts/active", ActiveAlerts, "coordinator", "web",
          retained=True),
    Route("staff_command", "hall/{hall}/staff/{staff}/command", StaffCommand,
          "web", "coordinator", answer="staff_result"),
    Route("staff_result", "hall/{hall}/staff/{staff}/result", StaffResult, "coordinator", "web"),
    Route("query", "hall/{hall}/query/{client}/request", QueryRequest, "web", "coordinator",
          answer="query_reply"),
    Route("query_reply", "hall/{hall}/query/{client}/reply", QueryReply, "coordinator", "web"),
    Route("error", "hall/{hall}/error/{reporter}", ErrorReport, "any part", "web, logs",
          identity=("reported_by", "reporter")),
    Route("help_request", "hall/{hall}/kiosk/{kiosk}/help", HelpRequest, "kiosk (open), web (answered, "
          "closed)", "web, kiosk", retained=True, identity=("kiosk_id", "kiosk")),
)


def route(name: str) -> Route:
    return ROUTES[name]


def find_route(topic: str) -> tuple[Route, dict[str, str]] | None:
    for candidate in ROUTES.values():
        params = candidate.match(topic)
        if params is not None:
            return candidate, params
    return None


def describe_fields(model: type[Payload]) -> list[tuple[str, str, bool, str]]:
    """(name, type, required, description) of each field, for the generated docs."""
    rows = []
    for name, info in model.model_fields.items():
        annotation: Any = info.annotation
        shown = getattr(annotation, "__name__", None) or str(annotation)
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
        "",
        "| route | topic | publisher → subscriber | QoS | retained | payload | answer |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in ROUTES.values():
        out.append(f"| {r.name} | `{r.pattern}` | {r.publisher} → {r.subscriber} | {r.qos} | "
                   f"{'yes' if r.retained else 'no'} | {r.model.__name__} | {r.answer or ''} |")
    models: list[type[Payload]] = []
    for r in ROUTES.values():
        for m in (r.model, *_nested(r.model)):
            if m not in models:
                models.append(m)
    for model in models:
        out += ["", f"## {model.__name__}", ""]
        doc = (model.__doc__ or "").strip()
        if doc:
            out += [doc.splitlines()[0], ""]
        out += ["| field | type | required | meaning |", "|---|---|---|---|"]
        for name, shown, required, description in describe_fields(model):
            out.append(f"| {name} | `{shown}` | {'yes' if required else 'no'} | {description} |")
    return "\n".join(out) + "\n"


def _nested(model: type[Payload]) -> list[type[Payload]]:
    found: list[type[Payload]] = []
    for info in model.model_fields.values():
        for candidate in _payload_types(info.annotation):
            if candidate not in found:
                found.append(candidate)
                found += [m for m in _nested(candidate) if m not in found]
    return found


def _payload_types(annotation: Any) -> list[type[Payload]]:
    if isinstance(annotation, type) and issubclass(annotation, Payload):
        return [annotation]
    out: list[type[Payload]] = []
    for arg in getattr(annotation, "__args__", ()):
        out += _payload_types(arg)
    return out
