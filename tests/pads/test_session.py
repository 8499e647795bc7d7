"""The pad bus link session, sans-IO: byte literals from protocols.md §4 and a passed-in clock.

Frame: FF 68 L L 68 A C data… CS 16, L = 2 + len(data), CS = (A + C + Σdata) mod 256; the host
echoes each frame it receives. No broker, no pty: bytes and ``now`` in, outputs compared exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

import pytest

from hall_devices.contract import (
    DeviceFault,
    DeviceState,
    RatingPrompt,
    Text,
    WindowAction,
    WindowState,
    WindowStatus,
)
from hall_devices.coordinator import texts
from hall_devices.layout import PadDevice
from hall_devices.pads.codec import Frame, Garbage, Ignored
from hall_devices.pads.keys import Intent
from hall_devices.pads.session import (
    LINK,
    PROMPT,
    EchoConfirmed,
    FrameIgnored,
    IllegalTransitionError,
    KeyRefused,
    Link,
    LinkEvent,
    Noise,
    Output,
    PadAnswering,
    PadSession,
    PadSilent,
    Prompt,
    PromptEvent,
    PromptExpired,
    RatingGiven,
    RatingIgnored,
    Table,
    WindowIntent,
    Write,
    prompt_seconds,
)

# Pad 3 (window 3), from protocols.md §4's frame rule.
NEXT_3 = bytes.fromhex("ff 68 03 03 68 03 01 0c 10 16")  # key 0C 顺呼
DIGIT_0_3 = bytes.fromhex("ff 68 03 03 68 03 01 00 04 16")  # key 00
CONFIRM_3 = bytes.fromhex("ff 68 03 03 68 03 01 0f 13 16")  # key 0F 确认
NO_SHOW_ONE_FRAME_3 = bytes.fromhex("ff 68 04 04 68 03 01 06 0f 19 16")  # [06, 0F]: 弃号
BLANK_3 = bytes.fromhex("ff 68 08 08 68 03 02 0a 0a 0a 0a 0a 0a 41 16")  # show six blanks
SHOW_2_3 = bytes.fromhex("ff 68 08 08 68 03 02 0a 0a 0a 0a 0a 02 39 16")  # waiting count 2
SHOW_001_3 = bytes.fromhex("ff 68 08 08 68 03 02 0a 0a 0a 00 00 01 24 16")  # ticket A001
BEEP_3 = bytes.fromhex("ff 68 02 02 68 03 03 06 16")  # C = 03, no data
ASK_60_3 = bytes.fromhex("ff 68 04 04 68 03 05 00 3c 44 16")  # light the rating keys for 60 s
RATE_5_3 = bytes.fromhex("ff 68 03 03 68 03 05 05 0d 16")  # 非常满意
RATE_1_3 = bytes.fromhex("ff 68 03 03 68 03 05 01 09 16")  # 非常不满意
BLANK_4 = bytes.fromhex("ff 68 08 08 68 04 02 0a 0a 0a 0a 0a 0a 42 16")
FROM_9 = bytes.fromhex("ff 68 03 03 68 09 01 0c 16 16")  # a key from an address not on this bus

PADS = [PadDevice(kind="pad", id="PAD3", bus="KB1", address=3, window=3),
        PadDevice(kind="pad", id="PAD4", bus="KB1", address=4, window=4)]
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


def state(status: WindowStatus, waiting: int = 0, ticket: str | None = None) -> WindowState:
    name = Text(zh="3号窗口", en="Window 3")
    return WindowState(window=3, name=name, status=status, clerk_id="0301", ticket_number=ticket, since=T0,
                       waiting=waiting, window_label=texts.window_label(3, name),
                       screen=texts.window_screen(3, name, status, ticket_number=ticket),
                       pad_text=texts.pad_text(status, ticket, waiting))


def prompt(timeout_s: int | None = 60) -> RatingPrompt:
    return RatingPrompt(prompt_id="t1-r", window=3, ticket_id="t1", ticket_number="A001", clerk_id="0301",
                        service_id="company_change", expires_at=T0 + timedelta(seconds=60),
                        timeout_s=timeout_s)


def written(outputs: list[Output]) -> list[bytes]:
    return [out.data for out in outputs if isinstance(out, Write)]


def opened(pads_echo: bool = False) -> PadSession:
    session = PadSession(PADS, pads_echo=pads_echo)
    assert written(session.port_opened(0.0)) == [BLANK_3, BLANK_4]  # nothing known yet: blank
    return session


def test_each_pad_frame_is_echoed_back_and_keys_become_window_intents() -> None:
    session = opened()
    assert session.receive(NEXT_3[:4], 1.0) == []  # a frame split across reads
    out = session.receive(NEXT_3[4:], 1.0)
    assert written(out) == [NEXT_3]  # the host's acknowledgement: the same bytes back
    assert out[1:] == [WindowIntent(3, 3, Intent(WindowAction.NEXT))]
    session.window_state(3, state(WindowStatus.SERVING, ticket="A001"), 1.1)
    out = session.receive(DIGIT_0_3 + CONFIRM_3, 2.0)  # digit and confirm as two frames
    assert written(out) == [DIGIT_0_3, CONFIRM_3]
    assert out[-1] == WindowIntent(3, 3, Intent(WindowAction.HOLD))
    out = session.receive(NO_SHOW_ONE_FRAME_3, 3.0)  # the published one-frame confirm acts once
    assert out == [Write(Frame(3, 0x01, b"\x06\x0f")), WindowIntent(3, 3, Intent(WindowAction.NO_SHOW))]


def test_refused_keys_beep_twice_and_noise_is_reported_not_acted_on() -> None:
    session = opened()
    out = session.receive(CONFIRM_3, 1.0)  # confirm with no digits typed
    assert written(out) == [CONFIRM_3, BEEP_3, BEEP_3]
    assert KeyRefused(3, "confirm without digits") in out
    assert written(session.command_refused(3, 1.5)) == [BEEP_3, BEEP_3]  # e.g. next while paused
    bad = bytearray(NEXT_3)
    bad[-2] ^= 0xFF
    out = session.receive(b"\x55\xaa\x00" + bytes(bad) + NEXT_3, 2.0)
    assert [o for o in out if isinstance(o, Noise)] == [
        Noise(Garbage(b"\x55\xaa\x00", "no frame start")),
        Noise(Garbage(bytes(bad), "bad checksum ef, expected 10"))]
    assert written(out) == [NEXT_3]  # only the good frame is acknowledged and acted on
    out = session.receive(FROM_9 + FROM_9, 3.0)
    assert out == [FrameIgnored(Ignored("frame from unknown address 9"), True),
                   FrameIgnored(Ignored("frame from unknown address 9"), False)]  # counted, logged once
    assert session.ignored.counts == {"frame from unknown address 9": 2}


def test_each_pad_shows_the_ticket_the_waiting_count_or_nothing() -> None:
    session = opened()
    assert written(session.window_state(3, state(WindowStatus.IDLE, waiting=2), 1.0)) == [SHOW_2_3]
    assert session.window_state(3, state(WindowStatus.IDLE, waiting=2), 1.1) == []  # unchanged: not rewritten
    assert written(session.window_state(3, state(WindowStatus.CALLING, ticket="A001"), 2.0)) == [SHOW_001_3]
    assert written(session.window_state(3, state(WindowStatus.PAUSED, waiting=5), 3.0)) == [BLANK_3]
    assert session.window_state(99, state(WindowStatus.IDLE), 3.0) == []  # not a window of this bus


def test_on_a_pads_echo_bus_an_echo_confirms_and_is_never_echoed_back() -> None:
    session = opened(pads_echo=True)
    assert session.next_deadline() == 0.5  # both blank frames wait for their echo
    assert session.receive(BLANK_3, 0.2) == [EchoConfirmed(3)]  # no Write: no ping-pong
    assert session.receive(BLANK_4, 0.2) == [EchoConfirmed(4)]
    assert session.next_deadline() is None
    # An echo nobody waits for any more (late) is ignored, not acknowledged either.
    late = FrameIgnored(Ignored("echo of a host frame (control 0x02)"), True)
    assert session.receive(BLANK_3, 0.3) == [late]
    assert session.status().state is DeviceState.OK


def test_missed_echoes_mark_a_pad_not_responding_and_its_next_echo_recovers_it() -> None:
    session = opened(pads_echo=True)
    session.receive(BLANK_4, 0.1)  # pad 4 answers; pad 3 is silent from here
    assert written(session.command_refused(3, 0.2)) == [BEEP_3, BEEP_3]  # two more frames to pad 3
    assert session.tick(0.49) == []  # nothing due yet
    assert session.tick(0.5) == []  # the blank frame missed: one
    assert session.next_deadline() == 0.7
    assert session.tick(0.7) == [PadSilent(3)]  # both beeps missed: three in a row
    assert session.link(3) is Link.NOT_RESPONDING and session.link(4) is Link.ANSWERING
    status = session.status()
    assert (status.state, status.faults) == (DeviceState.WARNING, (DeviceFault.NOT_RESPONDING,))
    assert status.members == {"PAD3": DeviceState.FAULT, "PAD4": DeviceState.OK}
    assert session.tick(5.0) == [] and session.next_deadline() is None
    assert written(session.window_state(3, state(WindowStatus.IDLE, waiting=2), 6.0)) == [SHOW_2_3]
    assert session.receive(SHOW_2_3, 6.1) == [EchoConfirmed(3), PadAnswering(3)]
    assert session.status().state is DeviceState.OK and session.link(3) is Link.ANSWERING


def test_a_bus_whose_pads_need_not_echo_never_waits_for_an_echo() -> None:
    session = opened(pads_echo=False)
    session.command_refused(3, 1.0)
    assert session.next_deadline() is None
    assert session.tick(100.0) == []
    assert session.status().state is DeviceState.OK
    # An echo anyway (pads that echo on a bus not set to expect it): ignored, not echoed back.
    assert written(session.receive(BEEP_3, 100.1)) == []


def test_a_rating_inside_the_prompt_window_counts_once() -> None:
    session = opened()
    assert written(session.ask_rating(3, prompt(), 60, 100.0)) == [BEEP_3, ASK_60_3]
    assert session.next_deadline() == 160.0
    out = session.receive(RATE_5_3, 130.0)
    assert out == [Write(Frame(3, 0x05, b"\x05")), RatingGiven(3, 3, prompt(), 5, 30.0)]
    assert written(out) == [RATE_5_3]
    out = session.receive(RATE_1_3, 131.0)  # a second press: one rating per service
    assert out == [Write(Frame(3, 0x05, b"\x01")), RatingIgnored(3, 1)]
    assert session.next_deadline() is None
    assert written(session.rating_acknowledged(3, 132.0)) == [BEEP_3]  # 谢谢评价


def test_a_rating_outside_the_prompt_window_is_ignored() -> None:
    session = opened()
    assert session.receive(RATE_5_3, 50.0)[1:] == [RatingIgnored(3, 5)]  # none asked
    session.ask_rating(3, prompt(), 60, 100.0)
    assert session.tick(159.9) == []
    # At its closing time, before the tick for it has run:
    assert session.receive(RATE_5_3, 160.0)[1:] == [PromptExpired(3), RatingIgnored(3, 5)]
    session.ask_rating(3, prompt(), 60, 200.0)
    assert session.tick(260.0) == [PromptExpired(3)]
    assert session.receive(RATE_5_3, 260.5)[1:] == [RatingIgnored(3, 5)]


def test_the_prompt_seconds_are_the_coordinators_timeout_not_the_wall_clock() -> None:
    assert prompt_seconds(prompt(60), T0 + timedelta(minutes=10)) == 60  # this machine 10 min ahead
    assert prompt_seconds(prompt(None), T0 + timedelta(seconds=15)) == 45  # an older coordinator


def test_displays_are_restored_when_the_port_comes_back() -> None:
    session = opened(pads_echo=True)
    session.window_state(3, state(WindowStatus.IDLE, waiting=2), 1.0)
    assert session.port_lost(2.0) == [] and session.port_lost(2.1) == []  # said twice: once
    status = session.status()
    assert (status.state, status.faults) == (DeviceState.FAULT, (DeviceFault.PORT_MISSING,))
    assert set(status.members.values()) == {DeviceState.FAULT}  # no pad is reachable
    assert session.next_deadline() is None  # no echo can come through a closed port
    assert session.window_state(3, state(WindowStatus.CALLING, ticket="A001"), 3.0) == []
    assert session.command_refused(3, 3.0) == []  # lost with the port, as on the wire
    assert written(session.port_opened(4.0)) == [SHOW_001_3, BLANK_4]  # every display, at once
    assert session.status().state is DeviceState.OK


def test_a_prompt_asked_while_the_port_was_away_is_asked_again_for_the_seconds_left() -> None:
    """The coordinator's rating prompt can arrive before the port is open (an agent just started)
    or while it is away: when it opens, the pad lights its rating keys for what is left."""
    session = PadSession(PADS, pads_echo=False)
    assert session.ask_rating(3, prompt(), 60, 0.0) == []  # nothing can be written yet
    assert written(session.port_opened(0.0)) == [BLANK_3, ASK_60_3, BLANK_4]
    session.port_lost(100.0)
    session.ask_rating(3, prompt(), 60, 100.0)
    ask_30_3 = bytes.fromhex("ff 68 04 04 68 03 05 00 1e 26 16")  # as ASK_60_3, 30 s: sum 03+05+00+1e
    assert written(session.port_opened(130.0)) == [BLANK_3, ask_30_3, BLANK_4]
    session.port_lost(170.0)
    assert written(session.port_opened(171.0)) == [BLANK_3, BLANK_4]  # closed at 160: not again


def illegal(table: Table[S, E], states: type[S], events: type[E]) -> list[tuple[S, E]]:
    return [(s, e) for s in states for e in events if (s, e) not in table.rows]


def test_every_transition_not_in_a_table_raises() -> None:
    for s, e in illegal(LINK, Link, LinkEvent):
        with pytest.raises(IllegalTransitionError, match=f"{e} is illegal in state {s}"):
            LINK.next(s, e)
    for s2, e2 in illegal(PROMPT, Prompt, PromptEvent):
        with pytest.raises(IllegalTransitionError, match=f"{e2} is illegal in state {s2}"):
            PROMPT.next(s2, e2)
    assert (Link.UNREACHABLE, LinkEvent.ECHO) in illegal(LINK, Link, LinkEvent)  # the port is closed
    assert (Prompt.CLOSED, PromptEvent.RATED) in illegal(PROMPT, Prompt, PromptEvent)


def test_an_illegal_transition_raises_and_changes_nothing() -> None:
    session = opened(pads_echo=True)
    session.window_state(3, state(WindowStatus.IDLE, waiting=2), 0.1)
    assert session.receive(NEXT_3[:5], 0.2) == []  # half a frame in the decoder
    before = (session.status(), session.next_deadline(), session.link(3))
    with pytest.raises(IllegalTransitionError, match="port_opened is illegal in state answering"):
        session.port_opened(0.3)  # open again without a loss: no row for it
    assert (session.status(), session.next_deadline(), session.link(3)) == before
    assert written(session.receive(NEXT_3[5:], 0.4)) == [NEXT_3]  # the same decoder: the frame completes
    assert session.window_state(3, state(WindowStatus.IDLE, waiting=2), 0.5) == []  # still shown
