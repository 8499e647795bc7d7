"""Onbon BX-5K/6K "字库卡" protocol, sans-IO: frames built and parsed, dynamic-area text updates.

Frame: ``A5``×8 | header (14) | data (N) | CRC16 (2, LSB first) | ``5A``. Between head and tail
``A5 A6 5A 5B`` are escaped as ``A6 02, A6 01, 5B 02, 5B 01``; lengths and the CRC (CRC-16/ARC:
poly 0xA001 reflected, init 0) are computed on the unescaped header + data. Facts and published
examples: ../shared/protocols.md §2; the tests reproduce every example byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

HEAD = 0xA5
TAIL = 0x5A
HEAD_RUN = bytes([HEAD] * 8)
BROADCAST = 0xFFFF  # no reply
BROADCAST_REPLY = 0xFFFE  # every controller, with a reply
PC_ADDRESS = 0x8000
ANY_DEVICE = 0xFE
PROTOCOL_VERSION = 0x02
PIXELS = 0x8000  # bit 15 of X and width: pixel units
ESCAPES = {0xA5: b"\xa6\x02", 0xA6: b"\xa6\x01", 0x5A: b"\x5b\x02", 0x5B: b"\x5b\x01"}
UNESCAPES = {(0xA6, 0x02): 0xA5, (0xA6, 0x01): 0xA6, (0x5B, 0x02): 0x5A, (0x5B, 0x01): 0x5B}


class BxError(Exception):
    """A frame that cannot be built or parsed; the message names the problem."""


class ErrorCode(IntEnum):
    OK = 0
    BAD_GROUP = 1
    NO_SUCH_COMMAND = 2
    BUSY = 3
    OUT_OF_MEMORY = 4
    CRC_ERROR = 5
    FILE_MISSING = 6
    FONT_MISSING = 12


ERROR_NAMES = {ErrorCode.OK: "ok", ErrorCode.BAD_GROUP: "bad command group",
               ErrorCode.NO_SUCH_COMMAND: "no such command", ErrorCode.BUSY: "controller busy",
               ErrorCode.OUT_OF_MEMORY: "out of memory", ErrorCode.CRC_ERROR: "CRC error",
               ErrorCode.FILE_MISSING: "file missing", ErrorCode.FONT_MISSING: "font missing"}


class DisplayMode(IntEnum):
    STATIC = 0x01  # 静止显示
    MOVE_LEFT = 0x03  # 向左移动: text wider than the area


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC (reflected 0x8005, init 0). A byte at a time from a table: the bit loop cost
    ~0.5 µs a byte, on the path of every call's frame (and a BX-6 bitmap is ~600 bytes)."""
    crc = 0
    table = _CRC16_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


def escape(data: bytes) -> bytes:
    """Every A5 A6 5A 5B as its two-byte escape (:data:`ESCAPES`). By ``bytes.replace``, in an order
    where no replacement makes a byte a later one replaces: A6 before A5 (whose escape starts with
    A6), 5B before 5A."""
    return (bytes(data).replace(b"\xa6", ESCAPES[0xA6]).replace(b"\xa5", ESCAPES[0xA5])
            .replace(b"\x5b", ESCAPES[0x5B]).replace(b"\x5a", ESCAPES[0x5A]))


