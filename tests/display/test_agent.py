"""The LED agent end to end: BX and EQ controllers on ptys, the real coordinator and Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall_devices.contract import route
from hall_devices.display.agent import LedAgent
from hall_devices.layout import Layout, LedBusDevice, parse_layout
from hall_devices.sim.led import LedBusSimulator
from tests.conftest import EXAMPLE
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe


@pytest.fixture
def leds(tmp_path: Path, layout: Layout) -> Iterator[LedBusSimulator]:
    addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
    sim = LedBusSimulator(tmp_path / "dev" / "led-bus-1", "bx", addresses).start()
    yield sim
    sim.stop()


@pytest.fixture
def hall_with_leds(own_broker: HallBroker, layout: Layout, tmp_path: Path,
                   leds: LedBusSimulator) -> Iterator[tuple[Hall, LedAgent]]:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = LedAgent(own_broker.settings("L1"), layout, "L1", url=str(leds.path), refresh_s=60)
    agent.start()
    yield hall, agent
    agent.stop()
    hall.stop()


def test_next_shows_the_number_at_that_address(hall_with_leds: tuple[Hall, LedAgent],
                                               leds: LedBusSimulator) -> None:
    hall, _agent = hall_with_leds
    assert leds.wait(lambda: leds.text(3) == "暂停服务")  # closed until a clerk signs in
    hall.ok(3, "login", clerk_id="0301")
    assert leds.wait(lambda: leds.text(3) == "欢迎光临\n市场监管")
    ticket = hall.take("company_change").ticket
    hall.ok(3, "next")
    assert leds.wait(lambda: leds.text(3) == f"请{ticket.number}号\n到3号窗口"), leds.text(3)  # type: ignore[union-attr]
    assert leds.text(4) == "暂停服务"  # other windows untouched
    # The hall screen lists the call and the waiting groups.
    assert leds.wait(lambda: f"请{ticket.number}号到3号窗口" in leds.text(200, 0))  # type: ignore[union-attr]
    hall.ok(3, "finish")
    hall.ok(3, "pause", reason="午间休息")
    assert leds.wait(lambda: leds.text(3) == "午间休息")


def test_hall_screen_updates_only_the_areas_that_changed(hall_with_leds: tuple[Hall, LedAgent],
                                                         leds: LedBusSimulator) -> None:
    """A new waiting count rewrites the waiting row alone; the calls and the notice stay as shown."""
    hall, agent = hall_with_leds
    hall.ok(3, "login", clerk_id="0301")
    # Every screen written once (the hall screen, lowest priority, last) and nothing left to write.
    assert leds.wait(lambda: all(c.frames >= 1 for c in leds.controllers.values()), 15)
    assert leds.wait(lambda: not any(s.changed(agent.device.protocol) for s in agent.screens.values()))
    calls, notice = leds.text(200, 0), leds.text(200, 2)
    full = leds.controllers[200].last_size
    hall.take("company_change")
    assert leds.wait(lambda: "等候1人" in leds.text(200, 1)), leds.text(200, 1)
    hall_screen = leds.controllers[200]
    assert hall_screen.last_areas == (1,)
    assert hall_screen.last_size < full
    assert (leds.text(200, 0), leds.text(200, 2)) == (calls, notice)


def test_a_corrupted_frame_is_nacked_and_retried(hall_with_leds: tuple[Hall, LedAgent],
                                                 leds: LedBusSimulator) -> None:
    hall, _agent = hall_with_leds
    assert leds.wait(lambda: leds.text(6) == "暂停服务")
    nacks = leds.controllers[6].nacks
    leds.switches.corrupt[6] = 1
    hall.ok(6, "login", clerk_id="0601")
    assert leds.wait(lambda: leds.text(6) == "欢迎光临\n出入境")
    assert leds.controllers[6].nacks == nacks + 1  # the damaged copy was refused, the retry shown


def test_unplug_and_replug_recovers_by_itself(hall_with_leds: tuple[Hall, LedAgent],
                                              leds: LedBusSimulator, own_broker: HallBroker) -> None:
    hall, _agent = hall_with_leds
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[route("device_status").topic(hall="demo", device="L1")])
    assert leds.wait(lambda: leds.text(5) == "暂停服务")
    leds.port.unplug()
    missing = status.expect(lambda m: "port_missing" in json.loads(m.payload)["faults"])
    assert json.loads(missing.payload)["state"] == "fault"
    members = json.loads(missing.payload)["members"]
    assert members and set(members.values()) == {"fault"}  # none of its screens is reachable
    hall.ok(5, "login", clerk_id="0501")  # happens while the cable is out
    leds.port.plug()
    assert leds.wait(lambda: leds.text(5) == "欢迎光临\n户籍 2", timeout_s=15)
    back = status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=10)
    assert set(json.loads(back.payload)["members"].values()) == {"ok"}
    status.stop()


def test_silent_screen_is_marked_faulted(hall_with_leds: tuple[Hall, LedAgent], leds: LedBusSimulator,
                                         own_broker: HallBroker) -> None:
    hall, _agent = hall_with_leds
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[route("device_status").topic(hall="demo", device="L1")])
    # Every screen written first: silence must catch screen 7's next frame, not the first round.
    assert leds.wait(lambda: all(c.frames for c in leds.controllers.values()), 10)
    leds.switches.silent = True
    hall.ok(7, "login", clerk_id="0701")
    faulted = status.expect(lambda m: json.loads(m.payload)["members"].get("WS7") == "fault", timeout_s=10)
    assert json.loads(faulted.payload)["state"] == "warning"
    leds.switches.silent = False
    hall.ok(7, "pause")
    status.expect(lambda m: json.loads(m.payload)["members"].get("WS7") == "ok", timeout_s=10)
    status.stop()


def test_eq_screens(own_broker: HallBroker, tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('protocol = "bx"', 'protocol = "eq"')
    layout = parse_layout(text)
    bus = layout.device("L1")
    assert isinstance(bus, LedBusDevice) and bus.protocol == "eq"
    sim = LedBusSimulator(tmp_path / "dev" / "eq", "eq", [d.address for d in layout.members("L1")]).start()
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3")
    agent = LedAgent(own_broker.settings("L1"), layout, "L1", url=str(sim.path))
    agent.start()
    try:
        hall.ok(6, "login", clerk_id="0601")
        hall.take("passport")
        hall.ok(6, "next")
        assert sim.wait(lambda: sim.text(6) == "请B001号到6号窗口")
    finally:
        agent.stop()
        hall.stop()
        sim.stop()
