"""1,000 valid commands with 1% poison mixed in, to the real coordinator process over Mosquitto:
every valid command is answered exactly once, every poison one with an error, and nothing comes
back after a restart."""

from __future__ import annotations

import json
from typing import Any

from hall_devices.contract import ERROR, RATING, RATING_ACK, TICKET_REQUEST, TicketRequest
from hall_devices.mqtt.bus import encode
from tests.coordinator.test_crash import HALL, Stream, commands
from tests.support import Coordinator, HallBroker, probe, wait_until

POISON_EVERY = 100  # 1%


def poison(n: int) -> tuple[str, bytes, str | None]:
    """(topic, payload, the id its answer carries) of the issue's poisons, in turn."""
    kind = (n // POISON_EVERY) % 4
    ticket_topic = TICKET_REQUEST.topic(hall=HALL, kiosk="K1")
    if kind == 0:  # a 5,000-digit integer: json.loads raises ValueError
        return ticket_topic, b'{"command_id": "p-%d", "paper": ' % n + b"9" * 5000 + b"}", None
    if kind == 1:  # 100,000 nested brackets: RecursionError
        return ticket_topic, b'{"command_id": "p-%d", "service_id": ' % n + b"[" * 100_000 + b"]" * 100_000 \
            + b"}", None
    if kind == 2:  # a rating without a time zone: refused by the schema, answered by its id
        body = {"rating_id": f"p-{n}", "prompt_id": "P-1", "window": 6, "level": 4,
                "rated_at": "2026-11-23T09:00:00"}
        return RATING.topic(hall=HALL, window=6), json.dumps(body).encode(), f"p-{n}"
    # "²" as the window: isdigit() is true and int() raises; there is no topic to answer on
    request = TicketRequest(command_id=f"p-{n}", service_id="passport", paper=False)
    return f"hall/{HALL}/window/²/command", encode(request), "error route"


def test_a_burst_with_one_percent_poison(own_broker: HallBroker, coordinator: Coordinator) -> None:
    stream = Stream(own_broker)
    stream.client.subscribe([(RATING_ACK.filter(hall=HALL), 1)])
    errors = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[ERROR.topic(hall=HALL, reporter="coordinator")])
    valid = commands(990)
    poisons: list[tuple[str, bytes, str | None]] = []
    for n, (topic, payload, _id) in enumerate(valid):
        stream.client.publish(topic, payload, qos=1)
        if n % 99 == 50:
            poisons.append(poison(len(poisons) * POISON_EVERY))
            stream.client.publish(poisons[-1][0], poisons[-1][1], qos=1)
    assert len(poisons) == 10
    expected = {command_id for _t, _p, command_id in valid}
    wait_until(lambda: expected <= set(stream.answers), 60, "every valid command answered")
    refused: list[dict[str, Any]] = []
    while len(refused) < len(poisons):  # the engine's own refusals (queue_empty, ...) come too
        report = json.loads(errors.expect(lambda m: True, timeout_s=10).payload)
        if report["problem"]["code"] in {"bad_json", "bad_schema", "bad_topic"}:
            refused.append(report)
    assert {r["problem"]["code"] for r in refused} == {"bad_json", "bad_schema", "bad_topic"}

    # A restart: a redelivered command would be answered a second time.
    assert coordinator.stop() == 0
    coordinator.start()
    sentinel = TicketRequest(command_id="after-restart", service_id="passport", paper=False)
    stream.client.publish(TICKET_REQUEST.topic(hall=HALL, kiosk="K2"), encode(sentinel), qos=1)
    # The broker sends a session's redeliveries before anything newer: once the sentinel is
    # answered, any redelivery has been answered too.
    wait_until(lambda: "after-restart" in stream.answers, 30, "the coordinator back")
    with stream.lock:
        answers = dict(stream.answers)
    for command_id in expected:
        assert len(answers[command_id]) == 1, f"{command_id} answered {len(answers[command_id])} times"
    readable = [p for p in poisons if p[2] not in (None, "error route")]
    for _topic, _payload, readable_id in readable:
        assert readable_id is not None
        assert len(answers[readable_id]) == 1 and answers[readable_id][0]["error"]["code"] == "bad_schema"
    unreadable = [p for p in poisons if p[2] is None]
    assert len(answers["None"]) == len(unreadable)
    assert all(a["error"]["code"] == "bad_json" for a in answers["None"])
    assert coordinator.process is not None and coordinator.process.poll() is None
    stream.client.disconnect()
    stream.client.loop_stop()
    errors.stop()
