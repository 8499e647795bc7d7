"""What a manager reads (issue 19): window and service names, hall time, the catalog's words, and a
page that says so when the coordinator does not answer. One hall and one web server for the module's
single walk through the pages; screenshots under test-artifacts/."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
from playwright.sync_api import Browser, expect

from hall_devices.contract import DEVICE_STATUS, DeviceFault, DeviceState, DeviceStatus
from hall_devices.layout import KioskDevice, Layout
from hall_devices.mqtt.bus import encode
from hall_devices.web.users import add_user
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe
from tests.web.test_web import ARTEFACTS, Web, new_page, sign_in

# 01:30 UTC is 09:30 in the hall (UTC+8): a page showing UTC would be 8 hours off.
START = datetime.now(UTC).replace(hour=1, minute=30, second=7, microsecond=0)


def test_the_manager_reads_names_hall_time_and_plain_words(
        browser: Browser, own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(START))
    web = Web(own_broker, tmp_path)
    try:
        hall.take("passport")
        hall.ok(6, "login", clerk_id="Z0601")
        hall.ok(6, "next")
        hall.ok(6, "finish")
        assert hall.rate(6, hall.prompt(6).prompt_id, 1).ok
        hall.take("company_setup")
        login = new_page(browser, viewport={"width": 1920, "height": 1080})
        login.goto(f"{web.url}/login")
        expect(login.locator("form")).to_contain_text("登录")
        login.screenshot(path=str(ARTEFACTS / "web-login.png"), full_page=True)
        page = sign_in(browser, web, "mgr", "manager-pass")
        page.set_viewport_size({"width": 1920, "height": 1080})

        # Overview: the window's own name, never "[object Object]"; the queue by the service's name.
        row = page.locator('#windows tr[data-window="6"]')
        expect(row).to_contain_text(f"6 {layout.window(6).name.zh}", timeout=5000)
        expect(page.locator("#windows")).not_to_contain_text("object")
        expect(row.locator(".clerk")).to_have_text("张敏")  # Z0601 by name
        setup = next(s for s in layout.services if s.id == "company_setup")
        expect(page.locator("#queues")).to_contain_text(setup.name.zh)
        expect(page.locator("#queues")).not_to_contain_text("company_setup")
        page.screenshot(path=str(ARTEFACTS / "web-overview-names.png"), full_page=True)

        # A printer out of paper: the alert with its action and an acknowledge (who, when); the
        # devices page names the fault and where the printer is.
        printer = probe(own_broker.port, "P1", own_broker.credentials["P1"])
        status = DeviceStatus(device_id="P1", kind="printer", state=DeviceState.FAULT,
                              faults=[DeviceFault.PAPER_OUT], updated_at=datetime.now(UTC))
        printer.client.publish(DEVICE_STATUS.topic(hall="demo", device="P1"), encode(status),
                               qos=1, retain=True)
        printer.stop()
        alert = page.locator('#alerts li[data-alert="paper_out:P1"]')
        expect(alert).to_contain_text("缺纸", timeout=8000)
        expect(alert.locator(".alert-go")).to_have_attribute("href", "/devices")
        alert.locator(".alert-ack").click()
        expect(page.locator('#alerts li[data-alert="paper_out:P1"] .ack')).to_contain_text("mgr 已确认",
                                                                                             timeout=5000)
        page.goto(f"{web.url}/alerts")
        expect(page.locator('#alert-history tr[data-alert="paper_out:P1"] .ack')).to_contain_text("mgr")
        page.screenshot(path=str(ARTEFACTS / "web-alerts.png"), full_page=True)
        page.goto(f"{web.url}/devices")
        row = page.locator('#devices tr[data-device="P1"]')
        kiosk = layout.device("K1")
        assert isinstance(kiosk, KioskDevice) and kiosk.location is not None
        expect(row.locator(".faults")).to_have_text("缺纸", timeout=5000)
        expect(row.locator(".place")).to_have_text(f"{kiosk.location.zh}（K1）")
        expect(page.locator("#devices")).not_to_contain_text("paper_out")
        page.screenshot(path=str(ARTEFACTS / "web-devices.png"), full_page=True)
        page.goto(f"{web.url}/")

        # Ratings: the rating's time on the hall's clock (09:30:07), and the window by name.
        hall_day = (START + timedelta(hours=8)).date().isoformat()
        page.goto(f"{web.url}/ratings?from={hall_day}")
        rating = page.locator("#ratings tbody tr").first
        expect(rating.locator(".at")).to_have_text((START + timedelta(hours=8)).strftime("%m-%d %H:%M:%S"))
        expect(rating).to_contain_text(f"6号窗口（{layout.window(6).name.zh}）")
        page.screenshot(path=str(ARTEFACTS / "web-ratings.png"), full_page=True)

        # The ratings export opens with the library it was written with, in hall time and names.
        with page.expect_download() as download:
            page.click("#ratings-xlsx")
        sheet = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
        assert sheet is not None
        assert [c.value for c in sheet[1]][:3] == ["时间", "号码", "事项"]
        assert sheet["A2"].value == (START + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
        assert sheet["F2"].value == "张敏"  # Z0601 by name, from the layout's staff list

        # Cases: filtered by department and window, the history in hall time, the person responsible.
        page.goto(f"{web.url}/cases")
        case = page.locator("article.case")
        expect(case).to_have_count(1)
        expect(case.locator(".clerk")).to_have_text("张敏（Z0601）")  # the clerk it is about, by name
        expect(case.locator(".responsible")).to_have_text("未指派")  # nobody responsible yet
        page.select_option("#filter-department", "rs")
        page.click("#filter")
        expect(page.locator("article.case")).to_have_count(0)
        page.select_option("#filter-department", "ga")
        page.select_option("#filter-window", "6")
        page.click("#filter")
        expect(case).to_have_count(1)
        expect(case.locator(".history .at").first).to_have_text(
            (START + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M"))
        expect(case.locator(".deadline")).to_contain_text("days left")
        case_id = case.get_attribute("id")
        # A step the rules want explained is refused without a note (the browser asks first too).
        refused = page.request.post(f"{web.url}/cases/{case_id}/appeal", form={"note": " "},
                                    headers={"Origin": web.url}, max_redirects=0)
        assert refused.status == 303 and "/cases?message=" in refused.headers["location"]
        page.goto(f"{web.url}/cases?state=")
        expect(case.locator(".state")).to_have_text("待核实")  # nothing changed
        for action in ("verify", "revisit", "close"):
            case.locator("input[name=note]").first.fill("已核实")
            case.locator(f".case-{action}").click()
        expect(case.locator(".state")).to_have_text("已办结")
        expect(case.locator(".deadline")).not_to_contain_text("剩")  # a closed case does not count down
        page.screenshot(path=str(ARTEFACTS / "web-cases.png"), full_page=True)
        page.goto(f"{web.url}/cases")  # by default the open ones only
        expect(page.locator("article.case")).to_have_count(0)

        # A refused console command in the catalog's words, Chinese first, no engine English.
        page.goto(f"{web.url}/console?window=7")
        expect(page.locator("#do-next")).to_be_disabled()  # window 7 is closed: the button says so
        refused = page.request.post(f"{web.url}/console/7/next", headers={"Origin": web.url},
                                    max_redirects=0)  # sent anyway (a stale page): wrong_state
        assert refused.status == 303
        page.goto(f"{web.url}{refused.headers['location']}")
        expect(page.locator("#message")).to_have_text(
            "当前状态下不能执行此操作，请刷新后按可用的按钮操作 / this cannot be done in the current "
            "state; please use one of the buttons enabled now")

        # Statistics over a range: the day-by-day trend, names in Chinese.
        first_day = (START + timedelta(hours=8) - timedelta(days=2)).date().isoformat()
        page.goto(f"{web.url}/stats?from={first_day}&to={hall_day}")
        expect(page.locator("#chart-days .main-svg").first).to_be_visible(timeout=10000)
        expect(page.locator("#stats")).to_contain_text("工作人员")
        expect(page.locator("#stats")).to_contain_text("张敏（Z0601）")
        expect(page.locator("#stats")).not_to_contain_text("department")
        page.screenshot(path=str(ARTEFACTS / "web-statistics-range.png"), full_page=True)
        for path, name in (("/staff", "staff"), (f"/audit?from={hall_day}", "audit"), ("/account", "account"),
                           ("/alerts", "alerts-history"), (f"/bookings?day={hall_day}", "bookings")):
            page.goto(f"{web.url}{path}")
            expect(page.locator("main")).to_be_visible()
            page.screenshot(path=str(ARTEFACTS / f"web-{name}.png"), full_page=True)

        # One-step sign-in keeps to the account's windows (issue 15): clerk3 carries window 3 only,
        # so window 6 is refused at the sign-in and nobody is put on duty there.
        refused_page = sign_in(browser, web, "clerk3", "clerk-pass", window=6)
        expect(refused_page.locator("main")).to_contain_text("不能登录 6 号窗口")
        assert hall.service.engine.state.windows[6].clerk_id == "Z0601"
        # A web clerk signing in where the keypad's clerk is on duty is told so, and sees who is.
        add_user(web.users, "clerk6", "clerk", "clerk-pass", (6,))
        clerk = sign_in(browser, web, "clerk6", "clerk-pass", window=6)
        expect(clerk.locator("#message")).to_contain_text("本窗口已有工作人员在岗")
        expect(clerk.locator("#clerk")).to_have_text("张敏（Z0601）", timeout=5000)
        expect(clerk.locator("#not-me")).to_be_visible()

        # The coordinator stops: a page that says so, not a bare "Internal Server Error".
        hall.stop()
        response = page.goto(f"{web.url}/stats")
        assert response is not None and response.status == 503
        expect(page.locator("#unreachable h1")).to_have_text("暂时无法连接排队系统")
        page.screenshot(path=str(ARTEFACTS / "web-unreachable.png"), full_page=True)
    finally:
        web.stop()
        hall.stop()
