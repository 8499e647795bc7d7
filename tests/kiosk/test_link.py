"""The kiosk link over a real Mosquitto and coordinator: deadlines on the coordinator's clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytestqt.qtbot import QtBot

from hall_devices.contract import DEVICE_STATUS, TicketClass, TicketReply
from hall_devices.kiosk.link import KioskLink
from hall_devices.layout import KioskDevice, Layout
from hall_devices.mqtt.bus import BusError
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe


def test_a_kiosk_whose_clock_is_30_s_slow_gets_its_ticket_and_says_its_clock_is_off(
        qtbot: QtBot, own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="K1")])
    device = layout.device("K1")
    assert isinstance(device, KioskDevice)
    link = KioskLink(own_broker.settings("K1"), layout, device, ttl_s=3,
                     clock=lambda: datetime.now(UTC) - timedelta(seconds=30))
    answers: list[TicketReply | BusError] = []
    link.ticket_answered.connect(answers.append)
    link.start()
    try:
        qtbot.waitUntil(lambda: link.coordinator_up, timeout=10000)
        assert hall.take("passport").ok  # the queue changes: a summary published now, with its time
        qtbot.waitUntil(lambda: link.clock_skewed, timeout=10000)
        assert 20 < link.offset_s <= 31  # the coordinator's clock minus the kiosk's
        shown = status.expect(lambda m: json.loads(m.payload)["faults"] == ["clock_skew"], timeout_s=5)
        assert json.loads(shown.payload)["state"] == "warning"
        link.request_ticket("passport", TicketClass.NORMAL, None, paper=False)
        qtbot.waitUntil(lambda: bool(answers), timeout=int(link.give_up_s * 1000) + 5000)
        reply = answers[0]
        assert isinstance(reply, TicketReply) and reply.ok and reply.ticket is not None, reply
        assert reply.ticket.number == "B002"
    finally:
        link.stop()
        status.stop()
        hall.stop()
