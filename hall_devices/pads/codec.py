"""The pad bus codec (叫号评价器, FT1.2-style framing), sans-IO.

Frame: ``FF 68 L L 68 A C data… CS 16`` with L = 2 + len(data) (A and C counted) and
CS = (A + C + sum(data)) mod 256. The receiver of a frame echoes it back as its acknowledgement.

Control codes (C):
- ``01`` key, pad → host; the last data byte is the key code (table :data:`KEYS`);
- ``02`` show, host → pad; six digit bytes, ``0A`` = blank;
- ``03`` beep, host → pad; no data (the reference beep has no count byte: two beeps are two frames);
- ``05`` rating — the project's own function code, since no public sheet defines 5-level keys:
  host → pad ``05 00 [seconds]`` lights the five rating keys for that long; pad → host
  ``05 [level]`` (one byte) with level 1 (非常不满意) … 5 (非常满意) is the applicant's rating.

Key frames come in two forms (:func:`key_presses`): one key per frame, or the published one-frame
confirm ``[digit, 0F]`` (a deployed hall system reads ``data[len-2]`` as the digit). Frames that mean
nothing to the host are reported as :class:`Ignored` with a kind, never dropped silently.

Every vendor difference stays in this module. The decoder resynchronises after garbage: it looks
for the next ``FF 68`` (or a bare ``68`` start) and reports what it skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

PREAMBLE = 0xFF
START = 0x68
END = 0x16
MAX_DATA = 32
BAD_CHECKSUM = "bad checksum"


class Control(IntEnum):
    KEY = 0x01
    SHOW = 0x02
    BEEP = 0x03
    RATING = 0x05


class Key(IntEnum):
    D0 = 0x00
    D1 = 0x01
    D2 = 0x02
    D3 = 0x03
    D4 = 0x04
    D5 = 0x05
    D6 = 0x06
    D7 = 0x07
    D8 = 0x08
    D9 = 0x09
    RATE = 0x0B  # 请评价: finish the service and ask for a rating
    NEXT = 0x0C  # 顺呼
    RECALL = 0x0D  # 重呼
    CONFIRM = 0x0F  # 确认, combined with the digits before it
    PAUSE = 0x12  # 暂停 / 恢复
    TRANSFER = 0x13  # 转移: then the target window's digits and confirm


BLANK = 0x0A


class FrameError(Exception):
    """A frame that cannot be built (bad address, too much data)."""


@dataclass(frozen=True)
class Frame:
    address: int
    control: int
    data: bytes = b""

    def encode(self) -> bytes:
        if not 0 <= self.address <= 0xFF or not 0 <= self.control <= 0xFF:
            raise FrameError(f"address {self.address} or control {self.control} out of range")
        if len(self.data) > MAX_DATA:
            raise FrameError(f"{len(self.data)} data bytes; at most {MAX_DATA}")
        length = 2 + len(self.data)
        checksum = (self.address + self.control + sum(self.data)) % 256
        return bytes([PREAMBLE, START, length, length, START, self.address, self.control,
                      *self.data, checksum, END])


@dataclass(frozen=True)
class Garbage:
    """Bytes that were not a valid frame, and why; the decoder skipped them."""

    data: bytes
    reason: str


def key_frame(address: int, key: Key) -> Frame:
    return Frame(address, Control.KEY, bytes([key]))


def rating_frame(address: int, level: int) -> Frame:
    if not 1 <= level <= 5:
        raise FrameError(f"rating level {level}; 1 to 5")
    return Frame(address, Control.RATING, bytes([level]))


def show_frame(address: int, digits: str) -> Frame:
    """Show up to six digits, right-aligned; anything else in ``digits`` shows as blank."""
    cells = [int(c) if c.isdigit() else BLANK for c in digits[-6:]]
    return Frame(address, Control.SHOW, bytes([BLANK] * (6 - len(cells)) + cells))


def beep_frame(address: int) -> Frame:
    """One beep: ``C = 03`` and no data, as the reference beep (L = 2)."""
    return Frame(address, Control.BEEP)


def beep_frames(address: int, times: int) -> list[Frame]:
    """``times`` beeps (1 to 9), one frame each: the beep frame has no count byte."""
    return [beep_frame(address) for _ in range(max(1, min(times, 9)))]


def ask_rating_frame(address: int, seconds: int) -> Frame:
    return Frame(address, Control.RATING, bytes([0, max(1, min(seconds, 255))]))


@dataclass(frozen=True)
class Ignored:
    """A well-formed frame that means nothing to the host; ``kind`` names why (one log line per kind)."""

    kind: str


def key_presses(frame: Frame) -> tuple[Key, ...] | Ignored:
    """The keys a pad's key frame (C = 01) stands for, in order.

    ``[.., key]``: the last data byte is the key. ``[.., digit, 0F]``: the published one-frame
    confirm, the digit then confirm. Other controls, an empty frame or an unknown key code are
    :class:`Ignored`.
    """
    if frame.control != Control.KEY:
        return Ignored(f"control {frame.control:#04x} from a pad")
    if not frame.data:
        return Ignored("key frame without a key code")
    last = frame.data[-1]
    if last == Key.CONFIRM and len(frame.data) >= 2 and frame.data[-2] <= Key.D9:
        return Key(frame.data[-2]), Key.CONFIRM
    try:
        return (Key(last),)
    except ValueError:
        return Ignored(f"unknown key code {last:#04x}")


@dataclass
class IgnoredCounter:
    """How many frames of each ignored kind a bus has seen; :meth:`note` is True the first time."""

    counts: dict[str, int] = field(default_factory=dict)

    def note(self, kind: str) -> bool:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return self.counts[kind] == 1


def rating_level(frame: Frame) -> int | None:
    """The level of a pad's rating frame, or None when the frame is not one."""
    if frame.control == Control.RATING and len(frame.data) == 1 and 1 <= frame.data[0] <= 5:
        return frame.data[0]
    return None


