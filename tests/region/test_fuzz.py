"""Nothing a hall sends can stop the region (issue 14's rule, applied to the region's routes).

A real regional Mosquitto and PostgreSQL, the region service on a thread of this process. Two halls'
broker accounts (as their bridges) publish what a stolen account or an older/newer hall could:
unreadable payloads, wrong types, out-of-range numbers, events PostgreSQL cannot store, another
hall's id, absurd heads. After each message the region still stores a valid event of every hall
exactly once and in order, and its worker is alive and has never failed. Nothing of the junk is in
``events`` or ``rating_records``: a junk event that takes a hall's next sequence number and that
PostgreSQL refuses is parked, in ``parked_events`` only (region/parking.py), and the hall's stream
goes on past it; its valid event of that number, sent after, is stored in its place and the parked
row marked replaced (a junk copy of that number, always refused, never is). The out-of-order and
duplicate rules are test_ingest.py's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hall_devices.contract import (
    MAX_PAYLOAD_BYTES,
    REGION_ALERTS_IN,
    REGION_CONFIG_OUT,
    REGION_CONFIG_RESULT_IN,
    REGION_EVENTS_IN,
    REGION_HEAD_IN,
    REGION_RESEND_OUT,
    ActiveAlerts,
    Alert,
    ConfigResult,
    ForwardedEvent,
    RegionEvents,
    RegionHead,
    Route,
    Text,
)
from hall_devices.mqtt.bus import encode
from hall_devices.region.db import RegionDb
from hall_devices.region.ingest import RESEND_CHUNK
from hall_devices.region.service import RegionService
from tests.region.rig import DISTRICT, RegionBroker, start_region_broker
from tests.support import Probe, probe, wait_until

HALLS = ("f1", "f2")
ROUTES_IN: list[Route[Any]] = [REGION_EVENTS_IN, REGION_HEAD_IN, REGION_CONFIG_RESULT_IN, REGION_ALERTS_IN]
NOW = "2026-11-30T09:00:00+08:00"
NEXT = "next"  # in a junk event's seq: the hall's next sequence number, the one a valid event takes


class _Failures(logging.Handler):
    """Every ERROR the service's threads log (the worker's "unexpected error; carrying on")."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class FuzzRegion:
    service: RegionService
    broker: RegionBroker
    db_url: str
    halls: dict[str, Probe]  # each hall's account on the regional broker, as its bridge signs in
    resends: Probe
    failures: _Failures
    stored: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HALLS, 0))  # each hall's mark
    parked: dict[str, list[int]] = field(default_factory=lambda: {h: [] for h in HALLS})  # junk's seqs
    # of those, the seqs whose valid event was sent after the junk and went in its place
    replaced: dict[str, set[int]] = field(default_factory=lambda: {h: set() for h in HALLS})
    alerted: dict[str, str] = field(default_factory=dict)  # the id of each hall's last valid alert
    # (hall, seq) → (kind, body) of the stored events not of the kind and body ``event`` makes
    unlike: dict[tuple[str, int], tuple[str, Any]] = field(default_factory=dict)

    def topic(self, r: Route[Any], hall: str) -> str:
        return r.topic(district=DISTRICT, site=hall)

    def send(self, hall: str, topic: str, raw: bytes) -> None:
        # QoS 0 over the size limit: paho cannot read Mosquitto's refusal of it (tests/test_fuzz.py).
        qos = 0 if len(raw) > MAX_PAYLOAD_BYTES else 1
        self.halls[hall].client.publish(topic, raw, qos=qos).wait_for_publish(5)

    def event(self, hall: str, seq: int) -> ForwardedEvent:
        return ForwardedEvent(seq=seq, at=datetime.now(UTC), day="2026-11-30", kind="ticket_issued",
                              body=json.dumps({"ticket_id": f"{hall}-{seq}", "n": seq}))

    def valid_events(self, hall: str, first: int, last: int, head: int) -> bytes:
        return encode(RegionEvents(hall_id=hall, events=[self.event(hall, s) for s in range(first, last + 1)],
                                   head=head))

    def live(self) -> None:
        """Each hall's next event is stored once, in order, with its body; nothing else is stored."""
        for hall in HALLS:
            while True:
                seq = self.stored[hall] + 1
                self.send(hall, self.topic(REGION_EVENTS_IN, hall), self.valid_events(hall, seq, seq, seq))

                def reached(h: str = hall, s: int = seq) -> bool:
                    return self.applied().get(h, 0) >= s

                # Messages of a hall are taken in order: past this, the junk sent before is done with.
                wait_until(reached, 10, f"{hall}'s event {seq}")
                self.stored[hall] = seq
                if seq not in self.parked_seqs(hall):
                    break
                # junk took it: the valid one, second, goes in its place (done once the next is stored)
                self.parked[hall].append(seq)
                self.replaced[hall].add(seq)
            # Its active alerts, as of now, replace what it sent before.
            alert = Alert(alert_id=f"{hall}-{seq}", kind="device_offline", subject="web",
                          message=Text(zh="设备离线", en="Device offline"), raised_at=datetime.now(UTC))
            self.send(hall, self.topic(REGION_ALERTS_IN, hall),
                      encode(ActiveAlerts(updated_at=datetime.now(UTC), alerts=[alert])))

            def alert_stored(h: str = hall, a: str = alert.alert_id) -> bool:
                return self.alert_ids().get(h) == [a]

            wait_until(alert_stored, 10, f"{hall}'s alert {alert.alert_id} stored")
            self.alerted[hall] = alert.alert_id
        self.check_store()
        assert self.service.worker.is_alive
        self.no_failures()

    def no_failures(self) -> None:
        failed, self.failures.records = self.failures.records, []  # one failure fails one test
        assert not failed, [r.getMessage() for r in failed]

    def applied(self) -> dict[str, int]:
        with psycopg.connect(self.db_url) as conn:
            return {str(h): int(a) for h, a in conn.execute("SELECT hall_id, applied FROM halls")}

    def parked_seqs(self, hall: str) -> list[int]:
        with psycopg.connect(self.db_url) as conn:
            return [int(r[0]) for r in conn.execute("SELECT seq FROM parked_events WHERE hall_id = %s "
                                                    "ORDER BY seq", (hall,))]

    def alert_ids(self) -> dict[str, list[str]]:
        with psycopg.connect(self.db_url) as conn:
            return {str(h): [a["alert_id"] for a in alerts]
                    for h, alerts in conn.execute("SELECT hall_id, alerts FROM halls")}

    def check_store(self) -> None:
        with psycopg.connect(self.db_url) as conn:
            halls = conn.execute("SELECT hall_id, district, alerts, layout_version FROM halls "
                                 "ORDER BY hall_id").fetchall()
            assert [(h, d) for h, d, _a, _v in halls] == [(h, DISTRICT) for h in HALLS]
            assert [[a["alert_id"] for a in alerts] for _h, _d, alerts, _v in halls] == [
                [self.alerted[h]] for h in HALLS]
            assert all(v is None or 0 <= v < 2**31 for *_rest, v in halls)
            for hall in HALLS:
                rows = conn.execute("SELECT seq, kind, body FROM events WHERE hall_id = %s "
                                    "ORDER BY ingest_id", (hall,)).fetchall()
                # in order, but for the valid events stored in the place of parked junk, later
                lost = set(self.parked[hall]) - self.replaced[hall]  # no valid event sent after the junk
                assert [r[0] for r in rows if r[0] not in self.replaced[hall]] == [
                    s for s in range(1, self.stored[hall] + 1) if s not in self.parked[hall]]
                assert sorted(r[0] for r in rows) == [s for s in range(1, self.stored[hall] + 1)
                                                      if s not in lost]
                # Only junk is parked, each where the test saw it take a sequence number; replaced when
                # the valid event of that number came after it.
                parked = conn.execute("SELECT seq, body, replaced_at IS NOT NULL FROM parked_events "
                                      "WHERE hall_id = %s ORDER BY seq", (hall,)).fetchall()
                assert [(r[0], r[2]) for r in parked] == [(s, s in self.replaced[hall])
                                                          for s in self.parked[hall]]
                assert all(bytes(b) != self.event(hall, s).body.encode() for s, b, _r in parked)
                assert all((k, b) == self.unlike.get((hall, s), ("ticket_issued", {"ticket_id": f"{hall}-{s}",
                                                                                    "n": s}))
                           for s, k, b in rows)
            assert conn.execute("SELECT count(*) FROM rating_records").fetchone() == (0,)

    def check_resends(self) -> None:
        """What the region asked for since the last check: never more than a chunk, never below 1."""
        while not self.resends.messages.empty():
            asked = json.loads(self.resends.messages.get().payload)
            assert 1 <= asked["first_seq"] <= asked["last_seq"] < asked["first_seq"] + RESEND_CHUNK, asked


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, region_db: str) -> Iterator[FuzzRegion]:
    broker = start_region_broker(tmp_path_factory.mktemp("fuzz-region") / "broker", HALLS, ("watch1",))
    port, credentials = broker.port, broker.credentials
    failures = _Failures()
    logging.getLogger("hall_devices").addHandler(failures)
    service = RegionService(broker.settings("region"), region_db)
    service.start(wait_s=10)
    halls = {h: probe(port, f"hall-{h}", credentials[f"hall-{h}"], client_id=f"hall-{h}",
                      subscribe=[REGION_CONFIG_OUT.topic(district=DISTRICT, site=h)]) for h in HALLS}
    resends = probe(port, "watch1", credentials["watch1"], client_id="watch1",
                    subscribe=[REGION_RESEND_OUT.filter()])
    fuzz = FuzzRegion(service, broker, region_db, halls, resends, failures)
    fuzz.live()
    try:
        yield fuzz
    finally:
        for one in (*halls.values(), resends):
            one.stop()
        service.stop()
        logging.getLogger("hall_devices").removeHandler(failures)
        broker.process.stop()


