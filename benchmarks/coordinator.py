"""Coordinator benchmark: durable commands/s and command→reply latency over MQTT, with baselines.

Run: .venv/bin/python benchmarks/coordinator.py [--commands 5000] [--latency 1000]

Everything is measured in this one run on this machine: a Mosquitto provisioned from the example
layout on free ports, the real `hall-devices coordinator` process, and next to them the baselines
— raw SQLite inserts with the same durability (WAL, synchronous=FULL), and a raw MQTT request/reply
round trip through the same broker. Then the restart time with 100,000 events in the store.
Mixed load (issue 14): the same ticket burst with 0% and with 1% poison mixed in (a 5,000-digit
integer, 100,000 nested brackets, invalid UTF-8, a rating without a time zone), valid commands/s
each, in the same run against the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hall_devices.contract import (  # noqa: E402
    RATING,
    TICKET_REPLY,
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_RESULT,
    TicketRequest,
    WindowAction,
    WindowCommand,
)
from hall_devices.coordinator import events as ev  # noqa: E402
from hall_devices.coordinator.calendar import business_day  # noqa: E402
from hall_devices.coordinator.engine import Engine  # noqa: E402
from hall_devices.coordinator.model import STATE_ADAPTER  # noqa: E402
from hall_devices.coordinator.outcome import ActAtWindow, TakeTicket  # noqa: E402
from hall_devices.coordinator.service import rebuild  # noqa: E402
from hall_devices.coordinator.store import EventRow, EventStore  # noqa: E402
from hall_devices.layout import load_layout  # noqa: E402
from hall_devices.mqtt.bus import encode  # noqa: E402
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config  # noqa: E402
from hall_devices.ops.provision import provision  # noqa: E402

HALL = "demo"
LAYOUT = ROOT / "examples" / "hall.toml"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def client(port: int, user: str, password: str, name: str,
           on_message: Callable[[mqtt.MQTTMessage], object], topics: list[str]) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    c.max_inflight_messages_set(1000)
    ready = threading.Event()

    def on_connect(cl: mqtt.Client, *_: Any) -> None:
        import socket

        sock = cl.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cl.subscribe([(t, 1) for t in topics])

    c.on_connect = on_connect
    c.on_subscribe = lambda *_: ready.set()

    def deliver(_c: mqtt.Client, _u: Any, m: mqtt.MQTTMessage) -> None:
        on_message(m)

    c.on_message = deliver
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError(f"{name} could not subscribe")
    return c


def sqlite_baseline(directory: Path, rows: int = 2000) -> tuple[float, float, float]:
    """Inserts/s with one commit per row, and with one commit per 256 rows; ms per commit; WAL + FULL."""
    db = sqlite3.connect(directory / "raw.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body BLOB)")
    body = b"x" * 300
    start = time.perf_counter()
    for _ in range(rows):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", (body,))
        db.execute("COMMIT")
    single = rows / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(rows // 256):
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO t (body) VALUES (?)", [(body,)] * 256)
        db.execute("COMMIT")
    batched = (rows // 256) * 256 / (time.perf_counter() - start)
    start = time.perf_counter()
    commits = 200
    for _ in range(commits):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", (body,))
        db.execute("COMMIT")
    db.close()
    return single, batched, (time.perf_counter() - start) / commits * 1000


def raw_round_trip(port: int, credentials: dict[str, str], count: int) -> list[float]:
    """Request/reply through the broker with no coordinator: an echo client answers at once.

    Two accounts, as the real hop has: the broker binds a client id to its username, so two clients
    of one account would take each other's session over (every ping then waits out its 5 s). The
    asker is the demo's traffic account on a kiosk's ticket request; the echo is the coordinator's
    account answering on that kiosk's reply topic: the same routes, ACL and broker as a ticket."""
    ping, pong = TICKET_REQUEST.topic(hall=HALL, kiosk="K1"), TICKET_REPLY.topic(hall=HALL, kiosk="K1")
    got = threading.Event()
    echo = client(port, "coordinator", credentials["coordinator"], "coordinator",
                  lambda m: echo.publish(pong, m.payload, qos=1), [ping])
    asker = client(port, "traffic", credentials["traffic"], "traffic", lambda _m: got.set(), [pong])
    times = []
    for _ in range(count):
        got.clear()
        start = time.perf_counter()
        asker.publish(ping, b'{"x":1}', qos=1)
        if not got.wait(5):
            raise RuntimeError("the echo did not answer within 5 s")
        times.append((time.perf_counter() - start) * 1000)
    for c in (echo, asker):
        c.disconnect()
        c.loop_stop()
    return times


