"""The kiosk's side of the bus, as Qt signals. Never touches a widget.

paho's thread and the ticket worker only emit signals; with auto connections the slots run on the
GUI thread. A ticket request never blocks the GUI, nor a thread: the worker publishes it, resends it
and gives up at deadlines it keeps, and a reply (posted by paho's thread) wakes it.

One outcome per tap: a ticket request carries a deadline on the coordinator's clock (this kiosk's
clock + the offset learned from the queue summaries + ``ttl_s``); it is sent again under the same
command id every ``resend_s`` until an answer comes. The coordinator issues at most once per command
id and refuses (``request_expired``) once its clock is past the deadline, so when nothing has come
back by deadline + ``CLOCK_SKEW_MAX_S`` + ``GRACE_S`` the kiosk may truthfully say that no number
was issued (docs/kiosk.md). A kiosk whose clock is off by more than ``CLOCK_SKEW_MAX_S`` says so in
its device status (``clock_skew``, warning).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from PyQt6.QtCore import QObject, pyqtSignal

from hall_devices.agent import Worker
from hall_devices.contract import (
    CARD_READ,
    CLOCK_SKEW_MAX_S,
    DEVICE_STATUS,
    HELP_REQUEST,
    PRINT_RESULT,
    QUEUE_SUMMARY,
    TICKET_REPLY,
    TICKET_REQUEST,
    TICKET_REQUEST_TTL_S,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    HelpRequest,
    QueueSummary,
    Text,
    TicketClass,
    TicketReply,
    TicketRequest,
    can_work,
)
from hall_devices.layout import KioskDevice, Layout
from hall_devices.link import MONOTONIC
from hall_devices.mqtt.bus import Bus, BusError, BusOptions, Inbound
from hall_devices.mqtt.layout_follow import LayoutFollower
from hall_devices.mqtt.requests import NoReplyError
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
GRACE_S = 2.0  # for a reply the coordinator decided just before the deadline to reach the kiosk


@dataclass
class _Asked:
    """A tap's ticket request, until its answer or its give-up time (monotonic seconds)."""

    request: TicketRequest
    give_up_at: float
    resend_at: float = 0.0  # 0: publish at once
    failure: BusError | None = None  # set: tell this at give_up_at instead of waiting for a reply


_Item = _Asked | TicketReply


