"""Check-in and tickets by resident ID card at the kiosk: the reader agent on a pty with the simulated
module, a real coordinator and Mosquitto. The clear ID number never leaves the reader agent."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from hall_devices.demo.sim.idcard import DEMO_CARDS, IdCardReaderSimulator
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.idcard.agent import IdCardReaderAgent
from hall_devices.idcard.codec import CardText
from hall_devices.idcard.identity import id_hash, mask_id
from hall_devices.kiosk.app import KioskWindow
from hall_devices.kiosk.link import KioskLink
from hall_devices.layout import Layout
from hall_devices.printer.agent import PrinterAgent
from tests.coordinator.harness import Clock, Hall
from tests.kiosk.test_kiosk import open_kiosk, screenshot, tap, text_of
from tests.support import HallBroker, Probe, probe

KEY = b"kiosk-test-hall-key"


@dataclass
class CardKiosk:
    hall: Hall
    window: KioskWindow
    link: KioskLink
    reader: IdCardReaderSimulator
    watch: Probe
    store: Path


@pytest.fixture
def card_kiosk(qtbot: QtBot, own_broker: HallBroker, layout: Layout, tmp_path: Path,
               caplog: pytest.LogCaptureFixture) -> Iterator[CardKiosk]:
    caplog.set_level(logging.DEBUG)  # every log line of every part, to look for the clear number
    watch = probe(own_broker.port, "monitor", None, [f"hall/{own_broker.hall_id}/#"])
    store = tmp_path / "store.sqlite3"
    hall = Hall(own_broker, layout, store, Clock(datetime.now(UTC)))
    printer = PrinterSimulator(tmp_path / "dev" / "printer-k1").start()
    printer_agent = PrinterAgent(own_broker.settings("P1"), layout, "P1", tmp_path / "agent",
                                 url=str(printer.path), poll_interval_s=30)
    printer_agent.start()
    reader = IdCardReaderSimulator(tmp_path / "dev" / "idcard-k1").start()
    reader_agent = IdCardReaderAgent(own_broker.settings("R1"), layout, "R1", KEY, url=str(reader.path),
                                     poll_s=0.1)
    reader_agent.start()
    window, link = open_kiosk(qtbot, own_broker, layout, "K1", idle_s=60, result_s=60)
    yield CardKiosk(hall, window, link, reader, watch, store)
    link.stop()
    reader_agent.stop()
    reader.stop()
    printer_agent.stop()
    printer.stop()
    hall.stop()
    watch.stop()


def assert_no_clear_id(kiosk: CardKiosk, card: CardText, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the number nor the name in clear: not on MQTT, in the store or in any log line."""
    forms = [card.id_number.encode(), card.id_number.encode("utf-16-le"), card.name.encode(),
             card.name.encode("utf-16-le")]
    messages = []
    while not kiosk.watch.messages.empty():
        messages.append(kiosk.watch.messages.get())
    assert any(m.topic.endswith("/kiosk/K1/card") for m in messages), "the test saw no card read"
    for message in messages:
        assert not any(form in message.payload for form in forms), f"clear ID data on {message.topic}"
    stored = [p for p in kiosk.store.parent.glob("store.sqlite3*") if p.is_file()]
    assert stored
    for path in stored:
        assert not any(form in path.read_bytes() for form in forms), f"clear ID data in {path.name}"
    assert caplog.records, "no log lines were captured"
    assert card.id_number not in caplog.text and card.name not in caplog.text


def test_check_in_by_id_card(qtbot: QtBot, card_kiosk: CardKiosk, caplog: pytest.LogCaptureFixture) -> None:
    window, holder = card_kiosk.window, DEMO_CARDS[0]
    now = card_kiosk.hall.clock()
    assert card_kiosk.hall.staff("book_appointment", appointment_code="YYCARD1", service_id="fund_withdraw",
                                 slot_start=now - timedelta(minutes=5), slot_end=now + timedelta(minutes=25),
                                 id_hash=id_hash(KEY, holder.id_number)).ok
    card_kiosk.reader.place(holder)
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=8000)
    assert any(lbl.text() == "【预约】" for lbl in window.findChildren(QLabel))
    assert text_of(window, "number").startswith("E")
    assert text_of(window, "card-holder") == f"张**（{mask_id(holder.id_number)}）"
    screenshot(window, "idcard-check-in")
    assert card_kiosk.hall.service.engine.state.appointments["YYCARD1"].used_by is not None
    # The card stays on the reader: no second check-in, no second ticket.
    tap(qtbot, window, "done")
    qtbot.wait(800)
    assert window.page_name == "home"
    assert_no_clear_id(card_kiosk, holder, caplog)


def test_a_card_without_a_booking_takes_a_normal_ticket_with_the_name_masked(
        qtbot: QtBot, card_kiosk: CardKiosk, caplog: pytest.LogCaptureFixture) -> None:
    window, holder = card_kiosk.window, DEMO_CARDS[2]
    card_kiosk.reader.switches.read_fails = True  # a card the module cannot read: told to place it again
    card_kiosk.reader.place(holder)
    qtbot.waitUntil(lambda: window.page_name == "message", timeout=8000)
    assert text_of(window, "message") == "未能读取身份证，请移开后重新放置"
    card_kiosk.reader.remove()
    qtbot.wait(500)  # seen gone, so the same card counts as placed again
    card_kiosk.reader.switches.read_fails = False
    card_kiosk.reader.place(holder)
    qtbot.waitUntil(lambda: window.findChild(QLabel, "card-greeting") is not None, timeout=8000)
    assert text_of(window, "card-greeting").startswith("王**您好，未查到您今天的预约")
    screenshot(window, "idcard-no-booking")
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    assert window.shown_ticket is not None and window.shown_ticket.ticket_class == "normal"
    assert text_of(window, "card-holder") == f"王**（{mask_id(holder.id_number)}）"
    assert_no_clear_id(card_kiosk, holder, caplog)


def test_a_phone_number_typed_at_the_kiosk_goes_with_the_ticket_request(qtbot: QtBot,
                                                                        card_kiosk: CardKiosk) -> None:
    window = card_kiosk.window
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "phone")
    for key in "1390013":
        tap(qtbot, window, f"key-{key}")
    tap(qtbot, window, "phone-ok")
    assert text_of(window, "phone-typed") == "请输入11位手机号"  # seven digits are not a number
    for key in "13900139000":
        tap(qtbot, window, f"key-{key}")
    tap(qtbot, window, "phone-ok")
    assert any(lbl.text() == "短信提醒：139****9000" for lbl in window.findChildren(QLabel))
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    sent = card_kiosk.watch.expect(lambda m: m.topic.endswith("/kiosk/K1/ticket/request"))
    assert json.loads(sent.payload)["phone"] == "13900139000"
    assert window.phone == ""  # for that ticket only
