"""Region: ingest into PostgreSQL, and catch-up of one hall-day after a WAN outage.

Run: .venv/bin/python benchmarks/region.py [--tickets 5000]

A PostgreSQL cluster of its own (temp folder, free port), a hall broker bridged (TLS) to a regional
broker, the regional service in this process. Measured, each next to its baseline in the same run:
- raw PostgreSQL: plain INSERTs of the same rows, 200 per transaction (the hall's message size);
- the region's ingest (RegionDb.apply: mark guard, COPY, 好差评 records) of the same events;
- catch-up: a hall-day of ``--tickets`` tickets (issued, called, started, finished, rated or not)
  sits in the hall's store, the region has none of it; from the first head message to the last event
  stored, through resend requests answered from the store (the coordinator's Forwarder) over the
  bridge.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from hall_devices.contract import (  # noqa: E402
    REGION_EVENTS,
    REGION_HEAD,
    REGION_RESEND,
    ForwardedEvent,
    RatingLevel,
    TicketClass,
)
from hall_devices.coordinator import events as ev  # noqa: E402
from hall_devices.coordinator.store import EventRow, EventStore  # noqa: E402
from hall_devices.layout import load_layout  # noqa: E402
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound  # noqa: E402
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config  # noqa: E402
from hall_devices.ops.provision import provision  # noqa: E402
from hall_devices.region.bridge import HallEntry, add_bridge, bridge_section, provision_region  # noqa: E402
from hall_devices.region.db import RegionDb  # noqa: E402
from hall_devices.region.forward import Forwarder  # noqa: E402
from hall_devices.region.pgcluster import PgCluster  # noqa: E402
from hall_devices.region.service import RegionService  # noqa: E402
from hall_devices.settings import Settings  # noqa: E402

HALL = "demo"
DISTRICT = "420704"


def hall_day(tickets: int) -> list[ev.Event]:
    """A plausible day: every ticket issued, called, started, finished; 80 % rated, 20 % 未评价."""
    start = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    out: list[ev.Event] = []
    for n in range(tickets):
        at = start + timedelta(seconds=5 * n)
        ticket, prompt = f"T{n}", f"P{n}"
        window = 1 + n % 20
        out += [ev.TicketIssued(at=at, ticket_id=ticket, number=f"A{n:04d}", prefix="A", seq=n + 1,
                                day="2026-11-30", service_id="company_setup",
                                ticket_class=TicketClass.NORMAL, token=f"k{n}"),
                ev.TicketCalled(at=at + timedelta(minutes=10), ticket_id=ticket, window=window,
                                higher_class=False),
                ev.ServiceStarted(at=at + timedelta(minutes=11), ticket_id=ticket, window=window),
                ev.TicketFinished(at=at + timedelta(minutes=18), ticket_id=ticket, window=window,
                                  clerk_id=f"c{window}", prompt_id=prompt,
                                  rating_expires_at=at + timedelta(minutes=19))]
        if n % 5:
            out.append(ev.RatingRecorded(at=at + timedelta(minutes=18, seconds=20), rating_id=f"r{n}",
                                         prompt_id=prompt, ticket_id=ticket, ticket_number=f"A{n:04d}",
                                         service_id="company_setup", department_id="scjg", window=window,
                                         clerk_id=f"c{window}", level=RatingLevel(1 + n % 5),
                                         channel="pad", rated_at=at + timedelta(minutes=18, seconds=20)))
        else:
            out.append(ev.RatingTimedOut(at=at + timedelta(minutes=19), prompt_id=prompt))
    return out


def as_forwarded(events: list[ev.Event]) -> list[ForwardedEvent]:
    return [ForwardedEvent(seq=n, at=e.at, day="2026-11-30", kind=e.kind, body=ev.event_json(e).decode())
            for n, e in enumerate(events, 1)]


def database(cluster: PgCluster, name: str) -> str:
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.rsplit("/", 1)[0] + "/" + name


def raw_inserts(url: str, rows: list[ForwardedEvent]) -> float:
    """Baseline: plain INSERTs of the same rows into a bare table, 200 per transaction; rows/s."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw (hall_id text, seq bigint, at timestamptz, day date, kind text, "
                     "body jsonb, PRIMARY KEY (hall_id, seq))")
        started = time.perf_counter()
        for i in range(0, len(rows), 200):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany("INSERT INTO raw VALUES (%s, %s, %s, %s, %s, %s)",
                                [(HALL, r.seq, r.at, r.day, r.kind, r.body) for r in rows[i:i + 200]])
        return len(rows) / (time.perf_counter() - started)


