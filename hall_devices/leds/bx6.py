"""Onbon 6th-generation network controllers (BX-6E/6Q): packets, sans-IO.

Source: Onbon's public manual ``onbonlab/BX-V-VI``, ``bx.dual.Aux.Data/6th动态区域用户手册.md``
(v2.0, 2019), summarised in protocols.md §7. TCP port 5005, UDP 5007.

Frame: eight ``A5`` | 16-byte packet header | data | CRC-16/ARC of header + data (LSB first) | ``5A``,
escaped between head and tail as BX-5K (A5→A6 02, A6→A6 01, 5A→5B 02, 5B→5B 01; CRC and lengths
before escaping). Header: DstAddr 2, SrcAddr 2 (PC 0x8000), ProtocolVer 1 (0xF0), reserved 1,
DeviceType 2 (0xFFFE in the manual's ping example: any), reserved 4, DataLen 4; all LSB first.
Request data: RtnReq (01 = reply), CmdGroup, Cmd, then the command's fields. Response data:
reserved 1, CmdGroup, Cmd, Status 2 (bit 0 = NACK), Error 2, DataLen 2, data; ACK is A0 00, NACK
A0 01 with the error number (:class:`Error`).

Commands built here: ping A2 00, brightness A2 07 (manual mode, 48 half-hour values), dynamic area
A7 00 (one page of 1-bit pixels per area), delete areas A7 01, voice queue A7 02 and insert A7 07.

What the manual leaves open and this module assumes (docs/display.md lists them):
- PageDataLen is the length of that page's pixel data (the same number as its DataLen);
- pixels (BX-6E single colour, appendix 2): rows top to bottom, each row in 32-bit words aligned to
  the screen's 32-pixel grid, the leftmost pixel in bit 31, words LSB first (the manual's rule for
  every multi-byte value), 0 = lit and 1 = dark (as stated for BX-5E), padding dark;
- RtnReq 00 asks for no reply; AreaType 0x10, no frame, no background, no sound in the area;
- Transparency 0 and ImmePlay 1 (only the dynamic area plays: a call screen shows nothing else).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

from hall_devices.leds.bx import HEAD_RUN, TAIL, BxError, crc16, escape, take_frames, unescape

PC_ADDRESS = 0x8000
ANY_ADDRESS = 0xFFFE  # DstAddr of the manual's ping example ("wildcard, not one controller")
ANY_DEVICE = 0xFFFE
BX_6E1 = 0x0174
PROTOCOL_VERSION = 0xF0
TCP_PORT = 5005
UDP_PORT = 5007
HEADER = struct.Struct("<HHBBHII")
WORD = 32


class Bx6Error(BxError):
    """A packet or command that cannot be built or parsed; the message names the problem."""


class Error(IntEnum):
    """The manual's error register (5.2.2)."""

    OK = 0
    OUT_OF_GROUP = 1
    NO_CMD = 2
    BUSY = 3
    MEMORY_VOLUME = 4
    CHECKSUM = 5
    FILE_NOT_EXIST = 6
    FLASH = 7
    FILE_DOWNLOAD = 8
    FILE_NAME = 9
    FILE_TYPE = 10
    FILE_CRC16 = 11
    FONT_NOT_EXIST = 12
    FIRMWARE_TYPE = 13
    DATE_TIME_FORMAT = 14
    FILE_EXIST = 15
    FILE_BLOCK_NUM = 16
    CONTROLLER_TYPE = 17
    SCREEN_PARA = 18
    CONTROLLER_ID = 19


@dataclass(frozen=True)
class Header:
    destination: int = ANY_ADDRESS
    source: int = PC_ADDRESS
    device_type: int = ANY_DEVICE

    def encode(self, data_length: int) -> bytes:
        for name, value in (("destination", self.destination), ("source", self.source),
                            ("device type", self.device_type)):
            if not 0 <= value <= 0xFFFF:
                raise Bx6Error(f"{name} {value:#x} does not fit two bytes")
        return HEADER.pack(self.destination, self.source, PROTOCOL_VERSION, 0, self.device_type, 0,
                           data_length)


@dataclass(frozen=True)
class Packet:
    header: Header
    data: bytes

    @property
    def command(self) -> tuple[int, int]:
        """(group, command): bytes 1 and 2 of a request or a response alike."""
        return (self.data[1], self.data[2]) if len(self.data) >= 3 else (-1, -1)

    def encode(self) -> bytes:
        body = self.header.encode(len(self.data)) + self.data
        return HEAD_RUN + escape(body + struct.pack("<H", crc16(body))) + bytes([TAIL])


@dataclass(frozen=True)
class BadPacket:
    raw: bytes
    reason: str


