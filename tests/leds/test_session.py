"""The LED bus's link session, sans-IO: byte literals from protocols.md §2 and §3 in, frames and
outcomes out, times passed in. No broker, no pty."""

from __future__ import annotations

import pytest

from hall_devices.contract import DeviceFault, DeviceState
from hall_devices.layout import HallScreenDevice, WindowScreenDevice
from hall_devices.leds.frames import Region, hall_regions, window_regions
from hall_devices.leds.session import (
    TRANSITIONS,
    Confirmed,
    LedSession,
    LinkEvent,
    LinkState,
    SessionError,
    Write,
)
from hall_devices.leds.supervision import Outcome

H = bytes.fromhex
HEAD = H("a5 a5 a5 a5 a5 a5 a5 a5")
# protocols.md §2, published: the dynamic-area example (欢迎光临 on a 128×32 screen, to FFFE) and the
# controller's ACK (from FFFE) and NACK (CRC error).
PUBLISHED_AREA = H("a5 a5 a5 a5 a5 a5 a5 a5 fe ff 00 80 00 00 00 00 00 00 fe 02 2c 00 a3 06 01 00 00 00 01"
                   " 23 00 00 00 80 00 00 80 80 20 00 00 00 00 0a 00 00 00 00 02 01 01 00 02 0a 08 00 00 00"
                   " bb b6 d3 ad b9 e2 c1 d9 3c 49 5a")
PUBLISHED_ACK = HEAD + H("00 80 fe ff 00 00 00 00 00 00 fe 02 05 00 a0 00 00 00 00 14 ac 5a")
PUBLISHED_NACK_CRC = HEAD + H("00 80 fe ff 00 00 00 00 00 00 fe 02 05 00 a0 01 05 00 00 05 51 5a")
# The same frames for the screens here (SrcAddr 01 00 / 02 00, the CRC-16/ARC recomputed), and busy
# (NACK error 3): test_literals_are_the_published_frames_readdressed shows the derivation.
ACK_1 = HEAD + H("00 80 01 00 00 00 00 00 00 00 fe 02 05 00 a0 00 00 00 00 64 dc 5a")
NACK_CRC_1 = HEAD + H("00 80 01 00 00 00 00 00 00 00 fe 02 05 00 a0 01 05 00 00 75 21 5a")
BUSY_1 = HEAD + H("00 80 01 00 00 00 00 00 00 00 fe 02 05 00 a0 01 03 00 00 95 20 5a")
ACK_2 = HEAD + H("00 80 02 00 00 00 00 00 00 00 fe 02 05 00 a0 00 00 00 00 94 2c 5a")
GARBLED_1 = ACK_1[:-3] + H("64 dd 5a")  # one bit of line noise in the CRC
# 欢迎光临 to screen 1: the published example with DstAddr 01 00 and timeout 00 00 (a call stays
# until replaced), CRC recomputed.
WELCOME_TO_1 = H("a5 a5 a5 a5 a5 a5 a5 a5 01 00 00 80 00 00 00 00 00 00 fe 02 2c 00 a3 06 01 00 00 00 01"
                 " 23 00 00 00 80 00 00 80 80 20 00 00 00 00 00 00 00 00 00 02 01 01 00 02 0a 08 00 00 00"
                 " bb b6 d3 ad b9 e2 c1 d9 94 33 5a")
WIRE_S = len(WELCOME_TO_1) * 10 / 9600  # 10 bits a byte at 9600 baud


def window(address: int = 1, window_no: int = 1) -> WindowScreenDevice:
    return WindowScreenDevice(kind="window_screen", id=f"WS{window_no}", bus="L1", address=address,
                              window=window_no)


def hall(address: int = 2) -> HallScreenDevice:
    return HallScreenDevice(kind="hall_screen", id="HS1", bus="L1", address=address)


def welcome(text: str = "欢迎光临") -> list[Region]:
    return window_regions(text, 128, 32)


def bus(protocol: str = "bx", *screens: WindowScreenDevice | HallScreenDevice,
        unreachable_after_s: float = 5.0, retries: int = 3) -> LedSession:
    session = LedSession(protocol, 9600, screens or (window(),), unreachable_after_s=unreachable_after_s,
                         retries=retries)
    session.opened()
    return session


