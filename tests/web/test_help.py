"""呼叫帮办 end to end: a tap on the kiosk (Qt, offscreen) raises a help request on the dashboard
(Chromium) with the kiosk's location; staff answer and close it, and the kiosk shows each step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, expect
from pytestqt.qtbot import QtBot

from hall_devices.layout import KioskDevice, Layout
from tests.coordinator.harness import Clock, Hall
from tests.kiosk.test_kiosk import open_kiosk, tap
from tests.support import HallBroker
from tests.web.test_web import ARTEFACTS, Web, sign_in


def test_a_help_request_from_the_kiosk_is_answered_and_closed_by_staff(
        qtbot: QtBot, browser: Browser, own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    web = Web(own_broker, tmp_path)
    window, link = open_kiosk(qtbot, own_broker, layout, "K1", idle_s=60, result_s=60)
    try:
        kiosk = layout.device("K1")
        assert isinstance(kiosk, KioskDevice) and kiosk.location is not None
        page = sign_in(browser, web, "mgr", "manager-pass")
        page.set_viewport_size({"width": 1920, "height": 1080})
        expect(page.locator("#help")).to_contain_text("无", timeout=5000)
        tap(qtbot, window, "dept-ga")  # 呼叫帮办 is on every page
        tap(qtbot, window, "help")
        qtbot.waitUntil(window.help_status.isVisible, timeout=5000)
        assert window.help_status.text() == "已呼叫工作人员，请在本机旁稍候"
        request = page.locator('#help li[data-kiosk="K1"]')
        expect(request).to_contain_text(kiosk.location.zh, timeout=5000)
        expect(request).to_contain_text("等待应答")
        page.screenshot(path=str(ARTEFACTS / "web-help-request.png"), full_page=True)
        request.locator(".help-answer").click()
        expect(page.locator('#help li[data-kiosk="K1"]')).to_contain_text("mgr 已应答", timeout=5000)
        qtbot.waitUntil(lambda: window.help_status.text() == "工作人员正在赶来，请稍候", timeout=5000)
        closed_on = layout.hall.business_day(datetime.now(UTC))  # the web's day (real time)
        page.locator('#help li[data-kiosk="K1"] .help-close').click()
        expect(page.locator('#help li[data-kiosk="K1"]')).to_have_count(0, timeout=5000)
        qtbot.waitUntil(lambda: not window.help_status.isVisible(), timeout=5000)
        # Its days, should the close and the page lie either side of hall midnight.
        page.goto(f"{web.url}/audit?from={closed_on}&to={layout.hall.business_day(datetime.now(UTC))}")
        closed = page.locator("#audit tr.audit-help_close td.action")
        expect(closed).to_have_text("关闭求助 Close help request")
    finally:
        link.stop()
        web.stop()
        hall.stop()