@dataclass
class Bx6Decoder:
    """Bytes in, packets and bad packets out. Any run of A5 is a frame head (manual §2)."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Packet | BadPacket]:
        self.buffer += data
        return [_packet(raw, escaped) for raw, escaped in take_frames(self.buffer)]


def _packet(raw: bytes, escaped: bytes) -> Packet | BadPacket:
    try:
        body = unescape(escaped)
    except BxError as exc:
        return BadPacket(raw, str(exc))
    if len(body) < HEADER.size + 2:
        return BadPacket(raw, f"{len(body)} bytes is shorter than header + CRC")
    dst, src, version, _r, device_type, _r4, length = HEADER.unpack(body[:HEADER.size])
    data, crc = body[HEADER.size:-2], struct.unpack("<H", body[-2:])[0]
    if version != PROTOCOL_VERSION:
        return BadPacket(raw, f"protocol version {version:#04x}, not {PROTOCOL_VERSION:#04x}")
    if len(data) != length:
        return BadPacket(raw, f"data length {len(data)}, header says {length}")
    if crc16(body[:-2]) != crc:
        return BadPacket(raw, f"CRC {crc:04x}, computed {crc16(body[:-2]):04x}")
    return Packet(Header(dst, src, device_type), data)


def request(group: int, command: int, fields: bytes = b"", reply: bool = True) -> bytes:
    return bytes([0x01 if reply else 0x00, group, command]) + fields


def ping_data() -> bytes:
    """A2 00 with its two reserved bytes; the manual says RtnReq must be 01."""
    return request(0xA2, 0x00, b"\x00\x00")


def brightness_data(level: int) -> bytes:
    """A2 07, manual mode: DataLen 0x31, mode 00, then 48 half-hour values all ``level`` (0–15)."""
    if not 0 <= level <= 15:
        raise Bx6Error(f"brightness {level}: 0 to 15")
    return request(0xA2, 0x07, struct.pack("<HB", 0x31, 0) + bytes([level] * 48))


def delete_areas_data(area_ids: list[int] | None = None) -> bytes:
    """A7 01: delete these dynamic areas; None deletes all (0xFF, no ids sent)."""
    if area_ids is None:
        return request(0xA7, 0x01, b"\x00\x00\xff")
    return request(0xA7, 0x01, b"\x00\x00" + bytes([len(area_ids), *area_ids]))


@dataclass(frozen=True)
class Response:
    command: int  # 00 ACK, 01 NACK (group A0), or the command answered
    group: int
    status: int
    error: int
    payload: bytes = b""

    @property
    def ok(self) -> bool:
        return self.group == 0xA0 and self.command == 0x00 and not self.status & 1


def response_data(error: Error = Error.OK) -> bytes:
    """What a controller answers: ACK (A0 00) or NACK (A0 01, status bit 0, the error number)."""
    nack = error is not Error.OK
    return struct.pack("<BBBHHH", 0, 0xA0, 0x01 if nack else 0x00, 1 if nack else 0, error, 0)


def parse_response(data: bytes) -> Response:
    if len(data) < 9:
        raise Bx6Error(f"response of {len(data)} bytes; at least 9")
    _r, group, command, status, error, length = struct.unpack("<BBBHHH", data[:9])
    if len(data) != 9 + length:
        raise Bx6Error(f"response data length {len(data) - 9}, it says {length}")
    return Response(command, group, status, error, data[9:])


# --- voice queue (A7 02 update, A7 07 insert) ------------------------------------------------------


class VoiceEncoding(IntEnum):
    GB2312 = 0
    GBK = 1
    BIG5 = 2
    UNICODE = 3


@dataclass(frozen=True)
class Voice:
    text: str
    volume: int = 5  # 0–10
    speed: int = 5  # 0–10
    person: int = 0  # 0–5
    replays: int = 0  # 0: once
    replay_delay_10ms: int = 0

    def encode(self) -> bytes:
        """SoundPerson … SoundData, GBK text, the three reserved sound parameters left automatic."""
        for name, value, top in (("volume", self.volume, 10), ("speed", self.speed, 10),
                                 ("person", self.person, 5)):
            if not 0 <= value <= top:
                raise Bx6Error(f"voice {name} {value}: 0 to {top}")
        try:
            text = self.text.encode("gbk")
        except UnicodeEncodeError as exc:
            raise Bx6Error(f"voice text {self.text!r} is not GBK: {exc}") from exc
        return (struct.pack("<BBBBIII", self.person, self.volume, self.speed, VoiceEncoding.GBK,
                            self.replays, self.replay_delay_10ms, 3)
                + b"\x00\x00\x00" + struct.pack("<I", len(text)) + text)


def voice_queue_data(voices: list[Voice], store: bool = False) -> bytes:
    """A7 02: replace the controller's voice queue with ``voices`` (RAM unless ``store``)."""
    if not 1 <= len(voices) <= 255:
        raise Bx6Error(f"{len(voices)} voices; 1 to 255")
    out = bytearray(b"\x00\x00" + bytes([1 if store else 0, len(voices)]))
    for voice_id, voice in enumerate(voices):
        body = voice.encode()
        out += bytes([voice_id]) + struct.pack("<I", len(body)) + body
    return request(0xA7, 0x02, bytes(out))


class InsertAt(IntEnum):
    HEAD_INTERRUPT = 0  # from the head, stopping what plays
    HEAD = 1
    TAIL = 2


def voice_insert_data(voice: Voice, where: InsertAt = InsertAt.TAIL) -> bytes:
    """A7 07: insert one voice into the queue (RAM)."""
    body = voice.encode()
    return request(0xA7, 0x07, b"\x00\x00" + bytes([0, where]) + b"\x00\x00\x00"
                   + struct.pack("<I", len(body)) + body)


def parse_voice_insert(data: bytes) -> str:
    """The text of an A7 07 request (the simulator's ear); raises Bx6Error when malformed."""
    if data[:3] != b"\x01\xa7\x07" or len(data) < 14:
        raise Bx6Error("not a voice insert request")
    (length,) = struct.unpack("<I", data[10:14])
    voice = data[14:]
    if len(voice) != length or length < 23 or voice[3] != VoiceEncoding.GBK:
        raise Bx6Error("voice insert with a bad length or encoding")
    (text_length,) = struct.unpack("<I", voice[19:23])
    if len(voice) != 23 + text_length:
        raise Bx6Error(f"voice text length {text_length} does not match the voice's {length} bytes")
    return voice[23:].decode("gbk", errors="replace")
