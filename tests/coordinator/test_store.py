"""The event store's lock: one coordinator per store, and a second one is told who holds it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hall_devices.coordinator.store import StoreLock, StoreLockedError
from tests.support import Coordinator


def test_a_second_lock_on_a_store_names_the_holder(tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    first = StoreLock(store)
    with pytest.raises(StoreLockedError, match=f"in use by another coordinator \\(pid {os.getpid()} on "):
        StoreLock(store)
    first.release()
    StoreLock(store).release()  # free again once released


def test_a_second_coordinator_on_the_same_store_stops_with_one_line(coordinator: Coordinator) -> None:
    assert coordinator.process is not None
    second = subprocess.run([sys.executable, "-m", "hall_devices.cli", "coordinator"], env=coordinator.env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"in use by another coordinator (pid {coordinator.process.pid} " in lines[0]
    assert lines[0].startswith("协调服务无法启动")
    assert coordinator.process.poll() is None  # the first one is untouched
    assert coordinator.stop() == 0
    StoreLock(Path(coordinator.env["HALL_DATABASE_URL"].removeprefix("sqlite:///"))).release()
