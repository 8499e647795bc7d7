"""Sign-in that resists guessing, and sessions that end: against `hall-devices web` in production
mode (HTTPS) and headless Chromium."""

from __future__ import annotations

import http.client
import ssl
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from hall_devices.web.users import User, hash_password, load_users, save_users
from tests.web.conftest import BACKOFF_S, PASSWORDS, SecureHall, request, sign_in_cookie
from tests.web.test_web import CHROMIUM, new_page, sign_in

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
FREE = 5  # the web's default number of failed sign-ins before the first wait


def test_brute_force_is_throttled_then_the_real_user_signs_in_after_the_backoff(
        browser: Browser, secure: SecureHall) -> None:
    own = {"Origin": secure.web.url}

    def guess(i: int) -> int:
        return request(secure, "/login", {"username": "ana", "password": f"guess-{i}"}, own).status

    with ThreadPoolExecutor(12) as pool:  # all at once: each attempt counts as it starts
        guesses = [pool.submit(guess, i) for i in range(12)]
        # Now even the right password waits, with a message in Chinese and English. Asked as soon
        # as the first refusal is back: the backoff runs from the attempt that began it, and the
        # guesses' password checks can outlast it on a loaded machine.
        assert next((g for g in as_completed(guesses) if g.result() == 429), None), "no guess throttled"
        locked = request(secure, "/login", {"username": "ana", "password": PASSWORDS["ana"]}, own)
        statuses = sorted(g.result() for g in guesses)
    assert statuses == [401] * FREE + [429] * (12 - FREE)
    assert locked.status == 429 and 1 <= int(locked.headers["Retry-After"]) <= BACKOFF_S
    assert "尝试次数过多" in locked.body and "too many attempts: try again in" in locked.body
    time.sleep(int(locked.headers["Retry-After"]) + 0.2)
    page = sign_in(browser, secure.web, "ana", PASSWORDS["ana"])
    assert page.url == f"{secure.web.url}/"
    expect(page.locator("#logout")).to_contain_text("ana")


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(secure: SecureHall) -> None:
    own = {"Origin": secure.web.url}
    known = request(secure, "/login", {"username": "dan", "password": "not-his"}, own)
    unknown = request(secure, "/login", {"username": "nobody-here", "password": "not-his"}, own)
    assert known.status == unknown.status == 401
    assert unknown.body == known.body  # the page does not repeat the name either
    assert sign_in_cookie(secure, "dan")  # and the real one still signs in (resets the count)


def live_feed(secure: SecureHall, cookie: str
              ) -> tuple[http.client.HTTPSConnection, http.client.HTTPResponse]:
    """``/events`` opened with ``cookie``, its first line read."""
    context = ssl.create_default_context(cafile=str(secure.ca))
    connection = http.client.HTTPSConnection("127.0.0.1", secure.web.port, context=context, timeout=30)
    connection.request("GET", "/events", headers={"Cookie": cookie})
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"retry:")
    return connection, response


def test_logout_ends_the_session_on_the_server(browser: Browser, secure: SecureHall) -> None:
    page = sign_in(browser, secure.web, "dan", PASSWORDS["dan"])
    kept = page.context.cookies()
    cookie = f"{kept[0]['name']}={kept[0]['value']}"
    assert request(secure, "/state.json", cookie=cookie).status == 200
    connection, feed = live_feed(secure, cookie)  # the dashboard's live feed, open as sign-out happens
    page.click("#logout")
    expect(page.locator("#notice")).to_contain_text("signed out")
    assert feed.read().endswith(b"\n\n")  # the feed ends (it would run for ever otherwise)
    connection.close()
    # The cookie the browser had is refused, by the server, whoever presents it.
    assert request(secure, "/state.json", cookie=cookie).status == 401
    replay = new_page(browser)
    replay.context.add_cookies(kept)  # type: ignore[arg-type]
    replay.goto(f"{secure.web.url}/devices")
    assert replay.url.startswith(f"{secure.web.url}/login")
    expect(replay.locator("#notice")).to_contain_text("session has ended")


def test_a_password_change_ends_every_session_of_that_user(browser: Browser, secure: SecureHall) -> None:
    elsewhere = sign_in_cookie(secure, "eve")  # the same user on another PC
    other_user = sign_in_cookie(secure, "dan")
    page = sign_in(browser, secure.web, "eve", PASSWORDS["eve"])
    mine = page.context.cookies()[0]
    page.goto(f"{secure.web.url}/account")
    for current, new, again, problem in (
            ("wrong-one-1", "Winter-Hall-2031", "Winter-Hall-2031", "current password is wrong"),
            (PASSWORDS["eve"], "short1", "short1", "at least 10 characters"),
            (PASSWORDS["eve"], "eve-new-pass-7", "eve-new-pass-7", "too easy to guess"),
            (PASSWORDS["eve"], "Winter-Hall-2031", "Winter-Hall-2032", "the new passwords differ")):
        page.fill("#current", current)
        page.fill("#new", new)
        page.fill("#confirm", again)
        page.click("#change")
        expect(page.locator("#error")).to_contain_text(problem)
    assert request(secure, "/state.json", cookie=elsewhere).status == 200  # nothing changed yet
    page.fill("#current", PASSWORDS["eve"])
    page.fill("#new", "Winter-Hall-2031")
    page.fill("#confirm", "Winter-Hall-2031")
    page.click("#change")
    expect(page.locator("#notice")).to_contain_text("password changed")
    for cookie in (elsewhere, f"{mine['name']}={mine['value']}"):
        assert request(secure, "/state.json", cookie=cookie).status == 401
    assert request(secure, "/state.json", cookie=other_user).status == 200  # only eve's sessions
    own = {"Origin": secure.web.url}
    assert request(secure, "/login", {"username": "eve", "password": PASSWORDS["eve"]}, own).status == 401
    assert request(secure, "/login", {"username": "eve", "password": "Winter-Hall-2031"}, own).status == 303


