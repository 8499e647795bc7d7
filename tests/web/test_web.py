"""The web pages in headless Chromium (Debian's), against `hall-devices web`, a real coordinator and
Mosquitto, and the LED simulator."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import Browser, Page, expect

from hall_devices.contract import WINDOW_COMMAND
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.layout import Layout
from hall_devices.leds.agent import LedAgent
from hall_devices.ops.broker import free_port
from hall_devices.web.users import add_user
from tests.conftest import EXAMPLE, ROOT
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker

ARTEFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


class Web:
    """`hall-devices web` in production mode: HTTPS with the certificate provisioning made."""

    def __init__(self, broker: HallBroker, tmp: Path, **extra_env: str) -> None:
        self.users = tmp / "users.toml"
        if not self.users.exists():
            add_user(self.users, "mgr", "manager", "manager-pass")
            add_user(self.users, "clerk3", "clerk", "clerk-pass", (3,))
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.data = tmp / "web"
        tls = broker.directory / "tls"
        self.env = {**os.environ, "HALL_BROKER_PORT": str(broker.port), "HALL_BROKER_USERNAME": "web",
                    "HALL_BROKER_PASSWORD": broker.credentials["web"], "HALL_LAYOUT": str(EXAMPLE),
                    "HALL_WEB_PORT": str(self.port), "HALL_WEB_USERS": str(self.users),
                    "HALL_WEB_TLS_CERT_FILE": str(tls / "web.crt"),
                    "HALL_WEB_TLS_KEY_FILE": str(tls / "web.key"),
                    "HALL_DATA_DIR": str(self.data), "HALL_LOG_LEVEL": "WARNING", **extra_env}
        if extra_env.get("HALL_WEB_DEMO"):
            self.url = f"http://127.0.0.1:{self.port}"
        env = self.env
        self.log = (tmp / "web.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "web"], env=env,
                                        stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the web server did not listen")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log.close()


def business_morning(layout: Layout) -> datetime:
    """An hour past the start of the hall's business day now (09:00 hall time, or later for a hall
    whose day starts after 08:00): a test clock on the day the web calls today (real time), that the
    tests' minutes and hours of advancing keep on that day whatever the hour the suite runs at
    (from a clock started at real time, a run near hall midnight split a test's tickets over two
    days)."""
    hall = layout.hall
    day = date.fromisoformat(hall.business_day(datetime.now(UTC)))
    zone = timezone(timedelta(hours=hall.utc_offset_hours))
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return (start + timedelta(hours=max(9, hall.day_starts_at_hour + 1))).astimezone(UTC)


@pytest.fixture
def hall(own_broker: HallBroker, layout: Layout, tmp_path: Path) -> Iterator[Hall]:
    running = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(business_morning(layout)))
    yield running
    running.stop()


@pytest.fixture
def web(own_broker: HallBroker, hall: Hall, tmp_path: Path) -> Iterator[Web]:
    server = Web(own_broker, tmp_path)
    yield server
    server.stop()


def new_page(browser: Browser, **options: Any) -> Page:
    """A page of its own (cookies and all); the web's certificate is the hall CA's, which this
    browser profile does not know (tests/web/test_security.py checks the chain)."""
    return browser.new_context(ignore_https_errors=True, **options).new_page()


def sign_in(browser: Browser, web: Web, user: str, password: str, window: int | None = None) -> Page:
    page = new_page(browser, viewport={"width": 1280, "height": 900})
    page.goto(f"{web.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    if window is not None:
        page.select_option("#window", str(window))
    page.click("#sign-in")
    page.wait_for_load_state()
    return page


def test_every_page_needs_sign_in_and_a_clerk_keeps_to_the_window(browser: Browser, web: Web) -> None:
    page = new_page(browser)
    for path in ("/", "/devices", "/ratings", "/cases", "/stats", "/console", "/staff"):
        page.goto(f"{web.url}{path}")
        assert page.url.startswith(f"{web.url}/login"), f"{path} did not lead to sign-in"
    own = {"Origin": web.url}  # as a browser's form post says
    assert page.request.post(f"{web.url}/console/3/next", headers=own).status == 401
    wrong = sign_in(browser, web, "mgr", "nope")
    expect(wrong.locator("#error")).to_contain_text("wrong user name or password")
    clerk = sign_in(browser, web, "clerk3", "clerk-pass", window=3)
    assert clerk.url.endswith("/console")
    assert clerk.request.post(f"{web.url}/console/4/next", headers=own).status == 403  # another window
    assert clerk.request.get(f"{web.url}/console/4/queue.json").status == 403
    assert clerk.request.get(f"{web.url}/devices").status == 403  # a manager's page
    assert clerk.request.post(f"{web.url}/staff/green", form={"service_id": "passport"},
                              headers=own).status == 403


def test_signing_in_again_where_one_is_on_duty_is_no_refusal(browser: Browser, web: Web, hall: Hall) -> None:
    first = sign_in(browser, web, "clerk3", "clerk-pass", window=3)
    expect(first.locator("#clerk")).to_have_text("李强（clerk3）", timeout=5000)
    # A closed browser or an ended session: the clerk signs in again and is still on duty there,
    # which is nothing to be told off for.
    again = sign_in(browser, web, "clerk3", "clerk-pass", window=3)
    expect(again.locator("#clerk")).to_have_text("李强（clerk3）", timeout=5000)
    expect(again.locator("#not-me")).to_be_hidden()
    expect(again.locator("#message")).to_have_count(0)
    # Someone else on duty there (the pad's clerk): told that, not "cannot be done in this state".
    hall.ok(3, "logout")
    hall.ok(3, "login", clerk_id="Z0601")
    expect(again.locator("#clerk")).to_have_text("张敏（Z0601）", timeout=5000)  # the web knows it
    taken = sign_in(browser, web, "clerk3", "clerk-pass", window=3)
    expect(taken.locator("#message")).to_have_text(
        "本窗口已有工作人员在岗，如需接替，请先离岗再上岗 / another clerk is on duty at this window; "
        "to take over, sign them out first, then sign in")
    expect(taken.locator("#clerk")).to_have_text("张敏（Z0601）", timeout=5000)
    expect(taken.locator("#not-me")).to_be_visible()


def test_a_clerks_next_shows_the_ticket_in_the_console_and_at_the_led(
        browser: Browser, web: Web, hall: Hall, own_broker: HallBroker, layout: Layout,
        tmp_path: Path) -> None:
    addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
    leds = LedBusSimulator(tmp_path / "dev" / "leds", "bx", addresses).start()
    agent = LedAgent(own_broker.settings("L1"), layout, "L1", url=str(leds.path))
    agent.start()
    try:
        ticket = hall.take("company_change").ticket
        assert ticket is not None
        page = sign_in(browser, web, "clerk3", "clerk-pass", window=3)
        page.set_viewport_size({"width": 1366, "height": 768})  # a clerk's screen
        # One step: signing in to window 3 puts the account on duty there.
        expect(page.locator("#status")).to_have_text("空闲", timeout=5000)
        expect(page.locator("#clerk")).to_have_text("李强（clerk3）")  # the layout's staff list
        expect(page.locator("#not-me")).to_be_hidden()
        expect(page.locator("#count")).to_have_text("1")
        # Buttons follow the window's state: idle may call, not finish or sign in again.
        expect(page.locator("#do-next")).to_be_enabled()
        for idle_cannot in ("#do-finish", "#do-recall", "#do-login", "#do-resume"):
            expect(page.locator(idle_cannot)).to_be_disabled()
        page.keyboard.press("n")  # the shortcut of 顺呼
        expect(page.locator("#current")).to_have_text(ticket.number, timeout=5000)
        expect(page.locator("#current-class")).to_have_text("类别 普通")
        expect(page.locator("#current-service")).to_contain_text("企业")
        expect(page.locator("#current-wait")).to_contain_text("分钟")
        expect(page.locator("#do-finish")).to_be_enabled()
        expect(page.locator("#do-next")).to_be_disabled()
        assert leds.wait(lambda: ticket.number in leds.text(3), 5), leds.text(3)
        page.screenshot(path=str(ARTEFACTS / "web-console.png"))
        page.click("#do-hold")
        expect(page.locator("#held button")).to_have_text(f"回呼 {ticket.number}", timeout=5000)
        page.fill("#pause-reason", "午休")
        page.click("#do-pause")
        expect(page.locator("#status")).to_have_text("暂停服务", timeout=5000)
        expect(page.locator("#pause-shown")).to_have_text("· 午休")
        assert leds.wait(lambda: "午休" in leds.text(3), 5), leds.text(3)  # the reason reaches the LED
        expect(page.locator("#held button")).to_be_disabled()  # paused: resume first
        page.click("#do-resume")
        expect(page.locator("#held button")).to_be_enabled(timeout=5000)
        page.locator("#held button").click()
        expect(page.locator("#current")).to_have_text(ticket.number, timeout=5000)
        # 特呼: a later ticket called before its turn, with the reason, audited under the clerk.
        first, later = hall.take("company_change").ticket, hall.take("company_change").ticket
        assert first is not None and later is not None
        page.click("#do-finish")
        row = page.locator(f'#queue tr[data-ticket="{later.number}"]')
        expect(row.locator(".call-ticket")).to_be_enabled(timeout=5000)
        row.locator("input[name=reason]").fill("行动不便")
        row.locator(".call-ticket").click()
        expect(page.locator("#current")).to_have_text(later.number, timeout=5000)
        expect(page.locator(f'#queue tr[data-ticket="{first.number}"]')).to_have_count(1)
        page.screenshot(path=str(ARTEFACTS / "web-console-1366.png"), full_page=True)
    finally:
        agent.stop()
        leds.stop()


def test_a_killed_agent_shows_offline_within_5_s(browser: Browser, web: Web, own_broker: HallBroker,
                                                 tmp_path: Path) -> None:
    env = {**os.environ, "HALL_BROKER_PORT": str(own_broker.port), "HALL_BROKER_USERNAME": "VOICE1",
           "HALL_BROKER_PASSWORD": own_broker.credentials["VOICE1"], "HALL_LAYOUT": str(EXAMPLE)}
    agent = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "announcer", "--id", "VOICE1",
                              "--output", "off"], env=env)
    try:
        page = sign_in(browser, web, "mgr", "manager-pass")
        page.goto(f"{web.url}/devices")
        row = page.locator('tr[data-device="VOICE1"] .state')
        expect(row).to_contain_text("正常", timeout=15000)  # what a person reads, not the code
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        killed = time.monotonic()
        expect(row).to_contain_text("离线", timeout=5000)  # no reload: the page is live
        assert time.monotonic() - killed < 5
        expect(page.locator('tr[data-device="VOICE1"]')).to_have_class("state-offline")
        page.screenshot(path=str(ARTEFACTS / "web-devices.png"))
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_a_bad_rating_case_is_taken_to_closed(browser: Browser, web: Web, hall: Hall) -> None:
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    hall.ok(6, "finish")
    prompt = hall.prompt(6)
    assert hall.rate(6, prompt.prompt_id, 1).ok
    page = sign_in(browser, web, "mgr", "manager-pass")
    page.goto(f"{web.url}/ratings")
    expect(page.locator("#ratings")).to_contain_text("非常不满意")
    page.clock.install(time=datetime.now(UTC) + timedelta(days=30))  # the browser's clock is off
    page.goto(f"{web.url}/cases")
    case = page.locator("article.case")
    expect(case.locator(".state")).to_have_text("待核实")
    expect(case.locator(".deadline")).to_contain_text("days left")
    # A note can be no longer than the server takes (500): a longer one was a bare 400 page.
    notes = case.locator("input[name=note]")
    expect(notes).to_have_count(3)  # verify, appeal, assign
    for note in notes.all():
        expect(note).to_have_attribute("maxlength", "500")
    case.locator("input[name=note]").first.fill("核实：窗口解释不清")
    case.locator(".case-verify").click()
    expect(page.locator("article.case .state")).to_have_text("整改中")
    page.locator("article.case .case-revisit").click()
    expect(page.locator("article.case .state")).to_have_text("已回访")
    page.locator("article.case .case-close").click()  # a close must say why: the browser asks
    expect(page.locator("article.case .state")).to_have_text("已回访")
    page.locator("article.case input[name=note]").first.fill("回访满意，办结")
    page.locator("article.case .case-close").click()
    expect(page.locator("article.case .state")).to_have_text("已办结")
    expect(page.locator("article.case .history li")).to_have_count(4)


def test_statistics_charts_and_csv(browser: Browser, web: Web, hall: Hall) -> None:
    hall.ok(6, "login", clerk_id="Z0601")
    for level in (5, 4, 2):
        hall.take("passport")
        hall.ok(6, "next")
        hall.clock.advance(minutes=5)
        hall.ok(6, "finish")
        assert hall.rate(6, hall.prompt(6).prompt_id, level).ok
    page = sign_in(browser, web, "mgr", "manager-pass")
    page.goto(f"{web.url}/stats")
    for chart in ("#chart-hours", "#chart-waits", "#chart-satisfaction"):
        expect(page.locator(f"{chart} .main-svg").first).to_be_visible(timeout=10000)
    expect(page.locator("#stats")).to_contain_text("合计")
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "web-statistics.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    header, total = text.splitlines()[:2]
    assert header.startswith("维度,编码,名称,取号,办结")  # Chinese headers for the people who read it
    assert total.startswith("合计,,合计,3,3")
    assert "工作人员,Z0601,张敏," in text  # the clerk's name from the layout's staff list
    with page.expect_download() as download:
        page.click("#xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert sheet is not None
    assert [c.value for c in sheet[1]][:5] == ["维度", "编码", "名称", "取号", "办结"]
    assert [c.value for c in sheet[2]][:5] == ["合计", None, "合计", 3, 3]


def test_the_ticket_page_shows_one_ticket_and_nothing_else(browser: Browser, web: Web, hall: Hall) -> None:
    first = hall.take("passport").ticket
    second = hall.take("passport").ticket
    assert first and second and second.status_url
    token = second.status_url.rsplit("/", 1)[1]
    page = new_page(browser, viewport={"width": 390, "height": 844})  # a phone, no sign-in
    page.goto(f"{web.url}/t/{token}")
    expect(page.locator("#number")).to_have_text(second.number)
    expect(page.locator("#ahead")).to_contain_text("前面还有 1 人")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    hall.ok(6, "finish")
    hall.ok(6, "next")
    expect(page.locator("#where")).to_contain_text("请到6号窗口", timeout=8000)  # live, no reload
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / "web-ticket-phone.png"), full_page=True)
    state = page.request.get(f"{web.url}/t/{token}/state.json").json()
    assert set(state) == {"number", "status", "people_ahead", "estimated_minutes", "windows", "service_name",
                          "window", "ticket_class"}
    assert page.request.get(f"{web.url}/t/not-a-token/state.json").status == 404


def test_the_overview_is_live(browser: Browser, web: Web, hall: Hall) -> None:
    page = sign_in(browser, web, "mgr", "manager-pass")
    expect(page.locator("#windows tr")).to_have_count(22, timeout=5000)
    expect(page.locator("#live")).to_have_class("live on")
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    expect(page.locator('#windows tr[data-window="6"] .ticket')).to_have_text("B001", timeout=5000)
    hall.ok(6, "finish")
    hall.ok(6, "pause", reason="午休")
    expect(page.locator('#windows tr[data-window="6"]')).to_contain_text("暂停服务 · 午休", timeout=5000)
    # How long it has been paused is counted on the coordinator's clock, not the browser's.
    hall.clock.advance(minutes=25)
    hall.take("passport")  # a queue summary carries the coordinator's time
    expect(page.locator('#windows tr[data-window="6"] td:nth-child(5)')).to_contain_text("25分", timeout=5000)
    page.screenshot(path=str(ARTEFACTS / "web-overview.png"), full_page=True)


def test_staff_issue_a_green_channel_ticket_and_reprint(browser: Browser, web: Web, hall: Hall,
                                                        own_broker: HallBroker) -> None:
    from tests.support import probe

    printer = probe(own_broker.port, "P1", own_broker.credentials["P1"],
                    subscribe=["hall/demo/printer/P1/job"])
    page = sign_in(browser, web, "mgr", "manager-pass")
    page.goto(f"{web.url}/staff")
    page.select_option("select[name=service_id]", "passport")
    page.locator("form[action='/staff/green'] select[name=kiosk_id]").select_option("K1")
    page.click("#green")
    expect(page.locator("#message")).to_have_text("✓ B001")
    job = printer.expect(lambda m: True)
    assert b'"ticket_class":"green"' in job.payload and b'"reprint":false' in job.payload
    page.fill("input[name=number]", "B001")
    page.click("#reprint")
    expect(page.locator("#message")).to_have_text("✓ B001")
    assert b'"reprint":true' in printer.expect(lambda m: True).payload
    page.fill("input[name=number]", "Z999")
    page.click("#reprint")
    expect(page.locator("#message")).to_contain_text("no such ticket")
    printer.stop()


def test_the_devices_page_lists_what_the_coordinator_could_not_handle(browser: Browser, web: Web,
                                                                      hall: Hall) -> None:
    from hall_devices.contract import WindowAction, WindowCommand
    from hall_devices.mqtt.bus import Inbound
    from tests.support import wait_until

    # As an older, laxer bus let it through: "²" passes isdigit() and breaks int() in the engine.
    poison = WindowCommand(command_id="poison-web", action=WindowAction.NEXT)
    hall.service.worker.post(Inbound(WINDOW_COMMAND, "hall/demo/window/²/command",
                                     {"hall": "demo", "window": "²"}, poison, False, False, 0, 0))
    wait_until(lambda: hall.service.store.count("dead_letters") == 1, what="the dead letter kept")
    page = sign_in(browser, web, "mgr", "manager-pass")
    page.goto(f"{web.url}/devices")
    expect(page.locator("#dead-letters")).to_contain_text("未能处理的消息")
    expect(page.locator("#dead-letters")).to_contain_text("(1)")
    expect(page.locator("main")).to_contain_text("window_command:poison-web")
    expect(page.locator("main")).to_contain_text("ValueError")


def test_a_day_that_is_not_one_is_said_on_the_page(browser: Browser, web: Web, hall: Hall) -> None:
    page = sign_in(browser, web, "mgr", "manager-pass")
    response = page.goto(f"{web.url}/ratings?from=not-a-date")
    # Checked by the web before the coordinator is asked (web/params.py): a 400 naming the field.
    assert response is not None and response.status == 400
    expect(page.locator("body")).to_contain_text("from must be a day YYYY-MM-DD")
