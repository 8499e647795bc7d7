"""The console's window query (sans-IO): the current ticket's details and the no-shows to pick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hall_devices.contract import QueryKind, QueryRequest, WindowQueueAnswer
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.queries import answer
from hall_devices.layout import Layout
from tests.coordinator.test_engine import act, issue, reply

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def window_queue(engine: Engine, window: int, now: datetime) -> WindowQueueAnswer:
    query = QueryRequest(command_id="q", kind=QueryKind.WINDOW_QUEUE, window=window)
    found = answer(engine, lambda first, last: [], query, now)
    assert isinstance(found, WindowQueueAnswer)
    return found


def test_the_current_ticket_and_the_no_shows_of_a_window(layout: Layout) -> None:
    engine = Engine(layout)
    issue(engine, "passport", T0)
    issue(engine, "passport", T0 + timedelta(minutes=1), "priority")
    assert reply(act(engine, 6, "login", T0, clerk_id="Z0601")).ok
    assert window_queue(engine, 6, T0).current is None
    assert reply(act(engine, 6, "next", T0 + timedelta(minutes=9))).ok  # the priority ticket first
    data = window_queue(engine, 6, T0 + timedelta(minutes=12))
    current = data.current
    assert current is not None
    assert current.ticket_class == "priority" and current.waited_min == 8  # issue → first call
    passport = next(s for s in layout.services if s.id == "passport")
    assert current.service == passport.name.zh
    assert current.materials == [m.zh for m in passport.materials]
    assert reply(act(engine, 6, "no_show", T0 + timedelta(minutes=13))).ok
    shown = window_queue(engine, 6, T0 + timedelta(minutes=14))
    assert shown.current is None and shown.no_show == [current.number]
    late = T0 + timedelta(minutes=14 + layout.policy.no_show_reactivate_minutes)
    assert window_queue(engine, 6, late).no_show == []  # too late to reactivate: not offered
