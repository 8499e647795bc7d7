"""One outcome per tap with a stalled coordinator: a real coordinator process is SIGSTOPped.

The kiosk resends under the same command id while the deadline lasts; a short stall ends with the
ticket (issued once), a stall past the deadline with "no number" and a coordinator that, resumed,
refuses the request (request_expired) instead of issuing a ghost ticket.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.client import MQTTMessage
from pytestqt.qtbot import QtBot

from hall_devices.contract import TICKET_REPLY, TICKET_REQUEST
from hall_devices.kiosk.app import KioskWindow
from hall_devices.layout import Layout
from tests.kiosk.test_kiosk import open_kiosk, tap, text_of
from tests.support import Coordinator, HallBroker, Probe, probe

HALL = "demo"


@pytest.fixture
def coordinator(own_broker: HallBroker, tmp_path: Path) -> Iterator[Coordinator]:
    running = Coordinator(own_broker, tmp_path / "store.sqlite3", tmp_path / "coordinator.log")
    running.start_ready(own_broker)
    yield running
    assert running.process is not None
    running.process.send_signal(signal.SIGCONT)  # never leave a stopped child behind
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def tickets_issued(store: Path) -> list[str]:
    with sqlite3.connect(store) as db:
        return [json.loads(body)["number"] for (body,) in
                db.execute("SELECT body FROM events WHERE kind = 'ticket_issued' ORDER BY seq")]


def is_request(message: MQTTMessage, command_id: str | None = None) -> bool:
    if message.topic != TICKET_REQUEST.topic(hall=HALL, kiosk="K1"):
        return False
    return command_id is None or json.loads(message.payload)["command_id"] == command_id


def is_reply(message: MQTTMessage, command_id: str) -> bool:
    return (message.topic == TICKET_REPLY.topic(hall=HALL, kiosk="K1")
            and json.loads(message.payload)["command_id"] == command_id)


def stalled_tap(qtbot: QtBot, watch: Probe, coordinator: Coordinator, window: KioskWindow,
                earlier: tuple[str, ...] = ()) -> str:
    """Stop the coordinator, tap "take", and return the command id once the kiosk has resent it
    (late copies of the ``earlier`` taps' requests may still be in the probe's queue)."""
    assert coordinator.process is not None
    coordinator.process.send_signal(signal.SIGSTOP)
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take")
    first = watch.expect(lambda m: is_request(m) and json.loads(m.payload)["command_id"] not in earlier,
                         timeout_s=5)
    command_id: str = json.loads(first.payload)["command_id"]
    assert json.loads(first.payload)["deadline"], "a kiosk's request carries its deadline"
    watch.expect(lambda m: is_request(m, command_id), timeout_s=5)  # resent, same command id
    return command_id


def test_a_stalled_coordinator_gives_one_true_outcome_per_tap(
        qtbot: QtBot, own_broker: HallBroker, layout: Layout, coordinator: Coordinator,
        tmp_path: Path) -> None:
    store = tmp_path / "store.sqlite3"
    watch = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                  subscribe=[TICKET_REQUEST.topic(hall=HALL, kiosk="K1"),
                             TICKET_REPLY.topic(hall=HALL, kiosk="K1")])
    window, link = open_kiosk(qtbot, own_broker, layout, "K1", ttl_s=4)
    link.resend_s = 0.5  # the resent copy is seen well before the deadline
    assert coordinator.process is not None
    try:
        # A stall shorter than the deadline: the resent request is answered, one ticket, shown.
        command_id = stalled_tap(qtbot, watch, coordinator, window)
        assert window.page_name == "asking"
        coordinator.process.send_signal(signal.SIGCONT)
        qtbot.waitUntil(lambda: window.page_name == "result", timeout=10000)
        assert window.shown_ticket is not None
        shown = window.shown_ticket.number
        reply = json.loads(watch.expect(lambda m: is_reply(m, command_id)).payload)
        assert reply["ok"] and reply["ticket"]["number"] == shown
        tap(qtbot, window, "done")

        # A stall past the deadline: the applicant is told no number was issued, and it is true.
        earlier = command_id
        command_id = stalled_tap(qtbot, watch, coordinator, window, (earlier,))
        qtbot.waitUntil(lambda: window.page_name == "message", timeout=int(link.give_up_s * 1000 + 5000))
        assert text_of(window, "message") == "系统繁忙，未能取号，请稍后再试"
        watch.nothing(lambda m: is_reply(m, command_id), wait_s=0.2)
        coordinator.process.send_signal(signal.SIGCONT)
        refused = json.loads(watch.expect(lambda m: is_reply(m, command_id), timeout_s=10).payload)
        assert not refused["ok"] and refused["error"]["code"] == "request_expired", refused
        # The copies the kiosk resent get the same refusal, never a ticket; nothing else was issued.
        watch.nothing(lambda m: is_reply(m, command_id) and json.loads(m.payload)["ok"], wait_s=1)
        assert tickets_issued(store) == [shown]
        assert window.page_name == "message"  # the late refusal changes nothing the applicant saw
    finally:
        link.stop()
        watch.stop()
