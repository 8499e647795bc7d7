"""The touch kiosk offscreen, against a real coordinator, Mosquitto, printer agent and simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict, Unpack, cast

import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QLabel, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from hall_devices.contract import DEVICE_STATUS, DeviceFault, DeviceState, DeviceStatus
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.demo.sim.scanner import ScannerSimulator
from hall_devices.kiosk.app import KioskWindow
from hall_devices.kiosk.link import KioskLink
from hall_devices.kiosk.scanner import ScannerReader
from hall_devices.layout import KioskDevice, Layout
from hall_devices.mqtt.bus import encode
from hall_devices.printer.agent import PrinterAgent
from tests.conftest import ROOT
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe

ARTEFACTS = ROOT / "test-artifacts"


@dataclass
class Kiosk:
    hall: Hall
    window: KioskWindow
    link: KioskLink
    printer: PrinterSimulator
    agent: PrinterAgent


def kiosk_device(layout: Layout, kiosk_id: str) -> KioskDevice:
    device = layout.device(kiosk_id)
    assert isinstance(device, KioskDevice)
    return device


class Timeouts(TypedDict, total=False):
    """The KioskWindow timeouts a test may shorten (the window's own defaults otherwise)."""

    idle_s: float
    result_s: float


def open_kiosk(qtbot: QtBot, broker: HallBroker, layout: Layout, kiosk_id: str, ttl_s: float = 3,
               **timeouts: Unpack[Timeouts]) -> tuple[KioskWindow, KioskLink]:
    link = KioskLink(broker.settings(kiosk_id), layout, kiosk_device(layout, kiosk_id), ttl_s=ttl_s)
    window = KioskWindow(layout, kiosk_device(layout, kiosk_id), link, **timeouts)
    qtbot.addWidget(window)
    QApplication.instance().installEventFilter(window)  # type: ignore[union-attr]
    window.resize(1080, 1920)
    window.show()
    link.start()
    qtbot.waitUntil(lambda: link.coordinator_up, timeout=10000)
    return window, link


@pytest.fixture
def kiosk(qtbot: QtBot, own_broker: HallBroker, layout: Layout, tmp_path: Path) -> Iterator[Kiosk]:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    printer = PrinterSimulator(tmp_path / "dev" / "printer-k1").start()
    agent = PrinterAgent(own_broker.settings("P1"), layout, "P1", tmp_path / "agent", url=str(printer.path),
                         poll_interval_s=30, fault_poll_interval_s=0.2)
    agent.start()
    window, link = open_kiosk(qtbot, own_broker, layout, "K1", idle_s=60, result_s=60)
    yield Kiosk(hall, window, link, printer, agent)
    link.stop()
    agent.stop()
    printer.stop()
    hall.stop()


def tap(qtbot: QtBot, window: QWidget, name: str) -> None:
    qtbot.wait(20)  # new pages are shown, and old ones deleted, by the event loop
    found = [b for b in window.findChildren(QPushButton, name) if b.isVisible()]
    assert found, f"no button {name!r} on the page"
    assert found[0].isEnabled(), f"button {name!r} is disabled"
    # What qtbot.mouseClick (untyped) calls. PyQt6's stub leaves @staticmethod off QTest's functions.
    click = cast(Callable[[QWidget, Qt.MouseButton], None], QTest.mouseClick)
    click(found[0], Qt.MouseButton.LeftButton)


def text_of(window: QWidget, name: str) -> str:
    found = window.findChild(QLabel, name)
    assert found is not None, f"no label {name!r}"
    return found.text()


def screenshot(window: QWidget, name: str) -> None:
    """Keep the page as a test artefact, and check that every character shown has a glyph."""
    for _ in range(3):
        QApplication.processEvents()
    ARTEFACTS.mkdir(exist_ok=True)
    assert window.grab().save(str(ARTEFACTS / f"kiosk-{name}-1080x1920.png"))
    for widget in window.findChildren(QLabel) + window.findChildren(QPushButton):
        if not widget.isVisible():
            continue
        metrics = QFontMetrics(widget.font())
        missing = {c for c in widget.text() if not c.isspace() and not metrics.inFontUcs4(ord(c))}
        assert not missing, f"{name}: no glyph for {missing} in {widget.text()!r}"


def touch_targets(window: QWidget) -> None:
    for widget in window.findChildren(QPushButton):
        if widget.isVisible():
            assert widget.height() >= 80 and widget.width() >= 80, f"{widget.text()!r} is too small"


def test_take_a_number_and_the_printed_ticket_matches(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    screenshot(window, "home")
    touch_targets(window)
    tap(qtbot, window, "dept-ga")
    screenshot(window, "department")
    tap(qtbot, window, "service-passport")
    assert "居民身份证" in window.page.findChildren(QLabel)[1].text() or any(
        "居民身份证" in lbl.text() for lbl in window.findChildren(QLabel))
    screenshot(window, "service")
    touch_targets(window)
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    number = text_of(window, "number")
    qtbot.waitUntil(lambda: text_of(window, "print-status") == "号票已打印，请取走号票", timeout=10000)
    screenshot(window, "result")
    printed = kiosk.printer.wait_tickets(1)[0]
    assert printed.big() == [number]
    assert window.shown_ticket is not None
    assert printed.qr_payloads == [window.shown_ticket.status_url]
    assert "普通护照申领" in printed.text


def test_search_by_pinyin_and_a_priority_ticket(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    tap(qtbot, window, "search")
    for key in "PTHZ":
        tap(qtbot, window, f"key-{key}")
    assert text_of(window, "query") == "PTHZ"
    screenshot(window, "search")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take-priority")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    assert any(lbl.text() == "【优先】" for lbl in window.findChildren(QLabel))
    assert kiosk.printer.wait_tickets(1)[0].big() == [text_of(window, "number")]


def test_appointment_check_in_by_keypad_and_by_scanner(qtbot: QtBot, kiosk: Kiosk, tmp_path: Path) -> None:
    window = kiosk.window
    now = datetime.now(UTC)
    for code in ("YY2026A", "YY2026B"):
        assert kiosk.hall.staff("book_appointment", appointment_code=code, service_id="fund_withdraw",
                                slot_start=now, slot_end=now + timedelta(minutes=30)).ok
    tap(qtbot, window, "appointment")
    for key in "YY2026A":
        tap(qtbot, window, f"key-{key}")
    screenshot(window, "appointment")
    tap(qtbot, window, "check-in")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    assert any(lbl.text() == "【预约】" for lbl in window.findChildren(QLabel))
    assert text_of(window, "number").startswith("E")
    tap(qtbot, window, "done")
    scanner = ScannerSimulator(tmp_path / "dev" / "scanner")
    reader = ScannerReader(str(scanner.path))
    reader.scanned.connect(window.check_in)
    reader.start()
    try:
        # Opening a port flushes what arrived before; a real scan before start-up is rightly lost.
        qtbot.waitUntil(lambda: reader.link.is_open, timeout=5000)
        scanner.scan("YY2026B")
        qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
        assert window.shown_ticket is not None and window.shown_ticket.ticket_class == "appointment"
        scanner.scan("NO-SUCH-CODE")
        qtbot.waitUntil(lambda: window.page_name == "message", timeout=5000)
        # the catalog's words and advice, no developer English
        assert text_of(window, "message") == "未能取号：预约码无效，请核对预约码或到一楼咨询台咨询"
    finally:
        reader.stop()
        scanner.stop()


def test_english(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    tap(qtbot, window, "lang")
    assert window.page.title.text() == "Welcome. Choose a department"
    tap(qtbot, window, "dept-scjg")
    tap(qtbot, window, "service-company_setup")
    assert any(lbl.text() == "1. Registration application form" for lbl in window.findChildren(QLabel))
    screenshot(window, "service-en")


def test_coordinator_unreachable_issues_nothing(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    kiosk.hall.service.stop()  # a clean stop publishes offline; a crash does so by its Last Will
    qtbot.waitUntil(window.banner.isVisible, timeout=10000)
    assert "系统暂时无法取号" in window.banner.text()
    assert not [b for b in window.findChildren(QPushButton, "take") if b.isEnabled()]
    screenshot(window, "unavailable")
    # Still believed up (its offline status not yet here), but no answer: no number, a clear message.
    kiosk.link.coordinator_up = True
    window.on_availability(True)
    tap(qtbot, window, "take")
    assert text_of(window, "asking") == "正在取号，请稍候……"
    qtbot.waitUntil(lambda: window.page_name == "message", timeout=int(kiosk.link.give_up_s * 1000 + 3000))
    assert text_of(window, "message") == "系统繁忙，未能取号，请稍后再试"
    assert kiosk.printer.tickets == []


def test_printer_out_of_paper_shows_the_number_and_qr(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    kiosk.printer.switches.paper_out = True
    kiosk.agent.request_poll()
    qtbot.waitUntil(lambda: not kiosk.link.printer_ok, timeout=10000)
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    assert text_of(window, "print-status") == "打印机暂停服务，请记住号码或用手机扫码保存"
    qr = window.findChild(QLabel, "qr")
    assert qr is not None and not qr.pixmap().isNull()
    screenshot(window, "no-paper")
    assert kiosk.printer.tickets == []


def test_a_mechanically_failed_printer_gets_no_job_and_the_kiosk_offers_the_no_paper_path(
        qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    kiosk.printer.switches.mechanical_error = True  # DLE EOT 3 bit 2
    kiosk.agent.request_poll()
    qtbot.waitUntil(lambda: not kiosk.link.printer_ok, timeout=10000)
    supervisor = kiosk.hall.service.engine.supervisor
    qtbot.waitUntil(lambda: not supervisor.printer_usable("P1"), timeout=5000)
    assert DeviceFault.MECHANICAL_ERROR in supervisor.devices["P1"].faults
    paper = kiosk.hall.take("passport", paper=True)  # even a kiosk that asks for paper gets no job
    assert paper.ok and paper.print_job_id is None
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    assert text_of(window, "print-status") == "打印机暂停服务，请记住号码或用手机扫码保存"
    assert kiosk.hall.service.engine.state.jobs == {}
    assert kiosk.printer.tickets == []


def test_info_desk_fallback(qtbot: QtBot, kiosk: Kiosk, layout: Layout) -> None:
    broker = kiosk.hall.broker
    p2 = probe(broker.port, "P2", broker.credentials["P2"])
    status = DeviceStatus(device_id="P2", kind="printer", state=DeviceState.FAULT,
                          faults=[DeviceFault.PAPER_OUT], updated_at=datetime.now(UTC))
    p2.client.publish(DEVICE_STATUS.topic(hall="demo", device="P2"), encode(status), qos=1,
                      retain=True)
    p2.stop()
    window, link = open_kiosk(qtbot, broker, layout, "K2")
    qtbot.waitUntil(lambda: not link.printer_ok, timeout=5000)
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take")
    assert window.page_name == "message"
    assert text_of(window, "message") == "打印机暂停服务，请到一楼咨询台取号"
    assert kiosk.hall.service.engine.state.tickets == {}  # sent to the desk: no number issued
    link.stop()


def test_a_failed_print_is_shown(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    kiosk.printer.switches.silent = True  # the printer stops answering; the agent finds out at the job
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    qtbot.waitUntil(lambda: "打印失败" in text_of(window, "print-status"), timeout=10000)
    screenshot(window, "print-failed")


def test_idle_timeout_goes_home(qtbot: QtBot, own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3")
    window, link = open_kiosk(qtbot, own_broker, layout, "K1", idle_s=0.5, result_s=0.5)
    try:
        tap(qtbot, window, "dept-rs")
        assert window.page_name == "department"
        qtbot.waitUntil(lambda: window.page_name == "home", timeout=3000)
    finally:
        link.stop()
        hall.stop()



def test_no_window_open_warns_by_default(qtbot: QtBot, kiosk: Kiosk) -> None:
    window = kiosk.window
    qtbot.waitUntil(lambda: window.windows_open("passport") == (0, True), timeout=5000)
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    assert text_of(window, "no-window") == "该事项暂无窗口办理，取号后请留意叫号或到咨询台咨询"
    screenshot(window, "no-window-warn")
    tap(qtbot, window, "take")  # still issuing: the ticket waits for the first window to open
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)


def test_no_window_open_stops_issuing_when_configured(qtbot: QtBot, own_broker: HallBroker, layout: Layout,
                                                      tmp_path: Path) -> None:
    stop = layout.model_copy(update={"policy": layout.policy.model_copy(update={"no_window_kiosk": "stop"})})
    hall = Hall(own_broker, stop, tmp_path / "store.sqlite3")
    window, link = open_kiosk(qtbot, own_broker, stop, "K1", idle_s=60, result_s=60)
    try:
        hall.ok(6, "login", clerk_id="Z0601")
        qtbot.waitUntil(lambda: window.windows_open("passport") == (1, True), timeout=5000)
        tap(qtbot, window, "dept-ga")
        tap(qtbot, window, "service-passport")
        assert window.findChild(QLabel, "no-window") is None
        hall.ok(6, "logout")  # the last window serving passports signs out: the page follows
        qtbot.waitUntil(lambda: window.findChild(QLabel, "no-window") is not None, timeout=5000)
        assert text_of(window, "no-window") == "暂停取号：该事项暂无窗口办理，请到咨询台咨询"
        assert not [b for b in window.findChildren(QPushButton, "take") if b.isEnabled()]
        screenshot(window, "no-window-stop")
        tap(qtbot, window, "lang")  # the page is shown again in English
        qtbot.wait(20)
        assert text_of(window, "no-window").startswith("Numbers paused: no window is open")
        hall.ok(6, "login", clerk_id="Z0601")
        qtbot.waitUntil(lambda: window.findChild(QLabel, "no-window") is None, timeout=5000)
        assert [b for b in window.findChildren(QPushButton, "take") if b.isEnabled()]
    finally:
        link.stop()
        hall.stop()


def test_the_service_page_and_the_ticket_give_the_same_wait(qtbot: QtBot, kiosk: Kiosk) -> None:
    """Issue 19: the service page said 当前等候 11 人 and the ticket 前面还有 20 人."""
    window = kiosk.window
    for service in ("passport", "passport", "hk_macao_permit"):  # both served at window 6
        kiosk.hall.take(service)
    qtbot.waitUntil(lambda: window.summary is not None and window.summary.total_waiting == 3, timeout=5000)
    tap(qtbot, window, "dept-ga")
    tap(qtbot, window, "service-passport")
    shown = text_of(window, "service-waiting")
    tap(qtbot, window, "take")
    qtbot.waitUntil(lambda: window.page_name == "result", timeout=5000)
    ahead = text_of(window, "ahead")
    assert shown.startswith("现在取号，前面还有 ") and ahead.startswith("前面还有 ")
    assert shown.split("前面还有 ")[1].split(" 人")[0] == ahead.split("前面还有 ")[1].split(" 人")[0], (
        shown, ahead)
