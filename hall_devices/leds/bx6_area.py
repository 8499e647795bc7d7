"""BX-6 dynamic areas (A7 00): one page of 1-bit pixels per area, sans-IO.

Field order from the manual's table 5.4.1 (``onbonlab/BX-V-VI``, 6th动态区域用户手册.md, v2.0): the
command header, then the parameters of every area, then the pixel data of every area ("前部分为多个
区域的参数，后部分为多个区域的数据", v1.5). Per area: AreaId, RunMode, Timeout 2, RelateAllPro,
RelateProNum 2 (0: no program numbers follow), ImmePlay, reserved 4, AreaType, X 2, Y 2, Width 2,
Height 2, AreaFFlag (0: no frame fields), BackGroundFlag, Transparency, AreaEqual, SoundFlag (0: no
sound fields), reserved 5, PageNum 2; per page: PageDataLen 4, PageStyle, DisplayMode, ClearMode,
Speed, StayTime 2 (10 ms), RepeatTime, ValidLen 2, reserved 9, DataOffset 4, DataLen 4.
The assumptions where the manual is silent are listed in :mod:`hall_devices.leds.bx6`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hall_devices.leds.bx6 import WORD, Bx6Error, request

AREA = struct.Struct("<BBHBHB4xBHHHHBBBBB5xH")
PAGE = struct.Struct("<IBBBBHBH9xII")
COMMAND = struct.Struct("<2xHI")
STATIC = 0x01  # DisplayMode 静止显示
RUN_STATIC = 1  # RunMode: show the last page and stay
AREA_TYPE = 0x10


@dataclass(frozen=True)
class Bitmap:
    """``width`` × ``height`` pixels, row-major, one byte each: 1 lit, 0 dark."""

    width: int
    height: int
    lit: bytes

    def __post_init__(self) -> None:
        if len(self.lit) != self.width * self.height:
            raise Bx6Error(f"bitmap {self.width}x{self.height} needs {self.width * self.height} "
                           f"pixels, got {len(self.lit)}")

    def rows(self) -> list[str]:
        """The bitmap as text, ``#`` lit and ``.`` dark (for a failing test's message)."""
        return ["".join("#" if self.lit[y * self.width + x] else "." for x in range(self.width))
                for y in range(self.height)]


def encode_pixels(bitmap: Bitmap, x: int) -> bytes:
    """Rows of 32-bit words on the screen's 32-pixel grid; leftmost pixel in bit 31; 0 = lit."""
    first, end = x // WORD, -(-(x + bitmap.width) // WORD)
    out = bytearray()
    for y in range(bitmap.height):
        row = bitmap.lit[y * bitmap.width:(y + 1) * bitmap.width]
        for word_index in range(first, end):
            word = 0xFFFFFFFF
            for bit in range(WORD):
                px = word_index * WORD + bit - x
                if 0 <= px < bitmap.width and row[px]:
                    word &= ~(1 << (31 - bit))
            out += struct.pack("<I", word)
    return bytes(out)


def decode_pixels(data: bytes, x: int, width: int, height: int) -> Bitmap:
    first, end = x // WORD, -(-(x + width) // WORD)
    per_row = (end - first) * 4
    if len(data) != per_row * height:
        raise Bx6Error(f"{len(data)} pixel bytes; a {width}x{height} area at x={x} needs {per_row * height}")
    lit = bytearray(width * height)
    for y in range(height):
        for i in range(end - first):
            (word,) = struct.unpack_from("<I", data, y * per_row + i * 4)
            for bit in range(WORD):
                px = (first + i) * WORD + bit - x
                if 0 <= px < width and not word >> (31 - bit) & 1:
                    lit[y * width + px] = 1
    return Bitmap(width, height, bytes(lit))


@dataclass(frozen=True)
class Area:
    area_id: int
    x: int
    y: int
    bitmap: Bitmap
    stay_10ms: int = 1000
    timeout_s: int = 0
    imme_play: int = 1

    def params(self, data_offset: int, data_length: int) -> bytes:
        b = self.bitmap
        for name, value in (("x", self.x), ("y", self.y), ("width", b.width), ("height", b.height)):
            if not 0 <= value <= 0xFFFF:
                raise Bx6Error(f"area {self.area_id}: {name} {value} does not fit two bytes")
        if not 0 <= self.area_id <= 31:
            raise Bx6Error(f"area id {self.area_id}: the controller has areas 0 to 31")
        return (AREA.pack(self.area_id, RUN_STATIC, self.timeout_s, 0, 0, self.imme_play, AREA_TYPE,
                          self.x, self.y, b.width, b.height, 0, 0, 0, 0, 0, 1)
                + PAGE.pack(data_length, 0, STATIC, 0, 1, self.stay_10ms, 1, b.width, data_offset,
                            data_length))


def dynamic_area_data(areas: list[Area], reply: bool = True) -> bytes:
    """A7 00 request data updating ``areas`` (each one page)."""
    if not 1 <= len(areas) <= 32:
        raise Bx6Error(f"{len(areas)} areas; 1 to 32")
    params, pixels = bytearray(), bytearray()
    for area in areas:
        data = encode_pixels(area.bitmap, area.x)
        params += area.params(len(pixels), len(data))
        pixels += data
    body = bytes(params + pixels)
    return request(0xA7, 0x00, COMMAND.pack(len(areas), len(body)) + body, reply)


def parse_dynamic_area(data: bytes) -> list[Area]:
    """The areas of an A7 00 request (the simulator's eye); raises Bx6Error when malformed."""
    if data[1:3] != b"\xa7\x00" or len(data) < 3 + COMMAND.size:
        raise Bx6Error("not a dynamic area request")
    count, length = COMMAND.unpack_from(data, 3)
    body = data[3 + COMMAND.size:]
    if len(body) != length:
        raise Bx6Error(f"area data of {len(body)} bytes, it says {length}")
    step = AREA.size + PAGE.size
    pixels = body[count * step:]
    areas = []
    for i in range(count):
        try:
            (area_id, _run, timeout, _rel, rel_count, imme, area_type, x, y, width, height, frame, _bg,
             _tr, _eq, sound, pages) = AREA.unpack_from(body, i * step)
            (_pl, _style, _mode, _clear, _speed, stay, _rep, _valid, offset, size) = PAGE.unpack_from(
                body, i * step + AREA.size)
        except struct.error as exc:
            raise Bx6Error(f"area {i}: {exc}") from exc
        if rel_count or frame or sound or pages != 1 or area_type != AREA_TYPE:
            raise Bx6Error(f"area {area_id}: only one page, no programs, frame or sound are read here")
        bitmap = decode_pixels(pixels[offset:offset + size], x, width, height)
        areas.append(Area(area_id, x, y, bitmap, stay, timeout, imme))
    return areas