def region_ingest(url: str, rows: list[ForwardedEvent]) -> float:
    """The region's own path (mark guard, COPY, 好差评 records), 200 per transaction; events/s."""
    db = RegionDb(url)
    try:
        db.register(HALL, DISTRICT)
        started = time.perf_counter()
        for i in range(0, len(rows), 200):
            db.apply(HALL, i, rows[i:i + 200])
        return len(rows) / (time.perf_counter() - started)
    finally:
        db.close()


class HallSide:
    """The hall's end of the region link over its real broker: a head message, and resend requests
    answered from the store with the coordinator's own Forwarder."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.forwarder = Forwarder(HALL, store)
        self.bus = Bus(settings, BusOptions(client_id="coordinator", hall_id=HALL, device_id="coordinator",
                                            device_kind="coordinator", max_inflight=1000))
        self.bus.subscribe(REGION_RESEND, self._resend)

    def _resend(self, inbound: Inbound[Any]) -> None:
        threading.Thread(target=self._answer, args=(inbound.payload,), daemon=True).start()

    def _answer(self, request: Any) -> None:
        for message in self.forwarder.resend(request):
            self.bus.publish(REGION_EVENTS, message)

    def head(self) -> None:
        head = self.forwarder.head(datetime.now(UTC), time.monotonic())
        if head is not None:
            self.bus.publish(REGION_HEAD, head)


def catch_up(root: Path, cluster: PgCluster, events: list[ev.Event]) -> tuple[float, int]:
    """Seconds from the hall's first head message until the region stored its whole day."""
    url = database(cluster, "catchup")
    entry = HallEntry(HALL, DISTRICT)
    region_dir = root / "region-broker"
    creds = provision_region(region_dir, [entry])
    rport, rtls = free_port(), free_port()
    region_broker = BrokerProcess(render_config(region_dir, Listeners(port=rport, tls_port=rtls,
                                                                       tls_bind="127.0.0.1")), rport)
    hall_dir = root / "hall-broker"
    done = provision(load_layout(ROOT / "examples" / "hall.toml"), hall_dir)
    hport, htls = free_port(), free_port()
    config = render_config(hall_dir, Listeners(port=hport, tls_port=htls, tls_bind="127.0.0.1"))
    add_bridge(config, bridge_section(entry, "127.0.0.1", rtls, creds[entry.account],
                                      region_dir / "tls" / "ca.crt"))
    hall_broker = BrokerProcess(config, hport)
    store = EventStore(root / "hall.sqlite3", synchronous="NORMAL")
    for i in range(0, len(events), 1000):
        chunk = events[i:i + 1000]
        store.commit([EventRow(e.kind, e.at.isoformat(), "2026-11-30", None, ev.event_json(e))
                      for e in chunk], [])
    region_broker.start()
    hall_broker.start()
    service = RegionService(Settings(hall_id="region", broker_port=rport, broker_username="region",
                                     broker_password=SecretStr(creds["region"])), url)
    hall = HallSide(Settings(hall_id=HALL, broker_port=hport, broker_username="coordinator",
                             broker_password=SecretStr(done.credentials["coordinator"])), store)
    try:
        service.start(wait_s=10)
        hall.bus.start(wait_s=10)
        time.sleep(2)  # the bridge connects
        started = time.perf_counter()
        while service.snapshot().get(HALL, (0, 0))[0] < store.last_seq:
            hall.head()
            time.sleep(0.05)
            if time.perf_counter() - started > 300:
                raise SystemExit("catch-up did not finish within 300 s")
        return time.perf_counter() - started, store.last_seq
    finally:
        hall.bus.stop()
        service.stop()
        hall_broker.stop()
        region_broker.stop()
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=5000)
    args = parser.parse_args()
    events = hall_day(args.tickets)
    rows = as_forwarded(events)
    root = Path(tempfile.mkdtemp(prefix="hall-region-bench-"))
    root.chmod(0o755)
    cluster = PgCluster(root / "pg", free_port())
    try:
        cluster.init()
        cluster.start()
        raw = raw_inserts(database(cluster, "raw"), rows)
        ingest = region_ingest(database(cluster, "ingest"), rows)
        seconds, count = catch_up(root, cluster, events)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"region: one hall-day = {args.tickets} tickets = {len(rows)} events")
    print(f"  raw PostgreSQL INSERT (baseline, 200/txn): {raw:8.0f} rows/s")
    print(f"  region ingest (mark, COPY, 好差评 records): {ingest:8.0f} events/s "
          f"({ingest / raw:.2f}× baseline)")
    print(f"  catch-up over bridge + resends:            {seconds:8.1f} s for {count} events "
          f"({count / seconds:.0f} events/s)")


if __name__ == "__main__":
    main()
