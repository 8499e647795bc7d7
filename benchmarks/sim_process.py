"""The LED bus, BX-6 and printer simulators in a process of their own, mirrored in the benchmark's.

Why: a real screen or printer has its own CPU. As threads in the benchmark's process, the simulators
(the pty reader and its UART line model; the BX-6 controllers' socket threads) fought the
benchmark's own MQTT clients for the GIL and for the machine's cores, and that showed in the
figures we report as ours. Here the simulators run in a child process (multiprocessing, spawn
context: a fresh interpreter, no fork of the benchmark's threads), exactly as the tests use them
in-process (``hall_devices.demo.sim``); the child sends an event over a pipe for every frame or
packet shown / every chunk read and ticket printed, and a reader thread
in the benchmark applies it to a mirror with the attributes the benchmark reads. Nothing polls: the
reader blocks on the pipe, waiters block on a condition it notifies. The child's subclasses hook
the simulators' private ``_show`` (LED), ``_finish`` (printer) and ``_apply`` (BX-6): a rename
there must follow here, or the benchmarks time out at their first wait.

Times: every timestamp is taken in the child with ``time.monotonic``, which on Linux is
CLOCK_MONOTONIC, one clock for the whole system, so the child's times compare directly with the
parent's (``sent = time.monotonic()`` before a call). The pipe's delay shows only in when a waiter
wakes, never in a figure.

Shapes: :class:`LedBusMirror` has ``path``, ``controllers`` (address → :class:`Controller`, updated
in place: ``frames``, ``updated_at``, ``started_at``, ``last_size``, ``last_areas``, ``areas``),
``history`` (BX frames shown: (first byte read, shown, address, area ids), the latest 2000),
``text(address, area)`` and ``wait(predicate, timeout_s)``. :class:`PrinterMirror` has ``path``,
``received`` (every byte read), ``status_bytes``, ``last_print_byte_at``, ``tickets``
(:class:`PrintedTicket`) and ``wait_tickets(count, timeout_s)``. :class:`Bx6Mirror` runs a
BX-6E controller per address on free TCP ports, all in one child; its ``screens`` have ``url``,
``state`` (``areas``, ``area_packets``, ``updated_at``, ``last_size``), ``bitmap(area)`` and
``wait``. Fault switches, ``refused``, ``nacks``, ``bad_frames``, pings and voice are not mirrored
(the benchmarks set and read none). A mirror's wait raises :class:`SimulatorGoneError` when its
child has ended.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

from hall_devices.demo.sim.bx6 import Bx6Simulator, Bx6State
from hall_devices.demo.sim.leds import AreaText, Controller, LedBusSimulator
from hall_devices.demo.sim.printer import PrintedTicket, PrinterSimulator
from hall_devices.leds import bx6
from hall_devices.leds.bx6_area import Bitmap

READY_S = 60.0  # a spawned interpreter imports the package first; slow on a loaded machine
Emit = Callable[..., None]


class SimulatorGoneError(RuntimeError):
    """The simulator's process ended (crashed or stopped) while the benchmark waited on it."""


class _LedChild(LedBusSimulator):
    """The package's simulator, telling the parent each frame it shows."""

    def __init__(self, emit: Emit, path: Path, protocol: str, addresses: list[int],
                 baud: int | None = None) -> None:
        super().__init__(path, protocol, addresses, baud)
        self._emit = emit

    def _show(self, controller: Controller, areas: dict[int, AreaText]) -> None:
        super()._show(controller, areas)
        # A BX frame has set started_at/last_size/last_areas before this; the parent adds it to the
        # history as the simulator does right after (EQ text has no history).
        self._emit("frame", self.protocol == "bx", controller)


