"""Attacks with one device's credential, against a real Mosquitto and a real coordinator (issue 15):
taking another client's id, and speaking for another device in a payload.

Each attack is followed by a control that would have failed had the attack worked (a round trip
answered on the victim's first connection, a genuine message still applied).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from paho.mqtt.client import MQTTMessage

from hall_devices.contract import (
    ALERT,
    DEVICE_STATUS,
    ERROR,
    PRINT_RESULT,
    RATING,
    RATING_ACK,
    TICKET_REQUEST,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    PrintFailure,
    PrintResult,
    Rating,
    RatingLevel,
    TicketReply,
    TicketRequest,
)
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from hall_devices.pads.agent import PadAgent
from tests.coordinator.harness import Hall, cid
from tests.support import Probe, probe

HALL = "demo"


def take_at(hall: Hall, kiosk: str) -> TicketReply:
    reply = hall.kiosk.requests.call(TICKET_REQUEST, TicketRequest(
        command_id=cid(), service_id="passport", paper=True), kiosk=kiosk)
    assert isinstance(reply, TicketReply) and reply.ok, reply
    return reply


def intruder(hall: Hall, user: str, client_id: str) -> Probe:
    """A client with ``user``'s credential asking for ``client_id``, clean start (paho's default)."""
    client = probe(hall.broker.port, user, hall.broker.credentials[user], client_id=client_id)
    assert not client.connect_result.get(timeout=5).is_failure
    return client


def is_offline(device: str) -> object:
    def check(m: MQTTMessage) -> bool:
        return m.topic.endswith(f"/device/{device}/status") and json.loads(m.payload)["state"] == "offline"
    return check


def test_a_device_credential_cannot_take_over_the_coordinator(hall: Hall) -> None:
    watch = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                  subscribe=[DEVICE_STATUS.topic(hall=HALL, device="coordinator")])
    assert hall.service.bus.connections == 1
    attacker = intruder(hall, "K2", "coordinator")
    # The coordinator is still on its first connection and its persistent session answers.
    assert take_at(hall, "K1").ticket is not None
    assert hall.service.bus.connected and hall.service.bus.connections == 1
    watch.nothing(is_offline("coordinator"), 0.5)  # type: ignore[arg-type]
    attacker.stop()
    watch.stop()


def test_a_device_credential_cannot_take_over_another_agent(hall: Hall, layout: Layout,
                                                           tmp_path: Path) -> None:
    addresses = [p.address for p in layout.members("KB1")]  # type: ignore[union-attr]
    pads = PadBusSimulator(tmp_path / "dev" / "pad-bus-1", addresses).start()
    agent = PadAgent(hall.broker.settings("KB1"), layout, "KB1", tmp_path / "agent", url=str(pads.path))
    agent.start()
    watch = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                  subscribe=[DEVICE_STATUS.topic(hall=HALL, device="KB1")])
    try:
        assert agent.bus.wait_connected(10)
        attacker = intruder(hall, "K1", "KB1")
        hall.take("company_change")
        pads.type(3, "0301")  # the clerk signs in on the pad: a window command from the agent
        assert pads.wait(lambda: pads.display(3) == "1"), "the agent's sign-in was not answered"
        assert agent.bus.connected and agent.bus.connections == 1
        watch.nothing(is_offline("KB1"), 0.5)  # type: ignore[arg-type]
        attacker.stop()
    finally:
        agent.stop()
        pads.stop()
        watch.stop()


def test_a_status_naming_another_device_is_refused_and_raises_no_alert(hall: Hall) -> None:
    watch = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                  subscribe=[ERROR.topic(hall=HALL, reporter="coordinator"),
                             ALERT.topic(hall=HALL)])
    kiosk = probe(hall.broker.port, "K1", hall.broker.credentials["K1"])
    spoof = DeviceStatus(device_id="P2", kind="printer", state=DeviceState.FAULT,
                         faults=[DeviceFault.PAPER_OUT], updated_at=datetime.now(UTC))
    # On K1's own topic (the ACL allows it), retained: it would outlive restarts.
    kiosk.client.publish(DEVICE_STATUS.topic(hall=HALL, device="K1"), encode(spoof),
                         qos=1, retain=True)
    report = json.loads(watch.expect(lambda m: m.topic.endswith("/error/coordinator")).payload)
    assert report["problem"]["code"] == "wrong_sender"
    assert "'K1'" in report["problem"]["message"] and "'P2'" in report["problem"]["message"]
    assert report["topic"] == f"hall/{HALL}/device/K1/status"
    # K2's tickets still print on P2, and after a restart (the spoof is retained) too.
    assert take_at(hall, "K2").print_job_id is not None
    hall.restart_coordinator()
    watch.expect(lambda m: m.topic.endswith("/error/coordinator") and b"wrong_sender" in m.payload)
    assert take_at(hall, "K2").print_job_id is not None
    watch.nothing(lambda m: m.topic.endswith("/alert") and b"P2" in m.payload, 0.3)
    # Control: P2 saying the same of itself is believed.
    printer = probe(hall.broker.port, "P2", hall.broker.credentials["P2"])
    printer.client.publish(DEVICE_STATUS.topic(hall=HALL, device="P2"), encode(spoof), qos=1)
    alert = json.loads(watch.expect(lambda m: m.topic.endswith("/alert") and b"P2" in m.payload).payload)
    assert alert["alert_id"] == "paper_out:P2" and not alert["cleared"]
    for client in (printer, kiosk, watch):
        client.stop()


def test_a_rating_naming_another_window_is_answered_with_both(hall: Hall) -> None:
    pads = probe(hall.broker.port, "KB1", hall.broker.credentials["KB1"],
                 subscribe=[RATING_ACK.topic(hall=HALL, window=3)])
    rating = Rating(rating_id=cid(), prompt_id="p-1", window=6, level=RatingLevel.VERY_SATISFIED,
                    rated_at=datetime.now(UTC))
    pads.client.publish(RATING.topic(hall=HALL, window=3), encode(rating), qos=1)
    ack = json.loads(pads.expect(lambda m: True).payload)
    assert ack["ok"] is False and ack["command_id"] == rating.rating_id
    assert ack["error"]["code"] == "wrong_sender"
    assert "'3'" in ack["error"]["message"] and "'6'" in ack["error"]["message"]
    pads.stop()


def test_a_print_result_for_another_printers_job_is_refused_and_the_real_one_counts(hall: Hall) -> None:
    watch = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                  subscribe=[ERROR.topic(hall=HALL, reporter="coordinator"),
                             ALERT.topic(hall=HALL)])
    job = take_at(hall, "K2").print_job_id  # a job for P2
    assert job is not None
    failed = PrintResult(command_id=job, ok=False, reason=PrintFailure.PAPER_OUT)
    p1 = probe(hall.broker.port, "P1", hall.broker.credentials["P1"])
    p1.client.publish(PRINT_RESULT.topic(hall=HALL, printer="P1"), encode(failed), qos=1)
    report = json.loads(watch.expect(lambda m: m.topic.endswith("/error/coordinator")).payload)
    assert report["problem"]["code"] == "wrong_sender"
    assert "'P1'" in report["problem"]["message"] and "'P2'" in report["problem"]["message"]
    # P1's refused result did not use up the job's id: P2's own result is applied.
    p2 = probe(hall.broker.port, "P2", hall.broker.credentials["P2"])
    p2.client.publish(PRINT_RESULT.topic(hall=HALL, printer="P2"), encode(failed), qos=1)
    alert = json.loads(watch.expect(lambda m: m.topic.endswith("/alert")).payload)
    assert alert["kind"] == "print_failed" and not alert["cleared"]
    for client in (p1, p2, watch):
        client.stop()
