"""Queries over stored days run on a read connection off the write thread (reads.py): a month of
statistics in flight never delays a Next (a real coordinator on a real Mosquitto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hall_devices.contract import (
    QUERY,
    WINDOW_COMMAND,
    QueryKind,
    QueryRequest,
    RatingLevel,
    TicketClass,
    WindowAction,
    WindowCommand,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.calendar import business_day
from hall_devices.coordinator.model import STATE_ADAPTER, State
from hall_devices.coordinator.store import EventRow, EventStore
from hall_devices.layout import Layout
from tests.coordinator.harness import Hall
from tests.support import HallBroker, probe

OCTOBER = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in the hall
DAYS, PER_DAY = 31, 200


def served(layout: Layout, day_start: datetime, n: int) -> list[ev.Event]:
    """Ticket ``n`` of a day: issued, called, served and rated 满意 at window 6."""
    at = day_start + timedelta(minutes=n)
    day = business_day(layout.hall, at)
    tid = f"{day}-B{n:03d}"
    return [
        ev.TicketIssued(at=at, ticket_id=tid, number=f"B{n:03d}", prefix="B", seq=n, day=day,
                        service_id="passport", ticket_class=TicketClass.NORMAL, token=f"tok-{tid}"),
        ev.TicketCalled(at=at + timedelta(minutes=5), ticket_id=tid, window=6, higher_class=False),
        ev.ServiceStarted(at=at + timedelta(minutes=6), ticket_id=tid, window=6),
        ev.TicketFinished(at=at + timedelta(minutes=9), ticket_id=tid, window=6, clerk_id="c06",
                          prompt_id=f"{tid}-r", rating_expires_at=at + timedelta(minutes=10)),
        ev.RatingRecorded(at=at + timedelta(minutes=9, seconds=20), rating_id=f"r-{tid}",
                          prompt_id=f"{tid}-r", ticket_id=tid, ticket_number=f"B{n:03d}",
                          service_id="passport", department_id="public_security", window=6,
                          clerk_id="c06", level=RatingLevel.SATISFIED, reasons=[], channel="pad",
                          rated_at=at + timedelta(minutes=9, seconds=20)),
    ]


def seed_a_month(layout: Layout, path: Path) -> int:
    """October's events in the store, with a snapshot after them (the hall's state today holds
    none of those days' tickets); returns how many tickets were issued."""
    store = EventStore(path)
    rows = [EventRow(e.kind, e.at.isoformat(), business_day(layout.hall, e.at), None, ev.event_json(e))
            for d in range(DAYS) for n in range(1, PER_DAY + 1)
            for e in served(layout, OCTOBER + timedelta(days=d), n)]
    store.commit(rows, [])
    store.save_snapshot(store.last_seq, OCTOBER.isoformat(), STATE_ADAPTER.dump_json(State()))
    store.close()
    return DAYS * PER_DAY


def test_a_next_is_answered_while_a_month_of_statistics_is_computed(own_broker: HallBroker, layout: Layout,
                                                                      tmp_path: Path) -> None:
    store = tmp_path / "coordinator.sqlite3"
    issued = seed_a_month(layout, store)
    hall = Hall(own_broker, layout, store)
    answers = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                    subscribe=["hall/demo/query/web/reply", "hall/demo/window/6/result"])
    try:
        hall.ok(6, "login", clerk_id="c06")
        hall.take("passport")
        web = hall.web.bus
        month = QueryRequest(command_id="q-month", kind=QueryKind.STATISTICS, first_day="2026-10-01",
                             last_day="2026-10-31")
        # One client, one connection: the coordinator receives the query before the Next.
        web.publish(QUERY, month, client="web")
        web.publish(WINDOW_COMMAND, WindowCommand(command_id="next-1", action=WindowAction.NEXT), window=6)
        order: list[dict[str, Any]] = []
        while len(order) < 2:
            message = answers.expect(lambda m: m.topic.endswith(("query/web/reply", "window/6/result"))
                                     and json.loads(m.payload)["command_id"] in ("q-month", "next-1"))
            order.append(json.loads(message.payload))
        assert [a["command_id"] for a in order] == ["next-1", "q-month"]
        assert order[0]["ok"] and order[0]["ticket"]["number"] == "B001"
        stats, = [a for a in order if a["command_id"] == "q-month"]
        assert stats["ok"], stats
        total = {(r["dimension"], r["key"]): r for r in stats["data"]["rows"]}[("total", "")]
        assert (total["issued"], total["served"]) == (issued, issued)  # the whole month was read
    finally:
        answers.stop()
        hall.stop()

