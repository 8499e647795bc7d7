"""Production mode: `hall-devices web` refuses to start without HTTPS or with a demo password; the
demo may serve plain HTTP on 127.0.0.1 only; data files are created 0600."""

from __future__ import annotations

import csv
import http.client
import io
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from hall_devices.layout import Layout
from hall_devices.ops.broker import free_port
from hall_devices.ops.provision import provision
from hall_devices.web.audit import AuditLog, audit_file
from hall_devices.web.users import User, add_user, hash_password, load_users, save_users
from tests.conftest import EXAMPLE
from tests.support import HallBroker
from tests.web.conftest import BACKOFF_S, SecureHall, request, sign_in_cookie
from tests.web.test_web import Web


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, layout: Layout) -> Path:
    return provision(layout, tmp_path_factory.mktemp("provisioned"), demo=True).directory / "tls"


def web(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Start `hall-devices web` with only a broker that is not there: it must refuse before that."""
    full = {**os.environ, "HALL_LAYOUT": str(EXAMPLE), "HALL_WEB_USERS": str(tmp / "users.toml"),
            "HALL_DATA_DIR": str(tmp / "data"), "HALL_BROKER_PORT": str(free_port()),
            "HALL_WEB_PORT": str(free_port()), **env}
    return subprocess.run([sys.executable, "-m", "hall_devices.cli", "web"], env=full, capture_output=True,
                          text=True, timeout=60, check=False)


def test_production_refuses_a_demo_password_and_a_missing_certificate(tmp_path: Path, tls: Path) -> None:
    add_user(tmp_path / "users.toml", "manager", "manager", "manager-demo")
    add_user(tmp_path / "users.toml", "boss", "manager", "Real-Pass-2031")
    # A demo user from a users file written before demo users were marked as such.
    old = load_users(tmp_path / "users.toml")
    old["clerk"] = User("clerk", "clerk", hash_password("clerk-demo"))
    save_users(tmp_path / "users.toml", old)
    certificate = {"HALL_WEB_TLS_CERT_FILE": str(tls / "web.crt"),
                   "HALL_WEB_TLS_KEY_FILE": str(tls / "web.key")}
    done = web(tmp_path, **certificate)
    assert done.returncode == 1
    assert "web cannot start: user(s) clerk, manager have a demo password" in done.stderr
    assert "boss" not in done.stderr
    done = web(tmp_path)
    assert done.returncode == 1
    assert "web cannot start: no TLS certificate: set HALL_WEB_TLS_CERT_FILE" in done.stderr
    loose = tmp_path / "loose.key"
    shutil.copy(tls / "web.key", loose)
    loose.chmod(0o644)
    done = web(tmp_path, HALL_WEB_TLS_CERT_FILE=str(tmp_path / "gone.crt"), HALL_WEB_TLS_KEY_FILE=str(loose))
    assert done.returncode == 1
    assert f"TLS file not found: {tmp_path / 'gone.crt'}" in done.stderr  # every problem at once
    assert f"{loose} can be read by other accounts: chmod 600" in done.stderr


def test_the_demo_serves_plain_http_only_on_this_pc(tmp_path: Path) -> None:
    add_user(tmp_path / "users.toml", "manager", "manager", "manager-demo")
    done = web(tmp_path, HALL_WEB_DEMO="1", HALL_WEB_HOST="0.0.0.0")
    assert done.returncode == 1
    assert "the demo serves plain HTTP only on 127.0.0.1, not on 0.0.0.0" in done.stderr


def test_keys_users_and_stores_are_created_0600(tmp_path: Path, tls: Path) -> None:
    from hall_devices.coordinator.store import EventStore
    from hall_devices.web.audit import AuditLog

    add_user(tmp_path / "users.toml", "boss", "manager", "Real-Pass-2031")
    store = EventStore(tmp_path / "store.sqlite3")
    store.close()
    AuditLog(tmp_path / "audit.sqlite3")
    for path in (tls / "web.key", tls / "ca.key", tls.parent / "credentials.toml", tls.parent / "passwd",
                 tmp_path / "users.toml", tmp_path / "store.sqlite3", tmp_path / "audit.sqlite3"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_ledgers_outboxes_and_the_broker_log_are_created_0600(tmp_path: Path,
                                                               hall_broker: HallBroker) -> None:
    """Issue 15 review, defect 5: the agents' state files and Mosquitto's log."""
    from hall_devices.pads.outbox import RatingOutbox
    from hall_devices.printer.ledger import JobLedger

    JobLedger(tmp_path / "printer-P1.sqlite3").close()
    RatingOutbox(tmp_path / "pads-KB1.sqlite3").close()
    made = (tmp_path / "printer-P1.sqlite3", tmp_path / "pads-KB1.sqlite3", hall_broker.process.log_file)
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_x_forwarded_for_is_believed_only_from_a_named_proxy(tmp_path: Path, secure: SecureHall) -> None:
    """Issue 15 review, defect 4: a forged X-Forwarded-For changes neither the sign-in throttle's
    address nor the audit trail's; with ``web_trusted_proxies`` naming the proxy, it names the
    browser. A value that is not an address (``*``: anyone) is refused at start."""
    own = {"Origin": secure.web.url}
    statuses = [request(secure, "/login", {"username": f"xff-{i}", "password": "x"},
                        {**own, "X-Forwarded-For": f"10.9.9.{i}"}).status for i in range(FREE + 1)]
    # Every name is new and every forged address too: only the real address can have throttled.
    assert statuses[-1] == 429, statuses
    cookie = sign_in_after_backoff(secure, "jo")
    rows = list(csv.reader(io.StringIO(request(secure, "/audit.csv?action=sign_in_failed", cookie=cookie)
                                       .body.removeprefix("\ufeff"))))
    addresses = {row[2] for row in rows[1:] if row[1].startswith("xff-")}
    assert addresses == {"127.0.0.1"}
    # Behind a proxy named in the settings, the header names the browser.
    trusted = Web(secure.broker, tmp_path, HALL_WEB_TRUSTED_PROXIES="127.0.0.1, ::1")
    try:
        answer = http_request(trusted, "/login", {"username": "via-proxy", "password": "x"},
                              {"Origin": trusted.url, "X-Forwarded-For": "10.20.30.40"}, secure.ca)
        assert answer == 401
        audit = AuditLog(audit_file(trusted.data)).entries(actor="via-proxy")
        assert [e.address for e in audit] == ["10.20.30.40"]
    finally:
        trusted.stop()
    done = web(tmp_path / "star", HALL_WEB_TRUSTED_PROXIES="*")
    assert done.returncode == 1
    assert "web_trusted_proxies: '*' is not an IP address or network" in done.stderr


FREE = 5  # the web's default number of failed sign-ins before the first wait


def sign_in_after_backoff(secure: SecureHall, user: str) -> str:
    """Sign in once this address may try again (a right password forgets its failures)."""
    time.sleep(BACKOFF_S + 0.2)
    return sign_in_cookie(secure, user)


def http_request(web: Web, path: str, form: dict[str, str], headers: dict[str, str], ca: Path) -> int:
    connection = http.client.HTTPSConnection("127.0.0.1", web.port, timeout=30,
                                             context=ssl.create_default_context(cafile=str(ca)))
    try:
        connection.request("POST", path, body=urllib.parse.urlencode(form),
                           headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
        return connection.getresponse().status
    finally:
        connection.close()
