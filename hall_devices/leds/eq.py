"""EQ2023 text protocol of 诣阔 EQ LED controllers, sans-IO.

``!#`` + three-digit address (``999`` = broadcast) + text + ``$$``. In the text ``%1`` red, ``%2``
green, ``%3`` yellow switch colour; CR LF starts a new line. No checksum and no reply. GB2312/GBK.
Example (protocols.md §3): ``!#001%1测%2试信%3息！$$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

START = b"!#"
END = b"$$"
BROADCAST = 999


class Colour(IntEnum):
    RED = 1
    GREEN = 2
    YELLOW = 3


class EqError(Exception):
    pass


Segment = tuple[Colour | None, str]


def _is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def encode(address: int, lines: list[list[Segment]], encoding: str = "gbk") -> bytes:
    """One EQ2023 message; raises :class:`EqError` naming what the protocol cannot carry.

    ``address`` 0-999 (999: broadcast). Text must hold no ``$$``, no ``!#``, must not end in ``$``
    and may hold no control characters or characters ``encoding`` cannot carry: pass texts from
    people through ``frames.safe_text`` first (protocols.md §3: the marks; GB2312/GBK text).
    """
    if not 0 <= address <= BROADCAST:
        raise EqError(f"address {address} is not 000-999")
    parts = []
    for line in lines:
        text = ""
        for colour, chunk in line:
            bad = next((c for c in chunk if _is_control(c)), None)
            if bad is not None:
                raise EqError(f"text {chunk!r} contains the control character U+{ord(bad):04X}")
            # A literal % before a digit would read as a colour code: use the full-width sign.
            text += (f"%{int(colour)}" if colour else "") + re.sub(r"%(?=\d)", "％", chunk)
        parts.append(text)
    body = "\r\n".join(parts)
    if "$$" in body or body.endswith("$"):
        raise EqError(f"text {body!r} contains the end mark $$ (or ends in $)")
    if "!#" in body:
        raise EqError(f"text {body!r} contains the start mark !#")
    try:
        raw = body.encode(encoding)
    except UnicodeEncodeError as exc:
        raise EqError(f"text {body!r}: {body[exc.start:exc.end]!r} cannot be carried in {encoding}") from None
    return START + f"{address:03d}".encode() + raw + END


def plain(address: int, text: str, colour: Colour | None = None) -> bytes:
    return encode(address, [[(colour, line)] for line in text.split("\n")])


@dataclass(frozen=True)
class EqMessage:
    address: int
    lines: list[list[Segment]]

    @property
    def text(self) -> str:
        return "\n".join("".join(chunk for _, chunk in line) for line in self.lines)


@dataclass(frozen=True)
class EqGarbage:
    data: bytes
    reason: str


def parse_body(address: int, body: str) -> EqMessage:
    lines: list[list[Segment]] = []
    for raw in body.split("\r\n"):
        segments: list[Segment] = []
        colour: Colour | None = None
        for piece in re.split(r"(%[123])", raw):
            if re.fullmatch(r"%[123]", piece):
                colour = Colour(int(piece[1]))
            elif piece:
                segments.append((colour, piece))
        lines.append(segments)
    return EqMessage(address, lines)


@dataclass
class EqDecoder:
    encoding: str = "gbk"
    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[EqMessage | EqGarbage]:
        self.buffer += data
        out: list[EqMessage | EqGarbage] = []
        while True:
            start = self.buffer.find(START)
            if start < 0:
                keep = 1 if self.buffer.endswith(b"!") else 0
                if len(self.buffer) > keep:
                    out.append(EqGarbage(bytes(self.buffer[: len(self.buffer) - keep]), "no !# start"))
                    del self.buffer[: len(self.buffer) - keep]
                return out
            if start > 0:
                out.append(EqGarbage(bytes(self.buffer[:start]), "no !# start"))
                del self.buffer[:start]
            end = self.buffer.find(END, 2)
            if end < 0:
                return out
            raw = bytes(self.buffer[: end + 2])
            del self.buffer[: end + 2]
            digits = raw[2:5]
            if not digits.isdigit() or len(digits) != 3:
                out.append(EqGarbage(raw, f"address {digits!r} is not three digits"))
                continue
            try:
                body = raw[5:-2].decode(self.encoding)
            except UnicodeDecodeError as exc:
                out.append(EqGarbage(raw, f"text is not {self.encoding}: {exc}"))
                continue
            out.append(parse_body(int(digits), body))
