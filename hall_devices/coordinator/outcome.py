"""What the engine takes and yields: typed commands in; events, a reply and typed effects out.

A command is a request's payload with what its topic told (the window number, the kiosk id...), as
typed fields: the engine never sees a topic. An effect is a message to publish, as data saying what
and to whom; the coordinator's MQTT service (service.py) alone maps effects to routes and topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hall_devices.contract import (
    ActiveAlerts,
    Alert,
    Call,
    ErrorReport,
    PrintJob,
    PrintResult,
    Problem,
    Rating,
    RatingPrompt,
    Reply,
    StaffCommand,
    TicketRequest,
    WindowCommand,
    WindowState,
)
from hall_devices.coordinator.events import Event


class EngineError(Exception):
    """A refused command: ``code`` for programs, ``message`` (naming the state) for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- commands: a request and who sent it ---------------------------------------------------------

@dataclass(frozen=True)
class TakeTicket:
    """A kiosk (``kiosk``: its layout id, from the topic) asks for a ticket."""

    kiosk: str
    request: TicketRequest


@dataclass(frozen=True)
class ActAtWindow:
    """A window's pad or console (``window``: its number, from the topic) acts."""

    window: int
    command: WindowCommand


@dataclass(frozen=True)
class Rate:
    """An applicant rates the service at ``window`` (from the topic)."""

    window: int
    rating: Rating


@dataclass(frozen=True)
class ActAsStaff:
    """A member of staff (``staff``: their id, from the topic) acts on tickets, bookings or cases."""

    staff: str
    command: StaffCommand


@dataclass(frozen=True)
class ReportPrint:
    """A printer (``printer``: its layout id, from the topic) reports on a print job."""

    printer: str
    result: PrintResult


Command = TakeTicket | ActAtWindow | Rate | ActAsStaff | ReportPrint


# --- effects: what to publish, to whom -----------------------------------------------------------

@dataclass(frozen=True)
class SendPrintJob:
    """A ticket to print, to the printer ``printer``."""

    printer: str
    job: PrintJob


@dataclass(frozen=True)
class Announce:
    """A call, to every screen and the announcer."""

    call: Call


@dataclass(frozen=True)
class AskRating:
    """A rating prompt, to the pad of window ``window``."""

    window: int
    prompt: RatingPrompt


@dataclass(frozen=True)
class RaiseAlert:
    """An alert raised or cleared, to the dashboard."""

    alert: Alert


@dataclass(frozen=True)
class ShowAlerts:
    """The set of active alerts (retained), to the dashboard."""

    alerts: ActiveAlerts


@dataclass(frozen=True)
class ReportError:
    """A refused or failed message, reported by the coordinator for the dashboard and logs."""

    report: ErrorReport


Effect = SendPrintJob | Announce | AskRating | RaiseAlert | ShowAlerts | ReportError


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    reply: Reply | None = None
    effects: list[Effect] = field(default_factory=list)
    dirty_windows: set[int] = field(default_factory=set)
    # The state of the window a command acted at, built after its events: published before the
    # other windows' states, and not built again unless a later outcome of the batch changed things.
    window_states: dict[int, WindowState] = field(default_factory=dict)
    queue_changed: bool = False
    refused: Problem | None = None  # why the command was refused, also when it has no answer route