MIXED_ROUNDS = 12
POISONS = (
    b'{"command_id": "x", "paper": ' + b"9" * 5000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"command_id": "x", "service_id": "\xff\xfe"}',
    b'{"rating_id": "x", "prompt_id": "P-1", "window": 6, "level": 4, "rated_at": "2026-11-23T09:00:00"}',
)


def coordinator_runs(port: int, credentials: dict[str, str], store: Path, commands: int,
                     latency_count: int) -> tuple[float, list[float], dict[int, float]]:
    env = {**os.environ, "HALL_BROKER_PORT": str(port), "HALL_BROKER_USERNAME": "coordinator",
           "HALL_BROKER_PASSWORD": credentials["coordinator"], "HALL_DATABASE_URL": f"sqlite:///{store}",
           "HALL_LAYOUT": str(LAYOUT), "HALL_LOG_LEVEL": "WARNING"}
    replies: dict[str, float] = {}
    lock = threading.Lock()
    arrived = threading.Event()

    def on_reply(message: mqtt.MQTTMessage) -> None:
        command_id = json.loads(message.payload)["command_id"]
        with lock:
            replies[str(command_id)] = time.perf_counter()  # None: a refused unreadable payload
        arrived.set()

    traffic = client(port, "traffic", credentials["traffic"], "bench-traffic", on_reply,
                     [TICKET_REPLY.filter(hall=HALL), WINDOW_RESULT.filter(hall=HALL)])
    process = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "coordinator"], env=env)
    try:
        deadline = time.monotonic() + 20
        probe_id = "probe-0"
        while probe_id not in replies and time.monotonic() < deadline:  # wait until it answers
            request = TicketRequest(command_id=probe_id, service_id="passport", paper=False)
            traffic.publish(TICKET_REQUEST.topic(hall=HALL, kiosk="K1"), encode(request), qos=1)
            time.sleep(0.3)
        services = ["passport", "hukou_in", "company_setup", "social_card", "invoice", "estate_query"]

        def burst(prefix: str, poison_pct: int, commands: int = commands) -> float:
            """Valid commands/s of a burst of ``commands`` valid ones with poison_pct % poison mixed in."""
            poisoned = 0
            start = time.perf_counter()
            for i in range(commands):
                request = TicketRequest(command_id=f"{prefix}{i}", service_id=services[i % len(services)],
                                        paper=False)
                traffic.publish(TICKET_REQUEST.topic(hall=HALL, kiosk="K1" if i % 2 else "K2"),
                                encode(request), qos=1)
                if poison_pct and i % (100 // poison_pct) == 50 // poison_pct:
                    raw = POISONS[poisoned % len(POISONS)]
                    poisoned += 1
                    topic = (RATING.topic(hall=HALL, window=6) if raw.startswith(b'{"rating')
                             else TICKET_REQUEST.topic(hall=HALL, kiosk="K1"))
                    traffic.publish(topic, raw, qos=1)
            until = time.monotonic() + 120
            while time.monotonic() < until:
                with lock:
                    if len([k for k in replies if k.startswith(prefix)]) >= commands:
                        break
                time.sleep(0.01)
            with lock:
                finished = max(t for k, t in replies.items() if k.startswith(prefix))
                assert f"{prefix}{commands - 1}" in replies
            return commands / (finished - start)

        throughput = burst("b-", 0)
        # Mixed load in blocks, 0% and 1% alternating in ABBA order: each ticket issued makes the next
        # a little dearer (more waiting), and this order cancels that drift between the two figures;
        # many small blocks average out what else the machine is doing.
        block, spent = max(100, commands // MIXED_ROUNDS), {0: 0.0, 1: 0.0}
        for round_ in range(MIXED_ROUNDS):
            for share in ((0, 1) if round_ % 2 == 0 else (1, 0)):
                spent[share] += block / burst(f"m{share}-{round_}-", share, block)
        mixed = {share: MIXED_ROUNDS * block / seconds for share, seconds in spent.items()}
        # Latency: one command at a time, a window calling and finishing, like a clerk.
        topic = WINDOW_COMMAND.topic(hall=HALL, window=6)
        traffic.publish(topic, encode(WindowCommand(command_id="lat-login", action=WindowAction.LOGIN,
                                                    clerk_id="Z06")), qos=1)
        time.sleep(0.5)
        latencies = []
        for i in range(latency_count):
            action = WindowAction.NEXT if i % 2 == 0 else WindowAction.FINISH
            arrived.clear()
            command_id = f"lat-{i}"
            sent = time.perf_counter()
            traffic.publish(topic, encode(WindowCommand(command_id=command_id, action=action)), qos=1)
            while True:
                arrived.wait(5)
                arrived.clear()
                with lock:
                    if command_id in replies:
                        latencies.append((replies[command_id] - sent) * 1000)
                        break
        return throughput, latencies, mixed
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        traffic.disconnect()
        traffic.loop_stop()


def restart_time(directory: Path, target_events: int = 100_000) -> tuple[int, float, float]:
    """Fill a store with a realistic week of events, then time the rebuild with and without a snapshot."""
    layout = load_layout(LAYOUT)
    store_path = directory / "restart.sqlite3"
    store = EventStore(store_path, synchronous="OFF")  # filling fast; the reading is what we time
    engine = Engine(layout)
    now = datetime(2026, 11, 16, 0, 30, tzinfo=UTC)  # a Monday, 08:30 local
    windows = [w.number for w in layout.windows]
    services = [s.id for s in layout.services]
    count, i = 0, 0
    rows: list[EventRow] = []

    def keep(out: Any, key: str) -> None:
        nonlocal count
        for event in out.events:
            rows.append(EventRow(event.kind, event.at.isoformat(), business_day(layout.hall, event.at),
                                 key, ev.event_json(event)))
            count += 1

    while count < target_events:
        day_start = now
        for w in windows:
            keep(engine.handle(ActAtWindow(w, WindowCommand(command_id=f"l{i}-{w}",
                 action=WindowAction.LOGIN, clerk_id=f"Z{w}")), now), "")
        for _ in range(3000):
            i += 1
            now += timedelta(seconds=9)
            keep(engine.handle(TakeTicket("K1", TicketRequest(command_id=f"t{i}",
                 service_id=services[i % len(services)], paper=False)), now, token="t"), "")
            at = windows[i % len(windows)]
            for action in (WindowAction.NEXT, WindowAction.FINISH):
                keep(engine.handle(ActAtWindow(at, WindowCommand(command_id=f"w{i}{action}",
                     action=action)), now), "")
            if len(rows) > 5000:
                store.commit(rows, [])
                rows.clear()
        for w in windows:
            keep(engine.handle(ActAtWindow(w, WindowCommand(command_id=f"o{i}-{w}",
                 action=WindowAction.LOGOUT)), now), "")
        now = day_start + timedelta(days=1)
    store.commit(rows, [])
    start = time.perf_counter()
    rebuilt = rebuild(layout, store)
    full = time.perf_counter() - start
    store.save_snapshot(store.last_seq, now.isoformat(), STATE_ADAPTER.dump_json(rebuilt.state))
    start = time.perf_counter()
    rebuild(layout, store)
    with_snapshot = time.perf_counter() - start
    store.close()
    return count, full, with_snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--latency", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-bench-") as tmp:
        directory = Path(tmp)
        layout = load_layout(LAYOUT)
        creds = provision(layout, directory / "broker", demo=True).credentials
        port = free_port()
        config = render_config(directory / "broker", Listeners(port=port, tls_port=free_port(),
                                                                tls_bind="127.0.0.1"))
        broker = BrokerProcess(config, port)
        broker.start()
        try:
            single, batched, commit_ms = sqlite_baseline(directory)
            raw = raw_round_trip(port, creds, args.latency)
            throughput, latencies, mixed = coordinator_runs(port, creds, directory / "store.sqlite3",
                                                            args.commands, args.latency)
        finally:
            broker.stop()
        events, full, snap = restart_time(directory)
    raw_p50, raw_p99 = statistics.median(raw), pct(raw, 99)
    p50, p99 = statistics.median(latencies), pct(latencies, 99)
    bound = 3 * (raw_p99 + commit_ms)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("baseline  raw SQLite inserts/s (WAL, synchronous=FULL), one commit per row: "
          f"{single:,.0f}/s; one commit per 256 rows: {batched:,.0f}/s; one commit: {commit_ms:.2f} ms")
    print(f"baseline  raw MQTT request/reply through the same broker: p50 {raw_p50:.2f} ms, "
          f"p99 {raw_p99:.2f} ms ({len(raw)} round trips)")
    print(f"coordinator durable commands/s over MQTT: {throughput:,.0f}/s ({args.commands} ticket "
          f"requests, each committed before its reply; aim >= 1,000/s)")
    print(f"coordinator command→reply over MQTT: p50 {p50:.2f} ms, p99 {p99:.2f} ms "
          f"({len(latencies)} next/finish commands); aim p99 <= 3 × (raw p99 + one commit) = {bound:.2f} ms")
    print(f"coordinator mixed load, valid commands/s: 0% poison {mixed[0]:,.0f}/s, 1% poison "
          f"{mixed[1]:,.0f}/s ({MIXED_ROUNDS * max(100, args.commands // MIXED_ROUNDS)} valid ticket "
          "requests each, in alternating blocks; poison = unreadable or zone-less payloads, each refused "
          "by name)")
    print(f"restart with {events:,} events: full replay {full:.2f} s, from a snapshot {snap:.3f} s "
          "(aim < 2 s)")


if __name__ == "__main__":
    main()
