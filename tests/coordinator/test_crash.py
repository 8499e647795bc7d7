"""SIGKILL the coordinator process mid-stream: nothing acknowledged is lost, nothing applied twice."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hall_devices.contract import (
    TICKET_REPLY,
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_RESULT,
    TicketRequest,
    WindowAction,
    WindowCommand,
)
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from tests.support import Coordinator, HallBroker, wait_until

HALL = "demo"
SERVICES = ["passport", "hukou_in", "id_card", "company_setup", "social_card", "fund_withdraw",
            "invoice", "estate_query"]
WINDOWS = [1, 4, 5, 6, 7, 12, 17]


def commands(count: int) -> list[tuple[str, bytes, str]]:
    """(topic, payload, command id): tickets, logins, then next/finish across windows, and junk."""
    out: list[tuple[str, bytes, str]] = []
    for window in WINDOWS:
        command = WindowCommand(command_id=f"login-{window}", action=WindowAction.LOGIN,
                                clerk_id=f"Z{window:02d}")
        out.append((WINDOW_COMMAND.topic(hall=HALL, window=window), encode(command),
                    command.command_id))
    i = 0
    while len(out) < count:
        i += 1
        if i % 5 in (1, 2, 3):
            kiosk = "K1" if i % 2 else "K2"
            request = TicketRequest(command_id=f"t-{i}", service_id=SERVICES[i % len(SERVICES)],
                                    ticket_class="priority" if i % 11 == 0 else "normal", paper=False)
            out.append((TICKET_REQUEST.topic(hall=HALL, kiosk=kiosk), encode(request),
                        request.command_id))
        else:
            window = WINDOWS[i % len(WINDOWS)]
            action = WindowAction.NEXT if i % 5 == 4 else WindowAction.FINISH
            command = WindowCommand(command_id=f"w-{i}", action=action)
            out.append((WINDOW_COMMAND.topic(hall=HALL, window=window), encode(command),
                        command.command_id))
    return out[:count]


class Stream:
    """The traffic client: persistent session, QoS 1, collects every answer by command id."""

    def __init__(self, broker: HallBroker) -> None:
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="crash-traffic",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set("traffic", broker.credentials["traffic"])
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        ready = threading.Event()

        def on_connect(client: mqtt.Client, *_: Any) -> None:
            client.subscribe([(TICKET_REPLY.filter(hall=HALL), 1),
                              (WINDOW_RESULT.filter(hall=HALL), 1)])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: ready.set()
        self.client.on_message = self.on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert ready.wait(5)

    def on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        reply = json.loads(message.payload)
        with self.lock:
            self.answers.setdefault(str(reply["command_id"]), []).append(reply)

    def answered(self) -> int:
        with self.lock:
            return len(self.answers)


def test_sigkill_mid_stream_loses_nothing_and_applies_nothing_twice(
        own_broker: HallBroker, coordinator: Coordinator, layout: Layout, tmp_path: Path) -> None:
    stream = Stream(own_broker)
    batch = commands(2000)
    junk_topic = TICKET_REQUEST.topic(hall=HALL, kiosk="K1")
    kills = {400: False, 1300: False}
    in_flight: list[int] = []  # commands sent but not yet answered when the coordinator was killed
    for n, (topic, payload, _id) in enumerate(batch):
        stream.client.publish(topic, payload, qos=1)
        if n == 700:  # bad payloads never kill the process; each is answered with an error
            stream.client.publish(junk_topic, b"\x00not json", qos=1)
            stream.client.publish(junk_topic, b'{"command_id": "junk-1", "service_id": 5}', qos=1)
        for at, done in kills.items():
            if not done and n >= at:
                def answered(at: int = at) -> bool:
                    return stream.answered() >= at - 150

                wait_until(answered, 30, "answers before the kill")
                in_flight.append(n + 1 - stream.answered())
                coordinator.kill()
                kills[at] = True
                time.sleep(0.3)  # commands keep arriving at the broker meanwhile
                coordinator.start()
        if n % 50 == 0:
            time.sleep(0.02)  # a steady stream rather than one burst
    expected = {command_id for _t, _p, command_id in batch}
    wait_until(lambda: expected <= set(stream.answers), 90, "every command answered")
    assert coordinator.process is not None and coordinator.process.poll() is None, "coordinator died"
    assert len(in_flight) == 2 and max(in_flight) > 0, f"the kills hit no work in flight: {in_flight}"
    assert stream.answers["junk-1"][0]["error"]["code"] == "bad_schema"
    assert coordinator.stop() == 0
    stream.client.disconnect()
    stream.client.loop_stop()

    db = sqlite3.connect(tmp_path / "store.sqlite3")
    keys = Counter(row[0] for row in db.execute("SELECT key FROM commands"))
    issued = [json.loads(r[0]) for r in db.execute("SELECT body FROM events WHERE kind='ticket_issued'")]
    per_command = Counter(row[0] for row in db.execute(
        "SELECT command FROM events WHERE kind='ticket_issued'"))
    db.close()
    for topic, _payload, command_id in batch:
        kind = "ticket_request" if "/ticket/" in topic else "window_command"
        assert keys[f"{kind}:{command_id}"] == 1, f"{command_id} stored {keys[f'{kind}:{command_id}']} times"
        if kind == "ticket_request":
            assert per_command[f"ticket_request:{command_id}"] == 1, f"{command_id} issued twice"
    numbers = [(t["day"], t["number"]) for t in issued]
    assert len(numbers) == len(set(numbers)), "a ticket number was issued twice"
    # Every answer to one command says the same thing, however often it was redelivered.
    for command_id, replies in stream.answers.items():
        assert all(r == replies[0] for r in replies), f"{command_id} answered differently"
    # A number is unique within its business day: a run across hall midnight starts again at 001.
    tickets = [(layout.hall.business_day(datetime.fromisoformat(r[0]["ticket"]["issued_at"])),
                r[0]["ticket"]["number"]) for cid, r in stream.answers.items() if cid.startswith("t-")]
    assert len(tickets) == len(set(tickets)) == len([c for c in expected if c.startswith("t-")])
