"""An event PostgreSQL refuses is parked, once, and its hall's stream goes on past it (real PostgreSQL,
and a real regional Mosquitto for the service). Before parking, such an event stalled its hall for
good: refused, asked for again, refused again."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from hall_devices.contract import REGION_EVENTS_IN, REGION_RESEND_OUT, ForwardedEvent, RegionEvents
from hall_devices.mqtt.bus import encode
from hall_devices.region import views
from hall_devices.region.db import RegionDb, RegionDbError
from hall_devices.region.parking import refused_data
from hall_devices.region.pgcluster import PgCluster
from hall_devices.region.service import RegionService
from tests.region.conftest import fresh_database
from tests.region.rig import DISTRICT, RegionBroker, start_region_broker
from tests.region.test_outbox import forwarded, hall_day
from tests.support import Probe, probe, wait_until

_halls = itertools.count(1)
# What a hall's event may carry past the contract's schema and PostgreSQL refuses, with the SQLSTATE
# it answers (None: the driver refuses it before sending).
REFUSED: list[tuple[str, str, str | None]] = [
    ("day", "2026-02-30", "22008"),
    ("day", "not-a-date", "22007"),
    ("body", "not json", "22P02"),
    ("body", '{"a": "\\u0000"}', "22P05"),  # an escaped NUL: JSON, but no text jsonb keeps
    ("body", '{"a": "\\ud800"}', "22P02"),  # an escaped lone surrogate
    ("body", "1e999999", "22003"),
    ("body", "[" * 100_000 + "]" * 100_000, "54001"),  # nested beyond the server's stack depth
    # a ticket id too long for the events_by_ticket index row (random: compression cannot save it)
    ("body", json.dumps({"ticket_id": secrets.token_hex(4000)}), "54000"),
    ("body", '{"a": "\ud800"}', None),  # a lone surrogate itself: no UTF-8 for it (the bus refuses it)
    ("kind", "ticket_called\x00", None),  # a NUL in text (the bus refuses it)
]


def spoiled(events: list[ForwardedEvent], index: int, field: str, value: str) -> list[ForwardedEvent]:
    out = list(events)
    out[index] = out[index].model_copy(update={field: value})
    return out


def parked_rows(url: str, hall: str) -> list[tuple[int, str, str, bytes, str | None]]:
    with psycopg.connect(url) as conn:
        return [(int(r[0]), str(r[1]), str(r[2]), bytes(r[3]), r[4]) for r in conn.execute(
            "SELECT seq, kind, day, body, sqlstate FROM parked_events WHERE hall_id = %s ORDER BY seq",
            (hall,))]


def records(url: str, hall: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute(
            "SELECT record_id FROM rating_records WHERE hall_id = %s ORDER BY seq", (hall,))]


@pytest.fixture(scope="module")
def db(region_db: str) -> Iterator[RegionDb]:
    store = RegionDb(region_db)
    yield store
    store.close()


def new_hall(db: RegionDb) -> str:
    hall = f"d{next(_halls)}"
    db.register(hall, DISTRICT)
    return hall


@pytest.mark.parametrize(("field", "value", "sqlstate"), REFUSED,
                         ids=[f"{f}-{s or 'driver'}-{n}" for n, (f, _v, s) in enumerate(REFUSED)])
def test_an_event_postgresql_refuses_is_parked_and_the_events_around_it_are_stored(
        db: RegionDb, field: str, value: str, sqlstate: str | None) -> None:
    hall = new_hall(db)
    day = forwarded(hall_day())
    events = spoiled(day, 2, field, value)  # T1's service_started, before its rating
    parked = db.apply(hall, 0, events)
    assert [(p.seq, p.sqlstate) for p in parked] == [(3, sqlstate)], parked
    assert [m.applied for m in db.marks() if m.hall_id == hall] == [len(events)]
    assert db.event_seqs(hall) == [s for s in range(1, len(events) + 1) if s != 3]
    # Both 好差评 records of the day are made: the rating and the 未评价 after the parked event.
    assert records(db.url, hall) == [f"{hall}:r-1", f"{hall}:unrated:P2"]
    # Kept as sent: the body's bytes exactly, the kind and day readable.
    one = events[2]
    [(seq, kind, stored_day, body, state)] = parked_rows(db.url, hall)
    assert (seq, state) == (3, sqlstate)
    assert body.decode("utf-8", "surrogatepass") == one.body
    assert (kind, stored_day) == ((one.kind, one.day) if field != "kind" else ("ticket_called\\x00", one.day))


def test_several_refused_events_in_a_long_batch_are_each_parked_and_the_rest_stored_in_order(
        db: RegionDb) -> None:
    hall = new_hall(db)
    base = forwarded(hall_day())[0]
    events = [base.model_copy(update={"seq": s, "body": json.dumps({"ticket_id": f"T{s}"})})
              for s in range(1, 501)]
    bad = [1, 2, 250, 251, 377, 500]
    for seq in bad:
        events = spoiled(events, seq - 1, "day", "2026-02-30")
    assert [p.seq for p in db.apply(hall, 0, events)] == bad
    assert db.event_seqs(hall) == [s for s in range(1, 501) if s not in bad]  # in the hall's order
    assert [r[0] for r in parked_rows(db.url, hall)] == bad


def test_a_lock_timeout_parks_nothing_and_the_batch_is_stored_when_tried_again(db: RegionDb) -> None:
    """An error of the moment is not the event's: nothing parked, nothing stored, the mark kept."""
    hall = new_hall(db)
    events = spoiled(forwarded(hall_day()), 2, "day", "2026-02-30")
    with psycopg.connect(db.url) as other, other.transaction():
        other.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        db.conn.execute("SET lock_timeout = '100ms'")
        try:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                db.apply(hall, 0, events)
        finally:
            db.conn.execute("RESET lock_timeout")
    assert [m.applied for m in db.marks() if m.hall_id == hall] == [0]
    assert parked_rows(db.url, hall) == [] and db.event_seqs(hall) == []
    assert [p.seq for p in db.apply(hall, 0, events)] == [3]


