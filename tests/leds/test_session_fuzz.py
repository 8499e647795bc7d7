"""The LED session under any order of events (a reviewer's attack): random bytes from the bus,
replies in the middle of a preemptible frame, the port lost or reopened mid-piece, reports out of
turn. Sans-IO, no broker: the session must raise nothing but SessionError (changing nothing), and
once the bus is quiet and every reply is an ACK, every screen ends showing what it should."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hall_devices.leds import bx
from hall_devices.leds.frames import Region, hall_regions, window_regions
from hall_devices.leds.session import LedSession, LinkState, SessionError
from hall_devices.leds.supervision import Outcome
from tests.leds.test_session import ACK_1, ACK_2, BUSY_1, GARBLED_1, NACK_CRC_1, hall, window

ACKS = {1: ACK_1, 2: ACK_2}
CALLS = ["请A001号到1号窗口", "请B012号到3号窗口", "暂停服务", "欢迎光临"]


def wanted(address: int, i: int) -> list[Region]:
    if address == 1:
        return window_regions(CALLS[i], 128, 32)
    return hall_regions(CALLS[i], CALLS[(i + 1) % len(CALLS)], "请留意叫号", 256, 96)


ACTION = st.one_of(
    st.tuples(st.just("want"), st.sampled_from([1, 2]), st.integers(0, len(CALLS) - 1)),
    st.tuples(st.sampled_from(["opened", "lost", "next", "written", "ack", "timeout", "rewrite"])),
    st.tuples(st.just("receive"), st.one_of(
        st.binary(max_size=40),
        st.sampled_from([ACK_1, ACK_2, BUSY_1, NACK_CRC_1, GARBLED_1, ACK_1[:9], ACK_2[5:], b"\xa5" * 3]))),
    st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
    st.tuples(st.just("pump"), st.integers(1, 12)),
)


class Wire:
    """What the controllers heard: every byte handed out, cut into frames as a controller does
    (any A5 run a head). An ACK may confirm only a frame whose every byte went out, unbroken."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.last: bytes | None = None  # the last whole frame's body

    def out(self, data: bytes) -> None:
        self.buffer += data
        for _raw, body in bx.take_frames(self.buffer):
            self.last = body

    def acked(self, session: LedSession, data: bytes, now: float) -> None:
        flight = session._in_flight
        confirmed = session.receive(data, now)
        if confirmed and confirmed[0].outcome is Outcome.ACK:
            assert flight is not None
            whole = flight.frame.lstrip(b"\xa5")[:-1]
            assert self.last == whole, "an ACK confirmed a frame never whole on the wire"


def step(session: LedSession, wire: Wire, action: tuple[object, ...], now: float) -> float:
    kind = action[0]
    if kind == "want":
        address, i = action[1], action[2]
        assert isinstance(address, int) and isinstance(i, int)
        session.want(address, wanted(address, i))
    elif kind == "opened":
        session.opened()
    elif kind == "lost":
        session.lost()
    elif kind == "next":
        if (write := session.next_write(now)) is not None:
            wire.out(write.frame)
    elif kind == "written":
        session.written(now)
    elif kind == "ack":
        flight = session._in_flight
        wire.acked(session, ACKS[flight.screen.device.address if flight else 1], now)
    elif kind == "timeout":
        due = session.deadline(now)
        now = max(now, due) if due is not None else now
        session.timeout(now)
    elif kind == "pump":  # pieces handed out and written as they fall due
        count = action[1]
        assert isinstance(count, int)
        for _ in range(count):
            if session.state is LinkState.WRITING:
                session.written(now)
            elif (write := session.next_write(now)) is not None:
                wire.out(write.frame)
            elif session.state is LinkState.SENDING and (due := session.deadline(now)) is not None:
                now = max(now, due)
    elif kind == "rewrite":
        session.rewrite_all()
    elif kind == "receive":
        data = action[1]
        assert isinstance(data, bytes)
        wire.acked(session, data, now)
    elif kind == "tick":
        delta = action[1]
        assert isinstance(delta, float)
        now += delta
    session.report(now)
    session.deadline(now)
    return now


def settle(session: LedSession, wire: Wire, now: float) -> float:
    """The quiet bus: every frame written at once, every reply an ACK, time moved to each deadline,
    until every screen shows what it should (bounded)."""
    if session.state is LinkState.CLOSED:
        session.opened()
    for _ in range(5000):
        if all(s.shown is not None and all(s.shown.get(r.area_id) == r for r in s.wanted)
               for s in session.screens.values() if s.wanted) and session.state is LinkState.IDLE:
            return now
        if session.state is LinkState.WRITING:
            session.written(now)
        elif session.state is LinkState.AWAITING:
            flight = session._in_flight
            assert flight is not None
            now = max(now, flight.written_at)
            wire.acked(session, ACKS[flight.screen.device.address], now)
        elif (write := session.next_write(now)) is not None:
            wire.out(write.frame)
            session.written(now)
            assert write.frame
        else:
            due = session.deadline(now)
            assert due is not None, "nothing due, yet a screen does not show what it should"
            now = max(now, due)
    raise AssertionError("the quiet bus never settled")


@settings(max_examples=400, deadline=None)
@given(st.lists(ACTION, max_size=60), st.booleans(), st.sampled_from([None, 16, 64]))
def test_any_event_order_raises_only_session_error_and_the_quiet_bus_settles(
        actions: list[tuple[object, ...]], start_open: bool, piece_bytes: int | None) -> None:
    session = LedSession("bx", 9600, (window(1), hall(2)), piece_bytes=piece_bytes)
    if start_open:
        session.opened()
    now, wire = 100.0, Wire()
    for action in actions:
        before = (session.state, session._in_flight)
        try:
            now = step(session, wire, action, now)
        except SessionError:
            assert (session.state, session._in_flight) == before, action
    settle(session, wire, now)
