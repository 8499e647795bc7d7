"""Production mode: `hall-devices web` refuses to start without HTTPS or with a demo password; the
demo may serve plain HTTP on 127.0.0.1 only; data files are created 0600."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hall_devices.broker import free_port
from hall_devices.layout import Layout
from hall_devices.provision import provision
from hall_devices.web.users import User, add_user, hash_password, load_users, save_users
from tests.conftest import EXAMPLE


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