def test_a_later_copy_is_stored_in_one_transaction_once(db: RegionDb) -> None:
    """The store's side: what differs from the parked event is stored, once; a second region process
    (another connection) finds the row replaced and stores nothing."""
    hall = new_hall(db)
    day = forwarded(hall_day())
    assert [p.seq for p in db.apply(hall, 0, spoiled(day, 0, "day", "2026-02-30"))] == [1]
    assert db.parked_seqs(hall) == {hall: {1}}
    assert db.store_copy(hall, spoiled(day, 0, "day", "2026-02-30")[0]).outcome == "same"
    refused = db.store_copy(hall, spoiled(day, 0, "body", "not json")[0])
    assert (refused.outcome, refused.sqlstate) == ("refused", "22P02")
    other = RegionDb(db.url)
    try:
        assert other.store_copy(hall, day[0]).outcome == "stored"
    finally:
        other.close()
    assert db.store_copy(hall, day[0]).outcome == "gone" and db.parked_seqs(hall) == {}
    assert sorted(db.event_seqs(hall)) == list(range(1, len(day) + 1))
    # T1's ticket_issued, stored late: the ticket's record made after it was not remade
    assert records(db.url, hall) == [f"{hall}:r-1", f"{hall}:unrated:P2"]


# --- the service, over a real regional broker ----------------------------------------------------

HALLS = ("p1", "p2", "p3", "p4")


