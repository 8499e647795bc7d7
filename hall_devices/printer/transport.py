"""The printer's serial port: a :class:`SerialLink` that also asks the real-time status.

The link opens the port through ``serial_for_url`` (a pty, ``socket://`` or ``loop://`` can stand
in), with exclusive access and a write timeout, and reopens it with backoff. python-escpos only
encodes the ticket (printer/ticket.py); its ``Serial`` printer is not used: it never passes
``write_timeout`` or ``exclusive`` to pyserial and reads 16 bytes for a 1-byte status reply
(protocols.md §1).
"""

from __future__ import annotations

from hall_devices.layout import PrinterDevice
from hall_devices.link import MONOTONIC, Clock, SerialLink
from hall_devices.printer.status import query


class PrinterPort:
    """One printer's port. Blocking, used only by the printer agent's worker thread.

    Raises :class:`hall_devices.link.LinkLostError` when the port fails or vanishes (the link is then
    closed and reopened with backoff by :meth:`SerialLink.ensure_open`).
    """

    def __init__(self, printer: PrinterDevice, url: str | None = None, reply_timeout_s: float = 0.5,
                 write_timeout_s: float = 10.0, clock: Clock = MONOTONIC) -> None:
        # A ticket with an image QR is ~4 KB: over 4 s at 9600 baud, hence the long write timeout.
        self.link = SerialLink(url or printer.serial, printer.baudrate, printer.parity.value,
                               read_timeout_s=reply_timeout_s, clock=clock,
                               write_timeout_s=write_timeout_s)
        self.reply_timeout_s = reply_timeout_s
        # Counts the writes to the printer: an answer read earlier still holds only while nothing
        # has been written since (the runner compares the count).
        self.writes = 0

    @property
    def is_open(self) -> bool:
        return self.link.is_open

    def ensure_open(self) -> bool:
        """Open the port if it is closed and the backoff allows; True when it is open."""
        return self.link.ensure_open()

    def send(self, data: bytes) -> None:
        """Write ticket bytes (returns once the OS has them, not when they are on paper)."""
        self.writes += 1
        self.link.write(data)

    def status_byte(self, n: int, timeout_s: float | None = None) -> int | None:
        """Ask DLE EOT n and wait for its one reply byte (:meth:`ask` then :meth:`reply`)."""
        self.ask(n)
        return self.reply(timeout_s)

    def ask(self, n: int, then: bytes = b"") -> None:
        """Send DLE EOT n, and ``then`` right behind it in the same write (bytes that need no answer:
        they travel while the reply comes back, as the printer answers a real-time query when it
        arrives). Bytes left over from an earlier answer are dropped first, so a late reply is not
        taken for this one."""
        self.link.read_waiting()
        self.writes += 1
        self.link.write(query(n) + then)

    def reply(self, timeout_s: float | None = None) -> int | None:
        """The one reply byte to the query asked last; None when none came in time.

        The wait ends at the first byte (the read blocks until it arrives). ``timeout_s`` replaces the
        reply timeout (seconds), e.g. when the query queues behind a ticket still on the wire.
        """
        data = self.link.read(self.reply_timeout_s if timeout_s is None else timeout_s)
        return data[0] if data else None

    def close(self) -> None:
        self.link.close()
