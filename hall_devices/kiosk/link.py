"""The kiosk's side of the bus, as Qt signals. Never touches a widget.

paho's thread and the request worker threads only emit signals; with auto connections the slots
run on the GUI thread. A ticket request never blocks the GUI: it runs on a worker thread.

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
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from PyQt6.QtCore import QObject, pyqtSignal

from hall_devices.bus import Bus, BusError, BusOptions, Inbound
from hall_devices.contract import (
    CARD_READ,
    CLOCK_SKEW_MAX_S,
    DEVICE_STATUS,
    HELP_REQUEST,
    PRINT_RESULT,
    QUEUE_SUMMARY,
    TICKET_REQUEST,
    TICKET_REQUEST_TTL_S,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    HelpRequest,
    QueueSummary,
    Text,
    TicketClass,
    TicketRequest,
    can_work,
)
from hall_devices.layout import KioskDevice, Layout
from hall_devices.layout_follow import LayoutFollower
from hall_devices.requests import Requester
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
GRACE_S = 2.0  # for a reply the coordinator decided just before the deadline to reach the kiosk


class KioskLink(QObject):
    summary_changed = pyqtSignal(object)  # QueueSummary
    printer_changed = pyqtSignal(bool)  # can print
    coordinator_changed = pyqtSignal(bool)  # reachable
    ticket_answered = pyqtSignal(object)  # TicketReply, or a BusError when nothing came back
    print_finished = pyqtSignal(object)  # PrintResult of one of our jobs
    card_read = pyqtSignal(object)  # CardRead from this kiosk's ID card reader
    layout_changed = pyqtSignal(object)  # Layout the coordinator now runs (layout_follow.py)
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
        self.requests = Requester(self.bus)
        self.requests.listen(TICKET_REQUEST, kiosk=kiosk.id)
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
        self.bus.start(None)  # keeps trying in the background; the screen says so meanwhile

    def stop(self) -> None:
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

        def work() -> None:
            tapped = time.monotonic()
            try:
                reply = self.requests.call(TICKET_REQUEST, request, self.give_up_s,
                                           resend_s=self.resend_s, kiosk=self.kiosk.id)
            except BusError as exc:
                log.warning("ticket request %s: no answer by its deadline %s + %.0f s: the applicant "
                            "is told no number was issued", request.command_id, deadline.isoformat(),
                            self.give_up_s - self.ttl_s)
                self.ticket_answered.emit(exc)
                return
            except Exception as exc:
                # Never a kiosk stuck on 正在取号; a copy may be out, so tell as late as for silence.
                log.exception("ticket request %s failed", request.command_id)
                time.sleep(max(0.0, tapped + self.give_up_s - time.monotonic()))
                self.ticket_answered.emit(BusError(f"ticket request {request.command_id}: {exc}"))
                return
            self.ticket_answered.emit(reply)

        threading.Thread(target=work, name="ticket request", daemon=True).start()
