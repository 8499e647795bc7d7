"""ESC/POS decoder, sans-IO: bytes a printer receives in, printing events out.

Used by the printer simulator (and tests) to read a ticket back: text lines with their size and
weight, QR payloads (native GS ( k, or the raster image GS v 0 of an image QR), cuts and status
queries. It knows the commands the project's tickets and python-escpos use; any other command is
reported as :class:`Unknown` and skipped, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10
# Commands with one parameter byte: (prefix, command) → what it sets.
ONE_BYTE = {
    (ESC, 0x21): "print_mode", (ESC, 0x45): "bold", (ESC, 0x61): "align", (GS, 0x21): "size",
    (ESC, 0x2D): "underline", (ESC, 0x4D): "font", (ESC, 0x7B): "upside_down", (GS, 0x62): "smoothing",
    (GS, 0x42): "invert", (ESC, 0x74): "code_page", (ESC, 0x47): "double_strike", (ESC, 0x64): "feed",
    (ESC, 0x4A): "feed_dots", (ESC, 0x33): "line_spacing", (GS, 0x61): "auto_status",
    (ESC, 0x52): "charset", (GS, 0x48): "hri", (GS, 0x68): "barcode_height", (GS, 0x77): "barcode_width",
}
NO_PARAM = {(ESC, 0x40): "init", (FS, 0x26): "chinese_on", (FS, 0x2E): "chinese_off",
            (ESC, 0x32): "default_spacing"}


@dataclass(frozen=True)
class Text:
    data: bytes  # one line, without its LF, in the printer's encoding
    width: int
    height: int
    bold: bool
    align: int


@dataclass(frozen=True)
class Setting:
    name: str
    value: int


@dataclass(frozen=True)
class QrCode:
    payload: bytes


@dataclass(frozen=True)
class Raster:
    width_bytes: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Cut:
    partial: bool


@dataclass(frozen=True)
class StatusQuery:
    n: int


@dataclass(frozen=True)
class Unknown:
    data: bytes


Event = Text | Setting | QrCode | Raster | Cut | StatusQuery | Unknown


@dataclass
class _Style:
    width: int = 1
    height: int = 1
    bold: bool = False
    align: int = 0


@dataclass
class EscPosDecoder:
    """Feed bytes as they arrive; complete commands and lines come out as events."""

    buffer: bytearray = field(default_factory=bytearray)
    line: bytearray = field(default_factory=bytearray)
    style: _Style = field(default_factory=_Style)
    _qr_store: bytes = b""

    def feed(self, data: bytes) -> list[Event]:
        self.buffer += data
        events: list[Event] = []
        while self.buffer:
            taken = self._one(events)
            if taken == 0:
                break  # an incomplete command: wait for more bytes
            del self.buffer[:taken]
        return events

    def _text(self, events: list[Event]) -> None:
        s = self.style
        events.append(Text(bytes(self.line), s.width, s.height, s.bold, s.align))
        self.line.clear()

    def _one(self, events: list[Event]) -> int:
        b = self.buffer
        first = b[0]
        if first == 0x0A:
            self._text(events)
            return 1
        if first not in (ESC, GS, FS, DLE):
            if first >= 0x20 or first == 0x09:
                self.line.append(first)
            return 1
        if len(b) < 2:
            return 0
        key = (first, b[1])
        if key in NO_PARAM:
            if NO_PARAM[key] == "init":
                self.style = _Style()
            events.append(Setting(NO_PARAM[key], 0))
            return 2
        if first == DLE and b[1] == 0x04:
            if len(b) < 3:
                return 0
            events.append(StatusQuery(b[2]))
            return 3
        if key in ONE_BYTE:
            if len(b) < 3:
                return 0
            self._setting(ONE_BYTE[key], b[2], events)
            return 3
        if key in ((GS, 0x28), (GS, 0x76)) and len(b) < 3:
            return 0  # GS ( k or GS v 0 whose third byte has not arrived yet
        if key == (GS, 0x56):  # GS V m [n]
            if len(b) < 3:
                return 0
            size = 4 if b[2] in (65, 66) else 3
            if len(b) < size:
                return 0
            if self.line:
                self._text(events)
            events.append(Cut(partial=b[2] in (1, 49, 66)))
            return size
        if key == (GS, 0x28) and len(b) >= 3 and b[2] == 0x6B:  # GS ( k pL pH cn fn ...
            if len(b) < 5:
                return 0
            size = 5 + b[3] + 256 * b[4]
            if len(b) < size:
                return 0
            self._qr(bytes(b[5:size]), events)
            return size
        if key == (GS, 0x76) and len(b) >= 3 and b[2] == 0x30:  # GS v 0 m xL xH yL yH data
            if len(b) < 8:
                return 0
            width, height = b[4] + 256 * b[5], b[6] + 256 * b[7]
            size = 8 + width * height
            if len(b) < size:
                return 0
            events.append(Raster(width, height, bytes(b[8:size])))
            return size
        events.append(Unknown(bytes(b[:2])))
        return 2

    def _setting(self, name: str, value: int, events: list[Event]) -> None:
        if name == "print_mode":  # ESC ! : bit 3 emphasized, bit 4 double height, bit 5 double width
            self.style.bold = bool(value & 0x08)
            self.style.height = 2 if value & 0x10 else 1
            self.style.width = 2 if value & 0x20 else 1
        elif name == "size":  # GS ! : high nibble width - 1, low nibble height - 1
            self.style.width, self.style.height = (value >> 4) + 1, (value & 0x0F) + 1
        elif name == "bold":
            self.style.bold = bool(value & 1)
        elif name == "align":
            self.style.align = value % 48 if value >= 48 else value
        events.append(Setting(name, value))

    def _qr(self, body: bytes, events: list[Event]) -> None:
        if len(body) < 2 or body[0] != 0x31:
            events.append(Unknown(b"\x1d\x28\x6b" + body[:4]))
            return
        function = body[1]
        if function == 0x50:  # store the data: cn fn m d1...dk
            self._qr_store = body[3:]
        elif function == 0x51:  # print what was stored
            events.append(QrCode(self._qr_store))
        # 0x41 model, 0x43 module size, 0x45 error correction: settings only
