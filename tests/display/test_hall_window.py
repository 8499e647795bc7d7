"""The LCD/TV hall screen, offscreen: calls and queues from another thread, CJK glyphs present."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from PyQt6.QtGui import QFontMetrics
from pytestqt.qtbot import QtBot

from hall_devices.contract import Call, QueueSummary, ServiceQueue, Text
from hall_devices.display.hall_window import HallScreenWindow
from hall_devices.layout import HallScreenDevice, Layout
from tests.conftest import ROOT

ARTEFACTS = ROOT / "test-artifacts"


def call(number: str, window: int) -> Call:
    return Call(call_id=number, ticket_id=number, ticket_number=number, window=window,
                window_name=Text(zh="窗", en="w"), service_id="passport", called_at=datetime.now(UTC),
                text=Text(zh=f"请{number}号到{window}号窗口", en=f"Ticket {number}, window {window}"))


def test_hall_screen_shows_calls_and_queues(qtbot: QtBot, layout: Layout) -> None:
    device = layout.device("HS-TV")
    assert isinstance(device, HallScreenDevice)
    window = HallScreenWindow(layout, device)
    qtbot.addWidget(window)
    window.resize(1920, 1080)
    window.show()
    summary = QueueSummary(updated_at=datetime.now(UTC), total_waiting=7, services=[
        ServiceQueue(service_id="passport", prefix="B", waiting=4, longest_wait_s=60,
                     estimated_minutes=20),
        ServiceQueue(service_id="company_setup", prefix="A", waiting=3, longest_wait_s=9,
                     estimated_minutes=5)])

    def from_paho_thread() -> None:  # as the bus would: signals only
        window.feed.call_arrived.emit(call("A001", 1))
        window.feed.call_arrived.emit(call("B002", 6))
        window.feed.summary_arrived.emit(summary)

    worker = threading.Thread(target=from_paho_thread)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: window.call_rows[0].text().startswith("请B002号到6号窗口"), timeout=3000)
    assert window.call_rows[1].text().startswith("请A001号到1号窗口")
    waiting = window.waiting.text()
    assert "公安局（B）  4 人" in waiting and "市场监督管理局（A）  3 人" in waiting
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / "hall-screen-1920x1080.png"
    assert window.grab().save(str(shot))
    assert Path(shot).stat().st_size > 10_000
    # Every character shown has a glyph in the font the labels use: no tofu boxes.
    for label in (window.title, *window.call_rows, window.waiting, window.notice):
        metrics = QFontMetrics(label.font())
        missing = [c for c in label.text() if not c.isspace() and not metrics.inFontUcs4(ord(c))]
        assert missing == [], f"no glyph for {missing} in {label.font().family()}"
