"""The queue engine alone (sans-IO): lifecycle tables and properties over random command streams."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hall_devices.contract import (
    StaffAction,
    StaffCommand,
    StaffResult,
    TicketClass,
    TicketReply,
    TicketRequest,
    TicketStatus,
    WindowAction,
    WindowCommand,
    WindowCommandResult,
    WindowStatus,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.model import CLASS_RANK, STATE_ADAPTER, Ticket
from hall_devices.coordinator.outcome import ActAsStaff, ActAtWindow, Outcome, TakeTicket
from hall_devices.coordinator.policy import QueueIndex
from hall_devices.coordinator.tables import WINDOW_TABLE
from hall_devices.layout import Layout

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
_ids = itertools.count()


def cmd(action: str, **fields: object) -> WindowCommand:
    return WindowCommand(command_id=f"c{next(_ids)}", action=WindowAction(action), **fields)


def issue(engine: Engine, service: str, at: datetime, ticket_class: str = "normal") -> str:
    if ticket_class == "green":
        out = engine.handle(ActAsStaff("web", StaffCommand(
            command_id=f"s{next(_ids)}", action=StaffAction.ISSUE_GREEN, staff_id="m", service_id=service)),
            at, token="t")
    else:
        out = engine.handle(TakeTicket("K1", TicketRequest(
            command_id=f"k{next(_ids)}", service_id=service, ticket_class=ticket_class,
            paper=False)), at, token="t")
    assert out.reply is not None and out.reply.ok, out.reply
    assert isinstance(out.reply, TicketReply | StaffResult) and out.reply.ticket is not None, out.reply
    return out.reply.ticket.ticket_id


def act(engine: Engine, window: int, action: str, at: datetime, **fields: object) -> Outcome:
    return engine.handle(ActAtWindow(window, cmd(action, **fields)), at)


def reply(outcome: Outcome) -> WindowCommandResult:
    """A window command's answer: each has one, refused or not."""
    assert isinstance(outcome.reply, WindowCommandResult), outcome
    return outcome.reply


def snapshot(engine: Engine) -> bytes:
    return STATE_ADAPTER.dump_json(engine.state)


def put_window_in(engine: Engine, status: WindowStatus) -> None:
    if status is WindowStatus.CLOSED:
        return
    login = act(engine, 6, "login", T0, clerk_id="Z1").reply
    assert login is not None and login.ok, login
    if status is WindowStatus.PAUSED:
        act(engine, 6, "pause", T0)
    elif status in (WindowStatus.CALLING, WindowStatus.SERVING):
        issue(engine, "passport", T0)
        act(engine, 6, "next", T0)
        if status is WindowStatus.SERVING:
            act(engine, 6, "start", T0)
    assert engine.state.windows[6].status is status


@pytest.mark.parametrize("status", list(WindowStatus))
@pytest.mark.parametrize("action", list(WindowAction))
def test_window_table(layout: Layout, status: WindowStatus, action: WindowAction) -> None:
    engine = Engine(layout)
    put_window_in(engine, status)
    before = snapshot(engine)
    fields = {"clerk_id": "Z2", "ticket_number": "B001", "target_service": "hukou_in", "reason": "r"}
    outcome = act(engine, 6, action.value, T0 + timedelta(seconds=1), **fields)
    assert outcome.reply is not None
    if (status, action) not in WINDOW_TABLE:
        assert outcome.reply.error and outcome.reply.error.code == "wrong_state"
        assert status.value in outcome.reply.error.message
    if not outcome.reply.ok:
        assert snapshot(engine) == before, "a refused command changed the state"
        assert outcome.events == [] and outcome.effects == []
    else:
        assert engine.state.windows[6].status is WINDOW_TABLE[(status, action)]


def test_replay_rebuilds_the_same_state(layout: Layout) -> None:
    recorder = Engine(layout)
    every = []
    for out in (
        recorder.handle(TakeTicket("K1", TicketRequest(command_id="a", service_id="passport", paper=False)),
                        T0, token="t"),
        recorder.handle(ActAtWindow(6, cmd("login", clerk_id="Z1")), T0),
        recorder.handle(ActAtWindow(6, cmd("next")), T0),
        recorder.handle(ActAtWindow(6, cmd("finish")), T0 + timedelta(minutes=7)),
    ):
        every += out.events  # in the order they were committed, as the store keeps them
    replayed = Engine(layout)
    for event in every:
        replayed.replay(ev.event_from_json(ev.event_json(event)))
    assert snapshot(replayed) == snapshot(recorder)


