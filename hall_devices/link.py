"""A serial port opened through ``serial_for_url`` and reopened with backoff when it vanishes."""

from __future__ import annotations

import contextlib
import logging
import os
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

log = logging.getLogger(__name__)
# What a vanished port raises: termios.error (from tcflush/tcdrain) is neither OSError nor a
# SerialException.
PORT_FAILURES = (OSError, serial.SerialException, termios.error)


@dataclass
class Backoff:
    """Exponential delays between attempts: 1, 2, 4 ... up to ``maximum`` seconds."""

    minimum: float = 1.0
    maximum: float = 10.0
    _next: float = 0.0
    _delay: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self._next

    def failed(self, now: float) -> float:
        self._delay = min(self.maximum, self._delay * 2 if self._delay else self.minimum)
        self._next = now + self._delay
        return self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._next = 0.0


Clock = Callable[[], float]
MONOTONIC: Clock = time.monotonic


class LinkLostError(Exception):
    """The serial port failed or vanished; it is closed and will be reopened with backoff."""


class SerialLink:
    """A bus's serial port, opened through ``serial_for_url`` and reopened with backoff.

    Blocking: used only by its agent's own I/O thread.
    """

    def __init__(self, url: str, baudrate: int, parity: str, read_timeout_s: float = 0.05,
                 clock: Clock = MONOTONIC, *, write_timeout_s: float = 5.0) -> None:
        self.url = url
        self.baudrate = baudrate
        self.parity = parity
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self.clock = clock
        self.backoff = Backoff()
        self._port: serial.SerialBase | None = None
        self._missing_path: str | None = None  # set while a local port path is absent (unplugged)
        self.last_error: str | None = None

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def ensure_open(self) -> bool:
        if self._port is not None:
            return True
        if not self.backoff.ready(self.clock()) and not self._came_back():
            return False
        try:
            self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, parity=self.parity,
                                               timeout=self.read_timeout_s,
                                               write_timeout=self.write_timeout_s,
                                               exclusive=True)
        except (ValueError, *PORT_FAILURES) as exc:
            self.backoff.failed(self.clock())
            self._missing_path = None if "://" in self.url or os.path.exists(self.url) else self.url
            if self.last_error is None:
                log.warning("cannot open %s: %s; retrying with backoff", self.url, exc)
            self.last_error = str(exc)
            return False
        log.info("serial port %s open", self.url)
        self.backoff.succeeded()
        self._missing_path = None
        self.last_error = None
        return True

    def _came_back(self) -> bool:
        """A local device path that was missing is there again (replugged): try now, not after backoff."""
        if "://" in self.url or self._missing_path is None:
            return False
        return os.path.exists(self._missing_path)

    def read(self, timeout_s: float | None = None) -> bytes:
        """What has arrived: waits for the first byte (woken by it, not polling), not for a full
        buffer; b"" after ``timeout_s`` seconds (default: the link's read timeout) without one."""
        port = self._require()
        try:
            if timeout_s is not None:
                port.timeout = timeout_s
            first = port.read(1)
            return bytes(first + port.read(port.in_waiting)) if first else b""
        except PORT_FAILURES as exc:
            raise self._lost(exc) from exc
        finally:
            if timeout_s is not None and self.is_open:  # not lost meanwhile
                with contextlib.suppress(*PORT_FAILURES):
                    port.timeout = self.read_timeout_s

    def read_waiting(self) -> bytes:
        """What has arrived already, without waiting (a vanished port still raises)."""
        port = self._require()
        try:
            return bytes(port.read(port.in_waiting))
        except PORT_FAILURES as exc:
            raise self._lost(exc) from exc

    def write(self, data: bytes) -> None:
        port = self._require()
        try:
            port.write(data)
        except PORT_FAILURES as exc:
            raise self._lost(exc) from exc

    def _require(self) -> serial.SerialBase:
        if self._port is None:
            raise LinkLostError(f"{self.url} is not open")
        return self._port

    def _lost(self, exc: BaseException) -> LinkLostError:
        self.close()
        self.backoff.failed(self.clock())
        self.last_error = str(exc)
        log.warning("serial port %s lost: %s", self.url, exc)
        return LinkLostError(f"{self.url}: {exc}")

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*PORT_FAILURES):
                port.close()
