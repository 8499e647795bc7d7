"""The LCD/TV hall screen, offscreen, at 1920×1080 and 1280×720: the calls table with the latest
highlighted, waiting per department in columns that never wrap, the hall's clock, calls from
another thread, the table refilled from retained window states after a restart, CJK glyphs present,
nothing cut off."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from PyQt6.QtCore import QPoint, QRect
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from hall_devices.contract import Call, QueueSummary, ServiceQueue, Text, WindowState, WindowStatus
from hall_devices.coordinator import texts
from hall_devices.layout import HallScreenDevice, Layout
from hall_devices.tv.hall_window import HIGHLIGHT, HallScreenWindow
from tests.conftest import ROOT

ARTEFACTS = ROOT / "test-artifacts"
# 08:05:09 UTC is 16:05:09 in the hall (UTC+8), Monday 30 November 2026
NOW = datetime(2026, 11, 30, 8, 5, 9, tzinfo=UTC)


def call(number: str, window: int, layout: Layout) -> Call:
    name = layout.window(window).name
    return Call(call_id=number, ticket_id=number, ticket_number=number, window=window,
                window_name=Text(zh="窗", en="w"), service_id="passport", called_at=datetime.now(UTC),
                text=texts.call_text(number, window), speech=texts.speech(number, window),
                window_label=texts.window_label(window, Text(zh=name.zh, en=name.en)))


def screen(qtbot: QtBot, layout: Layout, size: tuple[int, int]) -> HallScreenWindow:
    device = layout.device("HS-TV")
    assert isinstance(device, HallScreenDevice)
    window = HallScreenWindow(layout, device, clock=NOW)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    return window


def cut_off(window: HallScreenWindow) -> list[str]:
    inside = QRect(QPoint(0, 0), window.size())
    problems = []
    for widget in window.findChildren(QLabel):
        if widget is window.notice or not widget.text():
            continue  # the notice line scrolls by design
        where = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        if not inside.contains(where):
            problems.append(f"{widget.text()!r} at {where.getRect()} is outside the window")
        wide = widget.fontMetrics().horizontalAdvance(widget.text())
        if wide > widget.contentsRect().width():
            problems.append(f"{widget.text()!r} needs {wide} px, has {widget.contentsRect().width()}")
    return problems


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)], ids=["1920x1080", "1280x720"])
def test_hall_screen_shows_calls_queues_and_the_clock(qtbot: QtBot, layout: Layout,
                                                      size: tuple[int, int]) -> None:
    window = screen(qtbot, layout, size)
    summary = QueueSummary(updated_at=datetime.now(UTC), total_waiting=7, services=[
        ServiceQueue(service_id="passport", prefix="B", waiting=4, longest_wait_s=60,
                     estimated_minutes=20),
        ServiceQueue(service_id="company_setup", prefix="A", waiting=3, longest_wait_s=9,
                     estimated_minutes=5)],
        groups=texts.waiting_groups(layout, {"passport": 4, "company_setup": 3}))

    def from_paho_thread() -> None:  # as the bus would: signals only
        window.feed.call_arrived.emit(call("A001", 1, layout))
        window.feed.call_arrived.emit(call("B002", 6, layout))
        window.feed.summary_arrived.emit(summary)

    worker = threading.Thread(target=from_paho_thread)
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: window.call_rows[0][0].text() == "B002", timeout=3000)
    latest, before = window.call_rows[0], window.call_rows[1]
    assert latest[1].text() == f"6号窗口  {layout.window(6).name.zh}"
    assert (before[0].text(), before[1].text()) == ("A001", f"1号窗口  {layout.window(1).name.zh}")
    assert latest[0].styleSheet() == HIGHLIGHT and before[0].styleSheet() != HIGHLIGHT
    counts = {name.text(): count.text() for _id, name, count in window.departments}
    assert counts["公安局"] == "4 人" and counts["市场监督管理局"] == "3 人" and counts["税务局"] == "0 人"
    assert window.clock.text() == "2026年11月30日 星期一  16:05:09"  # hall time, not UTC
    window.feed.call_arrived.emit(call("A001", 1, layout))  # a recall moves it up, never listed twice
    qtbot.waitUntil(lambda: window.call_rows[0][0].text() == "A001", timeout=3000)
    assert [n.text() for n, _w in window.call_rows].count("A001") == 1
    for _ in range(3):
        QApplication.processEvents()
    assert cut_off(window) == []
    ARTEFACTS.mkdir(exist_ok=True)
    assert window.grab().save(str(ARTEFACTS / f"hall-screen-{size[0]}x{size[1]}.png"))
    # Every character shown has a glyph in the font the labels use: no tofu boxes.
    for label in window.findChildren(QLabel):
        metrics = QFontMetrics(label.font())
        missing = [c for c in label.text() if not c.isspace() and not metrics.inFontUcs4(ord(c))]
        assert missing == [], f"no glyph for {missing} in {label.font().family()}"


def test_after_a_restart_the_table_comes_from_the_retained_window_states(qtbot: QtBot,
                                                                          layout: Layout) -> None:
    window = screen(qtbot, layout, (1920, 1080))

    def state(number: int, status: WindowStatus, ticket: str | None, minutes_ago: int) -> WindowState:
        name = layout.window(number).name
        shown = Text(zh=name.zh, en=name.en)
        return WindowState(window=number, name=shown, status=status,
                           ticket_number=ticket, since=NOW - timedelta(minutes=minutes_ago),
                           screen=texts.window_screen(number, shown, status, ticket_number=ticket),
                           pad_text=texts.pad_text(status, ticket, 0),
                           window_label=texts.window_label(number, shown))

    for retained in (state(3, WindowStatus.SERVING, "A007", 9), state(6, WindowStatus.CALLING, "B012", 1),
                     state(7, WindowStatus.IDLE, None, 2), state(1, WindowStatus.SERVING, "A005", 20)):
        window.feed.window_arrived.emit(retained)
    qtbot.waitUntil(lambda: window.call_rows[2][0].text() == "A005", timeout=3000)
    assert [n.text() for n, _w in window.call_rows[:4]] == ["B012", "A007", "A005", ""]
    window.feed.window_arrived.emit(state(6, WindowStatus.SERVING, "B012", 0))  # same ticket: kept once
    window.feed.call_arrived.emit(call("C001", 9, layout))
    qtbot.waitUntil(lambda: window.call_rows[0][0].text() == "C001", timeout=3000)
    assert [n.text() for n, _w in window.call_rows[:4]] == ["C001", "B012", "A007", "A005"]
