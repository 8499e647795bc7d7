"""The BX-6 agent against simulated network controllers on TCP ports, the real coordinator and Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall_devices.contract import ALERT
from hall_devices.demo.sim.bx6 import Bx6Simulator
from hall_devices.layout import Device, HallScreenDevice, Layout, LedBusDevice, WindowScreenDevice
from hall_devices.leds import bx6
from hall_devices.leds.bx6_agent import Bx6Agent
from hall_devices.leds.render import ensure_qt, render_text
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe, wait_until


def bx6_hall(layout: Layout, sims: dict[str, Bx6Simulator]) -> Layout:
    """The example hall with its LED bus L1 as BX-6 network screens: WS3, WS4 (speaks) and HS1."""
    screens = {"WS3": WindowScreenDevice(kind="window_screen", id="WS3", bus="L1", address=1, window=3,
                                         url=sims["WS3"].url),
               "WS4": WindowScreenDevice(kind="window_screen", id="WS4", bus="L1", address=2, window=4,
                                         url=sims["WS4"].url, speaks=True),
               "HS1": HallScreenDevice(kind="hall_screen", id="HS1", bus="L1", address=3,
                                       url=sims["HS1"].url)}
    devices: list[Device] = []
    for device in layout.devices:
        if isinstance(device, LedBusDevice):
            devices.append(device.model_copy(update={"protocol": "bx6", "unreachable_after_s": 2.0,
                                                      "brightness": 9}))
        elif getattr(device, "bus", None) != "L1":
            devices.append(device)
    return layout.model_copy(update={"devices": (*devices, *screens.values())})


@pytest.fixture
def network(own_broker: HallBroker, layout: Layout, tmp_path: Path
            ) -> Iterator[tuple[Hall, Bx6Agent, dict[str, Bx6Simulator]]]:
    ensure_qt()
    sims = {"WS3": Bx6Simulator(1).start(), "WS4": Bx6Simulator(2).start(), "HS1": Bx6Simulator(3).start()}
    hall_layout = bx6_hall(layout, sims)
    hall = Hall(own_broker, hall_layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = Bx6Agent(own_broker.settings("L1"), hall_layout, "L1", reply_timeout_s=0.3, ping_s=0.5)
    agent.start()
    yield hall, agent, sims
    agent.stop()
    hall.stop()
    for sim in sims.values():
        sim.stop()


def shows(sim: Bx6Simulator, text: str, width: int = 128, height: int = 32) -> bool:
    return sim.bitmap(0) == render_text(text, width, height)


def drawn(sim: Bx6Simulator) -> str:
    """What area 0 shows, for a failed assertion's message."""
    bitmap = sim.bitmap(0)
    return "\n".join(bitmap.rows()) if bitmap is not None else "nothing drawn"


def test_next_puts_the_call_on_the_network_screen_as_pixels_and_speaks_it(
        network: tuple[Hall, Bx6Agent, dict[str, Bx6Simulator]]) -> None:
    hall, _agent, sims = network
    assert sims["WS3"].wait(lambda: shows(sims["WS3"], "暂停服务"))
    hall.ok(3, "login", clerk_id="0301")
    ticket = hall.take("company_change").ticket
    assert ticket is not None
    hall.ok(3, "next")
    expected = f"请{ticket.number}号\n到3号窗口"
    assert sims["WS3"].wait(lambda: shows(sims["WS3"], expected)), drawn(sims["WS3"])
    assert render_text(expected, 128, 32) != render_text("暂停服务", 128, 32)  # the comparison can fail
    assert sims["WS4"].state.spoken == []  # WS4 speaks the calls to window 4 only; WS3 does not speak
    hall.ok(4, "login", clerk_id="0401")
    second = hall.take("id_card").ticket
    assert second is not None
    hall.ok(4, "next")
    spoken = f"请 {second.number[0]} 零零一 号 到 四 号窗口 办理"  # as the WAV announcer's text
    assert sims["WS4"].wait(lambda: sims["WS4"].state.spoken == [spoken]), sims["WS4"].state.spoken
    assert sims["WS3"].state.spoken == []
    assert sims["HS1"].wait(lambda: sims["HS1"].bitmap(0) is not None and sims["HS1"].bitmap(2) is not None)
    assert sims["WS3"].wait(lambda: sims["WS3"].state.pings >= 1)  # an idle screen is pinged (A2 00)
    assert all(sim.state.brightness == 9 for sim in sims.values())  # A2 07 on every connection


def test_a_silent_or_refusing_network_screen_is_alerted_while_the_others_update(
        network: tuple[Hall, Bx6Agent, dict[str, Bx6Simulator]], own_broker: HallBroker) -> None:
    hall, agent, sims = network
    alerts = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    assert sims["WS3"].wait(lambda: sims["WS3"].bitmap(0) is not None)
    sims["WS3"].switches.silent = True
    sims["WS4"].switches.busy = 2  # answered with backoff, then shown
    hall.ok(3, "login", clerk_id="0301")
    hall.ok(4, "login", clerk_id="0401")
    assert sims["WS4"].wait(lambda: shows(sims["WS4"], "欢迎光临\n户籍 1"))
    assert sims["WS4"].state.refused == 2
    alert = json.loads(alerts.expect(lambda m: b"WS3" in m.payload, timeout_s=10).payload)
    assert alert["subject"] == "WS3" and "3 号窗口" in alert["message"]["zh"]
    assert "无应答" in alert["message"]["zh"]
    sims["WS3"].switches.silent = False
    cleared = json.loads(alerts.expect(lambda m: b"WS3" in m.payload, timeout_s=10).payload)
    assert cleared["cleared"] is True
    assert sims["WS3"].wait(lambda: shows(sims["WS3"], "欢迎光临\n市场监管"))
    sims["HS1"].switches.nack = bx6.Error.SCREEN_PARA
    hall.take("passport")  # a new waiting count for the hall screen, refused with error 18
    wait_until(lambda: agent.screens["HS1"].health.last is not None
               and agent.screens["HS1"].health.last.value == "nack", what="NACK told apart")
    alerts.stop()


def test_a_controller_that_drops_the_connection_is_written_again(
        network: tuple[Hall, Bx6Agent, dict[str, Bx6Simulator]]) -> None:
    hall, _agent, sims = network
    assert sims["WS3"].wait(lambda: sims["WS3"].bitmap(0) is not None)
    sims["WS3"].state.areas.clear()
    sims["WS3"].drop_connections()  # as a controller that rebooted: its RAM areas are gone
    assert sims["WS3"].wait(lambda: sims["WS3"].state.connections >= 2 and shows(sims["WS3"], "暂停服务"))
    hall.ok(3, "login", clerk_id="0301")
    assert sims["WS3"].wait(lambda: shows(sims["WS3"], "欢迎光临\n市场监管"))
