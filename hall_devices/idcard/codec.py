"""Sans-IO codec of the common ID card reader module ("SAM" serial protocol).

Frame (both directions): preamble ``AA AA AA 96 69``, a 2-byte big-endian length ``L`` counting every
byte after it (body and check), the body, and one check byte: the XOR of the two length bytes and the
body. A host command's body is command, parameter, data; a reply's body is three status bytes
SW1 SW2 SW3 (SW3 tells success or the kind of failure, :data:`STATUS_TEXT`), then data.

Published sources (byte literals reproduced by tests/idcard/test_codec.py; see docs/appointments.md):
find card ``AA AA AA 96 69 00 03 20 01 22`` → found ``… 00 08 00 00 9F 00 00 00 00 97`` or not found
``… 00 04 00 00 80 84``; select ``… 00 03 20 02 21`` → ``… 00 0C 00 00 90 00×8 9C`` or ``… 81 85``;
read text and photo ``… 00 03 30 01 32`` → ``… 05 08 00 00 90 01 00 04 00`` + 256 text bytes + 1024
photo bytes + check, or ``… 00 04 00 00 41 45``; SAM status ``… 00 03 11 FF ED`` → ``… 00 04 00 00 90 94``;
reset SAM ``… 00 03 10 FF EC``.

Errors: :class:`IdCardCodecError` for anything malformed; :class:`FrameDecoder` never raises on input
bytes, it yields :class:`Corrupt` events instead and resynchronises on the next preamble.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import reduce

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
MAX_LENGTH = 0x1000  # the longest reply (text + photo + fingerprint) is 0x0908; more is line noise
TEXT_BYTES = 256
PHOTO_BYTES = 1024


class IdCardCodecError(ValueError):
    """Bytes that are not a valid frame, reply or text block; the message names the problem."""


class Command(Enum):
    """(command, parameter) of the host commands this project sends."""

    RESET_SAM = (0x10, 0xFF)
    SAM_STATUS = (0x11, 0xFF)
    FIND_CARD = (0x20, 0x01)
    SELECT_CARD = (0x20, 0x02)
    READ_TEXT = (0x30, 0x01)  # text + photo; the photo (WLT) is skipped: it needs a licensed decoder


# SW3 values, as the public vendor SDK headers list them.
SUCCESS = 0x90
CARD_FOUND = 0x9F
STATUS_TEXT: dict[int, str] = {
    0x90: "success", 0x91: "no such item on the card", 0x9F: "card found",
    0x10: "checksum error in the host's frame", 0x11: "length error in the host's frame",
    0x21: "bad command or parameter", 0x23: "operation not allowed", 0x24: "unidentified error",
    0x31: "card failed to authenticate the SAM", 0x32: "SAM failed to authenticate the card",
    0x33: "information verification failed", 0x40: "unknown card type", 0x41: "reading the card failed",
    0x47: "random number failed", 0x60: "SAM self-test failed", 0x66: "SAM not authorised",
    0x80: "no card found", 0x81: "selecting the card failed",
}


def _xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def frame(body: bytes) -> bytes:
    """Preamble, length, ``body`` and check. Raises :class:`IdCardCodecError` for an oversize body."""
    if len(body) + 1 > MAX_LENGTH:
        raise IdCardCodecError(f"frame body of {len(body)} bytes is longer than {MAX_LENGTH - 1}")
    head = (len(body) + 1).to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([_xor(head + body)])


def encode_command(command: Command, data: bytes = b"") -> bytes:
    cmd, param = command.value
    return frame(bytes([cmd, param]) + data)


def encode_reply(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """A module's reply (used by the simulator)."""
    if not 0 <= sw3 <= 0xFF:
        raise IdCardCodecError(f"status byte {sw3} is not a byte")
    return frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True)
class Frame:
    body: bytes


@dataclass(frozen=True)
class Corrupt:
    """Bytes dropped: ``reason`` says why (bad check, impossible length, noise before a preamble)."""

    reason: str
    dropped: int


@dataclass(frozen=True)
class Reply:
    sw1: int
    sw2: int
    sw3: int
    data: bytes

    @property
    def ok(self) -> bool:
        return self.sw3 in (SUCCESS, CARD_FOUND)

    @property
    def meaning(self) -> str:
        return STATUS_TEXT.get(self.sw3, f"unknown status {self.sw3:02X}")


@dataclass(frozen=True)
class HostCommand:
    command: Command | None  # None: a pair this project does not know
    code: tuple[int, int]
    data: bytes


def parse_reply(item: Frame) -> Reply:
    if len(item.body) < 3:
        raise IdCardCodecError(f"a reply needs 3 status bytes, got {len(item.body)} body bytes")
    return Reply(item.body[0], item.body[1], item.body[2], item.body[3:])


