"""Poison commands: one that raises inside the coordinator is answered internal_error, kept as a dead
letter with its command key, never re-run, and takes nothing else with it.

After issue 14 the bus refuses the known poisons (naive datetimes, ``²`` as a window) before they
reach the engine. Here they are handed to the real coordinator as an older, laxer bus did: built
without validation (``model_construct``) or with the topic level the old parser let through, so the
coordinator's own guard is what is tested.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hall_devices.contract import (
    QUERY,
    Channel,
    DeadLettersAnswer,
    QueryKind,
    QueryReply,
    QueryRequest,
    Rating,
    RatingLevel,
    TicketRequest,
    WindowAction,
    WindowCommand,
    route,
)
from hall_devices.mqtt.bus import Inbound
from tests.coordinator.harness import Hall, cid, error_code
from tests.support import probe, wait_until


def _inbound(route_name: str, payload: Any, **params: str) -> Inbound[Any]:
    r = route(route_name)
    topic = r.pattern.format(hall="demo", **params)
    return Inbound(r, topic, {"hall": "demo", **params}, payload, False, False, 0, 0)


def _serve_and_time_out(hall: Hall, window: int) -> str:
    hall.ok(window, "login", clerk_id="Z06")
    hall.take("passport")
    hall.next_number(window)
    hall.ok(window, "start")
    hall.ok(window, "finish")
    prompt = hall.prompt(window)
    hall.clock.advance(seconds=120)
    wait_until(lambda: hall.service.engine.state.prompts[prompt.prompt_id].state == "timed_out",
               what="rating timeout")
    return prompt.prompt_id


def test_a_poison_command_is_answered_alone_kept_and_never_rerun(hall: Hall) -> None:
    prompt_id = _serve_and_time_out(hall, 6)
    errors = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=["hall/demo/error/coordinator"])
    acks = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                 subscribe=["hall/demo/window/6/rating/ack", "hall/demo/kiosk/K1/ticket/reply",
                            "hall/demo/window/+/result"])
    # A rating without a zone, for a prompt that timed out: comparing it with the prompt's
    # zone-aware expiry raises TypeError inside the engine.
    naive = Rating.model_construct(rating_id="poison-1", prompt_id=prompt_id, window=6,
                                   level=RatingLevel.SATISFIED, reasons=[], channel=Channel.PAD,
                                   rated_at=datetime(2026, 11, 23, 9, 0), schema_version=1)
    # "²": isdigit() is true, int() raises (the old topic parser let it through).
    squared = WindowCommand(command_id="poison-2", action=WindowAction.NEXT)
    tickets = [TicketRequest(command_id=f"innocent-{i}", service_id="passport", paper=False)
               for i in range(20)]
    batch = [_inbound("ticket_request", t, kiosk="K1") for t in tickets[:10]]
    batch += [_inbound("rating", naive, window="6"), _inbound("window_command", squared, window="²")]
    batch += [_inbound("ticket_request", t, kiosk="K1") for t in tickets[10:]]
    for item in batch:  # queued back to back: the worker takes them in one or a few batches
        hall.service.worker.post(item)

    answered: dict[str, dict[str, Any]] = {}
    while len(answered) < 21:  # 20 tickets + the rating's own answer ("²" has no answer topic)
        message = acks.expect(lambda m: True)
        body = json.loads(message.payload)
        answered[body["command_id"]] = body
    assert all(answered[t.command_id]["ok"] for t in tickets)
    assert answered["poison-1"]["ok"] is False
    assert answered["poison-1"]["error"]["code"] == "internal_error"
    reported = {json.loads(errors.expect(lambda m: True).payload)["problem"]["code"] for _ in range(2)}
    assert reported == {"internal_error"}

    store = hall.service.store
    letters = store.dead_letters()
    assert {d.command for d in letters} == {"rating:poison-1", "window_command:poison-2"}
    assert all(d.error.startswith(("TypeError", "ValueError")) for d in letters)
    assert any("poison-1" in d.excerpt for d in letters)

    # Redelivered after a restart: answered from the store, not run again, no second dead letter.
    hall.restart_coordinator()
    hall.service.worker.post(_inbound("rating", naive, window="6"))
    again = json.loads(acks.expect(lambda m: m.topic.endswith("rating/ack")).payload)
    assert again["command_id"] == "poison-1" and again["error"]["code"] == "internal_error"
    assert hall.service.store.count("dead_letters") == 2

    # The manager can read them: a query the web can ask.
    query = QueryRequest(command_id=cid(), kind=QueryKind.DEAD_LETTERS)
    reply = hall.web.requests.call(QUERY, query, client="web")
    dead = reply.answer_as(DeadLettersAnswer)
    assert isinstance(reply, QueryReply) and reply.ok and dead is not None
    assert dead.total == 2
    listed = {d.command for d in dead.dead_letters}
    assert listed == {"rating:poison-1", "window_command:poison-2"}
    errors.stop()
    acks.stop()


def test_engine_refusals_and_bad_queries_are_published_on_the_error_route(hall: Hall) -> None:
    errors = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=["hall/demo/error/coordinator"])
    assert error_code(hall.take("no-such-service")) == "unknown_service"
    report = json.loads(errors.expect(lambda m: True).payload)
    assert report["problem"]["code"] == "unknown_service"
    assert report["topic"] == "hall/demo/kiosk/K1/ticket/request"
    assert report["reported_by"] == "coordinator"
    assert error_code(hall.window(3, "next")) == "wrong_state"
    assert json.loads(errors.expect(lambda m: True).payload)["problem"]["code"] == "wrong_state"
    query = QueryRequest(command_id=cid(), kind=QueryKind.WINDOW_QUEUE, window=999)
    assert error_code(hall.web.requests.call(QUERY, query, client="web")) == "unknown_window"
    assert json.loads(errors.expect(lambda m: True).payload)["problem"]["code"] == "unknown_window"
    errors.stop()
