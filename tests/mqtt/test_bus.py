"""The bus adapter against a real Mosquitto: status, Last Will, reconnect, refused payloads."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall_devices.contract import (
    ERROR,
    MAX_PAYLOAD_BYTES,
    RATING,
    ROUTES,
    WINDOW_COMMAND,
    ErrorReport,
    Problem,
    WindowAction,
    WindowCommand,
    route,
)
from hall_devices.mqtt.bus import (
    UNREACHABLE_WARN_S,
    BadPayloadError,
    Bus,
    BusOptions,
    Inbound,
    decode,
    encode,
)
from tests.support import HallBroker, HeldBroker, probe, r1_status_kept, wait_until

HALL = "demo"


def make_bus(broker: HallBroker, user: str, kind: str, **options: Any) -> Bus:
    return Bus(broker.settings(user), BusOptions(client_id=user, hall_id=HALL, device_id=user,
                                                 device_kind=kind, reconnect_max_s=1, **options))


def test_a_refused_request_is_answered_with_the_id_its_model_names(hall_broker: HallBroker) -> None:
    coordinator = make_bus(hall_broker, "coordinator", "coordinator")
    coordinator.subscribe(RATING, lambda _m: None)
    coordinator.start()
    pads = probe(hall_broker.port, "KB1", hall_broker.credentials["KB1"],
                 subscribe=[RATING.answer.topic(hall=HALL, window=3)])
    # A rating's id is rating_id (not command_id): the refusal's answer still carries it.
    pads.client.publish(RATING.topic(hall=HALL, window=3), b'{"rating_id": "r-9", "level": 9}', qos=1)
    reply = json.loads(pads.expect(lambda m: True).payload)
    assert (reply["ok"], reply["command_id"], reply["error"]["code"]) == (False, "r-9", "bad_schema")
    # A field that is some other model's id is not this one's: no id read.
    pads.client.publish(RATING.topic(hall=HALL, window=3), b'{"command_id": "c-9", "level": 9}', qos=1)
    reply = json.loads(pads.expect(lambda m: True).payload)
    assert (reply["ok"], reply["command_id"]) == (False, None)
    coordinator.stop()
    pads.stop()


def test_online_on_connect_and_offline_on_stop(hall_broker: HallBroker) -> None:
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/+/status"])
    bus = make_bus(hall_broker, "L1", "led_bus")
    bus.start()
    # Live, not retained: the session's broker keeps what earlier tests' buses last said.
    online = monitor.expect(lambda m: m.topic.endswith("/L1/status") and not m.retain)
    assert json.loads(online.payload)["state"] == "ok"
    bus.stop()
    offline = monitor.expect(lambda m: m.topic.endswith("/L1/status") and not m.retain)
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
    coordinator.subscribe(WINDOW_COMMAND, received.put)
    coordinator.start()
    pads = probe(hall_broker.port, "KB1", hall_broker.credentials["KB1"],
                 subscribe=[f"hall/{HALL}/window/3/result"])
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/error/#"])
    topic = WINDOW_COMMAND.topic(hall=HALL, window=3)

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
    bus.subscribe(WINDOW_COMMAND, received.put)
    bus.start()
    own_broker.process.stop()
    wait_until(lambda: not bus.connected, what="disconnect noticed")
    time.sleep(0.5)
    own_broker.process.start()
    assert bus.wait_connected(15), "bus did not reconnect"
    # The owner is told just after the waiters are released, on paho's thread.
    wait_until(lambda: len(changes) >= 3, what="the owner told of the reconnection")
    assert changes[:3] == [True, False, True]

    monitor = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/device/coordinator/status"])
    assert json.loads(monitor.expect(lambda m: True).payload)["state"] == "ok"
    pads = probe(own_broker.port, "KB1", own_broker.credentials["KB1"])
    command = WindowCommand(command_id="after-restart", action=WindowAction.NEXT)
    pads.client.publish(WINDOW_COMMAND.topic(hall=HALL, window=3), encode(command), qos=1)
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
        "from hall_devices.mqtt.bus import Bus, BusOptions\n"
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
        monitor.expect(lambda m: json.loads(m.payload)["state"] == "ok" and not m.retain)
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
    assert json.loads(monitor.expect(lambda m: not m.retain).payload)["state"] == "ok"  # live, not retained
    screen.stop()
    monitor.stop()


# --- issue 14: nothing unreadable, nothing raised in a callback, stops a process ------------------

UNREADABLE = {
    "5,000-digit integer": (b'{"command_id": "c-1", "action": "next", "target_window": ' + b"9" * 5000
                            + b"}", "bad_json"),
    "100,000 nested brackets": (b"[" * 100_000 + b"]" * 100_000, "bad_json"),
    "deep but small nesting": (b'{"command_id": "c-1", "reason": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                               "bad_json"),
    "invalid UTF-8": (b'{"command_id": "c-1", "action": "next", "reason": "\xff\xfe"}', "bad_json"),
    "over the size limit": (b'{"command_id": "c-1", "action": "next", "reason": "'
                            + b"x" * MAX_PAYLOAD_BYTES + b'"}', "bad_json"),
    "not an object": (b"[1, 2, 3]", "bad_schema"),
    "NaN": (b'{"command_id": "c-1", "action": "next", "target_window": NaN}', "bad_schema"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_every_unreadable_payload_is_a_named_refusal(case: str) -> None:
    raw, code = UNREADABLE[case]
    with pytest.raises(BadPayloadError) as refused:
        decode(WINDOW_COMMAND, raw)
    assert refused.value.problem.code == code
    assert len(refused.value.problem.message) <= 600


def test_a_string_that_is_not_text_is_refused_by_name_anywhere_in_the_payload() -> None:
    # A pause reason with NUL was taken, stored in the pause event, and then refused by the
    # region's PostgreSQL (no NUL in text or jsonb) on every resend: that hall's stream stalled.
    pause = b'{"command_id": "c-1", "action": "pause", "reason": "lunch%s"}'
    for inside, named in ((b"\\u0000", "NUL"), (b"\\ud800", "lone UTF-16 surrogate"),
                          (b"\\udc00x", "lone UTF-16 surrogate")):
        with pytest.raises(BadPayloadError) as refused:
            decode(WINDOW_COMMAND, pause % inside)
        assert refused.value.problem.code == "bad_json" and named in refused.value.problem.message
    with pytest.raises(BadPayloadError) as in_a_key:  # an unknown key, but its NUL is said first
        decode(WINDOW_COMMAND, b'{"command_id": "c-1", "action": "next", "x\\u0000": 1}')
    assert "NUL" in in_a_key.value.problem.message
    # Text that merely looks like an escape, and a surrogate pair (an escaped emoji), are text.
    for fine, reason in ((b"\\\\u0000", "\\u0000"), (b"\\ud83d\\ude00", "\U0001f600")):
        command = decode(WINDOW_COMMAND, pause % fine)
        assert command.reason == "lunch" + reason


def test_a_naive_datetime_is_refused_by_the_schema() -> None:
    raw = (b'{"rating_id": "r-1", "prompt_id": "p", "window": 6, "level": 4, '
           b'"rated_at": "2026-11-23T09:00:00"}')
    with pytest.raises(BadPayloadError) as refused:
        decode(RATING, raw)
    assert refused.value.problem.code == "bad_schema" and "rated_at" in refused.value.problem.message


@settings(max_examples=300, deadline=None)
@given(route_name=st.sampled_from(sorted(ROUTES)),
       raw=st.one_of(st.binary(max_size=300),
                     st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                                  lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
                                  max_leaves=20).map(lambda v: json.dumps(v).encode())))
def test_decode_raises_nothing_but_its_own_refusal(route_name: str, raw: bytes) -> None:
    try:
        decode(route(route_name), raw)
    except BadPayloadError as refused:
        assert refused.problem.code in {"bad_json", "bad_schema"}


def test_a_raising_handler_is_logged_acknowledged_and_the_bus_carries_on(
        own_broker: HallBroker, caplog: pytest.LogCaptureFixture) -> None:
    received: queue.Queue[str] = queue.Queue()

    def handler(inbound: Inbound[Any]) -> None:
        if inbound.payload.command_id == "boom":
            raise RuntimeError("a handler bug")
        received.put(inbound.payload.command_id)

    def connected(_up: bool) -> None:
        raise RuntimeError("an owner's bug in its connection callback")

    def persistent_bus() -> Bus:
        bus = make_bus(own_broker, "coordinator", "coordinator", persistent_session=True,
                       manual_ack=True, on_connection=connected)
        def handle_then_ack(inbound: Inbound[Any]) -> None:
            handler(inbound)
            bus.ack(inbound)

        bus.subscribe(WINDOW_COMMAND, handle_then_ack)
        return bus

    bus = persistent_bus()
    bus.start()
    pads = probe(own_broker.port, "KB1", own_broker.credentials["KB1"])
    topic = WINDOW_COMMAND.topic(hall=HALL, window=3)
    for command_id in ("boom", "after"):
        pads.client.publish(topic, encode(WindowCommand(command_id=command_id, action=WindowAction.NEXT)),
                            qos=1)
    assert received.get(timeout=5) == "after"
    failed = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert len(failed) == 1 and topic in failed[0].getMessage() and "message id" in failed[0].getMessage()
    assert any("connection callback failed" in r.getMessage() for r in caplog.records)
    bus.stop()
    # The same persistent session again: the failed message was acknowledged, so it never returns.
    bus = persistent_bus()
    bus.start()
    pads.client.publish(topic, encode(WindowCommand(command_id="later", action=WindowAction.NEXT)), qos=1)
    assert received.get(timeout=5) == "later"
    assert received.empty()
    assert len([r for r in caplog.records if "failed on" in r.getMessage()]) == 1
    bus.stop()
    pads.stop()


def test_a_topic_level_its_parameter_does_not_allow_is_refused(hall_broker: HallBroker) -> None:
    received: queue.Queue[Inbound[Any]] = queue.Queue()
    coordinator = make_bus(hall_broker, "coordinator", "coordinator")
    coordinator.subscribe(WINDOW_COMMAND, received.put)
    coordinator.start()
    monitor = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[f"hall/{HALL}/error/coordinator"])
    web = probe(hall_broker.port, "web", hall_broker.credentials["web"])
    good = encode(WindowCommand(command_id="c-9", action=WindowAction.NEXT))
    for level in ("²", "３", "0", "3a"):
        web.client.publish(f"hall/{HALL}/window/{level}/command", good, qos=1)
        report = json.loads(monitor.expect(lambda m: True).payload)
        assert report["problem"]["code"] == "bad_topic" and level in report["topic"]
    web.client.publish(f"hall/{HALL}/window/3/command", good, qos=1)
    assert received.get(timeout=5).params["window"] == "3"
    assert received.empty()
    coordinator.stop()
    web.stop()
    monitor.stop()


def test_an_unreachable_broker_is_said_once_with_host_and_port(caplog: pytest.LogCaptureFixture) -> None:
    from hall_devices.ops.broker import free_port
    from hall_devices.settings import Settings

    port = free_port()  # nothing listens there
    bus = Bus(Settings(hall_id=HALL, broker_port=port), BusOptions(
        client_id="K1", hall_id=HALL, device_id="K1", device_kind="kiosk", reconnect_max_s=1))
    bus.start(wait_s=None)

    def said() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "cannot reach the broker" in r.getMessage()]

    # The line's 2 s bound is the bus's own (UNREACHABLE_WARN_S and paho's connect timeout); the
    # wait here only ends the test.
    wait_until(lambda: bool(said()), timeout_s=UNREACHABLE_WARN_S + 5, what="the unreachable-broker line")
    time.sleep(2.5)  # paho retries every second meanwhile: still one line
    bus.stop()
    assert len(said()) == 1 and f"127.0.0.1:{port}" in said()[0].getMessage()
    assert said()[0].levelname == "ERROR"


def test_a_listener_that_drops_every_connection_is_unreachable_not_lost(
        caplog: pytest.LogCaptureFixture) -> None:
    """Something answers TCP but is no broker (a port forward with nothing behind, a firewall):
    paho calls each failed attempt a disconnect; never connected, it reads "cannot reach", once."""
    import socket
    import threading

    from hall_devices.settings import Settings

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drop_all() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                listener.accept()[0].close()

    dropper = threading.Thread(target=drop_all, daemon=True)
    dropper.start()
    port = listener.getsockname()[1]
    bus = Bus(Settings(hall_id=HALL, broker_port=port), BusOptions(
        client_id="K1", hall_id=HALL, device_id="K1", device_kind="kiosk", reconnect_max_s=1))
    try:
        bus.start(wait_s=None)
        wait_until(lambda: any("cannot reach" in r.getMessage() for r in caplog.records),
                   timeout_s=UNREACHABLE_WARN_S + 5, what="the unreachable-broker line")
        time.sleep(2.5)  # paho retries every second meanwhile
    finally:
        bus.stop()
        stop.set()
        dropper.join()
        listener.close()
    lines = [r.getMessage() for r in caplog.records if "broker" in r.getMessage()
             and r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith(f"cannot reach the broker at 127.0.0.1:{port} ("), lines


def test_the_owner_is_told_each_publish_the_broker_confirmed(hall_broker: HallBroker) -> None:
    """on_published gets the message id of each QoS 1 publish once its PUBACK is in: the
    coordinator is woken by it to acknowledge what it answered, instead of polling."""
    confirmed: queue.Queue[int] = queue.Queue()
    bus = make_bus(hall_broker, "KB1", "pad_bus", on_published=confirmed.put)
    bus.start()
    try:
        sent = [bus.publish(WINDOW_COMMAND, WindowCommand(command_id=f"c{i}", action=WindowAction.NEXT),
                            window=3) for i in range(5)]
        told: set[int] = set()
        while not {one.info.mid for one in sent} <= told:
            told.add(confirmed.get(timeout=5))
        assert bus.confirmed(sent, timeout_s=5)
    finally:
        bus.stop()


def test_a_publish_made_while_disconnected_is_not_confirmed_and_nothing_raises(
        hall_broker: HallBroker) -> None:
    """paho raises from is_published() for a publish made without a connection; confirmed() says
    False (not taken by the broker) instead of failing the command that waits on it."""
    bus = make_bus(hall_broker, "KB1", "pad_bus")  # never started: no connection
    sent = [bus.publish(WINDOW_COMMAND, WindowCommand(command_id="c0", action=WindowAction.NEXT), window=3)]
    assert bus.confirmed(sent, timeout_s=0.2) is False


def _report(message: str, excerpt: str = "") -> ErrorReport:
    return ErrorReport(topic="hall/demo/test", problem=Problem(code="bad_json", message=message),
                       excerpt=excerpt, reported_by="coordinator", at=datetime.now(UTC))


def test_a_publish_is_written_on_the_publishing_thread(hall_broker: HallBroker) -> None:
    """A publish from the caller's thread reaches the broker without paho's network thread, here
    held in a handler: it no longer waits for that thread to wake and take the GIL to write it."""
    entered, release = threading.Event(), threading.Event()

    def hold(_m: Inbound[WindowCommand]) -> None:
        entered.set()
        release.wait(30)

    coordinator = make_bus(hall_broker, "coordinator", "coordinator")
    coordinator.subscribe(WINDOW_COMMAND, hold)
    coordinator.start()
    watcher = probe(hall_broker.port, "monitor", hall_broker.credentials["monitor"],
                    subscribe=[ERROR.topic(hall=HALL, reporter="coordinator")])
    traffic = probe(hall_broker.port, "traffic", hall_broker.credentials["traffic"])
    try:
        traffic.client.publish(WINDOW_COMMAND.topic(hall=HALL, window=6),
                               encode(WindowCommand(command_id="hold", action=WindowAction.NEXT)), qos=1)
        assert entered.wait(10), "the handler never ran"
        coordinator.publish(ERROR, _report("while paho's thread is held"), reporter="coordinator")
        watcher.expect(lambda m: b"while paho's thread is held" in m.payload, timeout_s=10)
    finally:
        release.set()
        coordinator.stop()
        watcher.stop()
        traffic.stop()


def test_publishes_from_several_threads_arrive_whole_and_in_order(own_broker: HallBroker) -> None:
    """Writers on several threads and paho's own take turns: every message arrives once, whole
    and in its thread's order, and the connection is never broken by a torn packet. (A race that
    the GIL makes rare is not forced here; the lock that rules it out is _Client's.)"""
    coordinator = make_bus(own_broker, "coordinator", "coordinator", max_inflight=1000)
    # paho's thread writes too: it answers each of these refused commands itself.
    coordinator.subscribe(WINDOW_COMMAND, lambda _m: None)
    coordinator.start()
    watcher = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                    subscribe=[ERROR.topic(hall=HALL, reporter="coordinator")])
    traffic = probe(own_broker.port, "traffic", own_broker.credentials["traffic"])
    big = "x" * 600_000
    count = 150

    def publish(name: str) -> None:
        for i in range(count):
            coordinator.publish(ERROR, _report(f"{name} {i}", big if i % 30 == 0 else ""),
                                reporter="coordinator")

    threads = [threading.Thread(target=publish, args=(name,)) for name in ("a", "b")]
    try:
        for thread in threads:
            thread.start()
        for _ in range(50):
            traffic.client.publish(WINDOW_COMMAND.topic(hall=HALL, window=6), b"{", qos=1)
        for thread in threads:
            thread.join(60)
        seen: dict[str, list[int]] = {"a": [], "b": []}
        refused = 0
        while len(seen["a"]) + len(seen["b"]) < 2 * count or refused < 50:
            report = json.loads(watcher.expect(lambda m: True, timeout_s=20).payload)
            name, _, number = report["problem"]["message"].partition(" ")
            if name in seen:
                assert report["excerpt"] in ("", big)
                seen[name].append(int(number))
            else:
                refused += 1
        assert seen == {"a": list(range(count)), "b": list(range(count))}
        assert coordinator.connections == 1
    finally:
        coordinator.stop()
        watcher.stop()
        traffic.stop()


