"""The printer's serial port: python-escpos' Serial printer, adapted.

- opened with ``serial.serial_for_url`` (a pty, ``socket://`` or ``loop://`` can stand in) and at
  once, so a missing port fails at start, with flow control, write timeout and exclusive access,
  which python-escpos never passes;
- status replies read exactly one byte, instead of 16 bytes and a full timeout;
- closed explicitly by its owner (no reliance on ``__del__``).
"""

from __future__ import annotations

import serial
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Serial

from hall_devices.layout import PrinterDevice
from hall_devices.link import PORT_FAILURES
from hall_devices.printer.status import query


class PortError(Exception):
    """The port is missing or failed; the agent reopens it with backoff."""


class PrinterPort(Serial):  # type: ignore[misc]
    def __init__(self, printer: PrinterDevice, url: str | None = None, reply_timeout_s: float = 0.5,
                 rtscts: bool = False, write_timeout_s: float = 10.0) -> None:
        super().__init__(devfile=url or printer.serial, baudrate=printer.baudrate,
                         parity=printer.parity.value, timeout=reply_timeout_s, profile=printer.profile)
        self.rtscts = rtscts
        self.write_timeout_s = write_timeout_s

    def open(self, raise_not_found: bool = True) -> None:
        try:
            self.device = serial.serial_for_url(
                self.devfile, baudrate=self.baudrate, bytesize=self.bytesize, parity=self.parity,
                stopbits=self.stopbits, timeout=self.timeout, write_timeout=self.write_timeout_s,
                xonxoff=False, rtscts=self.rtscts, dsrdtr=False, exclusive=True)
        except (ValueError, *PORT_FAILURES) as exc:
            self.device = None
            raise DeviceNotFoundError(f"cannot open printer port {self.devfile}: {exc}") from exc

    @property
    def is_open(self) -> bool:
        device = self._device
        return isinstance(device, serial.SerialBase) and device.is_open

    def send(self, data: bytes) -> None:
        try:
            self.device.write(data)
            self.device.flush()
        except PORT_FAILURES as exc:
            raise PortError(f"writing to {self.devfile} failed: {exc}") from exc

    def status_byte(self, n: int, timeout_s: float | None = None) -> int | None:
        """Ask DLE EOT n and read its one reply byte; None when the printer does not answer.

        ``timeout_s`` replaces the usual reply timeout, e.g. when the query queues behind a ticket
        still on the wire.
        """
        try:
            self.device.reset_input_buffer()
            self.device.write(query(n))
            if timeout_s is not None:
                self.device.timeout = timeout_s
            reply = self.device.read(1)
        except PORT_FAILURES as exc:
            raise PortError(f"status query on {self.devfile} failed: {exc}") from exc
        finally:
            if timeout_s is not None and self.is_open:
                self.device.timeout = self.timeout
        return reply[0] if reply else None

    def close(self) -> None:
        try:
            super().close()
        except PORT_FAILURES:
            self._device = False  # already gone with the cable
