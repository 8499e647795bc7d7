from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.contract import DEVICE_STATUS
from hall_devices.layout import Layout
from tests.coordinator.harness import Hall
from tests.support import Coordinator, HallBroker, probe


@pytest.fixture
def hall(own_broker: HallBroker, layout: Layout, tmp_path: Path) -> Iterator[Hall]:
    running = Hall(own_broker, layout, tmp_path / "coordinator.sqlite3")
    yield running
    running.stop()


@pytest.fixture
def coordinator(own_broker: HallBroker, tmp_path: Path) -> Iterator[Coordinator]:
    running = Coordinator(own_broker, tmp_path / "store.sqlite3", tmp_path / "coordinator.log")
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="coordinator")])
    running.start()
    # Its first session must exist before traffic flows; after that the broker keeps it.
    status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=15)
    status.stop()
    yield running
    if running.process and running.process.poll() is None:
        running.process.kill()
        running.process.wait()
