"""LED supervision of screens whose text does not change (review r2, defect 2): each idle BX screen is
probed, a silent one and a NACKing one are alerted each with its own fault, and a bus on which no
screen answers goes ``fault``. BX controllers on a pty, the coordinator and a real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

from paho.mqtt.client import MQTTMessage

from hall_devices.contract import ALERT, DEVICE_STATUS, DeviceFault, DeviceState
from hall_devices.layout import WindowScreenDevice
from hall_devices.leds import bx
from hall_devices.leds.supervision import BusHealth, Outcome, ScreenHealth, bus_state
from tests.leds.test_agent import run_bus, unreachable_after
from tests.support import HallBroker, probe


def _about(m: MQTTMessage, screen: str) -> bool:
    return bool(json.loads(m.payload)["subject"] == screen)


def test_idle_screens_are_probed_and_each_alert_names_its_own_fault(own_broker: HallBroker,
                                                                   tmp_path: Path) -> None:
    layout = unreachable_after(2)
    screens = [d for d in layout.members("L1") if isinstance(d, WindowScreenDevice)]
    silent, nacking = screens[0], screens[1]
    alerts = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="L1")])
    hall, agent, sim = run_bus(own_broker, layout, tmp_path, "bx")
    try:
        assert sim.wait(lambda: all(c.frames for c in sim.controllers.values()), 15)
        # Nothing changes on any screen from here on (refresh_s is 60 s): only probes find these.
        sim.switches.silent_at.add(silent.address)
        sim.switches.nack[nacking.address] = bx.ErrorCode.BAD_GROUP
        shown: dict[str, str] = {}
        while len(shown) < 2:
            m = alerts.expect(lambda m: _about(m, silent.id) or _about(m, nacking.id), timeout_s=10)
            shown[json.loads(m.payload)["subject"]] = json.loads(m.payload)["message"]["en"]
        assert shown[silent.id].endswith("faulted: not responding"), shown
        assert shown[nacking.id].endswith("faulted: command refused by the device"), shown
        # Two screens failing while the others answer: warning, never a moment of fault.
        status.nothing(lambda m: json.loads(m.payload)["state"] == "fault", 2.5)
        # Every screen silent: the bus is fault, without waiting for the 60 s refresh.
        sim.switches.silent = True
        dead = status.expect(lambda m: json.loads(m.payload)["state"] == "fault", timeout_s=10)
        assert "not_responding" in json.loads(dead.payload)["faults"]
    finally:
        agent.stop()
        alerts.stop()
        status.stop()
        hall.stop()
        sim.stop()


def test_a_probed_screen_counts_its_silence_from_its_last_ack() -> None:
    health = ScreenHealth(retries=3, unreachable_after_s=5.0, probe_s=5.0)
    health.record(Outcome.ACK, 0.0)
    for at in (4.0, 4.3, 4.6):  # the next probe, and its two retries at once
        health.record(Outcome.SILENT, at)
    assert health.fault(4.9) is None
    assert health.fault(5.0) is DeviceFault.NOT_RESPONDING  # 5 s since the last ACK
    unprobed = ScreenHealth(retries=3, unreachable_after_s=5.0)
    unprobed.record(Outcome.ACK, 0.0)
    for at in (4.0, 4.3, 4.6):
        unprobed.record(Outcome.SILENT, at)
    assert unprobed.fault(5.0) is None and unprobed.fault(9.0) is DeviceFault.NOT_RESPONDING


def test_a_bus_whose_answering_screens_fail_without_an_ack_is_fault() -> None:
    bus = BusHealth(unreachable_after_s=2.0, needed=2)
    bus.record(1, Outcome.ACK, 0.0)
    bus.record(1, Outcome.SILENT, 1.0)
    bus.record(1, Outcome.SILENT, 1.5, answering=False)
    assert not bus.silent(3.5)  # one screen only: a warning, not a dead bus
    bus.record(2, Outcome.SILENT, 3.6)
    assert bus.silent(3.6)  # two answering screens failed, no ACK for 2 s since the first failure
    fresh = BusHealth(unreachable_after_s=2.0, needed=2)
    fresh.record(1, Outcome.SILENT, 10.0)
    fresh.record(2, Outcome.SILENT, 10.3)
    assert not fresh.silent(11.9) and fresh.silent(12.0)
    assert bus_state([None, None], silent=True) == (DeviceState.FAULT, [DeviceFault.NOT_RESPONDING])
    bus.record(2, Outcome.ACK, 2.5)
    assert not bus.silent(10.0)
    # Two screens already failing, retried while the others were not tried for a while: no verdict.
    bus.record(1, Outcome.SILENT, 3.0, answering=False)
    bus.record(2, Outcome.NACK, 3.1, answering=False)
    assert not bus.silent(20.0)