def send(session: LedSession, now: float) -> tuple[Write, bytes, float] | None:
    """The next frame handed out and, if it comes in pieces, each piece as it falls due: its first
    write, every byte of it, and when its last bytes were written."""
    first = session.next_write(now)
    if first is None:
        return None
    out = first.frame
    session.written(now)
    while session.state is LinkState.SENDING:
        due = session.deadline(now)
        assert due is not None and due >= now
        now = due
        piece = session.next_write(now)
        assert piece is not None and piece.address == first.address
        out += piece.frame
        session.written(now)
    return first, out, now


def state(session: LedSession) -> LinkState:
    """The link's state, read afresh (not narrowed by an earlier assertion)."""
    return session.state


def test_literals_are_the_published_frames_readdressed() -> None:
    from hall_devices.leds import bx

    for mine, published in ((ACK_1, PUBLISHED_ACK), (NACK_CRC_1, PUBLISHED_NACK_CRC)):
        assert mine[:10] + H("fe ff") + mine[12:-3] == published[:-3]  # only SrcAddr differs
        assert mine[-3:-1] == bx.crc16(mine[8:-3]).to_bytes(2, "little")
    differ = [i for i, (a, b) in enumerate(zip(WELCOME_TO_1, PUBLISHED_AREA, strict=True)) if a != b]
    assert differ == [8, 9, 43, 66, 67]  # DstAddr, the area's timeout, the CRC
    assert WELCOME_TO_1[-3:-1] == bx.crc16(WELCOME_TO_1[8:-3]).to_bytes(2, "little")
    assert WELCOME_TO_1[8:12] == H("01 00 00 80") and PUBLISHED_AREA[8:12] == H("fe ff 00 80")


def test_the_call_at_the_window_is_written_first_and_its_ack_shows_it() -> None:
    session = bus("bx", hall(), window())
    session.want(2, hall_regions("请A001号到1号窗口", "", "请留意叫号", 256, 96))
    session.want(1, welcome())
    write = session.next_write(10.0)
    assert write is not None and (write.address, write.frame, write.probe) == (1, WELCOME_TO_1, False)
    assert state(session) is LinkState.WRITING
    assert session.written(10.0) == []
    assert state(session) is LinkState.AWAITING
    assert session.deadline(10.0) == pytest.approx(10.0 + 0.3 + WIRE_S)
    assert session.next_write(10.01) is None  # one frame on the bus at a time
    assert session.receive(ACK_1[:12], 10.1) == []  # a reply may come in pieces
    assert session.receive(ACK_1[12:], 10.11) == [Confirmed(1, Outcome.ACK)]
    assert session.screens[1].changed("bx") == []
    following = session.next_write(10.11)
    assert following is not None and following.address == 2  # then the hall screen


def test_a_late_or_foreign_reply_never_confirms_the_frame_in_flight() -> None:
    session = bus("bx", window(1, 1), window(2, 2))
    session.want(1, welcome())
    session.want(2, welcome())
    assert session.receive(ACK_1, 4.0) == []  # nothing in flight: stray bytes dropped
    first = session.next_write(5.0)
    assert first is not None and first.address == 1
    session.written(5.0)
    assert session.timeout(5.2) == []  # not yet due
    assert session.timeout(5.0 + 0.3 + WIRE_S) == [Confirmed(1, Outcome.SILENT)]
    retry = session.next_write(5.5)  # a failed screen waits behind the ones that answer
    assert retry is not None and retry.address == 2
    session.written(5.5)
    assert session.receive(ACK_1, 5.49) == []  # screen 1's late ACK, read before this write
    assert session.receive(ACK_1, 5.6) == []  # after it, but from another screen
    assert state(session) is LinkState.AWAITING
    assert session.receive(ACK_2, 5.6) == [Confirmed(2, Outcome.ACK)]


