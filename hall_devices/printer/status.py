"""ESC/POS real-time status (DLE EOT n), sans-IO: queries out, reply bytes in, a printer state out.

A poll asks n = 1, 2, 3, 4 in turn, one query in flight at a time (protocols.md §1), and decodes
the four replies with the bit table below. A reply not of the form 0xx1xx10 is garbled; no reply
within the caller's timeout is "not responding".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hall_devices.contract import DeviceFault, DeviceState, PrintFailure

DLE_EOT = b"\x10\x04"
QUERIES = (1, 2, 3, 4)

# (query n, bit mask) → fault. Bits per the Epson real-time status table.
FAULT_BITS: tuple[tuple[int, int, DeviceFault], ...] = (
    (1, 0x08, DeviceFault.PRINTER_OFFLINE),
    (2, 0x04, DeviceFault.COVER_OPEN),
    (2, 0x20, DeviceFault.PAPER_OUT),  # stopped by paper end
    (3, 0x04, DeviceFault.MECHANICAL_ERROR),
    (3, 0x08, DeviceFault.CUTTER_ERROR),
    (3, 0x20, DeviceFault.PRINTER_ERROR),  # unrecoverable
    (3, 0x40, DeviceFault.PRINTER_ERROR),  # auto-recoverable
    (4, 0x0C, DeviceFault.PAPER_NEAR_END),
    (4, 0x60, DeviceFault.PAPER_OUT),
)
# Faults that stop printing, most telling first (a failed job names the first that applies).
BLOCKING: tuple[tuple[DeviceFault, PrintFailure], ...] = (
    (DeviceFault.PAPER_OUT, PrintFailure.PAPER_OUT),
    (DeviceFault.COVER_OPEN, PrintFailure.COVER_OPEN),
    (DeviceFault.CUTTER_ERROR, PrintFailure.CUTTER_ERROR),
    (DeviceFault.MECHANICAL_ERROR, PrintFailure.PRINTER_ERROR),
    (DeviceFault.PRINTER_ERROR, PrintFailure.PRINTER_ERROR),
    (DeviceFault.PRINTER_OFFLINE, PrintFailure.OFFLINE),
    (DeviceFault.NOT_RESPONDING, PrintFailure.NOT_RESPONDING),
    (DeviceFault.GARBLED, PrintFailure.NOT_RESPONDING),
    (DeviceFault.PORT_MISSING, PrintFailure.PORT_MISSING),
)


class StatusError(Exception):
    """A status reply that is not a status byte (garbled line, wrong device)."""


def query(n: int) -> bytes:
    if n not in QUERIES:
        raise ValueError(f"no real-time status n={n}")
    return DLE_EOT + bytes([n])


ONLINE_QUERY = 1
OFFLINE_BIT = 0x08  # DLE EOT 1, bit 3


def online(reply: int | None) -> bool:
    """Whether a reply to DLE EOT 1 says the printer can print now: a status byte (0xx1xx10) with
    bit 3 (offline) clear. The printer goes offline for every fault that stops printing (cover open,
    paper end, any error: protocols.md §1), so one query clears a job; None (no reply) and a
    garbled byte are not online, and a full poll then names the fault."""
    return reply is not None and reply & 0x93 == 0x12 and not reply & OFFLINE_BIT


def check_reply(n: int, byte: int) -> int:
    if byte & 0x93 != 0x12:
        raise StatusError(f"status reply to DLE EOT {n} is {byte:#04x}, not of the form 0xx1xx10")
    return byte


@dataclass(frozen=True)
class PrinterStatus:
    faults: frozenset[DeviceFault] = field(default_factory=frozenset)

    @property
    def state(self) -> DeviceState:
        if self.failure is not None:
            return DeviceState.FAULT
        return DeviceState.WARNING if self.faults else DeviceState.OK

    @property
    def failure(self) -> PrintFailure | None:
        """Why a job cannot print now, or None when it can."""
        for fault, failure in BLOCKING:
            if fault in self.faults:
                return failure
        return None


NOT_RESPONDING = PrinterStatus(frozenset({DeviceFault.NOT_RESPONDING}))
PORT_MISSING = PrinterStatus(frozenset({DeviceFault.PORT_MISSING}))


def decode(replies: dict[int, int]) -> PrinterStatus:
    """The state told by the replies to DLE EOT 1..4 (each already checked)."""
    faults = {fault for n, mask, fault in FAULT_BITS if replies.get(n, 0x12) & mask}
    return PrinterStatus(frozenset(faults))


class PollState(StrEnum):
    IDLE = "idle"
    WAITING = "waiting"


class StatusPoll:
    """One status poll: ``start`` gives the first query; each reply gives the next or the result."""

    def __init__(self) -> None:
        self.state = PollState.IDLE
        self._replies: dict[int, int] = {}
        self._pending: list[int] = []

    def start(self) -> bytes:
        if self.state is PollState.WAITING:
            raise StatusError("a status poll is already waiting for a reply")
        self._replies.clear()
        self._pending = list(QUERIES)
        self.state = PollState.WAITING
        return query(self._pending[0])

    def receive(self, byte: int) -> bytes | PrinterStatus:
        if self.state is not PollState.WAITING:
            raise StatusError(f"status byte {byte:#04x} arrived with no query in flight")
        n = self._pending[0]
        try:
            self._replies[n] = check_reply(n, byte)
        except StatusError:
            self.state = PollState.IDLE  # this poll is over; the caller reports the line garbled
            raise
        self._pending.pop(0)
        if self._pending:
            return query(self._pending[0])
        self.state = PollState.IDLE
        return decode(self._replies)

    def no_reply(self) -> PrinterStatus:
        self.state = PollState.IDLE
        return NOT_RESPONDING
