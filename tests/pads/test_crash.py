"""No lost rating: the coordinator or the pad agent killed between a rating and its ack."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hall_devices.contract import DEVICE_STATUS, TICKET_REQUEST
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.layout import Layout, PadDevice
from hall_devices.pads.agent import PadAgent
from hall_devices.pads.codec import Key
from tests.conftest import EXAMPLE
from tests.coordinator.harness import Device, cid
from tests.support import Coordinator, HallBroker, probe, wait_until


def online(broker: HallBroker, device: str, since: datetime | None = None) -> None:
    """Wait for an ok status published after ``since`` (a killed process leaves its old one)."""
    since = since or datetime.now(UTC) - timedelta(seconds=1)
    watch = probe(broker.port, "monitor", broker.credentials["monitor"],
                  subscribe=[DEVICE_STATUS.topic(hall="demo", device=device)])
    watch.expect(lambda m: json.loads(m.payload)["state"] == "ok"
                 and datetime.fromisoformat(json.loads(m.payload)["updated_at"]) > since, timeout_s=20)
    watch.stop()


@pytest.fixture
def pads(tmp_path: Path, layout: Layout) -> Iterator[PadBusSimulator]:
    sim = PadBusSimulator(tmp_path / "dev" / "pads",
                          [p.address for p in layout.members("KB1") if isinstance(p, PadDevice)]).start()
    yield sim
    sim.stop()


@pytest.fixture
def coordinator(own_broker: HallBroker, tmp_path: Path) -> Iterator[Coordinator]:
    running = Coordinator(own_broker, tmp_path / "store.sqlite3", tmp_path / "coordinator.log")
    running.start()
    online(own_broker, "coordinator")
    yield running
    if running.process and running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def serve_until_prompt(broker: HallBroker, pads: PadBusSimulator) -> None:
    """Window 6 signs in, calls a passport ticket and finishes it: the pad asks for a rating."""
    from hall_devices.contract import TicketRequest

    kiosk = Device(broker, "K1", "kiosk")
    kiosk.bus.start()
    kiosk.requests.call(TICKET_REQUEST, TicketRequest(command_id=cid(), service_id="passport",
                                                                paper=False), kiosk="K1")
    kiosk.stop()
    pads.type(6, "0601")
    assert pads.wait(lambda: pads.display(6) == "1"), "window 6 not signed in"
    pads.press(6, Key.NEXT)
    assert pads.wait(lambda: pads.display(6) == "001")
    pads.press(6, Key.RATE)
    assert pads.wait(lambda: pads.pads[6].rating_asks == 1)


def recorded(store: Path) -> list[dict[str, object]]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = [json.loads(r[0]) for r in db.execute("SELECT body FROM events WHERE kind='rating_recorded'")]
    db.close()
    return rows


@pytest.mark.parametrize("delay_s", [0.0, 0.004, 0.03])
def test_coordinator_killed_between_rating_and_ack(
        own_broker: HallBroker, layout: Layout, pads: PadBusSimulator, coordinator: Coordinator,
        tmp_path: Path, delay_s: float) -> None:
    agent = PadAgent(own_broker.settings("KB1"), layout, "KB1", tmp_path / "agent", url=str(pads.path))
    agent.start()
    serve_until_prompt(own_broker, pads)
    pads.rate(6, 4)
    time.sleep(delay_s)
    coordinator.kill()
    restarted = datetime.now(UTC)
    coordinator.start()
    online(own_broker, "coordinator", since=restarted)
    wait_until(lambda: agent.outbox.pending() == [], 30, "the rating acknowledged")
    agent.stop()
    assert coordinator.stop() == 0
    ratings = recorded(tmp_path / "store.sqlite3")
    assert [(r["level"], r["window"], r["clerk_id"]) for r in ratings] == [(4, 6, "0601")]


def test_pad_agent_killed_after_the_key_before_the_ack(
        own_broker: HallBroker, pads: PadBusSimulator, coordinator: Coordinator,
        tmp_path: Path) -> None:
    data = tmp_path / "agent"
    env = {**os.environ, "HALL_BROKER_PORT": str(own_broker.port), "HALL_BROKER_USERNAME": "KB1",
           "HALL_BROKER_PASSWORD": own_broker.credentials["KB1"], "HALL_LAYOUT": str(EXAMPLE),
           "HALL_DATA_DIR": str(data)}
    command = [sys.executable, "-m", "hall_devices.cli", "pads", "--bus", "KB1",
               "--serial", str(pads.path)]
    with (tmp_path / "pads.log").open("ab") as log:
        agent = subprocess.Popen(command, env=env, stdout=log, stderr=log)
    try:
        online(own_broker, "KB1")
        serve_until_prompt(own_broker, pads)
        assert coordinator.stop() == 0  # no ack can come now
        pads.rate(6, 2)
        outbox = data / "pads-KB1.sqlite3"

        def kept() -> int:
            db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
            try:
                return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            finally:
                db.close()

        wait_until(lambda: kept() == 1, 10, "the rating in the outbox")
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        restarted = datetime.now(UTC)
        coordinator.start()
        online(own_broker, "coordinator", since=restarted)
        with (tmp_path / "pads.log").open("ab") as log:
            agent = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        wait_until(lambda: kept() == 0, 30, "the rating delivered and acknowledged")
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(10)
    assert coordinator.stop() == 0
    ratings = recorded(tmp_path / "store.sqlite3")
    assert [(r["level"], r["window"]) for r in ratings] == [(2, 6)]
    assert ratings[0]["case_deadline"] is not None  # 差评: a follow-up case was opened
