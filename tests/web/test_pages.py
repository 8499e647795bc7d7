"""What a manager reads (issue 19): window and service names, hall time, the catalog's words, and a
page that says so when the coordinator does not answer. One hall and one web server for the module's
single walk through the pages; screenshots under test-artifacts/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, expect

from hall_devices.layout import Layout
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker
from tests.web.test_web import ARTEFACTS, Web, sign_in

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
        page = sign_in(browser, web, "mgr", "manager-pass")
        page.set_viewport_size({"width": 1920, "height": 1080})

        # Overview: the window's own name, never "[object Object]"; the queue by the service's name.
        row = page.locator('#windows tr[data-window="6"]')
        expect(row).to_contain_text(f"6 {layout.window(6).name.zh}", timeout=5000)
        expect(page.locator("#windows")).not_to_contain_text("object")
        setup = next(s for s in layout.services if s.id == "company_setup")
        expect(page.locator("#queues")).to_contain_text(setup.name.zh)
        expect(page.locator("#queues")).not_to_contain_text("company_setup")
        page.screenshot(path=str(ARTEFACTS / "web-overview-names.png"), full_page=True)

        # Ratings: the rating's time on the hall's clock (09:30:07), and the window by name.
        hall_day = (START + timedelta(hours=8)).date().isoformat()
        page.goto(f"{web.url}/ratings?from={hall_day}")
        rating = page.locator("#ratings tbody tr").first
        expect(rating.locator(".at")).to_have_text((START + timedelta(hours=8)).strftime("%m-%d %H:%M:%S"))
        expect(rating).to_contain_text(f"6号窗口（{layout.window(6).name.zh}）")
        page.screenshot(path=str(ARTEFACTS / "web-ratings.png"), full_page=True)

        # Cases: the history in hall time; a closed case no longer counts down.
        page.goto(f"{web.url}/cases")
        case = page.locator("article.case")
        expect(case.locator(".history .at").first).to_have_text(
            (START + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M"))
        expect(case.locator(".deadline")).to_contain_text("days left")
        for action in ("verify", "revisit", "close"):
            case.locator("input[name=note]").first.fill("已核实")
            case.locator(f".case-{action}").click()
        expect(case.locator(".state")).to_have_text("已办结")
        expect(case.locator(".deadline")).not_to_contain_text("剩")
        page.screenshot(path=str(ARTEFACTS / "web-cases.png"), full_page=True)

        # A refused console command in the catalog's words, Chinese first, no engine English.
        page.goto(f"{web.url}/console?window=7")
        page.click("#do-next")  # window 7 is closed: wrong_state
        expect(page.locator("#message")).to_have_text(
            "当前状态下不能执行此操作，请刷新后按可用的按钮操作 / this cannot be done in the current "
            "state; please use one of the buttons enabled now")

        # The coordinator stops: a page that says so, not a bare "Internal Server Error".
        hall.stop()
        response = page.goto(f"{web.url}/stats")
        assert response is not None and response.status == 503
        expect(page.locator("#unreachable h1")).to_have_text("暂时无法连接排队系统")
        page.screenshot(path=str(ARTEFACTS / "web-unreachable.png"), full_page=True)
    finally:
        web.stop()
        hall.stop()
