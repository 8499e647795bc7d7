"""Request/reply over the bus: publish a command, wait for the answer carrying its id.

Used by every part that sends commands (kiosk, web console, traffic generator). Thread-safe: any
thread may call :meth:`Requester.call`; answers arrive on paho's thread and wake the caller.
Typed by the route: ``call(WINDOW_COMMAND, command, window=3)`` returns a ``WindowCommandResult``.
"""

from __future__ import annotations

import threading
import time

from hall_devices.bus import Bus, BusError, Inbound
from hall_devices.contract import Rep, Reply, Req, RequestRoute


class NoReplyError(BusError):
    """No answer within the time allowed; the command may or may not have been applied."""


class Requester:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._lock = threading.Lock()
        self._waiting: dict[str, threading.Event] = {}
        self._answers: dict[str, Reply] = {}
        self._subscribed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def listen(self, request: RequestRoute[Req, Rep], **params: object) -> None:
        """Subscribe to the answers of a request route (call before the bus starts, ideally)."""
        key = (request.answer.name, tuple(sorted((k, str(v)) for k, v in params.items())))
        with self._lock:
            if key in self._subscribed:
                return
            self._subscribed.add(key)
        self._bus.subscribe(request.answer, self._on_answer, **params)

    def _on_answer(self, inbound: Inbound[Rep]) -> None:
        reply = inbound.payload
        if reply.command_id is None:
            return
        with self._lock:
            event = self._waiting.get(reply.command_id)
            if event is not None:
                self._answers[reply.command_id] = reply
                event.set()

    def call(self, request: RequestRoute[Req, Rep], payload: Req, timeout_s: float = 5.0,
             resend_s: float | None = None, **params: object) -> Rep:
        """Publish ``payload`` and wait up to ``timeout_s`` for the answer carrying its id
        (:attr:`Request.request_key`: ``command_id``, ``job_id``, ``rating_id``...).

        ``resend_s``: publish the same payload (same id, so applied at most once) again every
        ``resend_s`` seconds while no answer has come; an answer to any copy ends the wait.
        Raises :class:`NoReplyError` when nothing came back in time.
        """
        key = payload.request_key
        self.listen(request, **params)
        event = threading.Event()
        with self._lock:
            self._waiting[key] = event
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                self._bus.publish(request, payload, **params)
                left = deadline - time.monotonic()
                if event.wait(min(left, resend_s) if resend_s else left):
                    break
                if time.monotonic() >= deadline:
                    raise NoReplyError(f"no answer to {request.name} {key} within {timeout_s} s")
            with self._lock:
                reply = self._answers.pop(key)
            if not isinstance(reply, request.answer.model):  # the bus decoded it with this model
                raise BusError(f"{request.answer.name} carried a {type(reply).__name__}")
            return reply
        finally:
            with self._lock:
                self._waiting.pop(key, None)
