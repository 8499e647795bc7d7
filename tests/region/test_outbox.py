"""好差评 reporting: records made once from the stored events, delivered to a real local HTTP receiver
exactly once across its failures, per-province profiles, file export. Real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from hall_devices.contract import ForwardedEvent, RatingLevel, TicketClass
from hall_devices.coordinator import events as ev
from hall_devices.ops.broker import free_port
from hall_devices.region.db import RegionDb, RegionDbError
from hall_devices.region.outbox import Endpoint, Outbox, export_file
from hall_devices.region.pgcluster import PgCluster
from hall_devices.region.profiles import export, load_profile
from hall_devices.region.ratings import RatingRecord
from hall_devices.region.views import overview
from tests.region.conftest import fresh_database

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in the hall


def hall_day() -> list[ev.Event]:
    """Two tickets served at window 3: one rated 非常不满意 (差评), one not rated (未评价)."""
    out: list[ev.Event] = []
    for n, (ticket, prompt) in enumerate((("T1", "P1"), ("T2", "P2"))):
        start = T0 + timedelta(minutes=30 * n)
        out += [ev.TicketIssued(at=start, ticket_id=ticket, number=f"A00{n + 1}", prefix="A", seq=n + 1,
                                day="2026-11-30", service_id="biz_license",
                                ticket_class=TicketClass.NORMAL, token=f"tok{n}"),
                ev.TicketCalled(at=start + timedelta(minutes=12), ticket_id=ticket, window=3,
                                higher_class=False),
                ev.ServiceStarted(at=start + timedelta(minutes=13), ticket_id=ticket, window=3),
                ev.TicketFinished(at=start + timedelta(minutes=20), ticket_id=ticket, window=3,
                                  clerk_id="c07", prompt_id=prompt,
                                  rating_expires_at=start + timedelta(minutes=21))]
    rated_at = T0 + timedelta(minutes=20, seconds=30)
    out.insert(4, ev.RatingRecorded(at=rated_at, rating_id="r-1", prompt_id="P1",
                                    ticket_id="T1", ticket_number="A001", service_id="biz_license",
                                    department_id="scjg", window=3, clerk_id="c07",
                                    level=RatingLevel.VERY_DISSATISFIED, reasons=["等候太久", "态度不好"],
                                    channel="pad", rated_at=rated_at))
    out.append(ev.RatingTimedOut(at=T0 + timedelta(minutes=51), prompt_id="P2"))
    return out


def forwarded(events: list[ev.Event]) -> list[ForwardedEvent]:
    return [ForwardedEvent(seq=n, at=e.at, day="2026-11-30", kind=e.kind, body=ev.event_json(e).decode())
            for n, e in enumerate(events, 1)]


@pytest.fixture(scope="module")
def db_url(pg_cluster: PgCluster) -> str:
    url = fresh_database(pg_cluster)
    db = RegionDb(url)
    db.register("h1", "420704")
    day = forwarded(hall_day())
    db.apply("h1", 0, day[:5])
    db.apply("h1", 5, day[5:])
    db.close()
    return url


class Province:
    """A provincial platform on a real local HTTP server. It keeps records by id (idempotent) and
    fails on purpose: the first POST of a record gets a 503, the second is stored but its answer is
    lost (the connection drops), later ones get 200."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, object]] = {}
        self.posts: dict[str, int] = {}
        self.auth: list[str | None] = []
        province = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers["Idempotency-Key"]
                assert key == body["record_id"]
                province.auth.append(self.headers.get("Authorization"))
                tries = province.posts[key] = province.posts.get(key, 0) + 1
                if tries == 1:
                    self.send_error(503, "busy")
                    return
                province.stored.setdefault(key, body)
                if tries == 2:
                    self.close_connection = True
                    self.connection.close()  # stored, but the sender never hears so
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/haocha/records"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def province() -> Iterator[Province]:
    one = Province()
    yield one
    one.server.shutdown()
    one.server.server_close()


def records(url: str) -> dict[str, RatingRecord]:
    with psycopg.connect(url) as conn:
        return {str(r[0]): RatingRecord.model_validate_json(str(r[1]))
                for r in conn.execute("SELECT record_id, record::text FROM rating_records")}


def test_one_record_per_rating_and_per_unrated_with_the_halls_facts(db_url: str) -> None:
    made = records(db_url)
    assert sorted(made) == ["h1:r-1", "h1:unrated:P2"]
    rated, unrated = made["h1:r-1"], made["h1:unrated:P2"]
    assert (rated.level, rated.text, rated.window, rated.clerk_id, rated.district) == (
        1, "等候太久、态度不好", 3, "c07", "420704")
    assert (rated.wait_s, rated.service_s, rated.ticket_number) == (720.0, 420.0, "A001")
    assert (unrated.level, unrated.case_number, unrated.ticket_number, unrated.clerk_id) == (
        None, "T2", "A002", "c07")
    # Stored again (a redelivery past the mark is refused before it gets here): no second record.
    db = RegionDb(db_url)
    try:
        with pytest.raises(RegionDbError, match="no longer 0"):
            db.apply("h1", 0, forwarded(hall_day())[:9])
    finally:
        db.close()
    assert len(records(db_url)) == 2


