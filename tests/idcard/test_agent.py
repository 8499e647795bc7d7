"""The reader agent on a pty with the simulated module, publishing to a real Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from hall_devices.contract import CARD_READ, DEVICE_STATUS
from hall_devices.demo.sim.idcard import DEMO_CARDS, IdCardReaderSimulator
from hall_devices.idcard.agent import IdCardReaderAgent
from hall_devices.idcard.identity import id_hash, mask_id
from hall_devices.layout import Layout
from tests.support import HallBroker, HeldBroker, Probe, probe, r1_status_kept, wait_until

KEY = b"test-hall-key"


@pytest.fixture
def reader(hall_broker: HallBroker, layout: Layout, tmp_path: Path
           ) -> Iterator[tuple[IdCardReaderSimulator, IdCardReaderAgent, Probe]]:
    sim = IdCardReaderSimulator(tmp_path / "dev" / "idcard-k1").start()
    watch = probe(hall_broker.port, "monitor", None, [CARD_READ.filter(hall=hall_broker.hall_id),
                                                      DEVICE_STATUS.topic(hall=hall_broker.hall_id,
                                                                                   device="R1")])
    agent = IdCardReaderAgent(hall_broker.settings("R1"), layout, "R1", KEY, url=str(sim.path), poll_s=0.1)
    agent.start()
    yield sim, agent, watch
    agent.stop()
    watch.stop()
    sim.stop()


def status_is(state: str, fault: str | None = None) -> Callable[[mqtt.MQTTMessage], bool]:
    def check(m: mqtt.MQTTMessage) -> bool:
        if not m.topic.endswith("/device/R1/status"):
            return False
        body = json.loads(m.payload)
        return bool(body["state"] == state and (fault is None or fault in body["faults"]))
    return check


def card(m: mqtt.MQTTMessage) -> bool:
    return bool(m.topic.endswith("/kiosk/K1/card"))


def test_a_card_is_read_once_hashed_and_masked_and_faults_are_reported(
        reader: tuple[IdCardReaderSimulator, IdCardReaderAgent, Probe]) -> None:
    sim, _agent, watch = reader
    watch.expect(status_is("ok"))
    holder = DEMO_CARDS[1]
    sim.place(holder)
    read = json.loads(watch.expect(card).payload)
    assert read["ok"] is True
    assert read["id_hash"] == id_hash(KEY, holder.id_number)
    assert (read["masked_id"], read["masked_name"]) == (mask_id(holder.id_number), "李*")
    shown = json.dumps(read, ensure_ascii=False)
    assert holder.id_number not in shown and holder.name not in shown
    watch.nothing(card, wait_s=0.8)  # the card stays on the reader: told once

    sim.remove()
    sim.switches.read_fails = True
    sim.place(DEMO_CARDS[0])
    assert json.loads(watch.expect(card).payload)["problem"] == "unreadable"
    sim.switches.read_fails = False

    sim.switches.silent = True
    watch.expect(status_is("fault", "not_responding"))
    sim.switches.silent = False
    watch.expect(status_is("ok"))
    assert json.loads(watch.expect(card).payload)["ok"] is True  # the card on it is read now

    sim.switches.garbled = True  # every check byte wrong: nothing readable comes back
    watch.expect(status_is("fault", "not_responding"))
    sim.switches.garbled = False
    watch.expect(status_is("ok"))

    sim.port.unplug()
    watch.expect(status_is("fault", "port_missing"))
    sim.port.plug()
    watch.expect(status_is("ok"), timeout_s=8)


def test_a_reader_silent_at_startup_is_ok_once_it_answers_whatever_the_broker_was_doing(
        hall_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    """A newcomer's first `up`: R1 said not_responding before its bus could reach the broker,
    answered while the bus awaited the broker's CONNACK, read cards all run and stayed "fault" on
    the dashboard (the early fault was sent again after the connect, over the newer ok)."""
    from hall_devices.contract import DeviceState

    sim = IdCardReaderSimulator(tmp_path / "dev" / "idcard-k1").start()
    sim.switches.silent = True
    held = HeldBroker(hall_broker.port, listening=False)  # the broker is not up yet
    settings = hall_broker.settings("R1").model_copy(update={"broker_port": held.port})
    agent = IdCardReaderAgent(settings, layout, "R1", KEY, url=str(sim.path), poll_s=0.1)
    try:
        agent.start(wait_s=None)
        wait_until(lambda: agent.bus.status.state is DeviceState.FAULT, what="the fault recorded")
        held.listen()  # the broker comes up, but its CONNACK is held back
        assert held.client_spoke.wait(15), "the bus never sent its CONNECT"
        sim.switches.silent = False  # the module answers now
        wait_until(lambda: agent.bus.status.state is DeviceState.OK, what="the module answered")
        held.release()
        assert agent.bus.wait_connected(10)
        assert r1_status_kept(agent.bus, hall_broker) == ("ok", [])
    finally:
        agent.stop()
        held.close()
        sim.stop()
