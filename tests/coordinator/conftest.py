from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.layout import Layout
from tests.coordinator.harness import Hall
from tests.support import HallBroker


@pytest.fixture
def hall(own_broker: HallBroker, layout: Layout, tmp_path: Path) -> Iterator[Hall]:
    running = Hall(own_broker, layout, tmp_path / "coordinator.sqlite3")
    yield running
    running.stop()
