"""The managers' bookings page in headless Chromium: a day's bookings with who checked in and who did
not come, create, move and cancel."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Browser, expect

from hall_devices.coordinator.calendar import local
from tests.coordinator.harness import Hall
from tests.web.test_web import Web, hall, new_page, sign_in, web

__all__ = ["hall", "web"]  # fixtures; `browser` comes from tests/web/conftest.py


def test_bookings_by_slot_with_check_ins_no_shows_and_changes(browser: Browser, web: Web, hall: Hall) -> None:
    anonymous = new_page(browser)
    anonymous.goto(f"{web.url}/bookings")
    assert anonymous.url.startswith(f"{web.url}/login")
    now = hall.clock()
    for code, offset, minutes in (("PG1", 10, 30), ("PG2", 60, 30), ("PG3", 20, 30)):
        assert hall.staff("book_appointment", appointment_code=code, service_id="passport",
                          slot_start=now + timedelta(minutes=offset),
                          slot_end=now + timedelta(minutes=offset + minutes)).ok
    assert hall.take(None, "appointment", code="PG3").ok
    hall.clock.advance(minutes=70)  # PG1's slot and its 15 minutes' tolerance are over: 未到
    day = local(hall.layout.hall, now + timedelta(minutes=10)).date().isoformat()
    page = sign_in(browser, web, "mgr", "manager-pass")
    page.goto(f"{web.url}/bookings?day={day}")
    counts = page.locator("#counts")
    expect(counts).to_contain_text("已签到 1")
    expect(counts).to_contain_text("未到 1")
    expect(page.locator("tr[data-code=PG1] .state")).to_have_text("未到")
    expect(page.locator("tr[data-code=PG3] .state")).to_have_text("已签到")
    page.locator("tr[data-code=PG2] button", has_text="取消").click()
    expect(page.locator("tr[data-code=PG2] .state")).to_have_text("已取消")
    page.goto(f"{web.url}/stats?from={day}&to={day}")  # appointment no-shows in the statistics
    expect(page.locator("#appointments")).to_contain_text("已签到 1，未到 1，已取消 1")
    expect(page.locator("#appointments")).to_contain_text("爽约率 no-show 50.0%")

    start = local(hall.layout.hall, hall.clock() + timedelta(minutes=30))
    if (start + timedelta(minutes=40)).date() != start.date():  # keep the slot inside one day
        start = start.replace(hour=9, minute=0) + timedelta(days=1)
    day = start.date().isoformat()
    page.goto(f"{web.url}/bookings?day={day}")
    form = page.locator("#create")
    form.locator("input[name=code]").fill("PG4")
    form.locator("select[name=service_id]").select_option("passport")
    form.locator("input[name=start]").fill(f"{start:%H:%M}")
    form.locator("input[name=end]").fill(f"{start + timedelta(minutes=20):%H:%M}")
    form.locator("button").click()
    expect(page.locator("#message")).to_have_text("✓")
    row = page.locator("tr[data-code=PG4]")
    expect(row.locator(".state")).to_have_text("已预约")
    later = start + timedelta(minutes=20)
    row.locator("input[name=start]").fill(f"{later:%H:%M}")
    row.locator("input[name=end]").fill(f"{later + timedelta(minutes=20):%H:%M}")
    row.locator("button", has_text="改约").click()
    expect(page.locator("tr[data-code=PG4] td").first).to_have_text(
        f"{later:%H:%M}-{later + timedelta(minutes=20):%H:%M}")
    form = page.locator("#create")
    form.locator("input[name=code]").fill("bad code")
    form.locator("button").click()
    expect(page.locator("#message")).to_contain_text("HH:MM")  # no slot given
    form = page.locator("#create")
    form.locator("input[name=code]").fill("bad code")
    form.locator("input[name=start]").fill(f"{start:%H:%M}")
    form.locator("input[name=end]").fill(f"{start + timedelta(minutes=20):%H:%M}")
    form.locator("button").click()
    expect(page.locator("#message")).to_contain_text("booking_id")

    long_code = "L" * 32  # a longer code in the path is refused, never cut to this booking's
    slot = start.astimezone(hall.clock().tzinfo)
    assert hall.staff("book_appointment", appointment_code=long_code, service_id="passport",
                      slot_start=slot, slot_end=slot + timedelta(minutes=20)).ok
    page.goto(f"{web.url}/bookings?day={day}")
    cancel = page.locator(f"tr[data-code={long_code}] form", has=page.locator("button", has_text="取消"))
    cancel.evaluate("(f, code) => { f.action = f.action.replace(code, code + '-OTHER') }", long_code)
    cancel.locator("button", has_text="取消").click()
    expect(page.locator("#message")).to_contain_text("1-32")
    expect(page.locator(f"tr[data-code={long_code}] .state")).to_have_text("已预约")
