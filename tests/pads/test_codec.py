from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hall_devices.pads.codec import (
    Frame,
    Garbage,
    Ignored,
    IgnoredCounter,
    Key,
    PadDecoder,
    ask_rating_frame,
    beep_frame,
    beep_frames,
    key_frame,
    key_presses,
    rating_frame,
    rating_level,
    show_frame,
    shown_digits,
)


def test_frames_byte_for_byte() -> None:
    # FF 68 L L 68 A C data CS 16; L = 2 + len(data); CS = A + C + sum(data) mod 256.
    assert key_frame(3, Key.NEXT).encode() == bytes.fromhex("ff 68 03 03 68 03 01 0c 10 16")
    assert key_frame(12, Key.CONFIRM).encode() == bytes.fromhex("ff 68 03 03 68 0c 01 0f 1c 16")
    assert show_frame(3, "A001").encode() == bytes.fromhex("ff 68 08 08 68 03 02 0a 0a 0a 00 00 01 24 16")
    assert beep_frame(7).encode() == bytes.fromhex("ff 68 02 02 68 07 03 0a 16")  # no count byte
    assert rating_frame(3, 5).encode() == bytes.fromhex("ff 68 03 03 68 03 05 05 0d 16")
    assert ask_rating_frame(3, 60).encode() == bytes.fromhex("ff 68 04 04 68 03 05 00 3c 44 16")
    assert shown_digits(show_frame(3, "123456789")) == "456789"


def test_decoder_echo_and_resync() -> None:
    decoder = PadDecoder()
    frame = key_frame(3, Key.RECALL).encode()
    out = decoder.feed(b"\x00\x55" + frame[:4])
    assert out == [Garbage(b"\x00\x55", "no frame start")]
    assert decoder.feed(frame[4:]) == [Frame(3, 1, bytes([Key.RECALL]))]
    bad = bytearray(frame)
    bad[-2] ^= 0xFF
    (garbage,) = decoder.feed(bytes(bad))
    assert isinstance(garbage, Garbage) and "bad checksum" in garbage.reason
    # A frame right after garbage that itself contains 68 still decodes.
    out = decoder.feed(b"\x68\x09\x68" + frame)
    assert out[-1] == Frame(3, 1, bytes([Key.RECALL]))
    assert decoder.feed(bytes.fromhex("68 03 03 68 03 01 0c 10 16")) == [Frame(3, 1, b"\x0c")]  # no FF


def test_rating_level_only_for_a_pads_rating() -> None:
    assert rating_level(rating_frame(4, 2)) == 2
    assert rating_level(ask_rating_frame(4, 2)) is None
    assert rating_level(key_frame(4, Key.D2)) is None


frames = st.builds(Frame, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=32))


# Line noise without frame-start bytes (noise that itself forms a valid frame is a frame).
noise_bytes = st.lists(st.integers(0, 255).filter(lambda b: b not in (0x68, 0xFF)), max_size=20).map(bytes)


@given(st.lists(frames, max_size=5), noise_bytes, st.integers(1, 7))
def test_round_trip_in_any_pieces(sent: list[Frame], noise: bytes, piece: int) -> None:
    data = noise + b"".join(f.encode() for f in sent)
    decoder = PadDecoder()
    out = []
    for i in range(0, len(data), piece):
        out += decoder.feed(data[i:i + piece])
    assert [f for f in out if isinstance(f, Frame)] == sent
    assert b"".join(g.data for g in out if isinstance(g, Garbage)) == noise


@given(st.binary(max_size=400))
def test_random_bytes_give_frames_or_garbage_only(data: bytes) -> None:
    for item in PadDecoder().feed(data):
        assert isinstance(item, Frame | Garbage)


def test_both_confirm_forms_and_ignored_frames_from_byte_literals() -> None:
    # protocols.md §4: 0F confirm combined with the digit before it; the published form sends both
    # in one key frame [digit, 0F] (CS = 03 + 01 + 06 + 0f = 19).
    decoder = PadDecoder()
    (one,) = decoder.feed(bytes.fromhex("ff 68 04 04 68 03 01 06 0f 19 16"))
    assert isinstance(one, Frame) and key_presses(one) == (Key.D6, Key.CONFIRM)
    (two,) = decoder.feed(bytes.fromhex("ff 68 03 03 68 03 01 0f 13 16"))
    assert isinstance(two, Frame) and key_presses(two) == (Key.CONFIRM,)
    (next_,) = decoder.feed(bytes.fromhex("ff 68 03 03 68 03 01 0c 10 16"))
    assert isinstance(next_, Frame) and key_presses(next_) == (Key.NEXT,)
    # C other than 01, an empty key frame, an unknown key code: reported, never silently dropped.
    (other,) = decoder.feed(bytes.fromhex("ff 68 03 03 68 03 07 0c 16 16"))
    assert isinstance(other, Frame) and key_presses(other) == Ignored("control 0x07 from a pad")
    (empty,) = decoder.feed(bytes.fromhex("ff 68 02 02 68 03 01 04 16"))
    assert isinstance(empty, Frame) and key_presses(empty) == Ignored("key frame without a key code")
    (unknown,) = decoder.feed(bytes.fromhex("ff 68 03 03 68 03 01 2a 2e 16"))
    assert isinstance(unknown, Frame) and key_presses(unknown) == Ignored("unknown key code 0x2a")
    counter = IgnoredCounter()
    assert [counter.note("a"), counter.note("a"), counter.note("b")] == [True, False, True]
    assert counter.counts == {"a": 2, "b": 1}


def test_two_beeps_are_two_reference_beep_frames() -> None:
    assert b"".join(f.encode() for f in beep_frames(7, 2)) == bytes.fromhex(
        "ff 68 02 02 68 07 03 0a 16 ff 68 02 02 68 07 03 0a 16")


@given(frames)
def test_any_frame_gives_keys_or_an_ignored_kind(frame: Frame) -> None:
    keys = key_presses(frame)
    assert isinstance(keys, Ignored) or (frame.control == 0x01 and keys and keys[-1] == frame.data[-1])