def parse_command(item: Frame) -> HostCommand:
    if len(item.body) < 2:
        raise IdCardCodecError(f"a command needs command and parameter, got {len(item.body)} bytes")
    code = (item.body[0], item.body[1])
    known = next((c for c in Command if c.value == code), None)
    return HostCommand(known, code, item.body[2:])


class FrameDecoder:
    """Bytes in, :class:`Frame` / :class:`Corrupt` events out, across any split of the stream."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame | Corrupt]:
        self._buf += data
        out: list[Frame | Corrupt] = []
        while True:
            start = self._buf.find(PREAMBLE)
            if start < 0:
                # keep a tail that may be the start of a preamble split across reads
                keep = next((k for k in range(min(len(PREAMBLE) - 1, len(self._buf)), 0, -1)
                             if PREAMBLE.startswith(bytes(self._buf[-k:]))), 0)
                if len(self._buf) > keep:
                    out.append(Corrupt("noise before a preamble", len(self._buf) - keep))
                    del self._buf[:len(self._buf) - keep]
                return out
            if start:
                out.append(Corrupt("noise before a preamble", start))
                del self._buf[:start]
            if len(self._buf) < 7:
                return out
            length = int.from_bytes(self._buf[5:7], "big")
            if not 1 <= length <= MAX_LENGTH:
                out.append(Corrupt(f"impossible length {length}", 1))
                del self._buf[:1]  # look for the next preamble
                continue
            if len(self._buf) < 7 + length:
                return out
            raw = bytes(self._buf[: 7 + length])
            if _xor(raw[5:-1]) != raw[-1]:
                out.append(Corrupt("check byte mismatch", 1))
                del self._buf[:1]
                continue
            del self._buf[: 7 + length]
            out.append(Frame(raw[7:-1]))


# --- the text block: UCS-2 little-endian, fixed widths in bytes -------------------------------

FIELDS: tuple[tuple[str, int], ...] = (
    ("name", 30), ("sex", 2), ("nation", 4), ("birth", 16), ("address", 70), ("id_number", 36),
    ("authority", 30), ("valid_from", 16), ("valid_to", 16), ("reserved", 36),
)
assert sum(width for _, width in FIELDS) == TEXT_BYTES


@dataclass(frozen=True, repr=False)
class CardText:
    """The card's text fields. ``sex`` and ``nation`` are GB/T 2261.1 / GB 3304 codes ("1", "01")."""

    name: str
    sex: str
    nation: str
    birth: str  # YYYYMMDD
    address: str
    id_number: str
    authority: str
    valid_from: str  # YYYYMMDD
    valid_to: str  # YYYYMMDD or 长期

    def __repr__(self) -> str:  # never the clear number or name in a log line or traceback
        return "CardText(<personal data>)"


def decode_text(block: bytes) -> CardText:
    """Parse the 256-byte text block. Raises :class:`IdCardCodecError` naming the bad field."""
    if len(block) != TEXT_BYTES:
        raise IdCardCodecError(f"text block is {len(block)} bytes, expected {TEXT_BYTES}")
    values: dict[str, str] = {}
    at = 0
    for name, width in FIELDS:
        try:
            values[name] = block[at:at + width].decode("utf-16-le").rstrip(" \x00")
        except UnicodeDecodeError:
            raise IdCardCodecError(f"field {name} is not UCS-2 text") from None
        at += width
    values.pop("reserved")
    return CardText(**values)


def encode_text(text: CardText) -> bytes:
    """The 256-byte block (simulator). Raises :class:`IdCardCodecError` for a field that is too long."""
    out = b""
    for name, width in FIELDS:
        raw = ("" if name == "reserved" else getattr(text, name)).encode("utf-16-le")
        if len(raw) > width:
            raise IdCardCodecError(f"field {name} needs {len(raw)} bytes, only {width} fit")
        out += raw + " ".encode("utf-16-le") * ((width - len(raw)) // 2)
    return out


def read_reply_text(reply: Reply) -> CardText:
    """The text of a successful read reply: data = text length (2, BE), photo length (2, BE), text,
    photo. Raises :class:`IdCardCodecError` if the lengths do not fit the data."""
    data = reply.data
    if len(data) < 4:
        raise IdCardCodecError(f"read reply data is {len(data)} bytes, too short for its lengths")
    text_len, photo_len = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
    if text_len != TEXT_BYTES or len(data) < 4 + text_len + photo_len:
        raise IdCardCodecError(f"read reply announces text {text_len} + photo {photo_len} bytes "
                               f"in {len(data) - 4} data bytes")
    return decode_text(data[4:4 + text_len])


def read_reply_data(text: CardText, photo: bytes = bytes(PHOTO_BYTES)) -> bytes:
    """A read reply's data (simulator)."""
    return TEXT_BYTES.to_bytes(2, "big") + len(photo).to_bytes(2, "big") + encode_text(text) + photo