# --- payloads ----------------------------------------------------------------------------------

OVERSIZE = b'{"x": "' + b"y" * (MAX_PAYLOAD_BYTES + 1) + b'"}'
UNREADABLE: list[bytes] = [
    b'{"hall_id": "f1", "head": ' + b"9" * 5000 + b', "events": []}',  # 5,000-digit integer
    b"[" * 100_000 + b"]" * 100_000,  # 100,000 nested brackets
    b'{"hall_id": "f1", "head": 1, "events": [], "x": "\xff\xfe\xfd"}',  # invalid UTF-8
    OVERSIZE,
    b"",
    b"null",
    b"[]",
    b'{"schema_version": 2}',
]
# An event field PostgreSQL (or the region's reading of it) cannot take: every junk event has one,
# so nothing of it may be stored in events; what PostgreSQL refuses of it is parked.
POISONS: dict[str, list[Any]] = {
    "seq": [-1, 0, 2**63, 10**30, 1e308, "1", None],
    "day": ["not-a-date", "2026-02-30", "", "2026-11-30\x00", 20261130, None],
    "kind": ["ticket_issued\x00", None, 7, ["ticket_issued"]],
    "body": ["not json", '{"a": "\\u0000"}', "[" * 100_000 + "]" * 100_000, "1e999999", '"\x00"',
             "{" * 10, None, {"ticket_id": "t"}],
    "at": ["2026-11-30T09:00:00", "not-a-date", "2026-02-30T09:00:00+08:00", None],
}
FAIR: dict[str, list[Any]] = {
    "seq": [NEXT, NEXT, NEXT, 1, 2**31, 2**63 - 1],
    "day": ["2026-11-30"],
    "kind": ["ticket_issued", "rating_recorded", "rating_timed_out", "新的事件", "x" * 300],
    "body": ["{}", '{"ticket_id": "t"}', '{"n": 1e308}', '{"n": 10000000000000000000000000000000}'],
    "at": [NOW, "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"],
}
NONSENSE: list[Any] = [-1, 0, 2**31, 2**63 - 1, 2**63, 10**30, 1e308, "", "f2", "region", "\x00", "²",
                       [], {}, None, True, "2026-11-30T09:00:00", "9999-12-31T23:59:59+14:00"]


