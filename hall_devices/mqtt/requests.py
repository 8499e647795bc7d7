"""Request/reply over the bus: publish a command, wait for the answer carrying its id.

Used by every part that sends commands (kiosk, web console, traffic generator). Thread-safe: any
thread may call :meth:`Requester.call`; answers arrive on paho's thread and wake the caller. An
asyncio program awaits :meth:`Requester.call_async` instead: one future per request id, resolved on
its loop from paho's thread (``call_soon_threadsafe``), so no thread waits for an answer.
Typed by the route: ``call(WINDOW_COMMAND, command, window=3)`` returns a ``WindowCommandResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from hall_devices.contract import Rep, Reply, Req, RequestRoute
from hall_devices.mqtt.bus import Bus, BusError, Inbound


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
            pending = self._futures.get(reply.command_id)
        if pending is not None:
            loop, future = pending
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_resolve, future, reply)

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

    async def call_async(self, request: RequestRoute[Req, Rep], payload: Req, timeout_s: float = 5.0,
                         **params: object) -> Rep:
        """Publish ``payload`` and await, on the running loop, the answer carrying its id.

        No thread is held while waiting: the answer resolves this request's future from paho's
        thread. Publishing does not block (paho queues it). Raises :class:`NoReplyError` when
        nothing came back within ``timeout_s`` seconds.
        """
        key = payload.request_key
        self.listen(request, **params)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Reply] = loop.create_future()
        with self._lock:
            self._futures[key] = (loop, future)
        try:
            self._bus.publish(request, payload, **params)
            try:
                reply = await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                raise NoReplyError(f"no answer to {request.name} {key} within {timeout_s} s") from None
        finally:
            with self._lock:
                self._futures.pop(key, None)
        if not isinstance(reply, request.answer.model):  # the bus decoded it with this model
            raise BusError(f"{request.answer.name} carried a {type(reply).__name__}")
        return reply


def _resolve(future: asyncio.Future[Reply], reply: Reply) -> None:
    """On the loop: the first answer wins (a resent command may be answered twice)."""
    if not future.done():
        future.set_result(reply)