def test_silence_is_retried_then_backed_off_faulted_and_recovers() -> None:
    session = bus("bx", unreachable_after_s=5.0)
    session.want(1, welcome())
    now, outcomes = 0.0, []
    while session.report(now).members["WS1"] is DeviceState.OK:
        write = session.next_write(now)
        if write is not None:
            assert write.frame == WELCOME_TO_1
            session.written(now)
        deadline = session.deadline(now)
        assert deadline is not None and deadline > now
        now = deadline
        outcomes += session.timeout(now)
    assert set(outcomes) == {Confirmed(1, Outcome.SILENT)}
    # Three tries at once, then after 1 s and 2 s; faulted 5 s after the first silence.
    assert len(outcomes) == 5 and now == pytest.approx(5.0 + 0.3 + WIRE_S)
    report = session.report(now)
    assert (report.state, report.faults) == (DeviceState.FAULT, (DeviceFault.NOT_RESPONDING,))
    assert report.member_faults == {"WS1": [DeviceFault.NOT_RESPONDING]}
    assert session.next_write(now) is None  # backing off (2 s after the fifth try)
    session.want(1, welcome("请A001号到1号窗口"))  # news: one try at once
    write = session.next_write(now)
    assert write is not None
    session.written(now)
    assert session.receive(ACK_1, now + 0.2) == [Confirmed(1, Outcome.ACK)]
    assert session.report(now + 0.2).state is DeviceState.OK
    assert session.screens[1].health.tries == 0


def test_nack_busy_and_garbled_are_told_apart() -> None:
    session = bus("bx", unreachable_after_s=0.5, retries=1)
    session.want(1, welcome())
    for reply, outcome in ((NACK_CRC_1, Outcome.NACK), (GARBLED_1, Outcome.GARBLED)):
        session.screens[1].health.news()
        assert session.next_write(1.0) is not None
        session.written(1.0)
        assert session.receive(reply, 1.1) == [Confirmed(1, outcome)]
    assert session.report(1.6).member_faults == {"WS1": [DeviceFault.GARBLED]}
    busy = bus("bx")
    busy.want(1, welcome())
    assert busy.next_write(2.0) is not None
    busy.written(2.0)
    assert busy.receive(BUSY_1, 2.1) == [Confirmed(1, Outcome.BUSY)]
    busy.want(1, welcome("请A001号到1号窗口"))  # news does not hurry a busy controller
    assert busy.next_write(2.19) is None and busy.deadline(2.19) == pytest.approx(2.2)  # 0.1 s
    assert busy.next_write(2.21) is not None


def test_news_while_a_frame_is_in_flight_is_written_next() -> None:
    session = bus("bx")
    session.want(1, welcome())
    assert session.next_write(0.0) is not None
    session.written(0.0)
    session.want(1, welcome("请A002号到1号窗口"))
    assert session.receive(ACK_1, 0.1) == [Confirmed(1, Outcome.ACK)]  # the ACK of 欢迎光临
    write = session.next_write(0.1)
    assert write is not None and "请A002号".encode("gbk") in write.frame


def test_an_idle_bx_screen_is_probed_and_its_silence_counts_from_its_last_ack() -> None:
    session = bus("bx", window(1, 1), window(2, 2), unreachable_after_s=2.0, retries=1)
    for address, ack, at in ((1, ACK_1, 0.0), (2, ACK_2, 0.1)):
        session.want(address, welcome())
        assert session.next_write(at) is not None
        session.written(at)
        session.receive(ack, at + 0.05)
    due = session.deadline(0.2)
    # Acked at 0.05, probed half a period on, but not within a second of the last news (0.15).
    assert due is not None and due == pytest.approx(1.15)
    sent = send(session, due)
    assert sent is not None
    probe, frame, _last = sent
    assert probe.probe and probe.address == 1 and frame == WELCOME_TO_1 and probe.part == (0, len(frame))
    reply_due = session.deadline(due)
    assert reply_due is not None and reply_due == pytest.approx(due + WIRE_S + 0.3)
    now = reply_due  # the wire time of its pieces, then the reply's
    assert session.timeout(now) == [Confirmed(1, Outcome.SILENT)]
    while session.report(now).members["WS1"] is DeviceState.OK:
        sent = send(session, now)
        if sent is not None:
            now = sent[2]
            reply = ACK_2 if sent[0].address == 2 else b""
            session.receive(reply, now + 0.01)
        now = session.deadline(now) or now + 1
        session.timeout(now)
    assert now == pytest.approx(2.05, abs=0.01)  # 2 s after its last ACK (and a reply timeout)
    report = session.report(now)
    assert report.state is DeviceState.WARNING and report.members["WS2"] is DeviceState.OK