def shown_digits(frame: Frame) -> str:
    """What a show frame puts on the pad's display (blank as a space)."""
    return "".join(" " if b == BLANK else str(b) if b <= 9 else "?" for b in frame.data)


@dataclass
class PadDecoder:
    """Bytes in, frames and garbage reports out."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame | Garbage]:
        self.buffer += data
        out: list[Frame | Garbage] = []
        while self.buffer:
            start = self._find_start()
            if start > 0:
                out.append(Garbage(bytes(self.buffer[:start]), "no frame start"))
                del self.buffer[:start]
            if start < 0:
                keep = 1 if self.buffer[-1] == PREAMBLE else 0
                skipped = bytes(self.buffer[: len(self.buffer) - keep])
                if skipped:
                    out.append(Garbage(skipped, "no frame start"))
                del self.buffer[: len(self.buffer) - keep]
                break
            result = self._frame()
            if result is None:
                break  # incomplete: wait for more
            out.append(result)
        return _merge_garbage(out)

    def _find_start(self) -> int:
        b = self.buffer
        for i, byte in enumerate(b):
            if byte == START or (byte == PREAMBLE and (i + 1 == len(b) or b[i + 1] == START)):
                return i
        return -1

    def _frame(self) -> Frame | Garbage | None:
        b = self.buffer
        head = 1 if b[0] == PREAMBLE else 0
        if len(b) < head + 4:
            return None
        length, again, second = b[head + 1], b[head + 2], b[head + 3]
        if length != again or second != START or length < 2 or length > MAX_DATA + 2:
            return self._skip(head + 1, f"bad header {bytes(b[head:head + 4]).hex(' ')}")
        total = head + 4 + length + 2
        if len(b) < total:
            return None
        body = bytes(b[head + 4: head + 4 + length])
        checksum, end = b[head + 4 + length], b[head + 5 + length]
        if end != END:
            return self._skip(head + 1, f"no end byte 16 (found {end:02x})")
        if sum(body) % 256 != checksum:
            garbage = Garbage(bytes(b[:total]), f"{BAD_CHECKSUM} {checksum:02x}, expected "
                                                f"{sum(body) % 256:02x}")
            del b[:total]
            return garbage
        del b[:total]
        return Frame(body[0], body[1], body[2:])

    def _skip(self, count: int, reason: str) -> Garbage:
        skipped = bytes(self.buffer[:count])
        del self.buffer[:count]
        return Garbage(skipped, reason)


def _merge_garbage(items: list[Frame | Garbage]) -> list[Frame | Garbage]:
    """One report per run of noise, so a burst is logged once; a bad frame stays a report of its own."""
    merged: list[Frame | Garbage] = []
    for item in items:
        last = merged[-1] if merged else None
        if (isinstance(item, Garbage) and isinstance(last, Garbage)
                and not item.reason.startswith(BAD_CHECKSUM) and not last.reason.startswith(BAD_CHECKSUM)):
            reasons = last.reason if item.reason in last.reason else f"{last.reason}; {item.reason}"
            merged[-1] = Garbage(last.data + item.data, reasons)
        else:
            merged.append(item)
    return merged
