"""What a person waits for at a device is published first: a paper ticket's heads-up to its printer
before its print job, the job before its reply and the waiting counts; a window's own state (its
screen and pad) and its call before the reply and the other windows' states."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from hall_devices.contract import (
    CALL,
    PRINT_EXPECTED,
    PRINT_JOB,
    TICKET_REPLY,
    WINDOW_RESULT,
    WINDOW_STATE,
    TicketReply,
    TicketRequest,
    WindowAction,
    WindowCommand,
    WindowCommandResult,
)
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import ActAtWindow, SendPrintJob, TakeTicket
from hall_devices.layout import Layout
from tests.coordinator.harness import Hall
from tests.support import Probe, probe

HALL = "demo"
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in the hall


def _watch(hall: Hall) -> Probe:
    return probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                 subscribe=[f"hall/{HALL}/#"])


def _live(watch: Probe, until: dict[str, tuple[str, object]]) -> list[mqtt.MQTTMessage]:
    """Messages as published (retained copies from the subscription left out), until for each
    topic of ``until`` one has come whose payload holds the field with that value."""
    seen: list[mqtt.MQTTMessage] = []
    while any(_index(seen, topic, *field) is None for topic, field in until.items()):
        seen.append(watch.expect(lambda m: not m.retain, timeout_s=10))
    return seen


def _index(seen: list[mqtt.MQTTMessage], topic: str, key: str | None = None, value: object = None
           ) -> int | None:
    return next((i for i, m in enumerate(seen)
                 if m.topic == topic and (key is None or json.loads(m.payload).get(key) == value)), None)


def _at(seen: list[mqtt.MQTTMessage], topic: str, key: str | None = None, value: object = None) -> int:
    found = _index(seen, topic, key, value)
    assert found is not None, f"nothing on {topic} with {key} = {value!r}"
    return found


def test_a_paper_ticket_s_print_job_goes_before_its_reply_and_the_waiting_counts(hall: Hall) -> None:
    windows = sorted(hall.service.engine.services.windows_of["passport"])
    watch = _watch(hall)
    try:
        hall.ok(6, "login", clerk_id="Z06")
        reply = hall.take("passport", paper=True)
        assert reply.print_job_id is not None and reply.ticket is not None
        job, answer = PRINT_JOB.topic(hall=HALL, printer="P1"), TICKET_REPLY.topic(hall=HALL, kiosk="K1")
        states = [WINDOW_STATE.topic(hall=HALL, window=w) for w in windows]
        seen = _live(watch, {job: ("job_id", reply.print_job_id), answer: ("command_id", reply.command_id),
                             **{s: ("waiting", 1) for s in states}})
        first_state = min(_at(seen, s, "waiting", 1) for s in states)
        assert _at(seen, job, "job_id", reply.print_job_id) < _at(seen, answer, "command_id",
                                                                  reply.command_id) < first_state
    finally:
        watch.stop()


def test_a_paper_ticket_s_printer_hears_of_it_before_its_job_and_a_screen_only_one_sends_none(
        hall: Hall) -> None:
    watch = _watch(hall)
    try:
        expect, job = PRINT_EXPECTED.topic(hall=HALL, printer="P1"), PRINT_JOB.topic(hall=HALL, printer="P1")
        reply = hall.take("passport", paper=True)
        assert reply.print_job_id is not None
        seen = _live(watch, {job: ("job_id", reply.print_job_id)})
        heads_up = _at(seen, expect, "request_id", reply.command_id)
        assert heads_up < _at(seen, job, "job_id", reply.print_job_id)
        assert json.loads(seen[heads_up].payload) == {"schema_version": 1, "printer_id": "P1",
                                                      "request_id": reply.command_id}  # nothing else
        answer = TICKET_REPLY.topic(hall=HALL, kiosk="K1")
        screen_only = hall.take("passport", paper=False)
        seen = _live(watch, {answer: ("command_id", screen_only.command_id)})
        assert _index(seen, expect) is None and _index(seen, job) is None
    finally:
        watch.stop()


def test_a_call_s_window_state_and_call_go_before_its_reply_and_the_other_windows(hall: Hall) -> None:
    windows = sorted(hall.service.engine.services.windows_of["passport"])
    assert len(windows) > 1, "the example hall has other windows for passports: their counts change"
    states = {w: WINDOW_STATE.topic(hall=HALL, window=w) for w in windows}
    watch = _watch(hall)
    try:
        hall.ok(6, "login", clerk_id="Z06")
        hall.take("passport")
        _live(watch, {s: ("waiting", 1) for s in states.values()})  # the ticket's messages are in
        called = hall.ok(6, "next")
        assert called.ticket is not None
        number = called.ticket.number
        call, answer = CALL.topic(hall=HALL), WINDOW_RESULT.topic(hall=HALL, window=6)
        seen = _live(watch, {states[6]: ("ticket_number", number), call: ("ticket_number", number),
                             answer: ("command_id", called.command_id),
                             **{states[w]: ("waiting", 0) for w in windows if w != 6}})
        replied = _at(seen, answer)
        assert _at(seen, states[6], "ticket_number", number) < _at(seen, call) < replied
        assert all(_at(seen, states[w]) > replied for w in windows if w != 6)
    finally:
        watch.stop()


def test_what_the_engine_shows_of_a_command_is_built_once(layout: Layout) -> None:
    """A paper ticket's print job and reply carry the one TicketInfo; a window command's outcome
    carries the state its reply shows, for the service to publish instead of building it again."""
    engine = Engine(layout)
    engine.observe(T0)
    assert engine.handle(ActAtWindow(6, WindowCommand(command_id="in", action=WindowAction.LOGIN,
                                                      clerk_id="Z06")), T0).reply is not None
    taken = engine.handle(TakeTicket("K1", TicketRequest(command_id="t", service_id="passport",
                                                         paper=True)), T0, token="tok")
    (job,) = [e for e in taken.effects if isinstance(e, SendPrintJob)]
    assert isinstance(taken.reply, TicketReply) and taken.reply.ticket is job.job.ticket
    called = engine.handle(ActAtWindow(6, WindowCommand(command_id="n", action=WindowAction.NEXT)), T0)
    assert isinstance(called.reply, WindowCommandResult)
    assert called.window_states == {6: called.reply.state}