def test_a_bus_without_probes_never_writes_an_idle_screen_and_finds_a_dead_one_at_its_next_write() -> None:
    session = LedSession("bx", 9600, [window(1, 1)], unreachable_after_s=2.0, retries=1, probes=False)
    session.opened()
    session.want(1, welcome())
    assert session.next_write(0.0) is not None
    session.written(0.0)
    session.receive(ACK_1, 0.05)
    assert session.deadline(0.1) is None  # idle: nothing until something arrives
    assert session.next_write(100.0) is None and not session.next_write_due(100.0)
    session.want(1, welcome("请A001号"))
    call = session.next_write(100.0)
    assert call is not None and not call.probe
    session.written(100.0)
    now = 100.0 + 0.3 + len(call.frame) * 10 / 9600
    assert session.timeout(now) == [Confirmed(1, Outcome.SILENT)]
    assert session.report(now + 1.9).members["WS1"] is DeviceState.OK  # counted from this failure
    assert session.report(now + 2.0).members["WS1"] is DeviceState.FAULT


def test_eq_written_is_shown_and_never_probed() -> None:
    session = bus("eq", window(1, 1), window(2, 2))
    session.want(1, window_regions("测试信息", 128, 32))
    session.want(2, window_regions("测试信息", 128, 32))
    first = session.next_write(0.0)
    assert first is not None and first.frame == b"!#001%1" + "测试信息".encode("gbk") + b"$$"  # §3
    assert session.written(0.0) == [Confirmed(1, Outcome.ACK)]
    assert session.state is LinkState.IDLE
    second = session.next_write(0.0)
    assert second is not None and second.frame == b"!#002%1" + "测试信息".encode("gbk") + b"$$"
    session.written(0.0)
    assert session.next_write(100.0) is None and session.deadline(100.0) is None  # no probes
    assert session.report(100.0).state is DeviceState.OK


def test_a_screen_its_protocol_cannot_address_is_faulted_and_the_others_written() -> None:
    session = bus("eq", window(1000, 1), window(2, 2))
    session.want(1000, welcome())
    session.want(2, welcome())
    write = session.next_write(0.0)
    assert write is not None and write.address == 2
    assert session.screens[1000].unencodable
    report = session.report(0.0)
    assert (report.state, report.faults) == (DeviceState.WARNING, (DeviceFault.UNENCODABLE,))
    assert report.members == {"WS1": DeviceState.FAULT, "WS2": DeviceState.OK}


def test_a_lost_port_reaches_no_screen_and_every_screen_is_written_when_it_is_back() -> None:
    session = bus("bx", window(1, 1), window(2, 2))
    for address, ack in ((1, ACK_1), (2, ACK_2)):
        session.want(address, welcome())
        assert session.next_write(0.0) is not None
        session.written(0.0)
        session.receive(ack, 0.1)
    assert session.next_write(0.2) is None
    assert session.next_write(3.0) is not None  # a probe in flight when the cable is pulled
    session.written(3.0)
    session.lost()
    report = session.report(3.1)
    assert (report.state, report.faults) == (DeviceState.FAULT, (DeviceFault.PORT_MISSING,))
    assert set(report.members.values()) == {DeviceState.FAULT}
    assert session.next_write(3.1) is None and session.receive(ACK_1, 3.1) == []
    session.opened()
    assert {session.screens[a].shown is None for a in (1, 2)} == {True}  # both written again
    first = session.next_write(3.2)
    assert first is not None and not first.probe