def unescape(data: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte in (0xA6, 0x5B):
            if i + 1 >= len(data) or (byte, data[i + 1]) not in UNESCAPES:
                raise BxError(f"bad escape {data[i:i + 2].hex(' ')} at byte {i}")
            out.append(UNESCAPES[(byte, data[i + 1])])
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class Header:
    destination: int
    source: int = PC_ADDRESS
    device_type: int = ANY_DEVICE
    check_mode: int = 0  # CRC16
    display_mode: int = 0
    barcode: int = 0
    version: int = PROTOCOL_VERSION

    def encode(self, data_length: int) -> bytes:
        if not 0 <= self.destination <= 0xFFFF:
            raise BxError(f"address {self.destination} is not 0-65535 (two bytes)")
        if data_length > 0xFFFF:
            raise BxError(f"data of {data_length} bytes is longer than a frame carries (65535)")
        return struct.pack("<HH3sBBBBBH", self.destination, self.source, b"\0\0\0", self.barcode,
                           self.check_mode, self.display_mode, self.device_type, self.version,
                           data_length)

    @classmethod
    def decode(cls, raw: bytes) -> tuple[Header, int]:
        dst, src, _reserved, barcode, check, display, device, version, length = struct.unpack(
            "<HH3sBBBBBH", raw)
        return cls(dst, src, device, check, display, barcode, version), length


@dataclass(frozen=True)
class BxFrame:
    header: Header
    data: bytes

    @property
    def command(self) -> tuple[int, int]:
        return (self.data[0], self.data[1]) if len(self.data) >= 2 else (-1, -1)

    def encode(self) -> bytes:
        body = self.header.encode(len(self.data)) + self.data
        return HEAD_RUN + escape(body + struct.pack("<H", crc16(body))) + bytes([TAIL])


@dataclass(frozen=True)
class BadFrame:
    """Bytes between a head and a tail that were not a valid frame; CRC errors deserve a NACK."""

    raw: bytes
    reason: str
    crc_error: bool = False
    header: Header | None = None


@dataclass(frozen=True)
class DynamicArea:
    """One area of a dynamic-area update (command A3 06), in pixels."""

    area_id: int
    x: int
    y: int
    width: int
    height: int
    text: bytes  # GBK
    display_mode: int = DisplayMode.STATIC
    run_mode: int = 0
    timeout_s: int = 10
    line_spacing: int = 0
    alignment: int = 0
    single_line: int = 2  # 2: multi-line
    auto_wrap: int = 1
    exit_mode: int = 0
    speed: int = 2
    stay: int = 10

    def encode(self) -> bytes:
        """Raises :class:`BxError` when a field does not fit its bytes (a position or size over
        32767 px, a text over 4 GB, ...)."""
        try:
            return self._pack()
        except struct.error as exc:
            raise BxError(f"area {self.area_id} cannot be encoded: {exc}") from None

    def _pack(self) -> bytes:
        if max(self.x, self.width) >= PIXELS:
            raise struct.error(f"x {self.x} or width {self.width} over 32767 px")
        fields = struct.pack("<BHHHHBBBHBBBBBBBBBI", 0, self.x | PIXELS, self.y, self.width | PIXELS,
                             self.height, self.area_id, self.line_spacing, self.run_mode, self.timeout_s,
                             0, 0, self.alignment, self.single_line, self.auto_wrap, self.display_mode,
                             self.exit_mode, self.speed, self.stay, len(self.text))
        return fields + self.text


AREA_FIXED = struct.calcsize("<BHHHHBBBHBBBBBBBBBI")


def dynamic_area_data(areas: list[DynamicArea], delete: list[int] | None = None, reply: bool = True
                      ) -> bytes:
    """The data field of A3 06: update ``areas`` (and delete area ids ``delete``)."""
    if len(areas) > 0xFF or len(delete or []) > 0xFF:
        raise BxError(f"{len(areas)} areas and {len(delete or [])} deletions: at most 255 each")
    out = bytearray([0xA3, 0x06, 0x01 if reply else 0x02, 0, 0, len(delete or [])])
    out += bytes(delete or [])
    out.append(len(areas))
    for area in areas:
        encoded = area.encode()
        if len(encoded) > 0xFFFF:
            raise BxError(f"area {area.area_id}: {len(encoded)} bytes, more than its length field "
                          f"carries (65535)")
        out += struct.pack("<H", len(encoded)) + encoded
    return bytes(out)


def parse_dynamic_area(data: bytes) -> list[DynamicArea]:
    """Areas of an A3 06 data field; raises :class:`BxError` naming what is wrong."""
    if data[:2] != b"\xa3\x06" or len(data) < 7:
        raise BxError(f"not a dynamic-area update: {data[:2].hex(' ')}")
    i = 5
    deleted = data[i]
    i += 1 + deleted
    if i >= len(data):
        raise BxError("dynamic-area update ends before its area count")
    count = data[i]
    i += 1
    areas = []
    for n in range(count):
        if i + 2 > len(data):
            raise BxError(f"area {n}: length missing")
        (length,) = struct.unpack_from("<H", data, i)
        i += 2
        raw = data[i:i + length]
        if len(raw) != length or length < AREA_FIXED:
            raise BxError(f"area {n}: {len(raw)} bytes, header says {length}")
        values = struct.unpack_from("<BHHHHBBBHBBBBBBBBBI", raw)
        (_type, x, y, width, height, area_id, spacing, run, timeout, _voice, _ext, align, single, wrap,
         mode, exit_mode, speed, stay, text_length) = values
        text = raw[AREA_FIXED:AREA_FIXED + text_length]
        if len(text) != text_length:
            raise BxError(f"area {n}: text of {len(text)} bytes, header says {text_length}")
        areas.append(DynamicArea(area_id, x & ~PIXELS, y, width & ~PIXELS, height, text, mode, run,
                                 timeout, spacing, align, single, wrap, exit_mode, speed, stay))
        i += length
    return areas


def reply_data(code: ErrorCode = ErrorCode.OK) -> bytes:
    """ACK (A0 00) or NACK (A0 01) with an error code."""
    return bytes([0xA0, 0x00 if code is ErrorCode.OK else 0x01, code, 0, 0])


@dataclass(frozen=True)
class Reply:
    ok: bool
    code: int

    @property
    def reason(self) -> str:
        try:
            return ERROR_NAMES[ErrorCode(self.code)]
        except ValueError:
            return f"error {self.code}"


def parse_reply(frame: BxFrame) -> Reply:
    if frame.command not in ((0xA0, 0x00), (0xA0, 0x01)):
        raise BxError(f"not an ACK/NACK: command {frame.data[:2].hex(' ')}")
    code = frame.data[2] if len(frame.data) > 2 else 0
    return Reply(frame.command == (0xA0, 0x00), code)


def start_write_file_data(name: str, length: int, overwrite: bool = True) -> bytes:
    """A1 05: start writing a program file (for completeness; live text uses dynamic areas)."""
    if len(name) != 4 or not name.isascii():
        raise BxError(f"file name {name!r}: four ASCII characters, e.g. P000")
    return bytes([0xA1, 0x05, 0x01, 0, 0, 0x01 if overwrite else 0x00]) + name.encode() + struct.pack(
        "<I", length)


def take_frames(buffer: bytearray, abandoned: list[bytes] | None = None) -> list[tuple[bytes, bytes]]:
    """Cut every whole frame off the front of ``buffer``: (raw bytes, escaped body) each.

    Any run of A5 is a frame head and 5A its tail (BX-5 and BX-6 alike; protocols.md §2 and §7: "a
    receiver treats any run of A5 as the frame head", and escaping keeps A5 out of every body). So an
    A5 inside an unfinished frame starts a new one: the unfinished bytes are dropped, never glued to
    the next frame (a host may abandon a frame part-way), and appended to ``abandoned`` when given.
    Bytes before a head are dropped; an unfinished frame stays in ``buffer`` for the next call.
    """
    frames: list[tuple[bytes, bytes]] = []
    while True:
        head = buffer.find(HEAD)
        if head < 0:
            buffer.clear()
            return frames
        del buffer[:head]
        start = 0
        while start < len(buffer) and buffer[start] == HEAD:
            start += 1
        tail = buffer.find(TAIL, start)
        again = buffer.find(HEAD, start)
        if again >= 0 and (tail < 0 or again < tail):  # a new head before this frame's tail
            if abandoned is not None:
                abandoned.append(bytes(buffer[:again]))
            del buffer[:again]
            continue
        if tail < 0:
            return frames  # wait for the rest
        frames.append((bytes(buffer[:tail + 1]), bytes(buffer[start:tail])))
        del buffer[:tail + 1]


@dataclass
class BxDecoder:
    """Bytes in, frames and bad frames out. Any run of A5 is a frame head: an unfinished frame
    followed by a head is dropped (not a bad frame: it has no tail, so no CRC to refuse, and a
    controller says nothing about it) and counted in ``abandoned``."""

    buffer: bytearray = field(default_factory=bytearray)
    abandoned: int = 0

    def feed(self, data: bytes) -> list[BxFrame | BadFrame]:
        self.buffer += data
        dropped: list[bytes] = []
        frames = take_frames(self.buffer, dropped)
        self.abandoned += len(dropped)
        return [self._frame(raw, body) for raw, body in frames]

    @staticmethod
    def _frame(raw: bytes, escaped: bytes) -> BxFrame | BadFrame:
        try:
            body = unescape(escaped)
        except BxError as exc:
            return BadFrame(raw, str(exc))
        if len(body) < 16:
            return BadFrame(raw, f"frame of {len(body)} bytes is shorter than header + CRC")
        header, length = Header.decode(body[:14])
        data, crc = body[14:-2], struct.unpack("<H", body[-2:])[0]
        if len(data) != length:
            return BadFrame(raw, f"data length {len(data)}, header says {length}", header=header)
        if crc16(body[:-2]) != crc:
            return BadFrame(raw, f"CRC {crc:04x}, computed {crc16(body[:-2]):04x}", crc_error=True,
                            header=header)
        return BxFrame(header, data)
