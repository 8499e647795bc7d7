"""The reader codec against the byte literals published in open-source reader code (docs/appointments.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall_devices.demo.sim.idcard import DEMO_CARDS
from hall_devices.idcard.codec import (
    PHOTO_BYTES,
    TEXT_BYTES,
    CardText,
    Command,
    Corrupt,
    Frame,
    FrameDecoder,
    IdCardCodecError,
    decode_text,
    encode_command,
    encode_reply,
    encode_text,
    parse_command,
    parse_reply,
    read_reply_data,
    read_reply_text,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(("command", "published"), [
    (Command.FIND_CARD, "AA AA AA 96 69 00 03 20 01 22"),
    (Command.SELECT_CARD, "AA AA AA 96 69 00 03 20 02 21"),
    (Command.READ_TEXT, "AA AA AA 96 69 00 03 30 01 32"),
    (Command.SAM_STATUS, "AA AA AA 96 69 00 03 11 FF ED"),
    (Command.RESET_SAM, "AA AA AA 96 69 00 03 10 FF EC"),
])
def test_host_commands_are_the_published_frames(command: Command, published: str) -> None:
    assert encode_command(command) == h(published)
    frames = FrameDecoder().feed(h(published))
    assert len(frames) == 1 and isinstance(frames[0], Frame)
    assert parse_command(frames[0]).command is command


@pytest.mark.parametrize(("published", "sw3", "data_len", "ok"), [
    ("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97", 0x9F, 4, True),  # card found
    ("AA AA AA 96 69 00 04 00 00 80 84", 0x80, 0, False),  # no card
    ("AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C", 0x90, 8, True),  # selected
    ("AA AA AA 96 69 00 04 00 00 81 85", 0x81, 0, False),  # select failed
    ("AA AA AA 96 69 00 04 00 00 41 45", 0x41, 0, False),  # read failed
    ("AA AA AA 96 69 00 04 00 00 90 94", 0x90, 0, True),  # SAM status ok
])
def test_module_replies_are_decoded_and_re_encoded_byte_for_byte(published: str, sw3: int, data_len: int,
                                                                  ok: bool) -> None:
    frames = FrameDecoder().feed(h(published))
    assert len(frames) == 1 and isinstance(frames[0], Frame)
    reply = parse_reply(frames[0])
    assert (reply.sw1, reply.sw2, reply.sw3, len(reply.data), reply.ok) == (0, 0, sw3, data_len, ok)
    assert encode_reply(sw3, reply.data) == h(published)


def test_a_read_reply_has_the_published_head_and_fixed_width_ucs2_text() -> None:
    card = DEMO_CARDS[0]
    raw = encode_reply(0x90, read_reply_data(card))
    # Published head of a successful read: length 05 08, status 00 00 90, text 01 00, photo 04 00.
    assert raw[:14] == h("AA AA AA 96 69 05 08 00 00 90 01 00 04 00")
    assert len(raw) == 14 + TEXT_BYTES + PHOTO_BYTES + 1
    text = raw[14:14 + TEXT_BYTES]
    # name 30 bytes at 0, sex 2 at 30, nation 4 at 32, birth 16 at 36, address 70 at 52, number 36 at 122
    assert text[0:4] == "张三".encode("utf-16-le") and text[6:30] == " ".encode("utf-16-le") * 12
    assert text[30:32] == "1".encode("utf-16-le") and text[32:36] == "01".encode("utf-16-le")
    assert text[36:52] == card.birth.encode("utf-16-le")
    assert text[122:158] == card.id_number.encode("utf-16-le")
    [item] = FrameDecoder().feed(raw)
    assert isinstance(item, Frame)
    assert read_reply_text(parse_reply(item)) == card


def test_every_split_of_the_stream_gives_the_same_frames_and_noise_is_skipped() -> None:
    stream = (h("00 AA 13") + h("AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97")
              + h("AA AA AA 96 69 00 04 00 00 80 84"))
    for cut in range(len(stream)):
        decoder = FrameDecoder()
        items = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        frames = [i for i in items if isinstance(i, Frame)]
        assert [f.body for f in frames] == [h("00 00 9F 00 00 00 00"), h("00 00 80")]
        assert sum(i.dropped for i in items if isinstance(i, Corrupt)) == 3


def test_a_bad_check_byte_is_reported_and_the_next_frame_still_decodes() -> None:
    items = FrameDecoder().feed(h("AA AA AA 96 69 00 04 00 00 80 85") + h("AA AA AA 96 69 00 04 00 00 90 94"))
    assert any(isinstance(i, Corrupt) and "check" in i.reason for i in items)
    assert [i.body for i in items if isinstance(i, Frame)] == [h("00 00 90")]


def test_malformed_parts_raise_the_codec_error_naming_the_problem() -> None:
    with pytest.raises(IdCardCodecError, match="3 status bytes"):
        parse_reply(Frame(b"\x00"))
    with pytest.raises(IdCardCodecError, match="256"):
        decode_text(b"\x00" * 10)
    with pytest.raises(IdCardCodecError, match="name"):
        encode_text(CardText("名" * 16, "1", "01", "19800101", "x", "1" * 18, "y", "20200101", "20400101"))
    with pytest.raises(IdCardCodecError, match="announces"):
        read_reply_text(parse_reply(Frame(h("00 00 90 01 00 04 00") + b"\x00" * 20)))


def test_card_text_never_shows_personal_data_in_repr() -> None:
    assert DEMO_CARDS[0].id_number not in repr(DEMO_CARDS[0])
    assert "张" not in repr(DEMO_CARDS[0])


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    decoder = FrameDecoder()
    for item in decoder.feed(data) + decoder.feed(data[::-1]):
        if isinstance(item, Corrupt):
            assert item.dropped >= 1
            continue
        try:
            assert parse_reply(item).data == item.body[3:]
        except IdCardCodecError as exc:
            assert len(item.body) < 3 and "status bytes" in str(exc)


@given(st.integers(0, 255), st.binary(max_size=300))
def test_reply_round_trip(sw3: int, data: bytes) -> None:
    [item] = FrameDecoder().feed(encode_reply(sw3, data))
    assert isinstance(item, Frame)
    reply = parse_reply(item)
    assert (reply.sw3, reply.data) == (sw3, data)


@given(st.text(alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=15),
       st.text(alphabet="0123456789X", min_size=18, max_size=18))
def test_text_block_round_trip(name: str, number: str) -> None:
    card = CardText(name.strip(" \x00"), "2", "01", "19900101", "某地", number, "某局", "20200101", "长期")
    assert decode_text(encode_text(card)) == card