@st.composite
def junk_event(draw: st.DrawFn) -> dict[str, Any]:
    event = {name: draw(st.sampled_from(values)) for name, values in FAIR.items()}
    poisoned = draw(st.sampled_from([*sorted(POISONS), "day", "body", "body"]))
    event[poisoned] = draw(st.sampled_from(POISONS[poisoned]))
    return event


@st.composite
def junk_events(draw: st.DrawFn, hall: str) -> dict[str, Any]:
    """A RegionEvents whose events each carry a poison (consecutive or not), and a head of any size."""
    return {"hall_id": draw(st.sampled_from([hall] * 6 + ["f2" if hall == "f1" else "f1", "", None, 1])),
            "events": draw(st.lists(junk_event(), min_size=1, max_size=4)),
            "head": draw(st.sampled_from([0, 1, 1, 1, 2**31, 2**63 - 1, 2**63, 10**30, -1, None])),
            "resend_of": draw(st.sampled_from([None, "resend-1", "x" * 1000]))}


def junk_object(r: Route[Any], hall: str) -> st.SearchStrategy[dict[str, Any]]:
    """A valid object of the route's shape with nonsense in a few of its fields."""
    shapes: dict[Route[Any], dict[str, Any]] = {
        REGION_HEAD_IN: {"hall_id": hall, "head": 1, "at": NOW, "layout_version": None},
        REGION_CONFIG_RESULT_IN: {"command_id": "c-1", "ok": True, "version": 1, "running_version": None,
                                  "reasons": [], "error": None},
        REGION_ALERTS_IN: {"updated_at": NOW, "alerts": []}}
    base = shapes[r]
    return st.dictionaries(st.sampled_from(sorted(base)), st.sampled_from(NONSENSE), min_size=1,
                           max_size=3).map(lambda f: {**base, **f})


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, Route[Any], Any]:
    hall = draw(st.sampled_from(HALLS))
    r = draw(st.sampled_from(ROUTES_IN))
    # Mostly of the route's own shape: what gets past the schema is what can reach the database.
    if draw(st.integers(0, 4)) == 0:
        return hall, r, draw(st.one_of(st.sampled_from(UNREADABLE), st.binary(max_size=200)))
    return hall, r, draw(junk_events(hall) if r is REGION_EVENTS_IN else junk_object(r, hall))


