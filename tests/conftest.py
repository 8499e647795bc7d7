"""Shared fixtures: a real Mosquitto provisioned from the example layout, on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.layout import Layout, load_layout
from tests.support import HallBroker, start_hall_broker

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hall.toml"


@pytest.fixture(scope="session")
def layout() -> Layout:
    return load_layout(EXAMPLE)


@pytest.fixture(scope="session")
def hall_broker(tmp_path_factory: pytest.TempPathFactory, layout: Layout) -> Iterator[HallBroker]:
    """One broker for the tests that do not restart it."""
    broker = start_hall_broker(layout, tmp_path_factory.mktemp("broker"))
    yield broker
    broker.process.stop()


@pytest.fixture
def own_broker(tmp_path: Path, layout: Layout) -> Iterator[HallBroker]:
    """A broker of this test's own, which it may stop and restart."""
    broker = start_hall_broker(layout, tmp_path / "broker")
    yield broker
    broker.process.stop()
