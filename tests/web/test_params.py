"""Bad query and form values answer 400 with a message naming the parameter, never 500: against
`hall-devices web` (HTTPS) and headless Chromium."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.web.conftest import SecureHall, request, sign_in_cookie
from tests.web.test_web import CHROMIUM, sign_in

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

BAD_QUERIES = [
    ("/ratings?window=abc", "window must be a whole number, got 'abc'"),
    ("/ratings?level=9", "level must be between 1 and 5, got 9"),
    ("/ratings?from=2026-13-40", "from must be a day YYYY-MM-DD"),
    ("/stats?to=yesterday", "to must be a day YYYY-MM-DD"),
    ("/stats.csv?from=1", "from must be a day YYYY-MM-DD"),
    ("/console?window=abc", "window must be a whole number"),
    ("/console?window=99", "window 99 is not in this hall's layout"),
    ("/audit?from=today", "from must be a day YYYY-MM-DD"),
    ("/audit?actor=" + "x" * 65, "actor is longer than 64 characters"),
]
BAD_FORMS = [
    ("/console/3/transfer", {"target_window": "abc"}, "target_window must be a whole number"),
    ("/console/3/pause", {"reason": "午" * 65}, "reason is longer than 64 characters (65)"),
    ("/console/3/call_back", {"ticket_number": "A" * 17}, "ticket_number is longer than 16"),
    ("/cases/C1/verify", {"note": "n" * 501}, "note is longer than 500 characters"),
    ("/staff/green", {"service_id": ""}, "service_id is empty"),
]


def test_every_bad_parameter_answers_400_with_its_name(secure: SecureHall) -> None:
    cookie = sign_in_cookie(secure, "boss")
    for path, message in BAD_QUERIES:
        answer = request(secure, path, cookie=cookie)
        assert (answer.status, message in answer.body) == (400, True), (path, answer.status, answer.body)
    own = {"Origin": secure.web.url}
    for path, form, message in BAD_FORMS:
        answer = request(secure, path, form, own, cookie)
        assert (answer.status, message in answer.body) == (400, True), (path, answer.status, answer.body)
    # The console's own script asks for JSON: it gets the message as JSON.
    answer = request(secure, "/console/3/transfer", {"target_window": "abc"},
                     {**own, "Accept": "application/json"}, cookie)
    assert answer.status == 400
    assert "target_window must be a whole number" in json.loads(answer.body)["error"]
    # Good values still work.
    assert request(secure, "/ratings?window=3&level=1&from=2026-01-01", cookie=cookie).status == 200


def test_a_bad_parameter_shows_its_message_in_the_browser(browser: Browser, secure: SecureHall) -> None:
    page = sign_in(browser, secure.web, "boss", "boss-pass-2024")
    answer = page.goto(f"{secure.web.url}/ratings?window=abc")
    assert answer is not None and answer.status == 400
    assert "参数 window 应为整数 / window must be a whole number" in page.inner_text("body")


def test_odd_values_in_any_filter_never_answer_500(secure: SecureHall) -> None:
    cookie = sign_in_cookie(secure, "boss")
    pages = {"/ratings": ("from", "to", "window", "level"), "/stats": ("from", "to"),
             "/stats.csv": ("from", "to"), "/console": ("window",),
             "/audit": ("from", "to", "actor", "action"), "/audit.csv": ("from", "to", "actor")}
    odd = ["abc", "-1", "0", "99999999999999999999", "\x00", "2026-02-30", "２０２６-01-01", "1e3", "x" * 300]
    for path, names in pages.items():
        for name in names:
            for value in odd:
                answer = request(secure, f"{path}?{urllib.parse.urlencode({name: value})}", cookie=cookie)
                assert answer.status in (200, 400), (path, name, value, answer.status, answer.body[:200])
