"""The audit trail: sign-ins, failed sign-ins, staff commands and window commands recorded by the
running web, shown to managers with filters and exported as CSV (headless Chromium, HTTPS)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from hall_devices.web.audit import AuditLog, audit_file
from tests.web.conftest import SecureHall, request, sign_in_cookie
from tests.web.test_web import CHROMIUM, sign_in

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def test_who_did_what_is_on_the_audit_page_and_in_its_csv(browser: Browser, secure: SecureHall) -> None:
    own = {"Origin": secure.web.url}
    hall_day = secure.hall.layout.hall.business_day
    first = hall_day(datetime.now(UTC))  # the web's day (real time); a run across midnight spans two
    assert request(secure, "/login", {"username": "cai", "password": "wrong-guess-1"}, own).status == 401
    clerk = sign_in_cookie(secure, "cai", window=5)
    assert request(secure, "/console/5/login", {}, own, clerk).status == 303
    assert request(secure, "/console/5/pause", {"reason": "午休"}, own, clerk).status == 303
    assert request(secure, "/console/5/logout", {}, own, clerk).status == 303
    page = sign_in(browser, secure.web, "boss", "boss-pass-2024")
    page.goto(f"{secure.web.url}/staff")
    page.select_option("select[name=service_id]", "passport")
    page.click("#green")
    expect(page.locator("#message")).to_contain_text("✓")
    number = page.inner_text("#message").split()[-1]
    page.fill("input[name=number]", number)
    page.locator("form[action='/staff/reprint'] select[name=kiosk_id]").select_option("K1")
    page.click("#reprint")
    expect(page.locator("#message")).to_contain_text("✓")
    # A 差评 case taken a step by the manager.
    hall = secure.hall
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    hall.ok(6, "finish")
    assert hall.rate(6, hall.prompt(6).prompt_id, 1).ok
    page.goto(f"{secure.web.url}/cases")
    page.locator("article.case input[name=note]").first.fill("核实：窗口解释不清")
    page.locator("article.case .case-verify").first.click()
    expect(page.locator("article.case .state").first).to_have_text("整改中")
    # A clerk may not read it.
    assert request(secure, "/audit", cookie=clerk).status in (303, 403)
    # A row an older or newer version wrote, with an action this one has no words for.
    AuditLog(audit_file(secure.web.data)).record("later-version", "sign_in_v9", outcome="ok")
    page.goto(f"{secure.web.url}/audit?from={first}&to={hall_day(datetime.now(UTC))}")
    table = page.locator("#audit")
    for action, who in (("sign_in_failed", "cai"), ("sign_in", "cai"), ("window_pause", "cai"),
                        ("green_ticket", "boss"), ("reprint", "boss")):
        expect(table.locator(f"tr.audit-{action}").filter(has_text=who).first).to_be_visible()
    expect(table.locator("tr.audit-window_pause").first).to_contain_text("reason=午休")
    expect(table.locator("tr.audit-green_ticket").first).to_contain_text(f"ticket {number}")
    expect(table.locator("tr.audit-reprint").first).to_contain_text("at kiosk K1")
    # A manager reads words, Chinese first; the code stays for machines (class, data-code, title).
    failed = table.locator("tr.audit-sign_in_failed").first
    expect(failed.locator("td.action")).to_have_text("登录失败 Failed sign-in")
    expect(failed.locator("td.action")).to_have_attribute("data-code", "sign_in_failed")
    expect(failed.locator("td.action")).to_have_attribute("title", "sign_in_failed")
    expect(failed.locator("td.outcome")).to_have_text("拒绝 Refused")
    expect(table.locator("tr.audit-window_pause td.action").first).to_have_text("暂停服务 Pause")
    expect(table.locator("tr.audit-window_pause td.outcome").first).to_have_text("成功 OK")
    expect(table.locator("tr.audit-sign_in_v9 td.action")).to_have_text("sign_in_v9")  # its code, no error
    expect(page.locator("select[name=action] option[value=window_pause]")).to_have_text("暂停服务 Pause")
    expect(page.locator("select[name=action] option[value=sign_in_v9]")).to_have_text("sign_in_v9")
    assert "sign_in_failed" not in table.inner_text() and "window_pause" not in table.inner_text()
    expect(table.locator("tr.audit-case_verify").first).to_contain_text("核实：窗口解释不清")
    # Filters: one person, one action.
    page.fill("input[name=actor]", "cai")
    page.select_option("select[name=action]", "window_pause")
    page.click("#filter")
    expect(table.locator("tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.click("#csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["at", "actor", "address", "action", "target", "outcome", "detail"]
    # the CSV is data: codes, not the page's words
    assert [r[1:6] for r in rows[1:]] == [["cai", "127.0.0.1", "window_pause", "window 5", "ok"]]
