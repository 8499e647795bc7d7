"""A virtual serial port on a pty, at a stable path, that can be unplugged and plugged back.

The device simulator owns the pty master; the agent opens :attr:`VirtualPort.path`, a symlink to
the pty slave (as udev gives real devices a stable name). Unplugging closes the master and removes
the link, so the agent's reads and writes fail as with a pulled USB cable; plugging back makes a new
pty behind the same path.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import tty
from pathlib import Path


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