def test_an_illegal_transition_raises_and_changes_nothing() -> None:
    session = LedSession("bx", 9600, [window()])
    with pytest.raises(SessionError):
        session.written(0.0)  # nothing was handed out: the port is not even open
    assert state(session) is LinkState.CLOSED
    session.opened()
    session.want(1, welcome())
    assert session.next_write(0.0) is not None
    with pytest.raises(SessionError):
        session.opened()  # reopened while a frame is being written: cannot happen
    assert state(session) is LinkState.WRITING
    session.written(0.0)
    with pytest.raises(SessionError):
        session.written(0.1)
    assert state(session) is LinkState.AWAITING and session.deadline(0.1) == pytest.approx(0.3 + WIRE_S)
    assert (LinkState.AWAITING, LinkEvent.FRAME) not in TRANSITIONS  # one frame on the bus at a time


def test_news_goes_before_screens_only_written_again() -> None:
    session = bus("bx", window(1, 1), window(2, 2))
    for address, ack in ((1, ACK_1), (2, ACK_2)):
        session.want(address, welcome())
        assert session.next_write(0.0) is not None
        session.written(0.0)
        session.receive(ack, 0.1)
    session.rewrite_all()  # the periodic rewrite (a controller may have rebooted)
    session.want(2, welcome("请A001号到2号窗口"))  # and a call at window 2
    first = session.next_write(0.2)
    assert first is not None and first.address == 2 and "请A001号".encode("gbk") in first.frame
    session.written(0.2)
    session.receive(ACK_2, 0.3)
    second = send(session, 0.3)  # a routine rewrite: in pieces (it may be preempted)
    assert second is not None and second[0].address == 1 and second[1] == WELCOME_TO_1
    assert second[0].part == (0, len(WELCOME_TO_1))


def test_a_screen_is_rewritten_when_its_whole_content_was_not_written_for_refresh_s() -> None:
    session = LedSession("eq", 9600, [window(1, 1)], refresh_s=10.0)
    session.opened()
    session.want(1, window_regions("测试信息", 128, 32))
    first = session.next_write(0.0)
    assert first is not None
    session.written(0.0)
    assert session.next_write(9.9) is None and session.deadline(1.0) == 10.0  # EQ: never probed
    again = session.next_write(10.0)  # a controller that rebooted shows it again
    assert again is not None and again.frame == first.frame and not again.probe
    hall_bus = LedSession("bx", 9600, [hall(2)], refresh_s=10.0, unreachable_after_s=4.0)
    hall_bus.opened()
    hall_bus.want(2, hall_regions("请A001号到1号窗口", "", "请留意叫号", 256, 96))
    assert send(hall_bus, 0.0) is not None
    hall_bus.receive(ACK_2, 0.2)
    sent = send(hall_bus, 2.2)  # one area of three: the screen answers, the rest is not rewritten
    assert sent is not None and sent[0].probe
    hall_bus.receive(ACK_2, 2.3)
    assert hall_bus.deadline(2.3) == pytest.approx(6.2)  # the next probe, a period on
    whole = send(hall_bus, 10.2)
    assert whole is not None and not whole[0].probe and len(whole[1]) > len(sent[1])


# --- preemption (protocols.md §2: "A receiver treats any run of A5 as the frame head") ------------

PIECE_S = 2 * 10 / 9600  # the default piece at 9600 baud: 2 bytes


def acked(session: LedSession, address: int, regions: list[Region], reply: bytes, now: float) -> float:
    """``regions`` written to ``address`` (in pieces or whole) and acknowledged; when."""
    session.want(address, regions)
    sent = send(session, now)
    assert sent is not None and sent[0].address == address
    assert session.receive(reply, sent[2] + 0.05) == [Confirmed(address, Outcome.ACK)]
    return sent[2] + 0.05


