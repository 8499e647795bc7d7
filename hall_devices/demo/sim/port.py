"""A virtual serial port on a pty, at a stable path, that can be unplugged and plugged back.

The device simulator owns the pty master; the agent opens :attr:`VirtualPort.path`, a symlink to
the pty slave (as udev gives real devices a stable name). Unplugging closes the master and removes
the link, so the agent's reads and writes fail as with a pulled USB cable; plugging back makes a new
pty behind the same path.

:class:`PortSimulator` is the one lifecycle every simulated serial device shares: the port, a reader
thread, ``start``/``stop`` and UART pacing; each device says only what it does with the bytes.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import tty
from pathlib import Path
from typing import Self

IDLE_READ_S = 0.05  # how long a read waits for bytes before the thread looks at its stop flag


class VirtualPort:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self.plug()

    def plug(self) -> None:
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # bytes pass unchanged: no echo, no CR/LF translation
            self._master, self._slave = master, slave
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(self.path)

    def unplug(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)
            for fd in (self._master, self._slave):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = None

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def read(self, timeout_s: float) -> bytes:
        """Bytes the agent wrote, or b"" after the timeout (or while unplugged)."""
        master = self._master
        if master is None:
            threading.Event().wait(timeout_s)
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout_s)
            return os.read(master, 4096) if ready else b""
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return b""
            raise

    def write(self, data: bytes) -> None:
        master = self._master
        if master is None:
            return
        try:
            os.write(master, data)
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise

    def close(self) -> None:
        self.unplug()


class PortSimulator:
    """A device on a :class:`VirtualPort`: one thread hands what the host writes to :meth:`on_bytes`.

    ``baud`` paces reading like a UART at that speed (10 bit times a byte): :meth:`on_bytes` is
    called when a chunk's last byte would have arrived (:attr:`line_free_at`). :meth:`on_idle` runs
    when nothing came for ``IDLE_READ_S`` seconds. Subclasses keep their own fault switches.
    """

    def __init__(self, path: Path, name: str, baud: int | None = None) -> None:
        self.port = VirtualPort(path)
        self.baud = baud
        self.arrived_at = 0.0  # monotonic time the part given to on_bytes began to arrive
        self.line_free_at = 0.0  # ... and when its last byte arrived (at ``baud``)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name} {path.name}", daemon=True)

    @property
    def path(self) -> Path:
        return self.port.path

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.port.close()

    def wire_s(self, size: int) -> float:
        """Seconds ``size`` bytes take on the wire at ``baud`` (0 when unpaced)."""
        return size * 10 / self.baud if self.baud else 0.0

    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def on_idle(self) -> None:
        """Nothing arrived for a while (e.g. a printer without a cutter ends its ticket)."""

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(IDLE_READ_S)
            if not data:
                self.on_idle()
                continue
            read_at = time.monotonic()
            for part in self.segments(data):
                # A UART: a part's first byte comes once the line is free of the bytes before it,
                # its last byte a wire time later. Times come from this model, not from when a
                # sleep happens to end, so a late wake-up neither shows in the figures nor lets
                # the simulated line fall behind the baud rate.
                self.arrived_at = max(read_at, self.line_free_at)
                self.line_free_at = self.arrived_at + self.wire_s(len(part))
                if self.baud and (pause := self.line_free_at - time.monotonic()) > 0:
                    time.sleep(pause)
                self.on_bytes(part)

    def segments(self, data: bytes) -> list[bytes]:
        """The parts of a chunk that :meth:`on_bytes` gets in turn, each when its last byte would
        have arrived: the whole chunk, unless the device acts on some bytes before the rest is in."""
        return [data]
