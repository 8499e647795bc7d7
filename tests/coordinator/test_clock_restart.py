"""Issue 21: the coordinator SIGKILLed and restarted across clock steps, over a real Mosquitto.

Each run is the real coordinator process (``tests/coordinator/stepped.py``) with its wall clock
started where the test says: numbers stay unique for the business day, nothing expires.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from hall_devices.contract import (
    ACTIVE_ALERTS,
    ALERT,
    DEVICE_STATUS,
    QUEUE_SUMMARY,
    TICKET_REQUEST,
    TicketReply,
    TicketRequest,
)
from tests.conftest import ROOT
from tests.coordinator.harness import Device
from tests.support import Coordinator, HallBroker, probe


class SteppedCoordinator(Coordinator):
    def start_at(self, local: str) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "tests.coordinator.stepped", local],
                                            env=self.env, stdout=out, stderr=out, cwd=ROOT)


def run(coordinator: SteppedCoordinator, broker: HallBroker, local: str) -> None:
    status = probe(broker.port, "monitor", broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="coordinator")])
    coordinator.start_at(local)
    status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=15)
    status.stop()


def take(kiosk: Device, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        request = TicketRequest(command_id=uuid.uuid4().hex, service_id="passport", paper=False)
        reply = kiosk.requests.call(TICKET_REQUEST, request, timeout_s=10, kiosk="K1")
        assert isinstance(reply, TicketReply) and reply.ok and reply.ticket, reply
        ids.append(reply.ticket.ticket_id)
    return ids


def test_numbers_stay_unique_across_a_kill_and_a_clock_step(own_broker: HallBroker, tmp_path: Path) -> None:
    coordinator = SteppedCoordinator(own_broker, tmp_path / "store.sqlite3", tmp_path / "coordinator.log")
    kiosk = Device(own_broker, "K1", "kiosk")
    kiosk.requests.listen(TICKET_REQUEST, kiosk="K1")
    kiosk.bus.start()
    try:
        run(coordinator, own_broker, "2026-11-24T00:00:20+08:00")  # just past midnight
        issued = take(kiosk, 3)
        coordinator.kill()
        run(coordinator, own_broker, "2026-11-23T23:59:30+08:00")  # back 50 s or more: "yesterday"
        alerts = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                       subscribe=[ACTIVE_ALERTS.topic(hall="demo")])
        active = alerts.expect(lambda m: any(a["kind"] == "clock_step"
                                             for a in json.loads(m.payload)["alerts"]), timeout_s=5)
        alerts.stop()
        assert "跳变" in active.payload.decode()
        issued += take(kiosk, 3)
        coordinator.kill()
        run(coordinator, own_broker, "2026-11-24T08:30:00+08:00")  # the morning of the same day
        issued += take(kiosk, 1)
        assert issued == [f"2026-11-24-B00{n}" for n in range(1, 8)]
        summary = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                        subscribe=[QUEUE_SUMMARY.topic(hall="demo")])

        def passport_waiting(payload: bytes | bytearray) -> int:
            rows = json.loads(payload)["services"]
            return int(next(r["waiting"] for r in rows if r["service_id"] == "passport"))

        # Nothing expired (the summary is republished at most twice a second: wait for the latest).
        summary.expect(lambda m: passport_waiting(m.payload) == 7, timeout_s=5)
        summary.stop()
        assert coordinator.stop() == 0
    finally:
        kiosk.stop()
        if coordinator.process and coordinator.process.poll() is None:
            coordinator.process.kill()
            coordinator.process.wait()


def test_a_restart_in_the_same_boot_sees_a_step_made_while_down(own_broker: HallBroker,
                                                                tmp_path: Path) -> None:
    """Stopped at 16:00 and started with the clock 8 h ahead in the same boot: the step is seen at
    once against the reading stored with the last commit (alerted; the day waits, no number under
    it); stopped and started with the clock right again: the step back is seen, B003 follows."""
    coordinator = SteppedCoordinator(own_broker, tmp_path / "store.sqlite3", tmp_path / "coordinator.log")
    kiosk = Device(own_broker, "K1", "kiosk")
    kiosk.requests.listen(TICKET_REQUEST, kiosk="K1")
    kiosk.bus.start()
    alerts = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])

    def step_alert(size: str) -> None:  # a step of this size is alerted (earlier ones come again)
        alerts.expect(lambda m: json.loads(m.payload)["kind"] == "clock_step"
                      and size in json.loads(m.payload)["message"]["zh"], timeout_s=5)

    try:
        run(coordinator, own_broker, "2026-11-23T16:00:00+08:00")
        issued = take(kiosk, 2)
        coordinator.kill()
        run(coordinator, own_broker, "2026-11-24T00:01:00+08:00")  # +8 h: "tomorrow"
        step_alert("跳变 +8小时")
        request = TicketRequest(command_id=uuid.uuid4().hex, service_id="passport", paper=False)
        refused = kiosk.requests.call(TICKET_REQUEST, request, timeout_s=10, kiosk="K1")
        assert isinstance(refused, TicketReply) and refused.error is not None
        assert refused.error.code == "clock_unsettled"
        coordinator.kill()
        run(coordinator, own_broker, "2026-11-23T16:02:00+08:00")  # NTP put it right meanwhile
        step_alert("跳变 -7小时")
        issued += take(kiosk, 1)
        assert issued == [f"2026-11-23-B00{n}" for n in range(1, 4)]  # nothing expired or reissued
        assert coordinator.stop() == 0
    finally:
        alerts.stop()
        kiosk.stop()
        if coordinator.process and coordinator.process.poll() is None:
            coordinator.process.kill()
            coordinator.process.wait()