def test_a_probe_is_dropped_between_pieces_for_a_call_and_the_call_written_at_once() -> None:
    session = bus("bx", window(1, 1), window(2, 2), unreachable_after_s=2.0)
    at = acked(session, 2, welcome(), ACK_2, 0.0)
    at = acked(session, 1, welcome("暂停服务"), ACK_1, at)
    shown_before = dict(session.screens[2].shown or {})
    due = session.deadline(at)
    assert due is not None and due == pytest.approx(at + 1.0)  # the hold-off after news
    probe = session.next_write(due)
    assert probe is not None and probe.probe and probe.address == 2
    assert probe.part == (0, len(WELCOME_TO_1)) and probe.frame == HEAD[:2]  # 2 bytes: ~2 ms at 9600
    session.written(due)
    assert state(session) is LinkState.SENDING
    assert session.deadline(due) == pytest.approx(due + PIECE_S)  # the next piece: these have left
    assert session.next_write(due + PIECE_S / 2) is None  # not yet: one piece in the UART at most
    second = session.next_write(due + PIECE_S)
    assert second is not None and second.part == (2, len(WELCOME_TO_1)) and second.frame == HEAD[2:4]
    session.written(due + PIECE_S)
    now = due + PIECE_S * 1.5
    assert session.receive(ACK_2, now) == []  # nothing is awaited from a frame still being sent
    session.want(1, welcome())  # the call at window 1, between two pieces
    assert session.deadline(now) == now  # due at once, not at the next piece
    call = session.next_write(now)
    assert call is not None and (call.address, call.frame, call.probe, call.part) == (
        1, WELCOME_TO_1, False, None)  # whole, its A5 run ends the probe at the controller
    assert state(session) is LinkState.WRITING
    session.written(now)
    # Its reply is due after the piece still in the UART and its own wire time.
    assert session.deadline(now) == pytest.approx(due + 2 * PIECE_S + WIRE_S + 0.3)
    assert session.receive(ACK_1, now + 0.1) == [Confirmed(1, Outcome.ACK)]
    assert session.screens[2].shown == shown_before and session.screens[2].health.tries == 0
    assert session.screens[2].preempted == 0  # a probe carries nothing new: never forced whole


def test_a_hall_screen_frame_dropped_for_a_call_is_sent_again_after_it() -> None:
    session = bus("bx", hall(2), window(1, 1))
    at = acked(session, 1, welcome("暂停服务"), ACK_1, 0.0)
    at = acked(session, 2, hall_regions("请A001号到1号窗口", "", "请留意叫号", 256, 96), ACK_2, at)
    shown_before = dict(session.screens[2].shown or {})
    session.want(2, hall_regions("请A001号到1号窗口", "公安局(B) 等候4人", "请留意叫号", 256, 96))
    first = session.next_write(at)
    assert first is not None and first.address == 2 and first.part is not None
    total = first.part[1]
    session.written(at)
    session.want(1, welcome())
    call = session.next_write(at + 0.001)
    assert call is not None and call.frame == WELCOME_TO_1 and call.part is None
    session.written(at + 0.001)
    assert session.screens[2].shown == shown_before and session.screens[2].preempted == 1
    assert session.receive(ACK_1, at + 0.2) == [Confirmed(1, Outcome.ACK)]
    again = send(session, at + 0.2)  # the waiting row again, from its head, every byte of it
    assert again is not None and again[0].address == 2 and again[0].part == (0, total)
    assert len(again[1]) == total and again[1].startswith(HEAD) and again[1].endswith(b"\x5a")
    assert session.receive(ACK_2, again[2] + 0.05) == [Confirmed(2, Outcome.ACK)]
    assert session.screens[2].changed("bx") == [] and session.screens[2].preempted == 0


def test_a_frame_preempted_twice_is_next_written_whole() -> None:
    session = bus("bx", hall(2), window(1, 1))
    at = acked(session, 1, welcome("暂停服务"), ACK_1, 0.0)
    session.want(2, hall_regions("请A001号到1号窗口", "公安局(B) 等候4人", "请留意叫号", 256, 96))
    for n, text in enumerate(("欢迎光临", "请A002号到1号窗口"), 1):
        piece = session.next_write(at)
        assert piece is not None and piece.address == 2 and piece.part is not None
        session.written(at)
        session.want(1, welcome(text))
        call = session.next_write(at)
        assert call is not None and call.address == 1 and call.part is None
        session.written(at)
        assert session.screens[2].preempted == n
        at += 0.2
        session.receive(ACK_1, at)
    whole = session.next_write(at)  # a busy hall cannot keep the hall screen stale for ever
    assert whole is not None and whole.address == 2 and whole.part is None and whole.frame.endswith(b"\x5a")
    session.written(at)
    session.want(1, welcome("欢迎光临"))  # news waits behind it now (and its reply)
    assert state(session) is LinkState.AWAITING and session.next_write(at) is None
    assert session.screens[2].preempted == 0  # on the wire whole: preemptible again next time
    assert session.receive(ACK_2, at + 0.4) == [Confirmed(2, Outcome.ACK)]
    call = session.next_write(at + 0.4)
    assert call is not None and call.frame == WELCOME_TO_1


