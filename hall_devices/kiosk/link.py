"""The kiosk's side of the bus, as Qt signals. Never touches a widget.

paho's thread and the request worker threads only emit signals; with auto connections the slots
run on the GUI thread. A ticket request never blocks the GUI: it runs on a worker thread.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from PyQt6.QtCore import QObject, pyqtSignal

from hall_devices.bus import Bus, BusError, BusOptions, Inbound
from hall_devices.contract import DeviceState, DeviceStatus, TicketClass, TicketRequest, route
from hall_devices.layout import KioskDevice, Layout
from hall_devices.printer.status import BLOCKING
from hall_devices.requests import Requester
from hall_devices.settings import Settings

BLOCKING_FAULTS = {fault for fault, _failure in BLOCKING}


class KioskLink(QObject):
    summary_changed = pyqtSignal(object)  # QueueSummary
    printer_changed = pyqtSignal(bool)  # can print
    coordinator_changed = pyqtSignal(bool)  # reachable
    ticket_answered = pyqtSignal(object)  # TicketReply, or a BusError when nothing came back
    print_finished = pyqtSignal(object)  # PrintResult of one of our jobs

    def __init__(self, settings: Settings, layout: Layout, kiosk: KioskDevice,
                 reply_timeout_s: float = 8.0) -> None:
        super().__init__()
        self.kiosk = kiosk
        self.reply_timeout_s = reply_timeout_s
        self.bus = Bus(settings, BusOptions(client_id=kiosk.id, hall_id=layout.hall.id, device_id=kiosk.id,
                                            device_kind="kiosk", on_connection=self._connection))
        self.requests = Requester(self.bus)
        self.requests.listen(route("ticket_request"), kiosk=kiosk.id)
        self.bus.subscribe(route("queue_summary"), lambda m: self.summary_changed.emit(m.payload))
        self.bus.subscribe(route("device_status"), self._device, device="coordinator")
        if kiosk.printer:
            self.bus.subscribe(route("device_status"), self._device, device=kiosk.printer)
            self.bus.subscribe(route("print_result"), lambda m: self.print_finished.emit(m.payload),
                               printer=kiosk.printer)
        self.coordinator_up = False
        self.printer_ok = kiosk.printer is not None
        self._connected = False

    def start(self) -> None:
        self.bus.start(None)  # keeps trying in the background; the screen says so meanwhile

    def stop(self) -> None:
        self.bus.stop()

    def _connection(self, up: bool) -> None:
        self._connected = up
        self.coordinator_changed.emit(up and self.coordinator_up)

    def _device(self, inbound: Inbound[Any]) -> None:
        status: DeviceStatus = inbound.payload
        if status.device_id == "coordinator":
            self.coordinator_up = status.state is not DeviceState.OFFLINE
            self.coordinator_changed.emit(self._connected and self.coordinator_up)
        else:
            self.printer_ok = status.state is not DeviceState.OFFLINE and not (
                BLOCKING_FAULTS & set(status.faults))
            self.printer_changed.emit(self.printer_ok)

    def request_ticket(self, service_id: str | None, ticket_class: TicketClass, code: str | None,
                       paper: bool) -> None:
        request = TicketRequest(command_id=f"{self.kiosk.id}-{uuid.uuid4().hex[:20]}", service_id=service_id,
                                ticket_class=ticket_class, appointment_code=code, paper=paper)

        def work() -> None:
            try:
                reply = self.requests.call(route("ticket_request"), request, self.reply_timeout_s,
                                           kiosk=self.kiosk.id)
            except BusError as exc:
                self.ticket_answered.emit(exc)
                return
            self.ticket_answered.emit(reply)

        threading.Thread(target=work, name="ticket request", daemon=True).start()
