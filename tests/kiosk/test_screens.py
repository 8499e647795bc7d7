"""The kiosk at the three sizes it runs at (portrait 1080×1920, landscape 1920×1080, the demo's
540×960): every page fits with nothing cut off or below the fold; elder mode; screenshots."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PyQt6.QtCore import QPoint, QRect
from PyQt6.QtWidgets import QApplication, QLabel, QPushButton, QScrollArea, QWidget
from pytestqt.qtbot import QtBot

from hall_devices.kiosk.app import KioskWindow
from hall_devices.kiosk.elder import Reader
from hall_devices.kiosk.link import KioskLink
from hall_devices.layout import Layout
from tests.coordinator.harness import Clock, Hall
from tests.kiosk.test_kiosk import ARTEFACTS, kiosk_device, tap
from tests.support import HallBroker

SIZES = [(1080, 1920), (1920, 1080), (540, 960)]


@pytest.fixture
def running(qtbot: QtBot, own_broker: HallBroker, layout: Layout,
            tmp_path: Path) -> Iterator[tuple[Hall, KioskWindow]]:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    link = KioskLink(own_broker.settings("K2"), layout, kiosk_device(layout, "K2"), ttl_s=3)
    window = KioskWindow(layout, kiosk_device(layout, "K2"), link, idle_s=60, result_s=60,
                         reader=Reader(tmp_path / "spoken"))
    qtbot.addWidget(window)
    window.show()
    link.start()
    qtbot.waitUntil(lambda: link.coordinator_up, timeout=10000)
    yield hall, window
    window.reader.stop()
    link.stop()
    hall.stop()


def settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


def cut_off(window: QWidget) -> list[str]:
    """Visible texts and buttons not wholly inside the window, below the page's fold, or whose
    text is wider than the widget shows."""
    problems = []
    inside = QRect(QPoint(0, 0), window.size())
    scroll = window.findChild(QScrollArea)
    assert scroll is not None
    bar = scroll.verticalScrollBar()
    assert bar is not None
    if bar.maximum() > 0:
        problems.append(f"the page scrolls by {bar.maximum()} px")
    for widget in window.findChildren(QLabel) + window.findChildren(QPushButton):
        if not widget.isVisible() or widget.objectName().startswith("qt_"):
            continue
        where = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        if not inside.contains(where):
            problems.append(f"{widget.text()!r} at {where.getRect()} is outside the window")
        if isinstance(widget, QPushButton) or not widget.wordWrap():
            metrics = widget.fontMetrics()
            widest = max((metrics.horizontalAdvance(line) for line in widget.text().split("\n")), default=0)
            room = widget.contentsRect().width()
            if widest > room:
                problems.append(f"{widget.text()!r} is {widest} px wide in {room} px")
    return problems


def shoot(window: QWidget, name: str, size: tuple[int, int]) -> None:
    settle()
    ARTEFACTS.mkdir(exist_ok=True)
    assert window.grab().save(str(ARTEFACTS / f"kiosk-{name}-{size[0]}x{size[1]}.png"))


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_page_fits_the_screen(qtbot: QtBot, running: tuple[Hall, KioskWindow],
                                    size: tuple[int, int]) -> None:
    _hall, window = running
    window.resize(*size)
    window.show_home()
    pages: list[tuple[str, Callable[[], None]]] = [
        ("home", lambda: None), ("department", lambda: tap(qtbot, window, "dept-ga")),
        ("service", lambda: tap(qtbot, window, "service-passport"))]
    for name, go in pages:
        go()
        shoot(window, name, size)
        problems = cut_off(window)
        assert problems == [], (name, problems)
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    shoot(window, "result", size)
    assert cut_off(window) == [], ("result", cut_off(window))
    tap(qtbot, window, "done")
    tap(qtbot, window, "appointment")
    shoot(window, "appointment", size)
    assert cut_off(window) == [], ("appointment", cut_off(window))


def test_back_goes_one_step_up(qtbot: QtBot, running: tuple[Hall, KioskWindow]) -> None:
    _hall, window = running
    window.resize(1080, 1920)
    assert not window.back_button.isEnabled()  # nowhere to go back to from home
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "back")
    assert window.page_name == "department"
    tap(qtbot, window, "back")
    assert window.page_name == "home"


def test_elder_mode_is_one_tap_large_high_contrast_fewer_choices_and_read_aloud(
        qtbot: QtBot, running: tuple[Hall, KioskWindow]) -> None:
    _hall, window = running
    window.resize(1080, 1920)
    normal = window.findChild(QPushButton, "dept-ga")
    assert normal is not None
    normal_points = normal.font().pointSize()
    tap(qtbot, window, "elder")
    settle()
    large = window.findChild(QPushButton, "dept-ga")
    assert large is not None and large.isVisible()
    assert large.font().pointSize() >= normal_points * 1.3
    assert "#000000" in window.styleSheet() and "#ffff00" in window.styleSheet()  # high contrast
    lefts = {b.mapTo(window, QPoint(0, 0)).x() for b in window.findChildren(QPushButton)
             if b.objectName().startswith("dept-") and b.isVisible()}
    assert len(lefts) == 1  # one column: fewer choices a row
    tap(qtbot, window, "dept-ga")
    spoken = window.reader.spoken[-1]
    assert spoken.startswith("公安") and "护照" in spoken  # the page's title, then its choices
    wav = window.reader.files[-1]
    qtbot.waitUntil(lambda: wav.exists() and wav.stat().st_size > 1000, timeout=10000)
    shoot(window, "elder-department", (1080, 1920))
    assert window.help_button.isVisible() and window.back_button.isVisible()  # the bar stays
    assert cut_off(window) == []
    tap(qtbot, window, "elder")  # one tap back
    assert "#000000" not in window.styleSheet()
