"""BX-6 network controller codec: the manual's ping byte for byte, replies, areas, voice, brightness."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall_devices.leds import bx6
from hall_devices.leds.bx import crc16
from hall_devices.leds.bx6_area import (
    Area,
    Bitmap,
    decode_pixels,
    dynamic_area_data,
    encode_pixels,
    parse_dynamic_area,
)

# 6th动态区域用户手册.md 5.5.1 (onbonlab/BX-V-VI), protocols.md §7.
PING = bytes.fromhex("a5 a5 a5 a5 a5 a5 a5 a5 fe ff 00 80 f0 00 fe ff 00 00 00 00 05 00 00 00 01 a2 00 00 00 "
                     "c6 86 5a")


def test_the_manuals_ping_byte_for_byte() -> None:
    assert bx6.Packet(bx6.Header(), bx6.ping_data()).encode() == PING
    assert crc16(PING[8:-3]) == 0x86C6  # CRC-16/ARC over header + data, sent LSB first
    decoder = bx6.Bx6Decoder()
    assert decoder.feed(b"\x00\x13" + PING[:11]) == []  # noise, then half a packet: wait for the rest
    assert decoder.feed(PING[11:]) == [bx6.Packet(bx6.Header(0xFFFE, 0x8000, 0xFFFE), bytes.fromhex(
        "01 a2 00 00 00"))]


def test_ack_and_nack_with_each_error_number() -> None:
    # Response: reserved, A0, 00/01, Status 2 (bit 0 = NACK), Error 2, DataLen 2 (manual 5.1.2, 5.3).
    assert bx6.response_data() == bytes.fromhex("00 a0 00 00 00 00 00 00 00")
    assert bx6.response_data(bx6.Error.BUSY) == bytes.fromhex("00 a0 01 01 00 03 00 00 00")
    for error in bx6.Error:
        response = bx6.parse_response(bx6.response_data(error))
        assert response.ok is (error is bx6.Error.OK) and response.error == error
    assert bx6.Error.SCREEN_PARA.value == 18 and bx6.Error.CHECKSUM.value == 5 and len(bx6.Error) == 20
    with pytest.raises(bx6.Bx6Error, match="at least 9"):
        bx6.parse_response(b"\x00\xa0")


def test_brightness_and_delete() -> None:
    data = bx6.brightness_data(9)
    assert data[:6] == bytes.fromhex("01 a2 07 31 00 00") and data[6:] == bytes([9] * 48)
    assert struct.unpack("<H", data[3:5])[0] == 1 + 48  # DataLen 0x31: the mode and 48 values
    with pytest.raises(bx6.Bx6Error, match="0 to 15"):
        bx6.brightness_data(16)
    assert bx6.delete_areas_data() == bytes.fromhex("01 a7 01 00 00 ff")
    assert bx6.delete_areas_data([0, 2]) == bytes.fromhex("01 a7 01 00 00 02 00 02")


def test_voice_insert_speaks_gbk() -> None:
    data = bx6.voice_insert_data(bx6.Voice("请A001号到3号窗口"))
    text = "请A001号到3号窗口".encode("gbk")
    # 01 A7 07, reserved 2, StoreFlag 0 (RAM), VoiceFlg 2 (tail), reserved 3, Datelen 4, then the voice:
    # person 0, volume 5, speed 5, GBK 01, replays 0, delay 0, reserved parameter length 3 and its 3
    # automatic values, SoundDataLen, text.
    voice = (bytes.fromhex("00 05 05 01 00000000 00000000 03000000 00 00 00") + struct.pack("<I", len(text))
             + text)
    assert data == bytes.fromhex("01 a7 07 00 00 00 02 00 00 00") + struct.pack("<I", len(voice)) + voice
    assert bx6.parse_voice_insert(data) == "请A001号到3号窗口"
    queue = bx6.voice_queue_data([bx6.Voice("一"), bx6.Voice("二")])
    assert queue[:7] == bytes.fromhex("01 a7 02 00 00 00 02") and queue[7] == 0
    with pytest.raises(bx6.Bx6Error, match="volume"):
        bx6.Voice("x", volume=11).encode()


def test_pixels_in_words_on_the_32_pixel_grid() -> None:
    # 6E appendix 2: pixel (0,0) is bit 31 of the first word; words LSB first; 0 lit, padding dark.
    one = Bitmap(3, 1, bytes([1, 0, 1]))
    assert encode_pixels(one, 0) == struct.pack("<I", 0x5FFFFFFF)
    assert encode_pixels(one, 35) == struct.pack("<I", 0xEBFFFFFF)  # starts at bit 31 - 3
    assert encode_pixels(Bitmap(2, 1, bytes([1, 1])), 31) == struct.pack("<II", 0xFFFFFFFE, 0x7FFFFFFF)
    assert decode_pixels(encode_pixels(one, 35), 35, 3, 1) == one


def test_dynamic_area_layout_and_round_trip() -> None:
    bitmap = Bitmap(32, 2, bytes([1, 0] * 32))
    data = dynamic_area_data([Area(0, 0, 0, bitmap)])
    pixels = encode_pixels(bitmap, 0)
    assert data[:3] == bytes.fromhex("01 a7 00") and data[3:5] == b"\x00\x00"
    assert data[5:7] == b"\x01\x00"  # AreaNum
    area_len = struct.unpack("<I", data[7:11])[0]
    assert area_len == len(data) - 11 and data.endswith(pixels)  # parameters first, then the data
    assert data[11:15] == bytes.fromhex("00 01 00 00")  # AreaId 0, RunMode 1, Timeout 0
    assert parse_dynamic_area(data) == [Area(0, 0, 0, bitmap)]
    two = [Area(0, 0, 0, bitmap), Area(1, 40, 8, Bitmap(8, 1, bytes([1] * 8)))]
    assert parse_dynamic_area(dynamic_area_data(two)) == two


def test_escaping_and_damage() -> None:
    bitmap = Bitmap(32, 1, bytes([1, 0, 1, 0, 0, 1, 0, 1] * 4))  # words full of A5 and 5A
    packet = bx6.Packet(bx6.Header(0x5AA5), dynamic_area_data([Area(0, 0, 0, bitmap)]))
    raw = packet.encode()
    assert b"\xa5" not in raw[8:] and b"\x5a" not in raw[8:-1]
    assert bx6.Bx6Decoder().feed(raw) == [packet]
    bad = bytearray(raw)
    bad[-3] ^= 0x01  # the CRC's second byte
    (damaged,) = bx6.Bx6Decoder().feed(bytes(bad))
    assert isinstance(damaged, bx6.BadPacket) and "CRC" in damaged.reason


@given(st.binary(max_size=200))
def test_random_bytes_give_packets_or_bad_packets(data: bytes) -> None:
    for item in bx6.Bx6Decoder().feed(data + b"\x5a"):
        assert isinstance(item, bx6.Packet | bx6.BadPacket)
