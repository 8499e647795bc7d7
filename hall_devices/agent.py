"""The one agent skeleton: a worker thread woken by what is posted to it or by its own deadline.

Every agent and the coordinator service own their state on one such thread. Other threads (paho's,
a :class:`PortReader`) only :meth:`Worker.post`; the worker takes what waits in one batch, hands it to
``on_batch``, then asks ``on_tick`` for its next deadline. Nothing polls at a fixed period: a
message, a byte from the port or a due deadline wakes it. A handler that raises is logged and the
worker carries on (after ``error_pause_s``, so a fault that repeats cannot spin a core).

Shapes: ``on_batch(items)`` gets 1..``batch_max`` items in the order posted; ``on_tick(now)`` gets the
worker's clock (monotonic seconds) and returns the monotonic time it wants to be woken at, or None
for "only when something is posted".
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from hall_devices.contract import DeviceFault, DeviceState
from hall_devices.link import MONOTONIC, Clock, LinkLostError, SerialLink

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Wake:
    """Posted by :meth:`Worker.wake`: run ``on_tick`` now; never handed to ``on_batch``."""


_WAKE = _Wake()
_STOP = _Wake()


def _no_tick(_now: float) -> float | None:
    return None


class Worker(Generic[T]):
    """One thread, one inbox. ``on_batch`` and ``on_tick`` run only on it, so they need no locks."""

    def __init__(self, name: str, on_batch: Callable[[list[T]], None],
                 on_tick: Callable[[float], float | None] = _no_tick, *,
                 on_error: Callable[[Exception], None] | None = None, batch_max: int = 500,
                 error_pause_s: float = 0.2, clock: Clock = MONOTONIC) -> None:
        self.name = name
        self._on_batch = on_batch
        self._on_tick = on_tick
        self._on_error = on_error
        self._batch_max = batch_max
        self._error_pause_s = error_pause_s
        self._clock = clock
        self._inbox: queue.Queue[T | _Wake] = queue.Queue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def post(self, item: T) -> None:
        """Queue ``item`` for ``on_batch`` (any thread)."""
        self._inbox.put(item)

    def wake(self) -> None:
        """Run ``on_tick`` soon without posting anything (any thread), e.g. a PUBACK arrived."""
        self._inbox.put(_WAKE)

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def waiting(self) -> bool:
        """Something is posted and not yet taken (any thread): a long step on the worker, such as a
        status poll of several round trips, can stop at a safe point and let it go first."""
        return not self._inbox.empty()

    @property
    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop after the batch in hand; what is still queued is dropped (its senders redeliver)."""
        self._stopping.set()
        self._inbox.put(_STOP)
        if self._thread.is_alive() and not self.on_thread:
            self._thread.join(timeout_s)

    def _take(self, wait_s: float | None) -> list[T]:
        batch: list[T] = []
        try:
            first = self._inbox.get(timeout=wait_s)
        except queue.Empty:
            return batch
        while True:
            if first is _STOP:
                return batch
            if not isinstance(first, _Wake):
                batch.append(first)
            if len(batch) >= self._batch_max:
                return batch
            try:
                first = self._inbox.get_nowait()
            except queue.Empty:
                return batch

    def _run(self) -> None:
        deadline: float | None = self._clock()
        while not self._stopping.is_set():
            wait = None if deadline is None else max(0.0, deadline - self._clock())
            batch = self._take(wait)
            if self._stopping.is_set():
                return
            try:
                if batch:
                    self._on_batch(batch)
                deadline = self._on_tick(self._clock())
            except Exception as exc:  # one bad moment must not stop the agent
                log.exception("%s: unexpected error; carrying on", self.name)
                if self._on_error is not None:
                    try:
                        self._on_error(exc)
                    except Exception:
                        log.exception("%s: recovering from the error failed too", self.name)
                self._stopping.wait(self._error_pause_s)
                deadline = self._clock()


@dataclass(frozen=True)
class PortOpened:
    """The port is (again) open: what the devices show may have been lost with it."""


@dataclass(frozen=True)
class PortData:
    """Bytes that arrived on the port, as they came (a frame may span several); ``at``: when the read
    returned them, on the link's clock (None: unknown). A session that must not take a late reply
    to an earlier frame for the reply to the frame it wrote since compares it with its write time."""

    data: bytes
    at: float | None = None


