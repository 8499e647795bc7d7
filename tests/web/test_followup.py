"""What issue 19 left open, as a manager sees it: a 差评 case's person responsible (assigned,
shown, filtered, exported, kept by the coordinator), alert history and acknowledgements that
survive a restart of the web, and the friendly page at once when the coordinator is known to be
offline (its retained status), not after the reply timeout. Screenshots under test-artifacts/."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
from playwright.sync_api import Browser, Page, expect

from hall_devices.contract import (
    DEVICE_STATUS,
    PRINT_JOB,
    PRINT_RESULT,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    PrintFailure,
    PrintResult,
)
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from tests.coordinator.harness import Clock, Hall
from tests.support import Coordinator, HallBroker, Probe, probe
from tests.web.test_web import ARTEFACTS, Web, sign_in


def bad_rating(hall: Hall) -> str:
    """A 非常不满意 at window 6: the case id it opens."""
    hall.take("passport")
    hall.ok(6, "next")
    hall.ok(6, "finish")
    prompt = hall.prompt(6)
    assert hall.rate(6, prompt.prompt_id, 1).ok
    return f"C-{prompt.ticket_id}"


def printer_status(printer: Probe, state: DeviceState, *faults: DeviceFault) -> None:
    status = DeviceStatus(device_id="P1", kind="printer", state=state, faults=list(faults),
                          updated_at=datetime.now(UTC))
    printer.client.publish(DEVICE_STATUS.topic(hall="demo", device="P1"), encode(status), qos=1, retain=True)


def hall_clock(at: datetime) -> str:
    """``at`` on the example hall's clock (UTC+8), as the pages and exports write it."""
    return (at + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")


def manager(browser: Browser, web: Web) -> Page:
    page = sign_in(browser, web, "mgr", "manager-pass")
    page.set_viewport_size({"width": 1920, "height": 1080})
    return page


def test_cases_get_a_person_responsible_alerts_are_kept_and_an_offline_coordinator_is_said_at_once(
        browser: Browser, own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    store = tmp_path / "store.sqlite3"
    clock = Clock(datetime.now(UTC))  # the coordinator's: it stamps the assignment
    hall = Hall(own_broker, layout, store, clock)
    web = Web(own_broker, tmp_path)
    coordinator = Coordinator(own_broker, store, tmp_path / "coordinator.log")
    printer = probe(own_broker.port, "P1", own_broker.credentials["P1"],
                    subscribe=[PRINT_JOB.topic(hall="demo", printer="P1")])
    try:
        hall.ok(6, "login", clerk_id="Z0601")
        first, second = bad_rating(hall), bad_rating(hall)
        page = manager(browser, web)

        # --- 1. a person responsible -------------------------------------------------------------
        page.goto(f"{web.url}/cases")
        card = page.locator(f'article[id="{first}"]')
        expect(card.locator(".responsible")).to_have_text("未指派")
        card.locator("select.assignee").select_option("mgr")  # a web account
        card.locator(".assign input[name=note]").fill("请本周内核实")
        card.locator(".case-assign").click()
        card = page.locator(f'article[id="{first}"]')
        expect(card.locator(".responsible")).to_have_text("mgr")
        expect(card.locator(".assigned")).to_contain_text("mgr 于")
        expect(card.locator(".assigned")).to_contain_text("指派")
        other = page.locator(f'article[id="{second}"]')
        other.locator("select.assignee").select_option("Z0601")  # from the layout's staff list
        other.locator(".case-assign").click()
        expect(page.locator(f'article[id="{second}"] .responsible')).to_have_text("张敏（Z0601）")
        # Someone not on the staff list is refused, in words, and nothing changes.
        refused = page.request.post(f"{web.url}/cases/{second}/assign", form={"assignee": "nobody"},
                                    headers={"Origin": web.url}, max_redirects=0)
        assert refused.status == 303 and "/cases?state=&message=" in refused.headers["location"]

        page.goto(f"{web.url}/cases")
        page.select_option("#filter-assignee", "mine")
        page.click("#filter")
        expect(page.locator("article.case")).to_have_count(1)
        expect(page.locator(f'article[id="{first}"]')).to_be_visible()
        page.screenshot(path=str(ARTEFACTS / "web-cases-mine.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#cases-xlsx")  # the export keeps the page's filter
        sheet = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
        assert sheet is not None
        headers = [c.value for c in sheet[1]]
        assert headers[4:8] == ["工作人员", "责任人", "指派人", "指派时间"]
        assert sheet.max_row == 2  # mine only
        assert [c.value for c in sheet[2]][4:7] == ["张敏", "mgr", "mgr"]
        assert str(sheet["H2"].value) == hall_clock(clock())  # the coordinator's time, as hall time
        page.select_option("#filter-assignee", "Z0601")
        page.click("#filter")
        expect(page.locator("article.case")).to_have_count(1)
        expect(page.locator(f'article[id="{second}"]')).to_be_visible()
        page.select_option("#filter-assignee", "none")
        page.click("#filter")
        expect(page.locator("article.case")).to_have_count(0)
        page.select_option("#filter-assignee", "")
        page.click("#filter")
        expect(page.locator("article.case")).to_have_count(2)
        # Notes stay mandatory where the rules want them, assignment or not.
        refused = page.request.post(f"{web.url}/cases/{first}/appeal", form={"note": ""},
                                    headers={"Origin": web.url}, max_redirects=0)
        assert refused.status == 303 and "/cases?message=" in refused.headers["location"]
        page.screenshot(path=str(ARTEFACTS / "web-cases-assigned.png"), full_page=True)

        # --- 2. alerts kept across a restart of the web --------------------------------------------
        printer_status(printer, DeviceState.FAULT, DeviceFault.PAPER_OUT)
        page.goto(f"{web.url}/")
        paper = page.locator('#alerts li[data-alert="paper_out:P1"]')
        expect(paper).to_contain_text("缺纸", timeout=8000)
        paper.locator(".alert-ack").click()
        expect(page.locator('#alerts li[data-alert="paper_out:P1"] .ack')).to_contain_text("mgr 已确认")
        printer_status(printer, DeviceState.OK)  # paper back: the alert clears
        expect(page.locator('#alerts li[data-alert="paper_out:P1"]')).to_have_count(0, timeout=8000)
        # A ticket that failed to print: 补打 next to the alert, acknowledged, still active.
        ticket = hall.take("passport", paper=True)
        job = json.loads(printer.expect(lambda m: True).payload)
        failed = PrintResult(command_id=job["job_id"], ok=False, reason=PrintFailure.PAPER_OUT)
        printer.client.publish(PRINT_RESULT.topic(hall="demo", printer="P1"), encode(failed), qos=1)
        assert ticket.ticket is not None
        failing = page.locator(f'#alerts li[data-alert="print_failed:{ticket.ticket.number}"]')
        expect(failing.locator(".alert-reprint")).to_be_visible(timeout=8000)
        failing.locator(".alert-ack").click()
        expect(page.locator(f'#alerts li[data-alert="print_failed:{ticket.ticket.number}"] .ack')
               ).to_contain_text("mgr 已确认")

        web.stop()
        web = Web(own_broker, tmp_path)  # the same data directory: a restarted web server
        page = manager(browser, web)
        failing = page.locator(f'#alerts li[data-alert="print_failed:{ticket.ticket.number}"]')
        expect(failing.locator(".ack")).to_contain_text("mgr 已确认", timeout=8000)  # still acknowledged
        page.goto(f"{web.url}/alerts")
        history = page.locator("#alert-history")
        cleared = history.locator('tr[data-alert="paper_out:P1"]')
        expect(cleared.locator(".state")).to_contain_text("已消除")  # cleared before the restart, kept
        expect(cleared.locator(".ack")).to_contain_text("mgr")
        expect(cleared.locator(".action .alert-go")).to_have_attribute("href", "/devices")
        active = history.locator(f'tr[data-alert="print_failed:{ticket.ticket.number}"]')
        expect(active.locator(".state")).to_contain_text("未消除")
        expect(active.locator(".action .alert-reprint")).to_be_visible()
        expect(active.locator(".ack")).to_contain_text("mgr")
        page.screenshot(path=str(ARTEFACTS / "web-alerts-after-restart.png"), full_page=True)

        # --- 3. the coordinator killed: the friendly page at once ----------------------------------
        hall.stop()  # the in-process coordinator hands its store to the real command
        coordinator.start_ready(own_broker)
        page.goto(f"{web.url}/cases?state=")
        expect(page.locator(f'article[id="{first}"] .responsible')).to_have_text("mgr")  # kept in the store
        page.goto(f"{web.url}/devices")
        row = page.locator('#devices tr[data-device="coordinator"] .state')
        expect(row).to_contain_text("正常", timeout=10000)
        coordinator.kill()  # SIGKILL: the broker publishes its Last Will (offline)
        expect(row).to_contain_text("离线", timeout=10000)
        for path in ("/stats", "/cases", "/ratings"):
            response = page.goto(f"{web.url}{path}")
            assert response is not None and response.status == 503
            expect(page.locator("#unreachable h1")).to_have_text("暂时无法连接排队系统")
            # "offline since": answered from the retained status, not after the reply timeout
            # (which says 没有应答 instead).
            expect(page.locator("#unreachable .reason.offline")).to_contain_text("已离线")
            expect(page.locator("#unreachable .since")).not_to_be_empty()
        page.screenshot(path=str(ARTEFACTS / "web-unreachable-offline.png"), full_page=True)
    finally:
        printer.stop()
        web.stop()
        hall.stop()
        if coordinator.process is not None and coordinator.process.poll() is None:
            coordinator.kill()


def test_an_overdue_case_alert_opens_the_case(browser: Browser, own_broker: HallBroker, layout: Layout,
                                              tmp_path: Path) -> None:
    """A case rated six weeks ago and never handled: the restarted coordinator (the real command, on
    that store) alerts it, and the alert's action opens that case on the cases page."""
    store = tmp_path / "store.sqlite3"
    hall = Hall(own_broker, layout, store, Clock(datetime.now(UTC) - timedelta(days=42)))
    coordinator = Coordinator(own_broker, store, tmp_path / "coordinator.log")
    web = Web(own_broker, tmp_path)
    try:
        hall.ok(6, "login", clerk_id="Z0601")
        case_id = bad_rating(hall)
        hall.stop()
        coordinator.start_ready(own_broker)
        page = manager(browser, web)
        alert = page.locator(f'#alerts li[data-alert="case_overdue:{case_id}"]')
        expect(alert).to_contain_text("已超过整改期限", timeout=10000)
        alert.locator(".alert-go").click()
        expect(page.locator(f'article[id="{case_id}"] .overdue-mark')).to_be_visible()
        page.goto(f"{web.url}/alerts")
        row = page.locator(f'#alert-history tr[data-alert="case_overdue:{case_id}"]')
        expect(row.locator(".action .alert-go")).to_have_attribute("href", f"/cases?state=#{case_id}")
        page.screenshot(path=str(ARTEFACTS / "web-alerts-case-overdue.png"), full_page=True)
    finally:
        web.stop()
        hall.stop()
        if coordinator.process is not None and coordinator.process.poll() is None:
            coordinator.stop()