def raw_of(region: FuzzRegion, hall: str, payload: Any) -> bytes:
    """The payload's bytes, its NEXT sequence numbers made the hall's next one."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload.get("events"), list):
        following = region.stored[hall] + 1
        for one in payload["events"]:
            if isinstance(one, dict) and one.get("seq") == NEXT:
                one["seq"], following = following, following + 1
    return json.dumps(payload).encode()


# --- tests ---------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(message=messages())
def test_no_message_of_a_hall_stops_the_region(region: FuzzRegion,
                                               message: tuple[str, Route[Any], Any]) -> None:
    hall, r, payload = message
    region.send(hall, region.topic(r, hall), raw_of(region, hall, payload))
    region.live()
    region.check_resends()


def test_every_unreadable_payload_on_every_route_of_every_hall(region: FuzzRegion) -> None:
    for hall in HALLS:
        for r in ROUTES_IN:
            for raw in UNREADABLE:
                region.send(hall, region.topic(r, hall), raw)
    region.live()


def test_a_hall_cannot_speak_for_another(region: FuzzRegion) -> None:
    seq = region.stored["f2"] + 1
    # On the other hall's topic: the regional broker's ACL drops it.
    region.send("f1", region.topic(REGION_EVENTS_IN, "f2"), region.valid_events("f2", seq, seq + 4, seq + 4))
    # On its own topic, naming the other hall: the region refuses it (wrong_sender).
    region.send("f1", region.topic(REGION_EVENTS_IN, "f1"), region.valid_events("f2", seq, seq + 4, seq + 4))
    lie = RegionHead(hall_id="f2", head=10**6, at=datetime.now(UTC))
    region.send("f1", region.topic(REGION_HEAD_IN, "f1"), encode(lie))
    region.live()


def test_junk_in_a_batch_loses_none_of_the_valid_messages_beside_it(region: FuzzRegion) -> None:
    """The worker takes what waits in one batch: junk the database refuses (parked) must not take the
    valid messages of the same batch with it (nobody answers a resend here: a lost one stays lost)."""
    f1, f2 = region.stored["f1"] + 1, region.stored["f2"] + 1
    unstorable = {"hall_id": "f1", "head": f1, "events": [
        {"seq": f1, "at": NOW, "day": "2026-11-30", "kind": "ticket_issued", "body": "not json"}]}
    with psycopg.connect(region.db_url) as conn, conn.transaction():
        # The worker's next tick waits for this lock: the messages below pile up behind it and are
        # taken in one batch when it is released.
        conn.execute("LOCK TABLE halls IN ACCESS EXCLUSIVE MODE")
        with psycopg.connect(region.db_url) as look:
            wait_until(lambda: look.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                            "wait_event_type = 'Lock' AND datname = current_database()"
                                            ).fetchone() == (1,), 10, "the worker waiting for the lock")
        queued = region.service.worker._inbox.qsize()
        region.send("f1", region.topic(REGION_EVENTS_IN, "f1"), json.dumps(unstorable).encode())
        deep = {"hall_id": "f2", "head": f2, "events": [
            {"seq": f2, "at": NOW, "day": "2026-11-30", "kind": "ticket_issued", "body": "[" * 100_000}]}
        region.send("f2", region.topic(REGION_EVENTS_IN, "f2"), json.dumps(deep).encode())
        region.send("f2", region.topic(REGION_EVENTS_IN, "f2"),
                    region.valid_events("f2", f2 + 1, f2 + 1, f2 + 1))
        region.send("f1", region.topic(REGION_EVENTS_IN, "f1"),
                    region.valid_events("f1", f1 + 1, f1 + 1, f1 + 1))
        region.send("f2", region.topic(REGION_HEAD_IN, "f2"), json.dumps(
            {"hall_id": "f2", "head": f2 + 1, "at": NOW, "layout_version": 2**31}).encode())
        wait_until(lambda: region.service.worker._inbox.qsize() >= queued + 5, 10, "all five queued")
    wait_until(lambda: region.applied() == {"f1": f1 + 1, "f2": f2 + 1}, 10, "both valid events stored")
    region.stored.update(f1=f1 + 1, f2=f2 + 1)
    region.parked["f1"].append(f1)
    region.parked["f2"].append(f2)
    region.check_store()
    region.no_failures()
    region.live()


def test_a_rating_of_a_newer_hall_is_stored_and_its_hall_goes_on(region: FuzzRegion) -> None:
    """An event this region cannot read (a newer hall's rating, with a field it does not know) is
    still the hall's: stored, in order, and the events after it too; only its 好差评 record, which
    needs reading it, is not made (and said in the log)."""
    hall = "f2"
    seq = region.stored[hall] + 1
    body = {"at": NOW, "rating_id": "r-new", "prompt_id": "p-new", "window": 2, "level": 5,
            "a_field_of_a_newer_hall": True}
    newer = ForwardedEvent(seq=seq, at=datetime.now(UTC), day="2026-11-30", kind="rating_recorded",
                           body=json.dumps(body))
    region.send(hall, region.topic(REGION_EVENTS_IN, hall),
                encode(RegionEvents(hall_id=hall, events=[newer, region.event(hall, seq + 1)], head=seq + 1)))
    wait_until(lambda: region.applied()[hall] == seq + 1, 10, "the newer hall's events stored")
    region.unlike[(hall, seq)] = ("rating_recorded", body)
    region.stored[hall] = seq + 1
    region.live()


def test_after_the_junk_the_region_still_asks_for_gaps_and_pushes_layouts(region: FuzzRegion) -> None:
    hall = "f1"
    gap = region.stored[hall] + 1
    region.check_resends()
    ahead = region.valid_events(hall, gap + 1, gap + 1, gap + 1)  # gap itself is lost
    region.send(hall, region.topic(REGION_EVENTS_IN, hall), ahead)
    asked = json.loads(region.resends.expect(
        lambda m: m.topic == region.topic(REGION_RESEND_OUT, hall), timeout_s=10).payload)
    assert (asked["first_seq"], asked["last_seq"]) == (gap, gap)
    region.send(hall, region.topic(REGION_EVENTS_IN, hall), region.valid_events(hall, gap, gap, gap + 1))
    wait_until(lambda: region.applied()[hall] == gap + 1, 10, "the gap filled")
    region.stored[hall] = gap + 1
    db = RegionDb(region.db_url)
    try:
        version = db.add_push(hall, "# a layout\n")
    finally:
        db.close()
    push = json.loads(region.halls[hall].expect(lambda m: True, timeout_s=10).payload)
    assert push["version"] == version
    answer = ConfigResult(command_id=push["command_id"], ok=True, version=version, running_version=version)
    region.send(hall, region.topic(REGION_CONFIG_RESULT_IN, hall), encode(answer))
    with psycopg.connect(region.db_url) as conn:
        wait_until(lambda: conn.execute("SELECT state FROM config_pushes WHERE hall_id = %s AND version = %s",
                                        (hall, version)).fetchone() == ("applied",), 10, "push applied")
    region.live()


def test_a_head_the_hall_does_not_have_is_dropped_when_the_hall_answers(region: FuzzRegion) -> None:
    """A lying head (a stolen account) has the hall asked for events it never had; the hall's answer
    to that resend says its real head, and the region believes it, in memory and in its store, so it
    stops asking and shows the hall caught up."""
    hall = "f1"
    real = region.stored[hall]
    region.check_resends()
    region.send(hall, region.topic(REGION_HEAD_IN, hall),
                encode(RegionHead(hall_id=hall, head=2**62, at=datetime.now(UTC))))
    asked = json.loads(region.resends.expect(
        lambda m: m.topic == region.topic(REGION_RESEND_OUT, hall), timeout_s=10).payload)
    assert asked["first_seq"] == real + 1 and asked["last_seq"] < real + 1 + RESEND_CHUNK
    answer = RegionEvents(hall_id=hall, events=[], head=real, resend_of=asked["command_id"])
    region.send(hall, region.topic(REGION_EVENTS_IN, hall), encode(answer))

    def head() -> int:
        with psycopg.connect(region.db_url) as conn:
            row = conn.execute("SELECT head FROM halls WHERE hall_id = %s", (hall,)).fetchone()
        return -1 if row is None else int(row[0])

    wait_until(lambda: region.service.snapshot()[hall] == (real, real) and head() == real, 10,
               "the real head believed")
    region.live()


def test_each_event_postgresql_refuses_is_parked_and_its_hall_goes_on(region: FuzzRegion) -> None:
    """Every poison that passes the bus and the schema, at the hall's next sequence number: parked
    (in parked_events only), and the hall's valid events after it are stored."""
    refused = [("day", v) for v in ("not-a-date", "2026-02-30", "")] + [
        ("body", v) for v in ("not json", '{"a": "\\u0000"}', "[" * 100_000 + "]" * 100_000, "1e999999",
                              "{" * 10)]
    hall = "f1"
    before = len(region.parked[hall])
    for field_name, value in refused:
        junk = {"seq": NEXT, "at": NOW, "day": "2026-11-30", "kind": "rating_recorded",
                "body": '{"ticket_id": "t"}', field_name: value}
        region.send(hall, region.topic(REGION_EVENTS_IN, hall),
                    raw_of(region, hall, {"hall_id": hall, "events": [junk], "head": 1}))
        region.live()
    assert len(region.parked[hall]) == before + len(refused)