def test_a_window_screens_news_and_eq_frames_are_never_in_pieces() -> None:
    session = bus("bx", hall(2), window(1, 1))
    session.want(1, welcome())
    session.want(2, hall_regions("请A001号到1号窗口", "", "请留意叫号", 256, 96))
    call = session.next_write(0.0)
    assert call is not None and call.frame == WELCOME_TO_1 and call.part is None
    eq_bus = bus("eq", hall(2), window(1, 1))
    assert eq_bus.piece_bytes == 0  # §3 has no "a new head ends an unfinished frame"
    eq_bus.want(2, hall_regions("请A001号到1号窗口", "", "请留意叫号", 256, 96))
    eq_bus.want(1, welcome())
    eq_bus.rewrite_all()  # routine rewrites, a hall screen's frame: all whole on EQ
    for _ in range(2):
        write = eq_bus.next_write(0.0)
        assert write is not None and write.part is None and write.frame.endswith(b"$$")
        assert eq_bus.written(0.0) == [Confirmed(write.address, Outcome.ACK)]
    assert LedSession("bx", 9600, [window()], piece_bytes=0).piece_bytes == 0  # preemption off
    assert LedSession("bx", 57600, [window()]).piece_bytes == 12  # ~2 ms at any baud


def test_sending_allows_only_its_own_events() -> None:
    session = bus("bx", hall(2), window(1, 1))
    session.want(2, hall_regions("请A001号到1号窗口", "", "请留意叫号", 256, 96))
    assert session.next_write(0.0) is not None
    session.written(0.0)
    assert state(session) is LinkState.SENDING
    with pytest.raises(SessionError):
        session.written(0.001)  # the next piece was not handed out
    assert state(session) is LinkState.SENDING and session.deadline(0.0) == pytest.approx(PIECE_S)
    assert session.timeout(10.0) == []  # no reply is due from a frame being sent
    for event in (LinkEvent.FRAME, LinkEvent.WRITTEN, LinkEvent.REPLY, LinkEvent.TIMEOUT):
        assert (LinkState.SENDING, event) not in TRANSITIONS
    for event in (LinkEvent.PIECE, LinkEvent.PREEMPTED):
        assert [s for s in LinkState if (s, event) in TRANSITIONS] == [LinkState.SENDING]
    session.lost()  # the cable pulled mid-frame: nothing of it is awaited
    assert state(session) is LinkState.CLOSED and session.next_write(1.0) is None
    session.opened()
    again = session.next_write(1.0)
    assert again is not None and again.part is not None and again.part[0] == 0


def test_probes_keep_a_second_away_from_news_but_not_for_ever() -> None:
    session = bus("bx", window(1, 1), window(2, 2), unreachable_after_s=2.0)
    at = acked(session, 1, welcome(), ACK_1, 0.0)
    at = acked(session, 2, welcome(), ACK_2, at)
    assert session.deadline(at) == pytest.approx(at + 1.0)  # screen 1 is due at 1.0 by its period
    now, news = at, 0
    while True:  # news on screen 2 every half second: screen 1 is probed two periods after its try
        due = session.deadline(now)
        assert due is not None
        if due > now + 0.5:
            now += 0.5
            news += 1
            now = acked(session, 2, welcome(f"请A00{news}号"), ACK_2, now)
            continue
        probe = session.next_write(due)
        assert probe is not None and probe.probe and probe.address == 1
        break
    tried = session.screens[1].tried_at
    assert due == pytest.approx(tried + 4.0) and news >= 6