@dataclass
class Stack:
    broker: RegionBroker
    db_url: str
    halls: dict[str, Probe]  # each hall's account on the regional broker, as its bridge signs in
    resends: Probe

    def service(self) -> RegionService:
        service = RegionService(self.broker.settings("region"), self.db_url)
        service.start(wait_s=10)
        return service

    def send(self, hall: str, events: list[ForwardedEvent], head: int, resend_of: str | None = None) -> None:
        message = RegionEvents(hall_id=hall, events=events, head=head, resend_of=resend_of)
        topic = REGION_EVENTS_IN.topic(district=DISTRICT, site=hall)
        self.halls[hall].client.publish(topic, encode(message), qos=1).wait_for_publish(5)

    def applied(self, hall: str) -> int:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute("SELECT applied FROM halls WHERE hall_id = %s", (hall,)).fetchone()
        return -1 if row is None else int(row[0])

    def stored(self, hall: str) -> list[int]:
        with psycopg.connect(self.db_url) as conn:
            return [int(r[0]) for r in conn.execute("SELECT seq FROM events WHERE hall_id = %s "
                                                    "ORDER BY ingest_id", (hall,))]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg_cluster: PgCluster) -> Iterator[Stack]:
    broker = start_region_broker(tmp_path_factory.mktemp("parking-region") / "broker", HALLS, ("watch1",))
    port, credentials = broker.port, broker.credentials
    halls = {h: probe(port, f"hall-{h}", credentials[f"hall-{h}"], client_id=f"hall-{h}") for h in HALLS}
    resends = probe(port, "watch1", credentials["watch1"], client_id="watch1",
                    subscribe=[REGION_RESEND_OUT.filter()])
    try:
        yield Stack(broker, fresh_database(pg_cluster), halls, resends)
    finally:
        for one in (*halls.values(), resends):
            one.stop()
        broker.process.stop()