class KioskLink(QObject):
    summary_changed = pyqtSignal(object)  # QueueSummary
    printer_changed = pyqtSignal(bool)  # can print
    coordinator_changed = pyqtSignal(bool)  # reachable
    ticket_answered = pyqtSignal(object)  # TicketReply, or a BusError when nothing came back
    print_finished = pyqtSignal(object)  # PrintResult of one of our jobs
    card_read = pyqtSignal(object)  # CardRead from this kiosk's ID card reader
    layout_changed = pyqtSignal(object)  # Layout the coordinator now runs (mqtt/layout_follow.py)
    help_changed = pyqtSignal(object)  # HelpRequest: this kiosk's 呼叫帮办, as staff answer it

    def __init__(self, settings: Settings, layout: Layout, kiosk: KioskDevice, *,
                 ttl_s: float = TICKET_REQUEST_TTL_S, resend_s: float = 2.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__()
        # A shorter ttl_s is for tests: the coordinator bounds a kiosk's clock skew by assuming the
        # contract's TTL (a deadline further ahead is clock_skew), so a hall keeps the default.
        if not 0 < ttl_s <= TICKET_REQUEST_TTL_S:
            raise ValueError(f"ttl_s {ttl_s} must be in (0, {TICKET_REQUEST_TTL_S}]: the coordinator "
                             f"refuses later deadlines as clock skew")
        self.kiosk = kiosk
        self.ttl_s = ttl_s
        self.resend_s = resend_s
        self.clock = clock
        self.bus = Bus(settings, BusOptions(client_id=kiosk.id, hall_id=layout.hall.id, device_id=kiosk.id,
                                            device_kind="kiosk", on_connection=self._connection))
        self._asked: dict[str, _Asked] = {}  # by command id; only the ticket worker touches it
        self._tickets: Worker[_Item] = Worker(f"{kiosk.id} tickets", self._on_tickets, self._on_tick)
        self.bus.subscribe(TICKET_REPLY, lambda m: self._tickets.post(m.payload), kiosk=kiosk.id)
        self.bus.subscribe(QUEUE_SUMMARY, self._summary)
        self.bus.subscribe(DEVICE_STATUS, self._device, device="coordinator")
        self.bus.subscribe(CARD_READ, lambda m: self.card_read.emit(m.payload), kiosk=kiosk.id)
        follower = LayoutFollower(layout, kiosk.id, lambda new, _version: self.layout_changed.emit(new))
        follower.subscribe(self.bus)
        if kiosk.printer:
            self.bus.subscribe(DEVICE_STATUS, self._device, device=kiosk.printer)
            self.bus.subscribe(PRINT_RESULT, lambda m: self.print_finished.emit(m.payload),
                               printer=kiosk.printer)
        self.help: HelpRequest | None = None
        self.bus.subscribe(HELP_REQUEST, self._help, kiosk=kiosk.id)
        self.coordinator_up = False
        # The coordinator's clock minus this kiosk's, in seconds: deadlines are set on its clock.
        self.offset_s = 0.0
        self.clock_skewed = False
        self.printer_ok = kiosk.printer is not None
        self._connected = False

    @property
    def give_up_s(self) -> float:
        """Seconds after the tap when silence means "no number": the coordinator's clock is past the
        deadline by then (skew at most CLOCK_SKEW_MAX_S) and a reply decided in time has arrived."""
        return self.ttl_s + CLOCK_SKEW_MAX_S + GRACE_S

    def start(self) -> None:
        self._tickets.start()
        self.bus.start(None)  # keeps trying in the background; the screen says so meanwhile

    def stop(self) -> None:
        self._tickets.stop()
        self.bus.stop()

    def _connection(self, up: bool) -> None:
        self._connected = up
        self.coordinator_changed.emit(up and self.coordinator_up)

    def _summary(self, inbound: Inbound[QueueSummary]) -> None:
        """Learn the clock offset from a summary as it is published (``updated_at``: the
        coordinator's time then; a retained copy may be old), then pass the summary on."""
        summary = inbound.payload
        if not inbound.retained:
            self.offset_s = (summary.updated_at - self.clock()).total_seconds()
            skewed = abs(self.offset_s) > CLOCK_SKEW_MAX_S
            if skewed != self.clock_skewed:
                self.clock_skewed = skewed
                log.warning("this kiosk's clock is %.1f s %s the coordinator's", abs(self.offset_s),
                            "behind" if self.offset_s > 0 else "ahead of")
                self.bus.set_status(
                    DeviceState.WARNING if skewed else DeviceState.OK,
                    [DeviceFault.CLOCK_SKEW] if skewed else [],
                    f"clock {self.offset_s:+.1f} s from the coordinator's; tickets use its time"
                    if skewed else None)
        self.summary_changed.emit(summary)

    def _device(self, inbound: Inbound[DeviceStatus]) -> None:
        status = inbound.payload
        if status.device_id == "coordinator":
            self.coordinator_up = status.state is not DeviceState.OFFLINE
            self.coordinator_changed.emit(self._connected and self.coordinator_up)
        else:
            self.printer_ok = can_work(status)  # the contract's one rule, as the coordinator's
            self.printer_changed.emit(self.printer_ok)

    def _help(self, inbound: Inbound[HelpRequest]) -> None:
        self.help = inbound.payload
        self.help_changed.emit(inbound.payload)

    def ask_help(self, location: Text) -> HelpRequest | None:
        """呼叫帮办: raise a help request (retained, so the dashboard sees it whenever it connects);
        None when it cannot be sent (no broker): the applicant is sent to the desk. An open or
        answered request of this kiosk is kept, not raised twice. Never blocks."""
        if self.help is not None and self.help.state != "closed":
            return self.help
        raised = HelpRequest(request_id=f"{self.kiosk.id}-help-{uuid.uuid4().hex[:12]}",
                             kiosk_id=self.kiosk.id, location=location, raised_at=self.clock())
        try:
            self.bus.publish(HELP_REQUEST, raised, kiosk=self.kiosk.id)
        except BusError:
            log.warning("help request of %s not sent: no broker connection", self.kiosk.id)
            return None
        self.help = raised
        self.help_changed.emit(raised)
        return raised

    def request_ticket(self, service_id: str | None, ticket_class: TicketClass, code: str | None,
                       paper: bool, *, id_hash: str | None = None, phone: str | None = None) -> None:
        """Ask for a ticket; ``ticket_answered`` gets the reply, or a BusError when none came back
        by the time the coordinator can no longer issue it (``give_up_s`` after the tap)."""
        deadline = self.clock() + timedelta(seconds=self.offset_s + self.ttl_s)
        request = TicketRequest(command_id=f"{self.kiosk.id}-{uuid.uuid4().hex[:20]}", deadline=deadline,
                                service_id=service_id, ticket_class=ticket_class, appointment_code=code,
                                id_hash=id_hash, paper=paper, phone=phone)
        self._tickets.post(_Asked(request, MONOTONIC() + self.give_up_s))

    # --- on the ticket worker ---------------------------------------------------------------------

    def _on_tickets(self, items: list[_Item]) -> None:
        for item in items:
            if isinstance(item, _Asked):
                self._asked[item.request.command_id] = item
                self._send(item, MONOTONIC())
            elif item.command_id is not None and self._asked.pop(item.command_id, None) is not None:
                self.ticket_answered.emit(item)  # the first answer to any copy; later ones are dropped

    def _on_tick(self, now: float) -> float | None:
        """Resend what is due, tell what is over; the next deadline, or None when nothing waits."""
        for command_id, asked in list(self._asked.items()):
            if now >= asked.give_up_at:
                del self._asked[command_id]
                if asked.failure is None:
                    log.warning("ticket request %s: no answer by its deadline %s + %.0f s: the "
                                "applicant is told no number was issued", command_id,
                                asked.request.deadline.isoformat() if asked.request.deadline else "-",
                                self.give_up_s - self.ttl_s)
                self.ticket_answered.emit(asked.failure or NoReplyError(
                    f"no answer to {TICKET_REQUEST.name} {command_id} within {self.give_up_s} s"))
            elif asked.failure is None and now >= asked.resend_at:
                self._send(asked, now)
        return min((a.resend_at if a.failure is None else a.give_up_at for a in self._asked.values()),
                   default=None)

    def _send(self, asked: _Asked, now: float) -> None:
        """Publish (again) under the same command id: the coordinator applies it at most once."""
        command_id = asked.request.command_id
        try:
            self.bus.publish(TICKET_REQUEST, asked.request, kiosk=self.kiosk.id)
        except BusError as exc:  # e.g. too large: resending cannot help
            del self._asked[command_id]
            log.warning("ticket request %s not sent: %s", command_id, exc)
            self.ticket_answered.emit(exc)
            return
        except Exception as exc:
            # Never a kiosk stuck on 正在取号; a copy may be out, so tell as late as for silence.
            log.exception("ticket request %s failed", command_id)
            asked.failure = BusError(f"ticket request {command_id}: {exc}")
            return
        asked.resend_at = min(now + self.resend_s, asked.give_up_at)
