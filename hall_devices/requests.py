"""Request/reply over the bus: publish a command, wait for the answer carrying its id.

Used by every part that sends commands (kiosk, web console, traffic generator). Thread-safe: any
thread may call :meth:`Requester.call`; answers arrive on paho's thread and wake the caller.
"""

from __future__ import annotations

import threading
from typing import Any

from hall_devices.bus import Bus, BusError, Inbound
from hall_devices.contract import Payload, Reply, Route, route


class NoReplyError(BusError):
    """No answer within the time allowed; the command may or may not have been applied."""


class Requester:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._answers: dict[str, Reply] = {}
        self._subscribed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def listen(self, request: Route, **params: object) -> None:
        """Subscribe to the answers of a request route (call before the bus starts, ideally)."""
        if request.answer is None:
            raise BusError(f"route {request.name} has no answer route")
        key = (request.answer, tuple(sorted((k, str(v)) for k, v in params.items())))
        with self._lock:
            if key in self._subscribed:
                return
            self._subscribed.add(key)
        self._bus.subscribe(route(request.answer), self._on_answer, **params)

    def _on_answer(self, inbound: Inbound[Any]) -> None:
        reply = inbound.payload
        if not isinstance(reply, Reply) or reply.command_id is None:
            return
        with self._lock:
            event = self._waiting.get(reply.command_id)
            if event is not None:
                self._answers[reply.command_id] = reply
                event.set()

    def call(self, request: Route, payload: Payload, timeout_s: float = 5.0, **params: object) -> Reply:
        command_id = getattr(payload, "command_id", None) or getattr(payload, "rating_id", None)
        if not isinstance(command_id, str):
            raise BusError(f"{type(payload).__name__} has no command id")
        self.listen(request, **params)
        event = threading.Event()
        with self._lock:
            self._waiting[command_id] = event
        try:
            self._bus.publish(request, payload, **params)
            if not event.wait(timeout_s):
                raise NoReplyError(f"no answer to {request.name} {command_id} within {timeout_s} s")
            with self._lock:
                return self._answers.pop(command_id)
        finally:
            with self._lock:
                self._waiting.pop(command_id, None)
