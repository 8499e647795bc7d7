"""A coordinator on a real Mosquitto, driven as the devices drive it: over MQTT only.

Time is passed in (the coordinator's clock is a parameter by design), so rules measured in minutes
are exercised without waiting for them.
"""

from __future__ import annotations

import queue
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hall_devices.contract import (
    CALL,
    RATING,
    RATING_PROMPT,
    STAFF_COMMAND,
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_STATE,
    Call,
    Rating,
    RatingAck,
    RatingPrompt,
    Reply,
    StaffAction,
    StaffCommand,
    StaffResult,
    TicketReply,
    TicketRequest,
    WindowAction,
    WindowCommand,
    WindowCommandResult,
    WindowState,
)
from hall_devices.coordinator.service import CoordinatorService
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.requests import Requester
from hall_devices.ops.provision import TRAFFIC
from tests.support import HallBroker

# A Monday, 09:00 in the hall (UTC+8).
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self._now += timedelta(**delta)


class Device:
    """One device's MQTT client with its own credentials, as the agents will have."""

    def __init__(self, broker: HallBroker, user: str, kind: str) -> None:
        self.bus = Bus(broker.settings(user), BusOptions(
            client_id=f"{user}-{uuid.uuid4().hex[:6]}", hall_id=broker.hall_id, device_id=user,
            device_kind=kind, reconnect_max_s=1))
        self.requests = Requester(self.bus)

    def stop(self) -> None:
        self.bus.stop()


def cid() -> str:
    return uuid.uuid4().hex[:16]


class Hall:
    def __init__(self, broker: HallBroker, layout: Layout, store: Path, clock: Clock | None = None) -> None:
        self.broker = broker
        self.layout = layout
        self.store = store
        self.clock = clock or Clock()
        self.calls: queue.Queue[Call] = queue.Queue()
        self.prompts: dict[int, RatingPrompt] = {}
        self.states: dict[int, WindowState] = {}
        self._prompt_seen = threading.Condition()
        # One account is one session (the broker binds the client id to the username), so the
        # kiosk and pads played here share the demo's traffic account, which may act as any kiosk
        # and pad: a test's real K1, KB1 or web signs in beside them. The web is played on demand.
        self.kiosk = Device(broker, TRAFFIC, "traffic")
        self.pads = self.kiosk
        self._web: Device | None = None
        self.monitor = Device(broker, "monitor", "monitor")
        self.monitor.bus.subscribe(CALL, lambda m: self.calls.put(m.payload))
        self.monitor.bus.subscribe(WINDOW_STATE, self._state)
        self.pads.bus.subscribe(RATING_PROMPT, self._prompt)
        self.kiosk.requests.listen(TICKET_REQUEST, kiosk="K1")
        self.pads.requests.listen(WINDOW_COMMAND)
        self.pads.requests.listen(RATING)
        self.kiosk.bus.start()
        self.monitor.bus.start()
        self.service = self.start_coordinator()

    def start_coordinator(self) -> CoordinatorService:
        service = CoordinatorService(self.broker.settings("coordinator"), self.layout, self.store,
                                     clock=self.clock)
        service.start(wait_s=10)
        return service

    @property
    def web(self) -> Device:
        """The web's side of staff commands, signed in at the first use."""
        if self._web is None:
            self._web = Device(self.broker, "web", "web")
            self._web.requests.listen(STAFF_COMMAND, staff="web")
            self._web.bus.start()
        return self._web

    def restart_coordinator(self) -> None:
        self.service.stop()
        self.service = self.start_coordinator()

    def _state(self, inbound: Inbound[Any]) -> None:
        self.states[inbound.payload.window] = inbound.payload

    def _prompt(self, inbound: Inbound[Any]) -> None:
        with self._prompt_seen:
            self.prompts[inbound.payload.window] = inbound.payload
            self._prompt_seen.notify_all()

    def prompt(self, window: int, timeout_s: float = 5.0) -> RatingPrompt:
        with self._prompt_seen:
            assert self._prompt_seen.wait_for(lambda: window in self.prompts, timeout_s), \
                f"no rating prompt at window {window}"
            return self.prompts.pop(window)

    def stop(self) -> None:
        self.service.stop()
        for device in (self.kiosk, self._web, self.monitor):
            if device is not None:
                device.stop()

    # --- as the devices do ----------------------------------------------------------------------

    def take(self, service_id: str | None, ticket_class: str = "normal", code: str | None = None,
             paper: bool = False, command_id: str | None = None) -> TicketReply:
        request = TicketRequest(command_id=command_id or cid(), service_id=service_id,
                                ticket_class=ticket_class, appointment_code=code,
                                paper=paper)
        reply = self.kiosk.requests.call(TICKET_REQUEST, request, kiosk="K1")
        assert isinstance(reply, TicketReply)
        return reply

    def window(self, number: int, action: str, **fields: Any) -> WindowCommandResult:
        command = WindowCommand(command_id=fields.pop("command_id", None) or cid(),
                                action=WindowAction(action), **fields)
        reply = self.pads.requests.call(WINDOW_COMMAND, command, window=number)
        assert isinstance(reply, WindowCommandResult)
        return reply

    def ok(self, number: int, action: str, **fields: Any) -> WindowCommandResult:
        reply = self.window(number, action, **fields)
        assert reply.ok, f"window {number} {action}: {reply.error}"
        return reply

    def next_number(self, number: int) -> str:
        reply = self.ok(number, "next")
        assert reply.ticket is not None
        return reply.ticket.number

    def staff(self, action: str, **fields: Any) -> StaffResult:
        command = StaffCommand(command_id=cid(), action=StaffAction(action), staff_id="mgr01", **fields)
        reply = self.web.requests.call(STAFF_COMMAND, command, staff="web")
        assert isinstance(reply, StaffResult)
        return reply

    def rate(self, window: int, prompt_id: str, level: int, rating_id: str | None = None,
             rated_at: datetime | None = None) -> RatingAck:
        rating = Rating(rating_id=rating_id or cid(), prompt_id=prompt_id, window=window,
                        level=level, rated_at=rated_at or self.clock())
        reply = self.pads.requests.call(RATING, rating, window=window)
        assert isinstance(reply, RatingAck)
        return reply

    def call(self, timeout_s: float = 5.0) -> Call:
        return self.calls.get(timeout=timeout_s)


def error_code(reply: Reply) -> str | None:
    return reply.error.code if reply.error else None