def test_a_status_set_while_connecting_is_not_undone_by_one_set_before(hall_broker: HallBroker) -> None:
    """R1 at a newcomer's first `up`: it said not_responding before its bus had a socket, answered
    while the bus waited for the CONNACK, and stayed "fault" for the whole run. paho kept the early
    status and sent it again after the connect, over the newer one; the agent publishes only
    changes, so nothing put it right."""
    from hall_devices.contract import DeviceFault, DeviceState

    held = HeldBroker(hall_broker.port)
    settings = hall_broker.settings("R1").model_copy(update={"broker_port": held.port})
    bus = Bus(settings, BusOptions(client_id="R1", hall_id=HALL, device_id="R1", device_kind="idcard_reader",
                                   reconnect_max_s=1))
    try:
        bus.set_status(DeviceState.FAULT, [DeviceFault.NOT_RESPONDING])  # no socket yet
        bus.start(wait_s=None)
        assert held.client_spoke.wait(10), "the bus never sent its CONNECT"
        bus.set_status(DeviceState.OK, [])  # the module answered: connecting, not yet connected
        held.release()
        assert bus.wait_connected(10)
        assert r1_status_kept(bus, hall_broker) == ("ok", [])
    finally:
        bus.stop()
        held.close()


@pytest.mark.parametrize("tls", [False, True])
def test_a_status_unconfirmed_when_the_connection_broke_is_not_sent_over_a_newer_one(
        hall_broker: HallBroker, tls: bool) -> None:
    """A fault published just before the connection broke, with no PUBACK back, is what paho sends
    again after a reconnect, after the current status: the device would read faulted until its
    next change. The reconnect sends the current status only."""
    from hall_devices.contract import DeviceFault, DeviceState

    held = HeldBroker(hall_broker.tls_port if tls else hall_broker.port)
    settings = (hall_broker.tls_settings("R1") if tls else hall_broker.settings("R1")).model_copy(
        update={"broker_port": held.port})
    bus = Bus(settings, BusOptions(client_id="R1", hall_id=HALL, device_id="R1", device_kind="idcard_reader",
                                   reconnect_max_s=1))
    try:
        held.release()
        bus.start()
        held.hold()
        bus.set_status(DeviceState.FAULT, [DeviceFault.NOT_RESPONDING])
        assert held.client_spoke.wait(10), "the fault was never sent"
        held.cut()  # its PUBACK never reaches the bus
        wait_until(lambda: not bus.connected, timeout_s=10, what="the loss noticed")
        bus.set_status(DeviceState.OK, [])  # the module answered meanwhile
        held.release()
        assert bus.wait_connected(15), "no reconnect"
        assert r1_status_kept(bus, hall_broker) == ("ok", [])
    finally:
        bus.stop()
        held.close()
