"""Request/reply over the bus: publish a command, wait for the answer carrying its id.

Used by every part that sends commands (kiosk, web console, traffic generator). Thread-safe: any
thread may call :meth:`Requester.call`; answers arrive on paho's thread and wake the caller. An
asyncio program awaits :meth:`Requester.call_async` instead: one future per request id, resolved on
its loop from paho's thread (``call_soon_threadsafe``), so no thread waits for an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
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
        self._futures: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[Reply]]] = {}
        self._subscribed: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def listen(self, request: Route[Any], **params: object) -> None:
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
            pending = self._futures.get(reply.command_id)
        if pending is not None:
            loop, future = pending
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_resolve, future, reply)

    def call(self, request: Route[Any], payload: Payload, timeout_s: float = 5.0,
             resend_s: float | None = None, **params: object) -> Reply:
        """Publish ``payload`` and wait up to ``timeout_s`` for the answer carrying its command id.

        ``resend_s``: publish the same payload (same command id, so applied at most once) again every
        ``resend_s`` seconds while no answer has come; an answer to any copy ends the wait.
        Raises :class:`NoReplyError` when nothing came back in time.
        """
        command_id = _command_id(payload)
        self.listen(request, **params)
        event = threading.Event()
        with self._lock:
            self._waiting[command_id] = event
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                self._bus.publish(request, payload, **params)
                left = deadline - time.monotonic()
                if event.wait(min(left, resend_s) if resend_s else left):
                    break
                if time.monotonic() >= deadline:
                    raise NoReplyError(f"no answer to {request.name} {command_id} within {timeout_s} s")
            with self._lock:
                return self._answers.pop(command_id)
        finally:
            with self._lock:
                self._waiting.pop(command_id, None)

    async def call_async(self, request: Route[Any], payload: Payload, timeout_s: float = 5.0,
                         **params: object) -> Reply:
        """Publish ``payload`` and await, on the running loop, the answer carrying its command id.

        No thread is held while waiting: the answer resolves this request's future from paho's
        thread. Publishing does not block (paho queues it). Raises :class:`NoReplyError` when
        nothing came back within ``timeout_s`` seconds.
        """
        command_id = _command_id(payload)
        self.listen(request, **params)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        with self._lock:
            self._futures[command_id] = (loop, future)
        try:
            self._bus.publish(request, payload, **params)
            try:
                return await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise NoReplyError(f"no answer to {request.name} {command_id} within {timeout_s} s") from None
        finally:
            with self._lock:
                self._futures.pop(command_id, None)


def _command_id(payload: Payload) -> str:
    command_id = getattr(payload, "command_id", None) or getattr(payload, "rating_id", None)
    if not isinstance(command_id, str):
        raise BusError(f"{type(payload).__name__} has no command id")
    return command_id


def _resolve(future: asyncio.Future[Reply], reply: Reply) -> None:
    """On the loop: the first answer wins (a resent command may be answered twice)."""
    if not future.done():
        future.set_result(reply)