class _PrinterChild(PrinterSimulator):
    """The package's simulator, telling the parent each chunk it reads and each ticket it prints.

    A ticket finished while a chunk is decoded is sent after that chunk's bytes, so when the mirror
    has a ticket it also has every byte that came with it (``received``, ``last_print_byte_at``)."""

    def __init__(self, emit: Emit, path: Path, encoding: str = "gb18030", baud: int | None = None) -> None:
        super().__init__(path, encoding, baud)
        self._emit = emit
        self._held: list[PrintedTicket] | None = None  # tickets finished within the current chunk

    def on_bytes(self, data: bytes) -> None:
        self._held = []
        try:
            super().on_bytes(data)
        finally:
            held, self._held = self._held, None
            self._emit("bytes", bytes(data), self.status_bytes, self.last_print_byte_at)
            for ticket in held:
                self._emit("ticket", ticket)

    def _finish(self) -> None:
        count = len(self.tickets)
        super()._finish()
        if len(self.tickets) > count:
            if self._held is not None:
                self._held.append(self.tickets[-1])
            else:  # ended by the idle timeout, between chunks
                self._emit("ticket", self.tickets[-1])


class _Bx6Child(Bx6Simulator):
    """The package's BX-6E simulator, telling the parent each A7 00 packet it shows."""

    def __init__(self, emit: Emit, index: int, address: int) -> None:
        super().__init__(address)
        self._emit = emit
        self._index = index

    def _apply(self, packet: bx6.Packet) -> bx6.Error:
        before = self.state.area_packets
        error = super()._apply(packet)
        if self.state.area_packets > before:
            self._emit("shown", self._index, dict(self.state.areas), self.state.area_packets,
                       self.state.updated_at, self.state.last_size)
        return error


def _serve(kind: str, path: str, options: dict[str, Any], conn: Connection) -> None:
    """The child: run the simulators until the parent says stop or goes away (EOF on the pipe)."""
    lock = threading.Lock()  # the simulators' threads and this one all send

    def emit(*event: object) -> None:
        # OSError: the parent has gone; the recv below then ends this process.
        with lock, contextlib.suppress(OSError):
            conn.send(event)

    sims: list[LedBusSimulator | PrinterSimulator | Bx6Simulator]
    if kind == "bx6":
        screens = [_Bx6Child(emit, i, address) for i, address in enumerate(options["addresses"])]
        sims = list(screens)
        emit("ready", [screen.url for screen in screens])
    else:
        sim = (_LedChild(emit, Path(path), **options) if kind == "leds"
               else _PrinterChild(emit, Path(path), **options))
        sims = [sim]
        emit("ready", str(sim.path))
    for each in sims:
        each.start()
    try:
        conn.recv()
    except EOFError:
        pass
    finally:
        for each in sims:
            each.stop()
        conn.close()


class _Mirror:
    """A simulator's child process and the reader thread that applies its events."""

    def __init__(self, kind: str, path: Path, options: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self.path = path
        self._conn, self._child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(kind, str(path), options, self._child_conn),
                                        name=f"sim-{kind} {path.name}", daemon=True)
        self._changed = threading.Condition()
        self._gone = False
        self._reader = threading.Thread(target=self._read, name=f"sim-{kind} mirror", daemon=True)

    def start(self) -> Self:
        """Start the child; returns once its pty exists at :attr:`path`. TimeoutError otherwise."""
        self._process.start()
        self._child_conn.close()  # the child holds its end: EOF here once it has ended
        if not self._conn.poll(READY_S):
            self._process.terminate()
            raise TimeoutError(f"the simulator's process at {self.path} never became ready")
        event = self._conn.recv()
        assert event[0] == "ready", event
        self._ready(event[1])
        self._reader.start()
        return self

    def _ready(self, where: Any) -> None:
        """What the child's ready event says: where its simulator is (here a pty's path)."""
        self.path = Path(where)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # the child has ended already
            self._conn.send(("stop",))
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(2)
        self._reader.join(2)
        self._conn.close()

    def wait(self, predicate: Callable[[], object], timeout_s: float = 5.0) -> bool:
        """Until ``predicate()`` (called with the mirror's lock held) is true: False after
        ``timeout_s`` seconds; SimulatorGoneError if the child ends first."""
        with self._changed:
            self._changed.wait_for(lambda: self._gone or predicate(), timeout_s)
            if predicate():
                return True
            if self._gone:
                raise SimulatorGoneError(f"the simulator's process at {self.path} ended "
                                         f"(exit code {self._process.exitcode})")
            return False

    def _read(self) -> None:
        while True:
            try:
                event = self._conn.recv()
            except (EOFError, OSError):
                break
            with self._changed:
                self._apply(event)
                self._changed.notify_all()
        with self._changed:
            self._gone = True
            self._changed.notify_all()

    def _apply(self, event: tuple[Any, ...]) -> None:
        raise NotImplementedError


