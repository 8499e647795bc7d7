"""Issue 18: every display text is composed by the coordinator (coordinator/texts.py, words from
catalog.SCREEN) and every display renders it as it comes: the LED and BX-6 screens (screens.py), the
TV hall screen, the pads and the announcer. The long-pause notice is published by the coordinator's
own tick at the moment its (injected) clock says so, without a command and without sleeping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from hall_devices.announcer.speech import speech_text, speech_words
from hall_devices.catalog import SCREEN
from hall_devices.contract import QUEUE_SUMMARY, QueueSummary, Text, WindowStatus
from hall_devices.coordinator import texts
from hall_devices.layout import Department, HallScreenDevice, Layout
from hall_devices.leds import bx
from hall_devices.leds.frames import screen_bytes, window_regions
from hall_devices.leds.screens import hall_calls_text, hall_waiting_text, window_text
from hall_devices.tv.hall_window import HallScreenWindow
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe, wait_until

NAME = Text(zh="企业开办 3", en="Company 3")


NOTICE = Text(zh="临时有事，请稍候", en="Back shortly, please wait")


@pytest.mark.parametrize(("status", "number", "reason", "notice", "zh", "en"), [
    (WindowStatus.CALLING, "A001", None, None, "请A001号到3号窗口", "Ticket A001, please go to window 3"),
    (WindowStatus.SERVING, "A001", None, None, "正在办理\nA001号", "Now serving\nA001"),
    (WindowStatus.PAUSED, None, None, None, "暂停服务", "Not in service"),
    (WindowStatus.PAUSED, None, "午间休息", None, "午间休息", "午间休息"),  # typed: shown as typed
    (WindowStatus.PAUSED, None, "午间休息", NOTICE, "临时有事，请稍候", "Back shortly, please wait"),
    (WindowStatus.CLOSED, None, None, None, "暂停服务", "Not in service"),
    (WindowStatus.IDLE, None, None, None, "欢迎光临\n企业开办 3", "Welcome\nCompany 3"),
])
def test_window_screen_in_both_languages(status: WindowStatus, number: str | None, reason: str | None,
                                         notice: Text | None, zh: str, en: str) -> None:
    composed = texts.window_screen(3, NAME, status, ticket_number=number, pause_reason=reason,
                                   pause_notice=notice)
    assert composed == Text(zh=zh, en=en)


def test_the_words_come_from_the_catalog() -> None:
    assert texts.call_text("B120", 21).zh == SCREEN["call"][0].format(number="B120", window=21)
    assert texts.speech("B120", 21).zh == "请 B 一二零 号 到 二十一 号窗口 办理"
    assert texts.speech("B120", 21).en == "Ticket B120, please go to window 21"
    assert [texts.pad_text(s, "A001", 4) for s in WindowStatus] == ["", "A001", "A001", "A001", ""]
    assert texts.pad_text(WindowStatus.IDLE, None, 4) == "4"


def test_waiting_groups_one_per_department_with_its_letters(layout: Layout) -> None:
    two_letters = layout.model_copy(update={
        "departments": [*layout.departments, Department(id="new", name=layout.departments[0].name)],
        "services": [*layout.services, layout.services[0].model_copy(update={"id": "extra",
                                                                            "prefix": "Z"})]})
    groups = texts.waiting_groups(two_letters, {"passport": 4, "company_setup": 3, "extra": 2})
    assert [g.department_id for g in groups] == [d.id for d in two_letters.departments]
    first = groups[0]  # 市场监督管理局: A, and Z from the extra service
    assert (first.prefixes, first.waiting) == (["A", "Z"], 5)
    assert first.line == Text(zh="市场监督管理局(A/Z) 等候5人",
                              en="Market Regulation Bureau (A/Z): 5 waiting")
    police = next(g for g in groups if g.department_id == "ga")
    assert (police.line.zh, police.count.zh) == ("公安局(B) 等候4人", "4 人")
    assert groups[-1].prefixes == [] and groups[-1].waiting == 0  # a department without services


def test_the_long_pause_notice_arrives_from_the_coordinator(own_broker: HallBroker, layout: Layout,
                                                           tmp_path: Path) -> None:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    try:
        hall.ok(3, "login", clerk_id="0301")
        hall.ok(3, "pause", reason="午间休息")
        wait_until(lambda: 3 in hall.states and hall.states[3].status is WindowStatus.PAUSED)
        assert window_text(hall.states[3]) == "午间休息"
        hall.clock.advance(minutes=layout.policy.long_pause_minutes - 1)
        hall.ok(4, "login", clerk_id="0401")  # the hall goes on; window 3's notice is not due yet
        wait_until(lambda: 4 in hall.states)
        assert window_text(hall.states[3]) == "午间休息"
        hall.clock.advance(minutes=1)  # the coordinator's clock: its own tick republishes window 3
        wait_until(lambda: hall.states[3].pause_notice is not None, what="the notice, published")
        state = hall.states[3]
        assert state.screen == NOTICE
        assert window_text(state) == "临时有事，请稍候"  # LED and BX-6 window screens
        assert state.pad_text == ""  # the pad stays blank while paused
        hall.ok(3, "resume")
        wait_until(lambda: hall.states[3].status is WindowStatus.IDLE)
        assert hall.states[3].pause_notice is None and window_text(hall.states[3]) == "欢迎光临\n市场监管"
    finally:
        hall.stop()


def test_every_display_renders_the_same_sentence(own_broker: HallBroker, layout: Layout, tmp_path: Path,
                                                 qtbot: QtBot) -> None:
    summaries = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                      subscribe=[QUEUE_SUMMARY.topic(hall="demo")])
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    device = layout.device("HS-TV")
    assert isinstance(device, HallScreenDevice)
    tv = HallScreenWindow(layout, device)
    qtbot.addWidget(tv)
    try:
        hall.ok(3, "login", clerk_id="0301")
        ticket = hall.take("company_change").ticket
        assert ticket is not None and hall.take("passport").ticket is not None
        hall.ok(3, "next")
        call = hall.call()
        wait_until(lambda: hall.states[3].status is WindowStatus.CALLING)
        state = hall.states[3]
        sentence = f"请{ticket.number}号到3号窗口"
        assert call.text.zh == sentence and window_text(state) == sentence  # window and hall screens
        assert hall_calls_text([call]) == sentence
        (frame,) = bx.BxDecoder().feed(screen_bytes("bx", 3, window_regions(window_text(state), 128, 32)))
        assert isinstance(frame, bx.BxFrame)
        shown = bx.parse_dynamic_area(frame.data)[0].text.decode("gbk")
        assert "".join(shown.split()) == sentence  # the bytes on the serial bus (lines padded)
        # The voice says the same words: the digits one by one, the window as a number.
        letter, digits = ticket.number[0], ticket.number[1:]
        assert speech_text(call) == texts.speech(ticket.number, 3).zh
        assert speech_words(call) == ["请", letter, *(texts.DIGITS[int(d)] for d in digits), "号", "到",
                                      "三", "号窗口", "办理"]
        assert state.pad_text == ticket.number
        # Waiting per group: the LED hall screen's row and the TV's cell come from the same group.
        # The summary after the call (B waiting); one after the first ticket alone (A waiting) also
        # counts 1 when the worker published between the two (a loaded machine).
        message = summaries.expect(lambda m: json.loads(m.payload)["total_waiting"] == 1 and any(
            g["department_id"] == "ga" and g["waiting"] == 1 for g in json.loads(m.payload)["groups"]))
        summary = QueueSummary.model_validate_json(message.payload)
        police = next(g for g in summary.groups if g.department_id == "ga")
        assert hall_waiting_text(layout, summary) == police.line.zh == "公安局(B) 等候1人"
        tv.feed.summary_arrived.emit(summary)
        tv.feed.call_arrived.emit(call)
        qtbot.waitUntil(lambda: tv.call_rows[0][0].text() == ticket.number, timeout=3000)
        where = tv.call_rows[0][1].text()
        assert where == call.window_label.zh == state.window_label.zh == "3号窗口  市场监管"
        cells = {name.text(): count.text() for _id, name, count in tv.departments}
        assert cells["公安局"] == police.count.zh == "1 人" and cells["市场监督管理局"] == "0 人"
    finally:
        hall.stop()
        summaries.stop()