def test_a_rating_reaches_the_province_exactly_once_across_its_failures(db_url: str,
                                                                      province: Province) -> None:
    outbox = Outbox(db_url, Endpoint(province.url, token="s3cret"), load_profile("gbt39046"))
    try:
        now = T0 + timedelta(hours=1)
        rounds = 0
        while outbox.pending() and rounds < 10:
            outbox.deliver_due(now)
            now += timedelta(minutes=15)  # past any backoff: the time is passed in, never slept
            rounds += 1
        assert outbox.pending() == 0
        assert outbox.deliver_due(now + timedelta(days=1)) == 0  # delivered: never sent again
    finally:
        outbox.close()
    assert province.posts == {"h1:r-1": 3, "h1:unrated:P2": 3}  # 503, lost answer, then 200
    assert sorted(province.stored) == ["h1:r-1", "h1:unrated:P2"]
    sent = province.stored["h1:r-1"]
    # GB/T 39046 annex A.8 codes 1 = 非常满意: our level 1 (非常不满意) is its code 5.
    assert (sent["satisfaction"], sent["satisfaction_code"], sent["channel_code"], sent["rater"]) == (
        "非常不满意", 5, "1", "匿名")
    assert province.stored["h1:unrated:P2"]["satisfaction"] == "未评价"
    assert set(province.auth) == {"Bearer s3cret"}
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT attempts, last_error FROM rating_records "
                           "WHERE record_id = 'h1:r-1'").fetchone()
    assert row == (3, None)


def test_a_province_profile_shapes_only_the_export(db_url: str) -> None:
    made = records(db_url)
    reversed_ = load_profile("reversed-example")
    assert export(made["h1:r-1"], reversed_, T0)["satisfaction_code"] == 1  # type: ignore[index]
    assert export(made["h1:unrated:P2"], reversed_, T0 + timedelta(days=4)) is None  # not yet
    late = export(made["h1:unrated:P2"], reversed_, T0 + timedelta(days=6))
    assert late is not None
    assert (late["satisfaction"], late["satisfaction_code"], late["default_applied"]) == ("满意", 4, True)
    assert records(db_url)["h1:unrated:P2"].level is None  # never written back as a score


def test_file_export_for_provinces_that_take_files(db_url: str) -> None:
    profile = load_profile("gbt39046")
    text = export_file(db_url, profile, T0, "2026-11-30", "2026-11-30", fmt="csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["办件编号"] for r in rows] == ["T1", "T2"]
    assert rows[0]["满意度代码"] == "5" and rows[0]["行政区划"] == "420704"
    data = json.loads(export_file(db_url, profile, T0, "2026-11-30", "2026-11-30", fmt="json"))
    assert [r["record_id"] for r in data["records"]] == ["h1:r-1", "h1:unrated:P2"]
    assert export_file(db_url, profile, T0, "2026-12-01", "2026-12-01", fmt="json").count("record_id") == 0


def test_a_unrated_record_the_province_never_wants_is_marked_so_and_not_unreported(
        pg_cluster: PgCluster, province: Province, tmp_path: Path) -> None:
    url = fresh_database(pg_cluster)
    db = RegionDb(url)
    db.register("h1", "420704")
    db.apply("h1", 0, forwarded(hall_day()))
    db.close()
    own = tmp_path / "no-unrated.toml"  # takes no 未评价 and gives no default rating
    own.write_text('name = "no-unrated"\ntitle = "不收未评价"\ncode_1_means = "very_satisfied"\n'
                   'unrated_records = false\ndefault_level_after_days = 0\n'
                   '[channels]\npad = "1"\nkiosk = "2"\nweb = "3"\nqr = "4"\n', encoding="utf-8")
    outbox = Outbox(url, Endpoint(province.url), load_profile(str(own)))
    try:
        now = T0 + timedelta(hours=1)
        for _round in range(4):
            outbox.deliver_due(now)
            now += timedelta(minutes=15)
        assert outbox.pending() == 0  # the 差评 delivered, the 未评价 not waiting for anything
        assert outbox.deliver_due(now + timedelta(days=30)) == 0
    finally:
        outbox.close()
    assert sorted(province.stored) == ["h1:r-1"] and "h1:unrated:P2" not in province.posts
    with psycopg.connect(url) as conn:
        rows = {str(r[0]): (r[1], r[2]) for r in conn.execute(
            "SELECT record_id, delivered_at IS NULL, not_wanted_at IS NULL FROM rating_records")}
        (hall,) = overview(conn, "2026-11-30", now)
    assert rows == {"h1:r-1": (False, True), "h1:unrated:P2": (True, False)}  # delivered; not wanted
    assert hall.unreported == 0  # the dashboard's 未上报 count
