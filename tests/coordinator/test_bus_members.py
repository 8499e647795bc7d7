"""A bus agent's status may speak only for the devices the layout puts on its bus, and no status, nor
any message the coordinator publishes, can stall the coordinator (review r2, defect 1).

Against a real Mosquitto and the real coordinator process (or the in-process service for a message
too large to publish, which no hall input can make any more).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from paho.mqtt.client import MQTTMessage

from hall_devices.contract import (
    DEVICE_STATUS,
    MAX_BUS_MEMBERS,
    MAX_PAYLOAD_BYTES,
    TICKET_REPLY,
    TICKET_REQUEST,
    Alert,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    Text,
)
from hall_devices.coordinator.outcome import Outcome, RaiseAlert
from hall_devices.mqtt.bus import encode
from tests.coordinator.harness import Hall, cid
from tests.support import Coordinator, HallBroker, Probe, probe

HALL = "demo"
AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _status(members: dict[str, str]) -> bytes:
    return json.dumps({"device_id": "KB1", "kind": "pad_bus", "state": "fault",
                       "faults": ["not_responding"], "detail": "x" * 500, "members": members,
                       "updated_at": AT.isoformat()}).encode()


def _ticket_answered(kiosk: Probe, watch: Probe) -> None:
    command = cid()
    kiosk.client.publish(TICKET_REQUEST.topic(hall=HALL, kiosk="K1"),
                         json.dumps({"command_id": command, "service_id": "passport", "paper": False}),
                         qos=1)
    watch.expect(lambda m: m.topic.endswith("/ticket/reply")
                 and json.loads(m.payload)["command_id"] == command and json.loads(m.payload)["ok"])


def _code(m: MQTTMessage) -> str:
    return str(json.loads(m.payload)["problem"]["code"])


def _subject(m: MQTTMessage) -> str:
    return str(json.loads(m.payload)["subject"])


def test_a_bus_status_names_only_its_own_members_and_stalls_nothing(own_broker: HallBroker,
                                                                   coordinator: Coordinator) -> None:
    watch = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                  subscribe=[f"hall/{HALL}/error/#", f"hall/{HALL}/alert",
                             TICKET_REPLY.topic(hall=HALL, kiosk="K1")])
    agent = probe(own_broker.port, "KB1", own_broker.credentials["KB1"])
    kiosk = probe(own_broker.port, "K1", own_broker.credentials["K1"])
    topic = DEVICE_STATUS.topic(hall=HALL, device="KB1")
    try:
        # 30,000 made-up members (600 KB), retained: refused whole, on the error route.
        agent.client.publish(topic, _status({f"X{i:06d}": "fault" for i in range(30_000)}), qos=1,
                             retain=True)
        refused = watch.expect(lambda m: "/error/" in m.topic and "KB1/status" in m.payload.decode())
        assert _code(refused) == "bad_schema"
        assert "members" in json.loads(refused.payload)["problem"]["message"]
        _ticket_answered(kiosk, watch)

        # A printer and a made-up id beside a real pad: only the pad's state is taken.
        agent.client.publish(topic, _status({"P1": "fault", "PAD3": "fault", "ZZ9": "fault"}), qos=1,
                             retain=True)
        pad = watch.expect(lambda m: m.topic.endswith("/alert") and _subject(m) == "PAD3")
        assert json.loads(pad.payload)["kind"] == "device_fault"
        wrong = watch.expect(lambda m: "/error/" in m.topic and _code(m) == "wrong_sender")
        message = json.loads(wrong.payload)["problem"]["message"]
        assert "KB1" in message and "P1" in message and "ZZ9" in message and "PAD3" not in message
        watch.nothing(lambda m: m.topic.endswith("/alert") and _subject(m) in ("P1", "ZZ9"))

        # The oversized retained status again, met by a restarted coordinator.
        agent.client.publish(topic, _status({f"X{i:06d}": "fault" for i in range(30_000)}), qos=1,
                             retain=True)
        watch.expect(lambda m: "/error/" in m.topic and _code(m) == "bad_schema")
        coordinator.kill()
        coordinator.start_ready(own_broker)
        watch.expect(lambda m: "/error/" in m.topic and _code(m) == "bad_schema")  # the retained copy
        _ticket_answered(kiosk, watch)
    finally:
        for client in (watch, agent, kiosk):
            client.stop()


def test_member_count_is_bounded_by_the_contract() -> None:
    ok = DeviceStatus(device_id="KB1", kind="pad_bus", state=DeviceState.OK, updated_at=AT,
                      members={f"PAD{i}": DeviceState.OK for i in range(MAX_BUS_MEMBERS)})
    assert len(ok.members) == MAX_BUS_MEMBERS
    too_many = _status({f"PAD{i}": "ok" for i in range(MAX_BUS_MEMBERS + 1)})
    try:
        DeviceStatus.model_validate_json(too_many)
    except ValueError as exc:
        assert "members" in str(exc)
    else:
        raise AssertionError("a status naming more members than a bus can hold was accepted")


def test_a_message_too_large_to_publish_fails_alone(hall: Hall) -> None:
    watch = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                  subscribe=[f"hall/{HALL}/error/#", f"hall/{HALL}/alert"])
    huge = Alert(alert_id="long_wait:A001", kind="long_wait", subject="A001", raised_at=AT,
                 message=Text(zh="长" * MAX_PAYLOAD_BYTES, en="long"))
    small = Alert(alert_id="long_wait:A002", kind="long_wait", subject="A002", raised_at=AT,
                  message=Text(zh="等候", en="waiting"))
    try:
        outcome = Outcome(effects=[RaiseAlert(huge), RaiseAlert(small)])
        sent = hall.service._publish([outcome])
        assert len(sent) == 2  # the error report and the small alert
        report = watch.expect(lambda m: "/error/" in m.topic and _code(m) == "too_large")
        assert "alert" in json.loads(report.payload)["problem"]["message"]
        watch.expect(lambda m: m.topic.endswith("/alert") and json.loads(m.payload)["subject"] == "A002")
        # The worker still answers.
        assert hall.take("passport").ticket is not None
    finally:
        watch.stop()


def test_each_member_alert_shows_its_own_faults(hall: Hall) -> None:
    watch = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                  subscribe=[f"hall/{HALL}/alert"])
    agent = probe(hall.broker.port, "L1", hall.broker.credentials["L1"])
    status = DeviceStatus(device_id="L1", kind="led_bus", state=DeviceState.WARNING, updated_at=AT,
                          faults=[DeviceFault.NACK, DeviceFault.NOT_RESPONDING],
                          members={"WS1": DeviceState.FAULT, "WS2": DeviceState.FAULT, "WS3": DeviceState.OK},
                          member_faults={"WS1": [DeviceFault.NOT_RESPONDING], "WS2": [DeviceFault.NACK]})
    try:
        agent.client.publish(DEVICE_STATUS.topic(hall=HALL, device="L1"), encode(status), qos=1)
        shown: dict[str, str] = {}
        while len(shown) < 2:
            m = watch.expect(lambda m: json.loads(m.payload)["subject"] in ("WS1", "WS2"))
            shown[json.loads(m.payload)["subject"]] = json.loads(m.payload)["message"]["en"]
        assert shown["WS1"].endswith("faulted: not responding")
        assert shown["WS2"].endswith("faulted: command refused by the device")
    finally:
        watch.stop()
        agent.stop()
