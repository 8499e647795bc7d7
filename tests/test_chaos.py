"""Chaos in the whole hall, bounded in time: the real processes of `hall-devices up`, simulated devices,
traffic at high speed, and one fault at a time. Nothing acknowledged is lost or applied twice, and
every device is back online.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hall_devices.contract import DEVICE_STATUS
from hall_devices.demo.up import Hall, UpOptions
from hall_devices.layout import Layout
from tests.conftest import EXAMPLE
from tests.support import probe, wait_until

AGENTS = ("coordinator", "P1", "P2", "L1", "KB1", "VOICE1")


@pytest.fixture
def hall(tmp_path: Path, layout: Layout) -> Iterator[Hall]:
    running = Hall(layout, UpOptions(layout_path=EXAMPLE, data_dir=tmp_path / "hall", port=None,
                                     speed=300))
    try:
        running.start_broker()
        running.start_coordinator()
        running.start_devices()
        running.start_clients()
        yield running
    finally:
        running.stop()


def kill_coordinator(hall: Hall) -> None:
    child = hall.children[0]
    child.send_signal(signal.SIGKILL)
    child.wait()
    hall.children.remove(child)
    hall.start_coordinator()


def restart_broker(hall: Hall) -> None:
    assert hall.broker is not None
    hall.broker.stop()
    time.sleep(1.0)
    hall.broker.start()


def unplug_pads(hall: Hall) -> None:
    hall.pad_buses[0].port.unplug()
    time.sleep(2.0)
    hall.pad_buses[0].port.plug()


def paper_out(hall: Hall) -> None:
    hall.printers[0].switches.paper_out = True
    time.sleep(2.0)
    hall.printers[0].switches.paper_out = False


@pytest.mark.timeout(180)
@pytest.mark.parametrize("chaos", [kill_coordinator, restart_broker, unplug_pads, paper_out],
                         ids=lambda f: f.__name__)
def test_nothing_acknowledged_is_lost(hall: Hall, chaos: Callable[[Hall], None]) -> None:
    traffic = hall.generator
    assert traffic is not None
    wait_until(lambda: traffic.issued >= 10 and traffic.served >= 2, 30, "traffic under way")
    data = hall.options.data_dir
    chaos(hall)
    before, rated_before = len(traffic.acknowledged), _recorded_ratings(data)
    # Tickets issued and ratings from the pads recorded after the fault: the hall works again.
    wait_until(lambda: len(traffic.acknowledged) >= before + 10 and traffic.served >= 4
               and _recorded_ratings(data) > rated_before, 45, "traffic flowing again")
    traffic.stop()  # quiet now; what is in flight settles
    wait_until(lambda: _pending_ratings(data) == 0, 30, "every rating acknowledged")

    # Every device back online (retained statuses).
    watch = probe(hall.port, "monitor", hall.credentials["monitor"],
                  subscribe=[DEVICE_STATUS.filter(hall="demo")])
    seen: dict[str, str] = {}

    def all_online() -> bool:
        while not watch.messages.empty():
            status = json.loads(watch.messages.get().payload)
            seen[status["device_id"]] = status["state"]
        return all(seen.get(agent) in ("ok", "warning") for agent in AGENTS)

    wait_until(all_online, 30, f"every agent online (seen {seen})")
    watch.stop()

    store = sqlite3.connect(f"file:{data / 'coordinator.sqlite3'}?mode=ro", uri=True)
    issued = [json.loads(r[0]) for r in store.execute("SELECT body FROM events WHERE kind='ticket_issued'")]
    ratings = [json.loads(r[0]) for r in store.execute(
        "SELECT body FROM events WHERE kind='rating_recorded'")]
    store.close()
    ids = Counter(t["ticket_id"] for t in issued)
    missing = [t for t in traffic.acknowledged if ids[t] != 1]
    assert not missing, f"acknowledged tickets not in the store exactly once: {missing[:5]}"
    assert max(ids.values()) == 1, "a ticket number was issued twice"
    assert len({r["rating_id"] for r in ratings}) == len(ratings), "a rating was recorded twice"
    assert len({r["prompt_id"] for r in ratings}) == len(ratings), "a service was rated twice"
    assert ratings, "no rating made it through"


def _recorded_ratings(data: Path) -> int:
    """Ratings in the coordinator's store, read as a second reader (WAL) while it runs."""
    store = data / "coordinator.sqlite3"
    if not store.exists():
        return 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT COUNT(*) FROM events WHERE kind='rating_recorded'").fetchone()[0])
    finally:
        db.close()


def _pending_ratings(data: Path) -> int:
    outbox = data / "pads-KB1.sqlite3"
    if not outbox.exists():
        return 0
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    finally:
        db.close()
