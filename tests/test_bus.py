"""The bus adapter against a real Mosquitto: status, Last Will, reconnect, refused payloads."""

from __future__ import annotations

import json
import queue
import time
from typing import Any

from hall_devices.bus import Bus, BusOptions, Inbound, encode
from hall_devices.contract import WindowAction, WindowCommand, route
from tests.support import HallBroker, probe, wait_until

HALL = "demo"


def make_bus(broker: HallBroker, user: str, kind: str, **options: Any) -> Bus:
    return Bus(broker.settings(user), BusOptions(client_id=user, hall_id=HALL, device_id=user,
                                                 device_kind=kind, reconnect_max_s=1, **options))


def test_online_on_connect_and_offline_on_stop(hall_broker: HallBroker) -> None:
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/+/status"])
    bus = make_bus(hall_broker, "L1", "led_bus")
    bus.start()
    online = monitor.expect(lambda m: m.topic.endswith("/L1/status"))
    assert json.loads(online.payload)["state"] == "ok"
    bus.stop()
    offline = monitor.expect(lambda m: m.topic.endswith("/L1/status"))
    assert json.loads(offline.payload)["state"] == "offline"
    # The retained value a newcomer sees is offline too.
    newcomer = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                     subscribe=[f"hall/{HALL}/device/L1/status"])
    assert json.loads(newcomer.expect(lambda m: True).payload)["state"] == "offline"
    newcomer.stop()
    monitor.stop()


def test_bad_payloads_are_answered_and_the_bus_keeps_delivering(hall_broker: HallBroker) -> None:
    received: queue.Queue[Inbound[Any]] = queue.Queue()
    coordinator = make_bus(hall_broker, "coordinator", "coordinator")
    coordinator.subscribe(route("window_command"), received.put)
    coordinator.start()
    pads = probe(hall_broker.port, "KB1", hall_broker.credentials["KB1"],
                 subscribe=[f"hall/{HALL}/window/3/result"])
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/error/#"])
    topic = route("window_command").topic(hall=HALL, window=3)

    pads.client.publish(topic, b"not json {", qos=1)
    reply = json.loads(pads.expect(lambda m: True).payload)
    assert reply["ok"] is False and reply["error"]["code"] == "bad_json"
    assert reply["command_id"] is None

    pads.client.publish(topic, b'{"command_id": "c-7", "action": "explode"}', qos=1)
    reply = json.loads(pads.expect(lambda m: True).payload)
    assert reply == {**reply, "ok": False, "command_id": "c-7"}
    assert reply["error"]["code"] == "bad_schema" and "action" in reply["error"]["message"]
    report = json.loads(monitor.expect(lambda m: True).payload)
    assert report["topic"] == topic and report["reported_by"] == "coordinator"

    good = WindowCommand(command_id="c-8", action=WindowAction.NEXT)
    pads.client.publish(topic, encode(good), qos=1)
    inbound = received.get(timeout=5)
    assert inbound.payload == good and inbound.params == {"hall": HALL, "window": "3"}
    assert received.empty()  # the bad ones never reached the handler
    coordinator.stop()
    pads.stop()
    monitor.stop()


def test_reconnects_republishes_online_and_resubscribes(own_broker: HallBroker) -> None:
    received: queue.Queue[Inbound[Any]] = queue.Queue()
    changes: list[bool] = []
    bus = make_bus(own_broker, "coordinator", "coordinator", on_connection=changes.append)
    bus.subscribe(route("window_command"), received.put)
    bus.start()
    own_broker.process.stop()
    wait_until(lambda: not bus.connected, what="disconnect noticed")
    time.sleep(0.5)
    own_broker.process.start()
    assert bus.wait_connected(15), "bus did not reconnect"
    assert changes[:3] == [True, False, True]

    monitor = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/coordinator/status"])
    assert json.loads(monitor.expect(lambda m: True).payload)["state"] == "ok"
    pads = probe(own_broker.port, "KB1", own_broker.credentials["KB1"])
    command = WindowCommand(command_id="after-restart", action=WindowAction.NEXT)
    pads.client.publish(route("window_command").topic(hall=HALL, window=3), encode(command), qos=1)
    assert received.get(timeout=5).payload == command
    bus.stop()
    monitor.stop()
    pads.stop()


def test_last_will_marks_a_killed_agent_offline(hall_broker: HallBroker) -> None:
    import subprocess
    import sys

    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/VOICE1/status"])
    script = (
        "import time\n"
        "from hall_devices.bus import Bus, BusOptions\n"
        "from hall_devices.settings import Settings\n"
        f"s = Settings(hall_id='{HALL}', broker_port={hall_broker.port}, broker_username='VOICE1', "
        f"broker_password='{hall_broker.credentials['VOICE1']}', broker_keepalive_s=5)\n"
        "Bus(s, BusOptions(client_id='VOICE1', hall_id='demo', device_id='VOICE1', "
        "device_kind='announcer')).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as agent:
        assert agent.stdout is not None and agent.stdout.readline() == b"up\n"
        monitor.expect(lambda m: json.loads(m.payload)["state"] == "ok")
        agent.kill()  # no clean exit: only the Last Will can tell
    will = monitor.expect(lambda m: True, timeout_s=15)
    assert json.loads(will.payload)["state"] == "offline"
    monitor.stop()


def test_bus_over_tls_with_credentials(hall_broker: HallBroker) -> None:
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/HS-TV/status"])
    screen = Bus(hall_broker.tls_settings("HS-TV"), BusOptions(client_id="HS-TV", hall_id=HALL,
                                                               device_id="HS-TV", device_kind="hall_screen"))
    screen.start()
    assert json.loads(monitor.expect(lambda m: True).payload)["state"] == "ok"
    screen.stop()
    monitor.stop()
