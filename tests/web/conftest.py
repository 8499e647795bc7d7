"""The web tests' shared parts: one headless Chromium (Debian's), and one hall in production mode
(HTTPS, its own broker and coordinator) for the security tests of this package."""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from hall_devices.layout import Layout
from hall_devices.ops.broker import free_port
from hall_devices.web.users import add_user
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, start_hall_broker
from tests.web.test_web import CHROMIUM, Web

# Users of the shared secure web; each test signs in as its own so that none ends another's session.
PASSWORDS = {"mgr": "manager-pass", "clerk3": "clerk-pass", "boss": "boss-pass-2024",
             "ana": "ana-pass-2024", "bo": "bo-pass-2024", "cai": "cai-pass-2024", "dan": "dan-pass-2024",
             "eve": "eve-pass-2024", "gu": "gu-pass-2024", "hu": "hu-pass-2024",
             "ivy": "ivy-pass-2024", "jo": "jo-pass-2024"}
ROLES = {"clerk3": "clerk", "cai": "clerk", "gu": "clerk", "hu": "clerk"}
WINDOWS = {"clerk3": (3,), "cai": (5,), "gu": (1, 2), "hu": (2,)}  # the windows each clerk may open
BACKOFF_S = 5  # the shared web's sign-in backoff: short, so the brute-force test can wait it out


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@dataclass
class SecureHall:
    broker: HallBroker
    hall: Hall
    web: Web
    redirect_port: int

    @property
    def ca(self) -> Path:
        return self.broker.directory / "tls" / "ca.crt"


@pytest.fixture(scope="package")
def secure(tmp_path_factory: pytest.TempPathFactory, layout: Layout) -> Iterator[SecureHall]:
    """A broker, a coordinator and `hall-devices web` in production mode, shared by this package's
    security tests (a short sign-in backoff; a plain-HTTP port that only redirects)."""
    tmp = tmp_path_factory.mktemp("secure-web")
    broker = start_hall_broker(layout, tmp / "broker")
    hall = Hall(broker, layout, tmp / "store.sqlite3", Clock(datetime.now(UTC)))
    for name, password in PASSWORDS.items():
        add_user(tmp / "users.toml", name, "clerk" if name in ROLES else "manager", password,
                 WINDOWS.get(name, ()))
    redirect = free_port()
    web = Web(broker, tmp, HALL_WEB_LOGIN_BACKOFF_S=str(BACKOFF_S),
              HALL_WEB_LOGIN_MAX_BACKOFF_S=str(BACKOFF_S), HALL_WEB_HTTP_REDIRECT_PORT=str(redirect))
    yield SecureHall(broker, hall, web, redirect)
    web.stop()
    hall.stop()
    broker.process.stop()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str


def request(secure: SecureHall, path: str, form: dict[str, str] | None = None,
            headers: dict[str, str] | None = None, cookie: str | None = None) -> Answer:
    """One HTTPS request to the shared web, its certificate checked against the hall CA; redirects
    are returned, not followed."""
    context = ssl.create_default_context(cafile=str(secure.ca))
    connection = http.client.HTTPSConnection("127.0.0.1", secure.web.port, context=context, timeout=30)
    sent = dict(headers or {})
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if cookie:
        sent["Cookie"] = cookie
    try:
        connection.request("POST" if form is not None else "GET", path, body=body, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


def declare_oversize_form(port: int, context: ssl.SSLContext, origin: str, path: str,
                          size: int) -> Answer:
    """POST ``path`` over HTTPS declaring a form of ``size`` bytes, and send none of it: the answer.
    The web answers an oversize declaration from its headers alone, then closes; a client still
    writing the body could meet that close as a reset instead of the answer (seen once in CI)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Origin", origin)
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


def sign_in_cookie(secure: SecureHall, user: str, window: int | None = None) -> str:
    """Sign in over HTTPS; returns the ``Cookie`` header value of the new session."""
    form = {"username": user, "password": PASSWORDS[user], "window": str(window or "")}
    answer = request(secure, "/login", form, {"Origin": secure.web.url})
    assert answer.status == 303, answer.body
    return answer.headers["Set-Cookie"].split(";", 1)[0]