RANK = {"green": 0, "appointment": 1, "transferred": 2, "priority": 3, "normal": 4}
SERVICES = ["passport", "hukou_in", "id_card", "company_setup", "sole_trader"]
WINDOWS = [4, 5, 6, 1, 2]
op = st.one_of(
    st.tuples(st.just("issue"), st.sampled_from(SERVICES),
              st.sampled_from(["normal", "normal", "priority", "green"])),
    st.tuples(st.just("open"), st.sampled_from(WINDOWS), st.just("")),
    st.tuples(st.just("next"), st.sampled_from(WINDOWS), st.just("")),
    st.tuples(st.just("finish"), st.sampled_from(WINDOWS), st.just("")),
    st.tuples(st.just("no_show"), st.sampled_from(WINDOWS), st.just("")),
    st.tuples(st.just("transfer"), st.sampled_from(WINDOWS), st.sampled_from(SERVICES)),
    st.tuples(st.just("wait"), st.integers(1, 15), st.just("")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(op, max_size=80))
def test_call_properties(layout: Layout, ops: list[tuple[str, int | str, str]]) -> None:
    engine = Engine(layout)
    now = T0
    calls: dict[str, int] = {}
    entries: dict[str, int] = {}  # times each ticket (re-)entered the queue

    levels = {w.number: dict(layout.window_services(w)) for w in layout.windows}

    def expected_key(ticket: Ticket, window: int) -> tuple[int, int, tuple[int, int], str] | None:
        """The order DESIGN.md states, written independently of the engine's policy module."""
        if ticket.target_window is not None:
            level = 1 if ticket.target_window == window else None
        else:
            level = levels[window].get(ticket.service_id)
        if level is None:
            return None
        return (RANK[ticket.ticket_class.value], level, ticket.place, ticket.ticket_id)

    def check_next(window: int) -> None:
        state = engine.state
        runtime = state.windows.get(window)
        in_row = runtime.higher_in_row if runtime else 0
        candidates = [(key, t) for t in state.tickets.values()
                      if t.status is TicketStatus.WAITING and (key := expected_key(t, window)) is not None]
        reply = act(engine, window, "next", now).reply
        assert isinstance(reply, WindowCommandResult), reply
        if not reply.ok:
            assert not candidates or (reply.error is not None and reply.error.code == "wrong_state")
            return
        assert reply.ticket is not None, reply
        called = state.tickets[reply.ticket.ticket_id]
        calls[called.ticket_id] = calls.get(called.ticket_id, 0) + 1
        best = min(candidates, key=lambda c: c[0])[1]
        if called is best:
            return
        # Only the starvation guard may pass over the best: a starved normal ticket, oldest first.
        policy = layout.policy
        assert best.ticket_class is not TicketClass.NORMAL and in_row >= policy.starvation_max_in_row
        assert called.ticket_class is TicketClass.NORMAL
        assert now - called.issued_at > timedelta(minutes=policy.starvation_wait_minutes)

    for kind, arg, extra in ops:
        if kind == "issue":
            tid = issue(engine, str(arg), now, extra)
            entries[tid] = 1
        elif kind == "open":
            act(engine, int(arg), "login", now, clerk_id=f"Z{arg}")
        elif kind == "next":
            check_next(int(arg))
        elif kind == "transfer":
            out = act(engine, int(arg), "transfer", now, target_service=extra)
            assert isinstance(out.reply, WindowCommandResult), out.reply
            if out.reply.ok:
                assert out.reply.ticket is not None, out.reply
                tid = out.reply.ticket.ticket_id
                entries[tid] += 1
        elif kind == "wait":
            now += timedelta(minutes=int(arg))
        else:
            act(engine, int(arg), kind, now)
        # The incrementally kept queue index equals one rebuilt from the state.
        fresh = QueueIndex(engine.services)
        fresh.rebuild(engine.state)
        assert fresh.keys == engine.index.keys and fresh.per_service == {
            k: v for k, v in engine.index.per_service.items() if v}
        # A ticket is at one window at most; a window shows the ticket it calls.
        at_windows = [w.ticket_id for w in engine.state.windows.values() if w.ticket_id]
        assert len(at_windows) == len(set(at_windows))
    for tid, count in calls.items():
        assert count <= entries[tid], f"{tid} called {count} times for {entries[tid]} queue entries"

    # Drain: every open window calls and finishes until nothing is left it may serve.
    open_windows = [w for w, r in engine.state.windows.items() if r.status is not WindowStatus.CLOSED]
    for window in open_windows:
        if engine.state.windows[window].status is WindowStatus.PAUSED:
            act(engine, window, "resume", now)
        if engine.state.windows[window].ticket_id:
            act(engine, window, "finish", now)
    progress = True
    while progress:
        progress = False
        for window in open_windows:
            before = len(calls)
            check_next(window)
            finished = act(engine, window, "finish", now).reply
            assert finished is not None, window
            if finished.ok:
                progress = True
            progress |= len(calls) != before
    for ticket in engine.state.tickets.values():
        if ticket.status is TicketStatus.WAITING:
            assert not any(expected_key(ticket, w) is not None for w in open_windows), (
                f"{ticket.number} is waiting although an open window may serve it")


def test_class_ranks_are_total() -> None:
    assert sorted(CLASS_RANK, key=CLASS_RANK.__getitem__) == [
        TicketClass.GREEN, TicketClass.APPOINTMENT, TicketClass.TRANSFERRED, TicketClass.PRIORITY,
        TicketClass.NORMAL]
