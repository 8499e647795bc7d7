"""A thermal ticket printer on a pty: decodes what it receives, answers status by its switches.

Switches (like a real printer's faults): ``paper_near_end``, ``paper_out``, ``cover_open``,
``offline``, the DLE EOT 3 error causes ``mechanical_error``, ``autocutter_error``,
``unrecoverable_error`` and ``recoverable_error`` (each also sets "error" in n = 2 and "offline" in
n = 1; the printer prints nothing meanwhile), ``silent`` (answers no status query) and ``garbled``.
``baud`` paces reading like a UART at that speed. Each ticket (ESC @ to the next ESC @ or cut) is
kept as lines of text, QR payloads and whether it was cut, and can be rendered to PNG.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hall_devices.demo.sim.port import PortSimulator
from hall_devices.printer.decode import Cut, EscPosDecoder, QrCode, Raster, Setting, StatusQuery, Text

IDLE_END_S = 0.3
TRAILING_QUERIES = re.compile(rb"(?:\x10\x04[\x01-\x04])+\Z")  # DLE EOT n at the end of a chunk
QUERY = re.compile(rb"\x10\x04[\x01-\x04]")


@dataclass
class PrintedLine:
    text: str
    width: int
    height: int
    bold: bool
    align: int


@dataclass
class PrintedTicket:
    lines: list[PrintedLine] = field(default_factory=list)
    qr_payloads: list[str] = field(default_factory=list)
    rasters: list[Raster] = field(default_factory=list)
    cut: bool = False
    finished_at: float = 0.0
    # Monotonic times (0: unknown): the first byte of its ESC @ came, and the last status query
    # before it began to come (the agent's DLE EOT 1 that cleared it), both as paced at ``baud``.
    first_byte_at: float = 0.0
    query_before_at: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def big(self) -> list[str]:
        """Lines printed at twice the normal size or more: the ticket number."""
        return [line.text for line in self.lines if line.width >= 2 and line.height >= 2]


@dataclass
class Switches:
    paper_near_end: bool = False
    paper_out: bool = False
    cover_open: bool = False
    offline: bool = False
    silent: bool = False
    garbled: bool = False
    mechanical_error: bool = False
    autocutter_error: bool = False
    unrecoverable_error: bool = False
    recoverable_error: bool = False

    @property
    def error(self) -> bool:
        return (self.mechanical_error or self.autocutter_error or self.unrecoverable_error
                or self.recoverable_error)


def status_reply(n: int, s: Switches) -> int:
    """The reply byte to DLE EOT n for these switches (form 0xx1xx10)."""
    byte = 0x12
    if n == 1 and (s.offline or s.cover_open or s.paper_out or s.error):
        byte |= 0x08
    elif n == 2:
        byte |= (0x04 if s.cover_open else 0) | (0x20 if s.paper_out else 0) | (0x40 if s.error else 0)
    elif n == 3:  # protocols.md §1: b2 mechanical, b3 autocutter, b5 unrecoverable, b6 auto-recoverable
        byte |= ((0x04 if s.mechanical_error else 0) | (0x08 if s.autocutter_error else 0)
                 | (0x20 if s.unrecoverable_error else 0) | (0x40 if s.recoverable_error else 0))
    elif n == 4:
        byte |= (0x0C if s.paper_near_end or s.paper_out else 0) | (0x60 if s.paper_out else 0)
    return byte


class PrinterSimulator(PortSimulator):
    def __init__(self, path: Path, encoding: str = "gb18030", baud: int | None = None) -> None:
        super().__init__(path, "sim-printer", baud)
        self.encoding = encoding
        self.switches = Switches()
        self.tickets: list[PrintedTicket] = []
        self.received = bytearray()
        self.status_bytes = 0  # of ``received``: DLE EOT queries (3 bytes each), not ticket bytes
        self.last_byte_at = 0.0
        self.last_print_byte_at = 0.0  # monotonic time the last byte that was not a query arrived
        self.last_query_at = 0.0  # monotonic time the chunk with the last status query began to arrive
        self._chunk, self._chunk_at = b"", 0.0  # the chunk being decoded and when it began to arrive
        self._decoder = EscPosDecoder()
        self._current: PrintedTicket | None = None
        self._changed = threading.Condition()

    def segments(self, data: bytes) -> list[bytes]:
        """A chunk cut after each DLE EOT n: a printer answers a real-time query as it arrives, while
        the bytes behind it are still coming (and would be, were it offline)."""
        cuts = [0, *(m.end() for m in QUERY.finditer(data))]
        if cuts[-1] < len(data):
            cuts.append(len(data))
        return [data[a:b] for a, b in itertools.pairwise(cuts)]

    def on_idle(self) -> None:
        # Without a cutter a ticket ends where the paper stops: when the bytes stop.
        if self._current is not None and time.monotonic() - self.last_byte_at > IDLE_END_S:
            self._finish()

    def on_bytes(self, data: bytes) -> None:
        self.last_byte_at = self.line_free_at  # the UART model's, not the wake-up's
        queries = len(data) - len(TRAILING_QUERIES.sub(b"", data))
        if queries < len(data):  # the chunk's last query-free byte came the queries' wire time earlier
            self.last_print_byte_at = self.last_byte_at - self.wire_s(queries)
        self.received += data
        self._chunk, self._chunk_at = data, self.arrived_at
        for event in self._decoder.feed(data):
            self._handle(event)

    def _handle(self, event: object) -> None:
        if isinstance(event, StatusQuery):
            self.status_bytes += 3
            self.last_query_at = self._chunk_at
            if not self.switches.silent:
                reply = 0xFF if self.switches.garbled else status_reply(event.n, self.switches)
                self.port.write(bytes([reply]))
            return
        s = self.switches
        if s.paper_out or s.offline or s.cover_open or s.error:
            return  # a printer in that state prints nothing
        if isinstance(event, Setting) and event.name == "init":
            self._finish()
            # Bytes before the ESC @ in its chunk came first (e.g. the end of an earlier ticket).
            ahead = max(0, self._chunk.find(b"\x1b\x40"))
            self._current = PrintedTicket(first_byte_at=self._chunk_at + self.wire_s(ahead),
                                          query_before_at=self.last_query_at)
            return
        ticket = self._current
        if ticket is None:
            ticket = self._current = PrintedTicket()
        if isinstance(event, Text):
            ticket.lines.append(PrintedLine(event.data.decode(self.encoding, errors="replace"),
                                            event.width, event.height, event.bold, event.align))
        elif isinstance(event, QrCode):
            ticket.qr_payloads.append(event.payload.decode("utf-8", errors="replace"))
        elif isinstance(event, Raster):
            ticket.rasters.append(event)
        elif isinstance(event, Cut):
            ticket.cut = True
            self._finish()

    def _finish(self) -> None:
        ticket, self._current = self._current, None
        if ticket is None or not (ticket.lines or ticket.qr_payloads or ticket.rasters):
            return
        if ticket.rasters:
            ticket.qr_payloads += decode_raster_qr(ticket.rasters)
        ticket.finished_at = time.monotonic()
        with self._changed:
            self.tickets.append(ticket)
            self._changed.notify_all()

    def wait_tickets(self, count: int, timeout_s: float = 10.0) -> list[PrintedTicket]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.tickets) >= count, timeout_s):
                raise TimeoutError(f"{len(self.tickets)} tickets printed, {count} expected")
            return list(self.tickets)


def raster_image(rasters: list[Raster]) -> object:
    from PIL import Image

    width = max(r.width_bytes for r in rasters) * 8
    height = sum(r.height for r in rasters)
    image = Image.new("1", (width, height), 1)
    y = 0
    for raster in rasters:
        part = Image.frombytes("1", (raster.width_bytes * 8, raster.height), raster.data)
        image.paste(Image.eval(part.convert("L"), lambda v: 255 - v).convert("1"), (0, y))
        y += raster.height
    return image


def decode_raster_qr(rasters: list[Raster]) -> list[str]:
    """QR payloads in printed bitmaps (an image QR on printers without native QR)."""
    import zxingcpp

    image = raster_image(rasters)
    return [found.text for found in zxingcpp.read_barcodes(image.convert("L"))]  # type: ignore[attr-defined]
