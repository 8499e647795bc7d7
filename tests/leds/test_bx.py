"""BX-5K/6K codec: the published examples byte for byte, and property tests."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from hall_devices.leds import bx

EXAMPLE = bytes.fromhex(
    "a5 a5 a5 a5 a5 a5 a5 a5 fe ff 00 80 00 00 00 00 00 00 fe 02 2c 00 a3 06 01 00 00 00 01 23 00 00 "
    "00 80 00 00 80 80 20 00 00 00 00 0a 00 00 00 00 02 01 01 00 02 0a 08 00 00 00 bb b6 d3 ad b9 e2 "
    "c1 d9 3c 49 5a")
REPLY_HEADER = bytes.fromhex("00 80 fe ff 00 00 00 00 00 00 fe 02 05 00")


def test_dynamic_area_example() -> None:
    area = bx.DynamicArea(0, 0, 0, 128, 32, "欢迎光临".encode("gbk"))
    frame = bx.BxFrame(bx.Header(bx.BROADCAST_REPLY), bx.dynamic_area_data([area]))
    assert frame.encode() == EXAMPLE
    (decoded,) = bx.BxDecoder().feed(EXAMPLE)
    assert decoded == frame
    assert bx.parse_dynamic_area(decoded.data) == [area]


def test_ack_and_nack_examples() -> None:
    ack = bx.BxFrame(bx.Header(bx.PC_ADDRESS, source=bx.BROADCAST_REPLY), bx.reply_data())
    assert ack.encode() == bx.HEAD_RUN + REPLY_HEADER + bytes.fromhex("a0 00 00 00 00 14 ac 5a")
    nack = bx.BxFrame(bx.Header(bx.PC_ADDRESS, source=bx.BROADCAST_REPLY),
                      bx.reply_data(bx.ErrorCode.CRC_ERROR))
    assert nack.encode() == bx.HEAD_RUN + REPLY_HEADER + bytes.fromhex("a0 01 05 00 00 05 51 5a")
    reply = bx.parse_reply(nack)
    assert (reply.ok, reply.code, reply.reason) == (False, 5, "CRC error")


def test_start_write_file_example() -> None:
    frame = bx.BxFrame(bx.Header(bx.BROADCAST_REPLY), bx.start_write_file_data("P000", 0x47))
    assert frame.data == bytes.fromhex("a1 05 01 00 00 01 50 30 30 30 47 00 00 00")
    assert frame.encode()[-3:] == bytes.fromhex("48 14 5a")


def test_crc16_arc() -> None:
    assert bx.crc16(b"123456789") == 0xBB3D  # the CRC-16/ARC check value


def test_escapes() -> None:
    assert bx.escape(bytes([0xA5, 0xA6, 0x5A, 0x5B, 0x00])) == bytes.fromhex("a6 02 a6 01 5b 02 5b 01 00")
    assert bx.unescape(bytes.fromhex("a6 02 a6 01 5b 02 5b 01 00")) == bytes([0xA5, 0xA6, 0x5A, 0x5B, 0])


def test_damaged_frames_are_reported() -> None:
    damaged = bytearray(EXAMPLE)
    damaged[-4] ^= 0x01
    (bad,) = bx.BxDecoder().feed(bytes(damaged))
    assert isinstance(bad, bx.BadFrame) and bad.crc_error and bad.header is not None
    assert bad.header.destination == bx.BROADCAST_REPLY
    (escape,) = bx.BxDecoder().feed(bx.HEAD_RUN + b"\xa6\x07" + bytes(20) + b"\x5a")
    assert isinstance(escape, bx.BadFrame) and "bad escape" in escape.reason


# Text whose GBK bytes contain A5, A6, 5A or 5B: 亥 (ba a5), 乏 (b7 a6), 俍 (82 5a), 俒 (82 5b).
TRICKY = "亥乏俍俒互丧Z["
texts = st.text(alphabet=st.sampled_from(TRICKY + "请号到窗口0123456789ABC号"), max_size=40)


def test_tricky_text_really_needs_escapes() -> None:
    raw = TRICKY.encode("gbk")
    assert all(b in raw for b in (0xA5, 0xA6, 0x5A, 0x5B))


@given(texts, st.integers(0, 0xFFFD), st.integers(8, 512), st.integers(8, 256))
def test_round_trip(text: str, address: int, width: int, height: int) -> None:
    area = bx.DynamicArea(1, 0, 0, width, height, text.encode("gbk"), display_mode=bx.DisplayMode.MOVE_LEFT)
    frame = bx.BxFrame(bx.Header(address), bx.dynamic_area_data([area]))
    encoded = frame.encode()
    assert bytes([bx.TAIL]) not in encoded[8:-1] and bytes([bx.HEAD]) not in encoded[8:-1]
    decoder = bx.BxDecoder()
    out = decoder.feed(encoded[:13]) + decoder.feed(encoded[13:])
    assert out == [frame] and isinstance(out[0], bx.BxFrame), out
    assert bx.parse_dynamic_area(out[0].data)[0].text.decode("gbk") == text


@given(st.binary(max_size=300))
def test_random_bytes_give_frames_or_bad_frames(data: bytes) -> None:
    for item in bx.BxDecoder().feed(data):
        assert isinstance(item, bx.BxFrame | bx.BadFrame)
        if isinstance(item, bx.BxFrame):
            with contextlib.suppress(bx.BxError):
                bx.parse_dynamic_area(item.data)


def test_a_head_inside_an_unfinished_frame_starts_a_new_frame() -> None:
    """protocols.md §2: "A receiver treats any run of A5 as the frame head". A frame abandoned
    part-way (the host stopped writing it) is dropped, never glued to the frame after it."""
    for cut in (1, 8, 9, 30, len(EXAMPLE) - 1):
        decoder = bx.BxDecoder()
        assert decoder.feed(EXAMPLE[:cut]) == []
        (frame,) = decoder.feed(EXAMPLE)
        assert isinstance(frame, bx.BxFrame), frame
        assert frame == bx.BxFrame(bx.Header(bx.BROADCAST_REPLY), frame.data) and frame.encode() == EXAMPLE
        assert decoder.abandoned == (0 if cut <= 8 else 1)  # a head alone is only a longer head run
    decoder = bx.BxDecoder()
    (frame,) = decoder.feed(EXAMPLE[:40] + EXAMPLE)  # in one read, too
    assert isinstance(frame, bx.BxFrame), frame
    assert frame.encode() == EXAMPLE and decoder.abandoned == 1 and decoder.buffer == bytearray()
    buffer = bytearray(EXAMPLE[:40] + EXAMPLE[:20])
    dropped: list[bytes] = []
    assert bx.take_frames(buffer, dropped) == [] and dropped == [EXAMPLE[:40]]
    assert bytes(buffer) == EXAMPLE[:20]  # the new frame waits for its rest
