"""The Debian package: lintian finds no error, it unpacks into a root whose hall-devices runs, its
dependencies name the X libraries, and systemd-analyze verify passes on every unit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.deploy.conftest import Built

# The first test of the session builds the package (a minute or two on a busy machine).
pytestmark = pytest.mark.timeout(900)
SYSTEM_UNITS = ["hall-broker.service", "hall-coordinator.service", "hall-web.service", "hall-backup.service",
                "hall-backup.timer", "hall-printer@P1.service", "hall-pads@KB1.service",
                "hall-leds@L1.service", "hall-announcer@VOICE1.service"]
WRAPPER = ROOT / "deploy" / "debian" / "hall-devices"
USER_UNITS = ["hall-kiosk@K1.service", "hall-hall-screen@HS-TV.service", "hall-session.target"]


@pytest.fixture(scope="module")
def root(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package unpacked, with what its dependencies would put there: python3 (a link to this
    machine's), and stand-ins for mosquitto and kill, which the units name."""
    unpacked = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(built.deb), str(unpacked)], check=True)
    (unpacked / "usr" / "bin" / "python3").symlink_to("/usr/bin/python3")
    for tool in ("usr/sbin/mosquitto", "bin/kill"):
        path = unpacked / tool
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    return unpacked


def test_lintian_finds_no_error(built: Built) -> None:
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed (apt-get install lintian; ./hall test installs it)")
    done = subprocess.run(["lintian", "--tag-display-limit", "0", str(built.deb)], capture_output=True,
                          text=True, timeout=900, check=False)
    errors = [line for line in done.stdout.splitlines() if line.startswith("E:")]
    assert errors == [] and done.returncode == 0, done.stdout[-3000:]


def test_the_unpacked_command_runs(root: Path, built: Built, tmp_path: Path) -> None:
    venv = root / "usr" / "lib" / "hall-devices" / "venv"
    # The venv's python resolves to this machine's; its programs are run by it (their #! names
    # the installed path, /usr/lib/hall-devices/venv/bin/python3).
    command = [str(venv / "bin" / "python3"), str(venv / "bin" / "hall-devices")]
    wrapper = root / "usr" / "bin" / "hall-devices"  # loads /etc/hall/common.env, then runs the venv's
    assert wrapper.read_text() == WRAPPER.read_text() and os.access(wrapper, os.X_OK)
    assert (venv / "bin" / "hall-devices").is_file()
    version = subprocess.run([*command, "--version"], cwd=tmp_path, capture_output=True, text=True,
                             check=False)
    assert version.returncode == 0 and version.stdout.startswith("hall-devices 0.1.0"), version.stderr
    example = root / "usr" / "share" / "hall-devices" / "examples" / "hall.toml"
    checked = subprocess.run([*command, "layout", "check", str(example)], cwd=tmp_path, capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0 and checked.stdout.startswith("OK:"), checked.stderr
    gui = subprocess.run([str(venv / "bin" / "python3"), "-c",
                          "from PyQt6.QtWidgets import QApplication; app = QApplication([]); "
                          "import hall_devices.kiosk.app, hall_devices.tv.hall_window; print('qt')"],
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True, text=True,
                         check=False)
    assert gui.stdout.strip() == "qt", gui.stderr  # the pruned Qt still has what the kiosk needs
    depends = subprocess.run(["dpkg-deb", "-f", str(built.deb), "Depends"], capture_output=True, text=True,
                             check=True).stdout
    for package in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-cursor0", "python3.11", "adduser"):
        assert package in depends


def test_the_installed_command_loads_the_halls_settings(tmp_path: Path) -> None:
    """/usr/bin/hall-devices (deploy/debian/hall-devices) with its two paths pointed here: common.env
    fills what is unset, a variable already set wins, arguments pass through whole."""
    common = tmp_path / "common.env"
    common.write_text((ROOT / "deploy" / "debian" / "common.env").read_text()
                      + "NOT_OURS=1\nHALL_BAD-NAME=1\n# HALL_COMMENTED=1\nHALL_LAST=no newline")
    program = tmp_path / "program"
    program.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                       "print(json.dumps([sys.argv[1:], {k: v for k, v in os.environ.items()}]))\n")
    program.chmod(0o755)
    wrapper = tmp_path / "hall-devices"
    wrapper.write_text(WRAPPER.read_text().replace("/etc/hall/common.env", str(common))
                       .replace("/usr/lib/hall-devices/venv/bin/hall-devices", str(program)))
    wrapper.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "HALL_WEB_PORT": "9090"}
    done = subprocess.run([str(wrapper), "web-user", "add", "a b"], env=env, capture_output=True, text=True,
                          check=True)
    argv, seen = json.loads(done.stdout)
    assert argv == ["web-user", "add", "a b"]
    # The web's users and audit trail in its state directory, which hall-web.service makes.
    assert seen["HALL_WEB_USERS"] == "/var/lib/hall/users.toml" and seen["HALL_DATA_DIR"] == "/var/lib/hall"
    assert "StateDirectory=hall" in (ROOT / "deploy" / "systemd" / "hall-web.service").read_text()
    assert seen["HALL_WEB_PORT"] == "9090" and seen["HALL_LAST"] == "no newline"
    assert not {"NOT_OURS", "HALL_COMMENTED"} & seen.keys()
    assert seen["HALL_BROKER_CA_FILE"] == "/etc/hall/ca.crt"


def test_only_the_coordinator_is_ordered_after_the_broker() -> None:
    # docs/deployment.md says so: the agents and the web connect and reconnect by themselves.
    ordered = set()
    for unit in (ROOT / "deploy" / "systemd").glob("*.service"):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith(("After=", "Requires=", "BindsTo=")) and "hall-broker.service" in line:
                ordered.add(unit.name)
    assert ordered == {"hall-coordinator.service"}


def _verify(unit_root: Path, units: list[str]) -> subprocess.CompletedProcess[str]:
    for source in Path("/lib/systemd/system").iterdir():  # the targets and slices units refer to
        target = unit_root / "lib" / "systemd" / "system" / source.name
        if not target.exists() and not source.is_dir():
            shutil.copy(source, target, follow_symlinks=False)
    return subprocess.run(["systemd-analyze", "verify", f"--root={unit_root}", *units], capture_output=True,
                          text=True, timeout=120, check=False)


def test_systemd_analyze_verify_passes_on_every_unit(root: Path, tmp_path: Path) -> None:
    shipped = {p.name for p in (root / "lib" / "systemd" / "system").iterdir()}
    assert {u.split("@")[0] + ("@.service" if "@" in u else "") for u in SYSTEM_UNITS} == shipped
    done = _verify(root, SYSTEM_UNITS)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    # User units: `systemd-analyze --user verify` takes no --root; checked by the system manager's
    # rules (same syntax) in a root of their own, with the package's files.
    user_root = tmp_path / "user-root"
    shutil.copytree(root, user_root, symlinks=True)
    for unit in (root / "usr" / "lib" / "systemd" / "user").iterdir():
        shutil.copy(unit, user_root / "lib" / "systemd" / "system" / unit.name)
    assert {u.split("@")[0] + ("@.service" if "@" in u else "") for u in USER_UNITS} == {
        p.name for p in (root / "usr" / "lib" / "systemd" / "user").iterdir()}
    done = _verify(user_root, USER_UNITS)
    assert done.returncode == 0 and done.stderr == "", done.stderr
