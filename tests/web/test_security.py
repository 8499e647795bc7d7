"""HTTPS from the hall CA, the cookie's flags, the plain-HTTP redirect, the security headers and the
Origin check, against `hall-devices web` in production mode and headless Chromium."""

from __future__ import annotations

import http.client
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from playwright.sync_api import Browser, expect

from hall_devices.ops.broker import free_port
from hall_devices.web.security import FORM_LIMIT
from tests.web.conftest import SecureHall, declare_oversize_form, request, sign_in_cookie
from tests.web.test_web import CHROMIUM, sign_in

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def test_https_with_the_hall_ca_secure_cookie_and_plain_http_only_redirects(
        browser: Browser, secure: SecureHall) -> None:
    # The certificate chain and the name 127.0.0.1 check out against the hall's own ca.crt.
    context = ssl.create_default_context(cafile=str(secure.ca))
    with context.wrap_socket(socket.create_connection(("127.0.0.1", secure.web.port)),
                             server_hostname="127.0.0.1") as tls:
        cert = tls.getpeercert()
    assert cert is not None, "no peer certificate"
    # typeshed types every field alike; "issuer" is a tuple of RDNs, each of (name, value) pairs.
    issuer = dict(x[0] for x in cast(tuple[tuple[tuple[str, str], ...], ...], cert["issuer"]))
    assert issuer["commonName"] == "hall_devices hall CA"
    page = sign_in(browser, secure.web, "boss", "boss-pass-2024")
    assert page.url == f"{secure.web.url}/"
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "__Host-hall_session"
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Plain HTTP: the redirect port sends every path to HTTPS; nothing is served over it.
    plain = http.client.HTTPConnection("127.0.0.1", secure.redirect_port, timeout=10)
    plain.request("GET", "/devices?x=1")
    moved = plain.getresponse()
    assert moved.status == 308
    assert moved.headers["Location"] == f"https://127.0.0.1:{secure.web.port}/devices"
    plain.close()


@pytest.mark.parametrize("path", ["/login", "/", "/devices", "/audit", "/t/no-such-token",
                                  "/static/app.js", "/nowhere"])
def test_security_headers_on_every_page(secure: SecureHall, path: str) -> None:
    cookie = sign_in_cookie(secure, "bo")
    answer = request(secure, path, cookie=cookie)
    assert answer.status in (200, 404), (path, answer.status)
    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self' 'nonce-" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


class _Attacker(http.server.BaseHTTPRequestHandler):
    """A page on another port of the same host that posts to the hall's console when opened."""

    target = ""

    def do_GET(self) -> None:
        page = (f'<form id="f" method="post" action="{self.target}"><input name="reason" value="gone">'
                '</form><script>document.getElementById("f").submit()</script>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def attacker(secure: SecureHall) -> Iterator[str]:
    """HTTPS on another port of 127.0.0.1 with a certificate just as good: same site, other origin."""
    _Attacker.target = f"{secure.web.url}/console/3/pause"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Attacker)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_dir = secure.broker.directory / "tls"
    tls.load_cert_chain(tls_dir / "web.crt", tls_dir / "web.key")
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_on_another_port_cannot_post_with_the_clerks_session(
        browser: Browser, secure: SecureHall, attacker: str) -> None:
    page = sign_in(browser, secure.web, "clerk3", "clerk-pass", window=3)  # on duty in one step
    expect(page.locator("#status")).to_have_text("空闲", timeout=5000)
    hostile = page.context.new_page()  # same browser, same cookies: the clerk opened a link
    with hostile.expect_navigation(url=f"{secure.web.url}/console/3/pause") as posted:
        hostile.goto(attacker)
    answer = posted.value
    assert answer is not None and answer.status == 403
    assert f"it came from {attacker.rstrip('/')}" in hostile.content()
    assert secure.hall.window(3, "resume").error is not None  # not paused, so nothing to resume
    # The same form from the hall's own page does pause: only the origin made the difference.
    page.click("#do-pause")
    expect(page.locator("#status")).to_have_text("暂停服务", timeout=5000)
    assert secure.hall.window(3, "resume").ok
    page.click("#do-logout")


def test_a_post_without_origin_or_from_null_is_refused(secure: SecureHall) -> None:
    cookie = sign_in_cookie(secure, "bo")
    for headers in ({}, {"Origin": "null"}, {"Origin": "https://127.0.0.1:1"},
                    {"Referer": "https://evil.example/x"}):
        answer = request(secure, "/staff/green", {"service_id": "passport"}, headers, cookie)
        assert answer.status == 403 and "request refused" in answer.body, headers
    page_post = request(secure, "/logout", {}, {"Referer": f"{secure.web.url}/devices"}, cookie)
    assert page_post.status == 303  # a Referer from the hall's own page will do


def test_a_form_larger_than_the_limit_is_refused_before_the_handler(secure: SecureHall) -> None:
    # Starlette reads a urlencoded form whole into memory: an unsigned-in client could send the
    # sign-in page a gigabyte. Refused from Content-Length, and while streaming without one.
    context = ssl.create_default_context(cafile=str(secure.ca))
    declared = declare_oversize_form(secure.web.port, context, secure.web.url, "/login", FORM_LIMIT + 1)
    assert declared.status == 413 and f"larger than {FORM_LIMIT} bytes" in declared.body
    assert "提交内容过大" in declared.body
    assert declared.headers["X-Frame-Options"] == "DENY"  # still one of the web's own answers
    chunked = http.client.HTTPSConnection("127.0.0.1", secure.web.port, context=context, timeout=30)
    try:
        chunked.putrequest("POST", "/login")
        chunked.putheader("Origin", secure.web.url)
        chunked.putheader("Content-Type", "application/x-www-form-urlencoded")
        chunked.putheader("Transfer-Encoding", "chunked")
        chunked.endheaders()
        piece = b"password=" + b"y" * 16_000
        # Past the limit with the last piece, no Content-Length, and no more after it: the web has
        # read every byte sent when it answers, so its close cannot reset the answer away.
        for _ in range(FORM_LIMIT // len(piece) + 1):
            chunked.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        answer = chunked.getresponse()
        assert answer.status == 413 and "提交内容过大" in answer.read().decode()
    finally:
        chunked.close()
    # A form within the limit still works, read whole by the handler after the Guard read it.
    assert sign_in_cookie(secure, "bo").startswith("__Host-hall_session=")
