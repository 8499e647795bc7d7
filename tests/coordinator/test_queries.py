"""Read-only queries: history that names a service a later layout removed is shown by its id, never
a KeyError (engine level, the time passed in); a query that raises anyway is answered with an error
(a real coordinator on a real Mosquitto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hall_devices.contract import (
    QUERY,
    AppointmentsAnswer,
    QueryKind,
    QueryReply,
    QueryRequest,
    RatingLevel,
    RatingsAnswer,
    StatisticsAnswer,
    TicketClass,
    WindowQueueAnswer,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.model import Appointment
from hall_devices.coordinator.queries import Answer, answer
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import Inbound
from tests.coordinator.harness import Hall
from tests.support import probe

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in the hall
DAY = "2026-11-23"


def passport_day() -> list[ev.Event]:
    """One passport ticket served at window 6 and rated 不满意 (a 差评)."""
    return [
        ev.TicketIssued(at=T0, ticket_id="T1", number="B001", prefix="B", seq=1, day=DAY,
                        service_id="passport", ticket_class=TicketClass.NORMAL, token="tok1"),
        ev.TicketCalled(at=T0 + timedelta(minutes=5), ticket_id="T1", window=6, higher_class=False),
        ev.ServiceStarted(at=T0 + timedelta(minutes=6), ticket_id="T1", window=6),
        ev.TicketFinished(at=T0 + timedelta(minutes=16), ticket_id="T1", window=6, clerk_id="c06",
                          prompt_id="P1", rating_expires_at=T0 + timedelta(minutes=17)),
        ev.RatingRecorded(at=T0 + timedelta(minutes=16, seconds=20), rating_id="r1", prompt_id="P1",
                          ticket_id="T1", ticket_number="B001", service_id="passport",
                          department_id="gone_department", window=6, clerk_id="c06",
                          level=RatingLevel.DISSATISFIED, reasons=["等候太久"], channel="pad",
                          rated_at=T0 + timedelta(minutes=16, seconds=20)),
    ]


def without_passport(layout: Layout) -> Layout:
    windows = [w.model_copy(update={"primary": [s for s in w.primary if s != "passport"]})
               for w in layout.windows]
    return layout.model_copy(update={"services": [s for s in layout.services if s.id != "passport"],
                                     "windows": windows})


def test_history_and_bookings_of_a_removed_service_are_shown_by_its_id(layout: Layout) -> None:
    engine = Engine(without_passport(layout))
    engine.state.appointments["A1"] = Appointment("A1", "passport", T0 + timedelta(days=1),
                                                  T0 + timedelta(days=1, minutes=30))
    stored = [ev.event_json(e) for e in passport_day()]
    now = T0 + timedelta(days=1, hours=2)

    def ask(kind: QueryKind, day: str) -> Answer:
        return answer(engine, lambda _first, _last: stored,
                      QueryRequest(command_id=f"q-{kind}", kind=kind, first_day=day), now)

    figures = ask(QueryKind.STATISTICS, DAY)
    assert isinstance(figures, StatisticsAnswer)
    rows = {(r.dimension, r.key): r for r in figures.rows}
    assert rows[("service", "passport")].name == "passport"
    assert (rows[("service", "passport")].issued, rows[("service", "passport")].served) == (1, 1)
    assert rows[("total", "")].served == 1
    assert not any(d == "department" and r.served for (d, _k), r in rows.items())  # none to count under
    ratings = ask(QueryKind.RATINGS, DAY)
    assert isinstance(ratings, RatingsAnswer)
    assert [(r.service, r.department, r.level) for r in ratings.ratings] == [
        ("passport", "gone_department", 2)]
    bookings = ask(QueryKind.APPOINTMENTS, "2026-11-24")
    assert isinstance(bookings, AppointmentsAnswer)
    assert [(b.code, b.service) for b in bookings.appointments] == [("A1", "passport")]


def test_a_query_that_raises_is_an_error_reply_and_the_coordinator_goes_on(hall: Hall) -> None:
    replies = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                    subscribe=["hall/demo/query/probe/reply"])
    # A window given as a list (past the contract's checks): the lookup raises TypeError.
    wrong: dict[str, Any] = {"window": [6]}  # typed Any: the wrong type is the point
    odd = QueryRequest.model_construct(command_id="q-odd", kind=QueryKind.WINDOW_QUEUE, **wrong,
                                       schema_version=1)
    route_ = QUERY
    hall.service.worker.post(Inbound(route_, route_.topic(hall="demo", client="probe"),
                                    {"hall": "demo", "client": "probe"}, odd, False, False, 0, 0))
    reply = json.loads(replies.expect(lambda m: True).payload)
    assert (reply["command_id"], reply["ok"], reply["error"]["code"]) == ("q-odd", False, "internal_error")
    assert reply["error"]["message"].startswith("查询失败")
    assert hall.service.store.count("dead_letters") == 0  # a read: nothing to keep or re-run
    good = QueryRequest(command_id="q-good", kind=QueryKind.WINDOW_QUEUE, window=6)
    answered = hall.web.requests.call(route_, good, client="web")
    queue = answered.answer_as(WindowQueueAnswer)
    assert isinstance(answered, QueryReply) and answered.ok and queue is not None and queue.window == 6
    replies.stop()