def test_a_refused_event_no_longer_stalls_its_hall_and_is_parked_once(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    hall = "p1"
    day = forwarded(hall_day())
    last = len(day)
    # seq 3 (a ticket event) and seq 5 (the 好差评 rating) are events PostgreSQL refuses
    events = spoiled(spoiled(day, 2, "day", "2026-02-30"), 4, "body", '{"a": "\\u0000"}')
    caplog.set_level(logging.WARNING, logger="hall_devices.region")
    service = stack.service()
    try:
        stack.send(hall, events, last)
        wait_until(lambda: stack.applied(hall) == last, 10, "the hall's events applied past the refused")
        assert stack.stored(hall) == [s for s in range(1, last + 1) if s not in (3, 5)]
        assert [r[0] for r in parked_rows(stack.db_url, hall)] == [3, 5]
        assert records(stack.db_url, hall) == [f"{hall}:unrated:P2"]  # the 未评价 after them is made
        # Later events keep arriving.
        more = [one.model_copy(update={"seq": last + n}) for n, one in enumerate(day[:2], 1)]
        stack.send(hall, more, last + 2)
        wait_until(lambda: stack.applied(hall) == last + 2, 10, "later events of the hall")
        # The same events again (a resend, the bridge's redelivery): nothing twice.
        stack.send(hall, events, last + 2, resend_of="resend-1")
        stack.send(hall, more, last + 2)
    finally:
        service.stop()
    service = stack.service()  # a region restart, and the same events once more
    try:
        stack.send(hall, [*events, *more], last + 2, resend_of="resend-2")
        stack.send(hall, [day[0].model_copy(update={"seq": last + 3})], last + 3)
        wait_until(lambda: stack.applied(hall) == last + 3, 10, "the hall's next event after a restart")
    finally:
        service.stop()
    assert stack.stored(hall) == [s for s in range(1, last + 4) if s not in (3, 5)]
    assert [r[0] for r in parked_rows(stack.db_url, hall)] == [3, 5]
    assert records(stack.db_url, hall) == [f"{hall}:unrated:P2"]
    said = [r.getMessage() for r in caplog.records if " parked" in r.getMessage()]
    assert len(said) == 2, said  # a warning once per parked event
    assert "event 5 (rating_recorded)" in said[1] and "好差评 record may be missing" in said[1]
    assert "may be missing" not in said[0]


def test_a_database_restart_parks_nothing_twice_and_loses_nothing(stack: Stack,
                                                                  pg_cluster: PgCluster) -> None:
    """The database gone under the running service is no event's fault: the batch fails and the
    hall is asked again; once it is back the refused event is parked once and the rest stored."""
    hall = "p2"
    day = forwarded(hall_day())
    last = len(day)
    events = spoiled(day, 2, "day", "2026-02-30")
    resend_topic = REGION_RESEND_OUT.topic(district=DISTRICT, site=hall)

    def answer(asked: dict[str, Any]) -> None:  # from the hall's store, as its coordinator does
        wanted = [e for e in events if asked["first_seq"] <= e.seq <= asked["last_seq"]]
        stack.send(hall, wanted, last, resend_of=asked["command_id"])

    def caught_up() -> bool:
        while not stack.resends.messages.empty():
            message = stack.resends.messages.get()
            if message.topic == resend_topic:
                answer(json.loads(message.payload))
        return stack.applied(hall) == last

    service = stack.service()
    try:
        stack.send(hall, events[:2], 2)
        wait_until(lambda: stack.applied(hall) == 2, 10, "the first events")
        pg_cluster.stop()
        try:
            stack.send(hall, events[2:], last)
            # Its store failed: the region asks for those events again.
            asked = json.loads(stack.resends.expect(lambda m: m.topic == resend_topic, timeout_s=30).payload)
            assert asked["first_seq"] == 3
        finally:
            pg_cluster.start()
        answer(asked)
        wait_until(caught_up, 60, "the hall's events stored after the database came back")
    finally:
        service.stop()
    assert stack.stored(hall) == [s for s in range(1, last + 1) if s != 3]
    assert [r[0] for r in parked_rows(stack.db_url, hall)] == [3]
    assert records(stack.db_url, hall) == [f"{hall}:r-1", f"{hall}:unrated:P2"]


# --- a parked seq sent again: a stolen account's junk at a hall's next seq, then the hall's own -----

def replaced(url: str, hall: str) -> list[tuple[int, bool]]:
    with psycopg.connect(url) as conn:
        return [(int(r[0]), bool(r[1])) for r in conn.execute(
            "SELECT seq, replaced_at IS NOT NULL FROM parked_events WHERE hall_id = %s ORDER BY seq",
            (hall,))]


def parked_count(url: str, hall: str) -> int:
    with psycopg.connect(url) as conn:
        [row] = [h for h in views.overview(conn, "2026-11-30", datetime.now(UTC)) if h.hall_id == hall]
    return row.parked


def said(caplog: pytest.LogCaptureFixture, hall: str, words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.getMessage().startswith(f"hall {hall} ") and words in r.getMessage()]


def test_the_halls_own_event_at_a_parked_seq_is_stored_in_its_place_once(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """Junk published with a hall's account at its next seq was parked, and the hall's own event at
    that seq, just after, was dropped as a duplicate: lost, silently, for good."""
    hall = "p3"
    day = forwarded(hall_day())
    last = len(day)
    genuine = day[4]  # seq 5, T1's rating
    junk = genuine.model_copy(update={"day": "2026-02-30", "kind": "ticket_issued",
                                      "body": json.dumps({"ticket_id": "X", "number": "A029"})})
    caplog.set_level(logging.WARNING, logger="hall_devices.region")
    service = stack.service()
    try:
        stack.send(hall, day[:4], 4)
        stack.send(hall, [junk], 5)  # the stolen account, first
        wait_until(lambda: stack.applied(hall) == 5, 10, "the junk parked")
        stack.send(hall, [genuine], 5)  # the hall's own event 5, from its bridge
        stack.send(hall, day[5:], last)
        wait_until(lambda: stack.applied(hall) == last, 10, "the hall's later events")
        wait_until(lambda: 5 in stack.stored(hall), 10, "the hall's own event 5 stored in its place")
        stack.send(hall, [junk], last)  # the junk again: its seq is taken, dropped as any duplicate
        stack.send(hall, [genuine], last)
    finally:
        service.stop()
    service = stack.service()  # a region restart, and both copies once more
    try:
        stack.send(hall, [junk, *day[5:]], last, resend_of="resend-3")
        stack.send(hall, [genuine], last)
        stack.send(hall, [day[0].model_copy(update={"seq": last + 1})], last + 1)
        wait_until(lambda: stack.applied(hall) == last + 1, 10, "the hall's next event after a restart")
        assert service.snapshot()[hall] == (last + 1, last + 1)  # nothing asked for again
    finally:
        service.stop()
    assert sorted(stack.stored(hall)) == list(range(1, last + 2))
    with psycopg.connect(stack.db_url) as conn:
        row = conn.execute("SELECT kind, body::text FROM events WHERE hall_id = %s AND seq = 5",
                           (hall,)).fetchone()
    assert row is not None and row[0] == "rating_recorded" and json.loads(row[1]) == json.loads(genuine.body)
    assert replaced(stack.db_url, hall) == [(5, True)]  # kept for the record, marked
    assert parked_count(stack.db_url, hall) == 0
    assert records(stack.db_url, hall) == [f"{hall}:r-1", f"{hall}:unrated:P2"]  # the rating's record made
    assert len(said(caplog, hall, "stored from a later copy")) == 1


def test_a_parked_seqs_same_copy_does_nothing_a_refused_one_stays_parked_and_the_halls_own_is_stored(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    hall = "p4"
    day = forwarded(hall_day())
    junk = day[2].model_copy(update={"day": "2026-02-30"})
    refused = day[2].model_copy(update={"body": '{"a": "\\u0000"}'})
    caplog.set_level(logging.WARNING, logger="hall_devices.region")
    service = stack.service()
    try:
        stack.send(hall, [*day[:2], junk], 3)
        wait_until(lambda: stack.applied(hall) == 3, 10, "the junk parked")
        stack.send(hall, [junk], 3)  # the same again: nothing to try
        stack.send(hall, [refused], 3)  # a copy PostgreSQL refuses too: tried once, said once
        stack.send(hall, [day[3]], 4)
        wait_until(lambda: stack.applied(hall) == 4, 10, "the next event")
        assert replaced(stack.db_url, hall) == [(3, False)] and 3 not in stack.stored(hall)
        assert len(said(caplog, hall, "refused")) == 2, said(caplog, hall, "refused")  # parked; the copy
        assert service.snapshot()[hall] == (4, 4)  # nothing asked for again
        stack.send(hall, [day[2]], 4)  # the hall's own, at last
        wait_until(lambda: 3 in stack.stored(hall), 10, "the hall's own event 3 in its place")
    finally:
        service.stop()
    assert replaced(stack.db_url, hall) == [(3, True)]
    assert len(said(caplog, hall, "refused")) == 2


# --- what is never the event's: the database's or the connection's encoding ----------------------

def test_a_database_not_in_utf8_is_refused_before_anything_is_parked(pg_cluster: PgCluster) -> None:
    """In LATIN1 every event with a Chinese character (a rating's reasons) met 22P05: good events and
    their 好差评 records were parked, the mark moved past them."""
    with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE region_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                     "TEMPLATE template0")
    with pytest.raises(RegionDbError, match="LATIN1, not UTF8"):
        RegionDb(pg_cluster.url.rsplit("/", 1)[0] + "/region_latin1").close()


def test_a_client_encoding_set_for_the_database_parks_nothing(pg_cluster: PgCluster) -> None:
    """``client_encoding`` set for the database (or the role, or PGCLIENTENCODING): the driver could
    not encode a Chinese character and the good event was parked."""
    url = fresh_database(pg_cluster)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET client_encoding = 'LATIN1'")
    db = RegionDb(url)
    try:
        hall = new_hall(db)
        day = forwarded(hall_day())
        assert db.apply(hall, 0, day) == []
        assert db.event_seqs(hall) == list(range(1, len(day) + 1))
        assert records(url, hall) == [f"{hall}:r-1", f"{hall}:unrated:P2"]
    finally:
        db.close()


def test_only_utf8_refusing_a_character_is_the_events_fault() -> None:
    lone = '{"a": "\ud800"}'
    with pytest.raises(UnicodeEncodeError) as utf8:
        lone.encode("utf-8")
    with pytest.raises(UnicodeEncodeError) as latin1:
        "等候太久".encode("latin-1")
    assert refused_data(utf8.value) and not refused_data(latin1.value)

