from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall_devices.contract import Text, WindowState, WindowStatus
from hall_devices.coordinator import texts
from hall_devices.leds import bx, eq
from hall_devices.leds.frames import ScreenEncodingError, safe_text, screen_bytes, window_regions
from hall_devices.leds.screens import fit, window_text


def test_eq_published_example() -> None:
    raw = eq.encode(1, [[(eq.Colour.RED, "测"), (eq.Colour.GREEN, "试信"), (eq.Colour.YELLOW, "息！")]])
    assert raw == "!#001%1测%2试信%3息！$$".encode("gbk")
    (message,) = eq.EqDecoder().feed(raw)
    assert isinstance(message, eq.EqMessage) and message.address == 1 and message.text == "测试信息！"


def test_eq_lines_broadcast_and_errors() -> None:
    raw = eq.plain(eq.BROADCAST, "请A001号\n到3号窗口", eq.Colour.RED)
    assert raw == "!#999%1请A001号\r\n%1到3号窗口$$".encode("gbk")
    with pytest.raises(eq.EqError, match="end mark"):
        eq.plain(1, "a$$b")
    with pytest.raises(eq.EqError, match="000-999"):
        eq.plain(1000, "x")
    assert eq.plain(2, "50%3") == "!#00250％3$$".encode("gbk")  # not read as a colour code


@given(st.text(alphabet="请号到窗口暂停服务ABC0123456789 ，", max_size=30), st.integers(0, 999))
def test_eq_round_trip(text: str, address: int) -> None:
    decoder = eq.EqDecoder()
    out = decoder.feed(b"noise" + eq.plain(address, text))
    message = out[-1]
    assert isinstance(message, eq.EqMessage) and message.text == text and message.address == address


@given(st.binary(max_size=200))
def test_eq_random_bytes(data: bytes) -> None:
    for item in eq.EqDecoder().feed(data):
        assert isinstance(item, eq.EqMessage | eq.EqGarbage)


def state(status: WindowStatus, minutes_ago: float = 0, number: str | None = None,
          reason: str | None = None, notice: str | None = None) -> WindowState:
    """A window state as the coordinator publishes it: its screen text composed by coordinator/texts.py."""
    name = Text(zh="企业开办 3", en="Company 3")
    pause_notice = Text(zh=notice, en="Back shortly") if notice else None
    return WindowState(window=3, name=name, status=status,
                       since=datetime.now(UTC) - timedelta(minutes=minutes_ago), ticket_number=number,
                       pause_reason=reason, pause_notice=pause_notice,
                       screen=texts.window_screen(3, name, status, ticket_number=number,
                                                  pause_reason=reason, pause_notice=pause_notice),
                       pad_text=texts.pad_text(status, number, 0), window_label=texts.window_label(3, name))


@pytest.mark.parametrize(("window", "shown"), [
    (state(WindowStatus.CALLING, number="A001"), "请A001号到3号窗口"),
    (state(WindowStatus.SERVING, number="A001"), "正在办理\nA001号"),
    (state(WindowStatus.PAUSED), "暂停服务"),
    (state(WindowStatus.PAUSED, reason="午间休息"), "午间休息"),
    # The coordinator decides a pause is long; this machine's clock (an hour off here) does not.
    (state(WindowStatus.PAUSED, reason="午间休息", notice="临时有事，请稍候"), "临时有事，请稍候"),
    (state(WindowStatus.PAUSED, minutes_ago=60, reason="午间休息"), "午间休息"),
    (state(WindowStatus.CLOSED), "暂停服务"),
    (state(WindowStatus.IDLE), "欢迎光临\n企业开办 3"),
])
def test_window_texts(window: WindowState, shown: str) -> None:
    assert window_text(window) == shown


def test_fitting_to_the_screen() -> None:
    assert fit("请A001号到3号窗口", 128, 32).lines == ("请A001号", "到3号窗口")
    assert fit("请A001号到3号窗口", 160, 16).lines == ("请A001号到3号窗口",)
    wide = fit("请A001号到3号窗口", 64, 16)
    assert wide.scroll and wide.lines == ("请A001号到3号窗口",)


# Every sequence EQ2023 reserves (protocols.md §3), control bytes, and characters GBK cannot carry.
HOSTILE = "a$$b$c!#d%1e%2%3\x00\x1b\x7f\x85\r\nZ亥😀\ud800x$"


def test_eq_safe_text_keeps_every_reserved_sequence_out() -> None:
    safe = safe_text("eq", HOSTILE)
    assert safe == "a＄＄b＄c！#d%1e%2%3      Z亥□□x＄"
    raw = eq.plain(7, safe)
    assert raw.count(eq.START) == 1 and raw.count(eq.END) == 1 and raw.endswith(eq.END)
    assert not any(b < 0x20 and b not in b"\r\n" for b in raw)
    (message,) = eq.EqDecoder().feed(raw)
    assert isinstance(message, eq.EqMessage) and message.address == 7
    assert message.text == safe.replace("%", "％")  # a % before a digit is never a colour code


@pytest.mark.parametrize(("text", "reason"), [
    ("a$$b", "end mark"), ("ends in $", "end mark"), ("a!#b", "start mark"),
    ("a\x1bb", "control character U\\+001B"), ("😀", "cannot be carried in gbk"),
])
def test_eq_encode_refuses_what_the_protocol_cannot_carry(text: str, reason: str) -> None:
    with pytest.raises(eq.EqError, match=reason):
        eq.encode(1, [[(None, text)]])


@given(st.text(max_size=80), st.integers(0, 998))
def test_any_text_becomes_exactly_one_eq_message(text: str, address: int) -> None:
    raw = screen_bytes("eq", address, window_regions(text, 128, 32))
    (message,) = eq.EqDecoder().feed(raw)
    assert isinstance(message, eq.EqMessage) and message.address == address
    assert len(message.lines) == len(text.split("\n"))


@given(st.text(max_size=80), st.integers(0, 0xFFFD))
def test_any_text_becomes_exactly_one_bx_frame(text: str, address: int) -> None:
    raw = screen_bytes("bx", address, window_regions(text, 128, 32))
    (frame,) = bx.BxDecoder().feed(raw)
    assert isinstance(frame, bx.BxFrame) and frame.header.destination == address
    (area,) = bx.parse_dynamic_area(frame.data)
    shown = area.text.decode("gbk")
    assert not any(ord(c) < 0x20 for c in shown)
    assert len(shown.replace(" ", "")) == len("".join(safe_text("bx", line) for line in text.split("\n"))
                                              .replace(" ", ""))


def test_bx_safe_text_leaves_the_escaping_to_the_frame() -> None:
    assert safe_text("bx", "Z[亥$$!#\x00\r\n\x1b😀\ud800") == "Z[亥$$!#    □□"


def test_a_screen_the_protocol_cannot_address_is_a_named_error() -> None:
    with pytest.raises(ScreenEncodingError, match="eq screen at address 1000: address 1000 is not 000-999"):
        screen_bytes("eq", 1000, window_regions("x", 128, 32))
    with pytest.raises(ScreenEncodingError, match="bx screen at address 65536"):
        screen_bytes("bx", 0x10000, window_regions("x", 128, 32))
    with pytest.raises(ScreenEncodingError, match="more than its length field carries"):
        screen_bytes("bx", 1, window_regions("长" * 40_000, 128, 32))