class LedBusMirror(_Mirror):
    """An :class:`LedBusSimulator` (same arguments) in a child process; see the module docstring."""

    def __init__(self, path: Path, protocol: str, addresses: list[int], baud: int | None = None) -> None:
        super().__init__("leds", path, {"protocol": protocol, "addresses": addresses, "baud": baud})
        self.controllers = {a: Controller(a) for a in addresses}
        self.history: deque[tuple[float, float, int, tuple[int, ...]]] = deque(maxlen=2000)

    def text(self, address: int, area: int = 0) -> str:
        """What the screen shows in an area, line-padding spaces folded (as LedBusSimulator.text)."""
        shown = self.controllers[address].areas.get(area)
        return re.sub(r" {2,}", "\n", shown.text).strip() if shown else ""

    def _apply(self, event: tuple[Any, ...]) -> None:
        _, bx_frame, controller = event
        # In place: a benchmark holds a controller and reads it after a wait.
        vars(self.controllers[controller.address]).update(vars(controller))
        if bx_frame:
            self.history.append((controller.started_at, controller.updated_at, controller.address,
                                 controller.last_areas))


class PrinterMirror(_Mirror):
    """A :class:`PrinterSimulator` (same arguments) in a child process; see the module docstring."""

    def __init__(self, path: Path, encoding: str = "gb18030", baud: int | None = None) -> None:
        super().__init__("printer", path, {"encoding": encoding, "baud": baud})
        self.received = bytearray()
        self.status_bytes = 0
        self.last_print_byte_at = 0.0
        self.tickets: list[PrintedTicket] = []

    def wait_tickets(self, count: int, timeout_s: float = 10.0) -> list[PrintedTicket]:
        """The tickets printed so far once there are ``count``; TimeoutError after ``timeout_s``."""
        if not self.wait(lambda: len(self.tickets) >= count, timeout_s):
            raise TimeoutError(f"{len(self.tickets)} tickets printed, {count} expected")
        with self._changed:
            return list(self.tickets)

    def _apply(self, event: tuple[Any, ...]) -> None:
        if event[0] == "bytes":
            _, data, self.status_bytes, self.last_print_byte_at = event
            self.received += data
        else:
            self.tickets.append(event[1])


class Bx6Screen:
    """One simulated BX-6E controller of a :class:`Bx6Mirror`: ``address``, ``url``, ``state``
    (``areas``, ``area_packets``, ``updated_at``, ``last_size`` mirrored), ``bitmap`` and ``wait``."""

    def __init__(self, mirror: Bx6Mirror, address: int) -> None:
        self.address = address
        self.url = ""
        self.state = Bx6State()
        self._mirror = mirror

    def bitmap(self, area: int = 0) -> Bitmap | None:
        return self.state.areas.get(area)

    def wait(self, predicate: Callable[[], object], timeout_s: float = 5.0) -> bool:
        return self._mirror.wait(predicate, timeout_s)


class Bx6Mirror(_Mirror):
    """A :class:`Bx6Simulator` per address, all in one child process, on free local TCP ports:
    :attr:`screens` in the order of the addresses."""

    def __init__(self, addresses: list[int]) -> None:
        super().__init__("bx6", Path("bx6"), {"addresses": addresses})
        self.screens = [Bx6Screen(self, address) for address in addresses]

    def _ready(self, where: Any) -> None:
        for screen, url in zip(self.screens, where, strict=True):
            screen.url = url

    def _apply(self, event: tuple[Any, ...]) -> None:
        _, index, areas, packets, updated_at, last_size = event
        state = self.screens[index].state
        state.areas, state.area_packets = areas, packets
        state.updated_at, state.last_size = updated_at, last_size
