"""The event store's lock: one coordinator per store, and a second one is told who holds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hall_devices.contract import route
from hall_devices.coordinator.store import StoreLock, StoreLockedError
from tests.support import Coordinator, HallBroker, probe


def test_a_second_lock_on_a_store_names_the_holder(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    first = StoreLock(store)
    with pytest.raises(StoreLockedError, match=f"in use by another coordinator \\(pid {os.getpid()} on "):
        StoreLock(store)
    first.release()
    StoreLock(store).release()  # free again once released


def test_a_second_coordinator_on_the_same_store_stops_with_one_line(own_broker: HallBroker,
                                                                     tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    running = Coordinator(own_broker, store, tmp_path / "first.log")
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[route("device_status").topic(hall="demo", device="coordinator")])
    running.start()
    assert running.process is not None
    status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=15)
    second = subprocess.run([sys.executable, "-m", "hall_devices.cli", "coordinator"], env=running.env,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"in use by another coordinator (pid {running.process.pid} " in lines[0]
    assert lines[0].startswith("协调服务无法启动")
    assert running.process.poll() is None  # the first one is untouched
    assert running.stop() == 0
    StoreLock(store).release()  # the first released it on its way out
    status.stop()