def test_a_demo_password_never_signs_in_outside_the_demo(secure: SecureHall) -> None:
    # A user whose demo password was set before such users were marked (the web starts with it).
    users = load_users(secure.web.users)
    users["old"] = User("old", "manager", hash_password("manager-demo"))
    save_users(secure.web.users, users)
    answer = request(secure, "/login", {"username": "old", "password": "manager-demo"},
                     {"Origin": secure.web.url})
    assert answer.status == 403 and "a demo password is not accepted here" in answer.body
    assert "Set-Cookie" not in answer.headers


def test_a_clerk_opens_only_its_own_windows_and_one_clerk_holds_a_window(
        browser: Browser, secure: SecureHall) -> None:
    """Issue 15 review, defect 1: the windows of the account, one session per window."""
    own = {"Origin": secure.web.url}

    def sign_in_to(user: str, window: int) -> tuple[int, str, str]:
        answer = request(secure, "/login", {"username": user, "password": PASSWORDS[user],
                                            "window": str(window)}, own)
        return answer.status, answer.headers.get("Set-Cookie", "").split(";", 1)[0], answer.body

    # gu may open windows 1 and 2, not 3: refused in Chinese and English, and audited.
    status, _, body = sign_in_to("gu", 3)
    assert status == 403
    assert "您的账号不能登录 3 号窗口" in body and "your account may not open window 3 (yours: 1, 2)" in body
    # In the browser: gu at window 2 gets its console.
    gu = sign_in(browser, secure.web, "gu", PASSWORDS["gu"], window=2)
    assert gu.url == f"{secure.web.url}/console"
    expect(gu.locator("h1")).to_contain_text("2号窗口")
    # hu, whose window 2 also is, is refused while gu holds it; gu's session is untouched.
    refused = sign_in(browser, secure.web, "hu", PASSWORDS["hu"], window=2)
    expect(refused.locator("#error")).to_contain_text("2 号窗口已由 gu 登录")
    expect(refused.locator("#error")).to_contain_text("window 2 is in use by gu: they must sign out first")
    assert gu.request.get(f"{secure.web.url}/console/2/queue.json").status == 200
    # gu signs out: window 2 is free for hu.
    gu.click("#logout")
    gu.wait_for_load_state()
    status, hu, _ = sign_in_to("hu", 2)
    assert status == 303
    assert request(secure, "/console/2/queue.json", cookie=hu).status == 200
    # A clerk signing in again to its own window (another PC) ends its own earlier session there.
    status, first, _ = sign_in_to("gu", 1)
    status_again, second, _ = sign_in_to("gu", 1)
    assert (status, status_again) == (303, 303)
    assert request(secure, "/console/1/queue.json", cookie=first).status == 401
    assert request(secure, "/console/1/queue.json", cookie=second).status == 200
    # ... and a manager (no window) is not confined.
    boss = sign_in_cookie(secure, "boss")
    assert request(secure, "/console/2/queue.json", cookie=boss).status == 200
    # The refusals are in the audit trail with their reasons.
    audit = request(secure, "/audit.csv?actor=hu", cookie=boss).body
    assert "sign_in_failed,window 2,refused,window held by gu" in audit
    audit = request(secure, "/audit.csv?actor=gu", cookie=boss).body
    assert "sign_in_failed,window 3,refused,not this clerk's window" in audit


def test_sign_in_goes_back_only_to_a_page_of_this_server(browser: Browser, secure: SecureHall) -> None:
    """``next`` after sign-in: a page here, never another site, as Chromium itself resolves the
    answer's Location (it reads ``/\\evil.example`` as ``//evil.example`` and drops tabs)."""
    own = {"Origin": secure.web.url}
    page = new_page(browser)
    page.goto(f"{secure.web.url}/login")
    for hostile in ("//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
                    "https://evil.example", "\\\\evil.example", "/%2F/evil.example"):
        answer = request(secure, "/login", {"username": "ivy", "password": PASSWORDS["ivy"], "next": hostile},
                         own)
        assert answer.status == 303
        went = page.evaluate("n => new URL(n, location.href).origin", answer.headers["location"])
        assert went == secure.web.url, (hostile, answer.headers["location"])
    kept = request(secure, "/login", {"username": "ivy", "password": PASSWORDS["ivy"],
                                      "next": "/cases?state=&window=3"}, own)
    assert kept.headers["location"] == "/cases?state=&window=3"  # a page here is kept, query and all