@dataclass(frozen=True)
class PortLost:
    """The port failed or vanished; :class:`PortReader` reopens it with backoff."""

    reason: str


PortEvent = PortOpened | PortData | PortLost


class PortReader:
    """A thread that keeps a :class:`SerialLink` open and posts what happens on it.

    It blocks in the port's read, which returns at the first byte, so a reply wakes the worker at
    once; the link's read timeout only bounds how long :meth:`stop` takes. The worker writes to the
    same link from its own thread (pyserial allows one reader and one writer).
    """

    def __init__(self, link: SerialLink, post: Callable[[PortEvent], None], name: str,
                 retry_s: float = 0.2) -> None:
        self.link = link
        self._post = post
        self._retry_s = retry_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def open_now(self) -> bool:
        """Open the port on the caller's thread and, when it opened, post :class:`PortOpened` (the
        reading thread, finding it open, does not post it again). True when the port is open."""
        if not self.link.ensure_open():
            return False
        self._post(PortOpened())
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.link.close()

    def _run(self) -> None:
        was_open = False
        while not self._stopping.is_set():
            try:
                if not self.link.is_open:
                    if was_open:
                        self._post(PortLost(self.link.last_error or "closed"))
                        was_open = False
                    if not self.link.ensure_open():
                        self._stopping.wait(self._retry_s)  # SerialLink's backoff decides when to try
                        continue
                    was_open = True
                    self._post(PortOpened())
                data = self.link.read()
                if data:
                    self._post(PortData(data, self.link.clock()))
            except LinkLostError as exc:
                was_open = False
                self._post(PortLost(str(exc)))
            except Exception:  # keep reading whatever happened this time
                log.exception("%s: unexpected error reading %s; carrying on", self._thread.name,
                              self.link.url)
                self._stopping.wait(self._retry_s)


class StatusSink(Protocol):
    """What publishes a device status: :meth:`hall_devices.mqtt.bus.Bus.set_status`."""

    def __call__(self, state: DeviceState, faults: list[DeviceFault] | None = None,
                 detail: str | None = None, members: dict[str, DeviceState] | None = None,
                 member_faults: dict[str, list[DeviceFault]] | None = None) -> None: ...


class StatusReporter:
    """Publishes a device status only when it differs from the last one published.

    Agents report after every batch and tick; the broker sees a retained status only on a change.
    """

    def __init__(self, publish: StatusSink) -> None:
        self._publish = publish
        self._last: tuple[object, ...] | None = None

    def report(self, state: DeviceState, faults: Sequence[DeviceFault] = (), *, detail: str | None = None,
               members: Mapping[str, DeviceState] | None = None,
               member_faults: Mapping[str, Sequence[DeviceFault]] | None = None) -> bool:
        """Publish this status if it differs from the last; True when it was published."""
        member_faults = member_faults or {}
        key = (state, tuple(faults), detail, tuple(sorted((members or {}).items())),
               tuple(sorted((k, tuple(v)) for k, v in member_faults.items())))
        if key == self._last:
            return False
        self._last = key
        self._publish(state, list(faults), detail=detail, members=dict(members or {}),
                      member_faults={k: list(v) for k, v in member_faults.items()})
        return True

    def forget(self) -> None:
        """Publish the next report whatever it is (e.g. after a reconnect)."""
        self._last = None


class _Thread(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout_s: float = ...) -> None: ...


class _Connection(Protocol):
    def start(self, wait_s: float | None = ...) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class PortAgentRun:
    """Starts and stops an agent that owns a port — its worker, its :class:`PortReader` and its MQTT
    connection (:class:`hall_devices.mqtt.bus.Bus`) — in one order for every such agent.

    Start: the port is opened on the caller's thread first, so the worker's first batch already
    holds :class:`PortOpened` and its first status is the port's, not "missing" for the moment the
    reader's thread takes to open it; then the worker, the reader, and MQTT, whose messages find
    the worker running. Stop: the worker first (nothing more is written), then the reader (it closes
    the port), then MQTT.
    """

    worker: _Thread
    reader: PortReader
    bus: _Connection

    def start(self, wait_s: float | None) -> None:
        self.reader.open_now()
        self.worker.start()
        self.reader.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        self.worker.stop()
        self.reader.stop()
        self.bus.stop()
