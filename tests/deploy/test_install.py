"""`pip install .` works offline: the wheel from the wheelhouse, non-editable, in a fresh venv, then
`layout check`, `broker provision` and `doctor` from it, run outside the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from hall_devices.ops.broker import BrokerProcess, free_port
from tests.conftest import EXAMPLE
from tests.deploy.conftest import Built, offline

# The first test of the session builds the package (a minute or two on a busy machine).
pytestmark = pytest.mark.timeout(900)



def test_the_wheel_installs_offline_and_runs_outside_the_source_tree(built: Built, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "HALL_", "VIRTUAL_ENV"))}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install = subprocess.run(offline([str(venv / "bin" / "pip"), "install", "-q", "--no-index",
                                      "--find-links", str(built.wheelhouse), "hall_devices"]),
                             env=env, capture_output=True, text=True, timeout=600, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    shown = subprocess.run([str(venv / "bin" / "pip"), "show", "-f", "hall_devices"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "Editable project location" not in shown and "broker_config/mosquitto.conf" in shown
    work = tmp_path / "elsewhere"  # not the checkout: nothing may come from the source tree
    work.mkdir()
    shutil.copy(EXAMPLE, work / "hall.toml")
    command = str(venv / "bin" / "hall-devices")

    def run(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([command, *args], cwd=work, env=env | (extra or {}), capture_output=True,
                              text=True, timeout=120, check=False)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == "hall-devices 0.1.0"
    checked = run("layout", "check", "hall.toml")
    assert checked.returncode == 0 and checked.stdout.startswith("OK: hall.toml")
    port = free_port()
    provisioned = run("broker", "provision", "hall.toml", "--out", "broker", "--port", str(port),
                      "--tls-port", str(free_port()), "--tls-bind", "127.0.0.1", "--tls-host", "localhost")
    assert provisioned.returncode == 0, provisioned.stderr
    assert (work / "broker" / "mosquitto.conf").is_file() and (work / "broker" / "tls" / "ca.crt").is_file()
    password = tomllib.loads((work / "broker" / "credentials.toml").read_text())["coordinator"]
    broker = BrokerProcess(work / "broker" / "mosquitto.conf", port)
    broker.start()
    try:
        doctor = run("doctor", "--layout", "hall.toml", "--device", "P1", "--broker-dir", "broker",
                     extra={"HALL_BROKER_PORT": str(port), "HALL_BROKER_USERNAME": "coordinator",
                            "HALL_BROKER_PASSWORD": password, "HALL_DATA_DIR": str(work / "data"),
                            "HALL_CLOCK_STATUS_COMMAND": "/bin/echo NTPSynchronized=yes"})
    finally:
        broker.stop()
    assert "[ OK ] broker/ok" in doctor.stdout, doctor.stdout + doctor.stderr
    assert "[FAIL] device/P1" in doctor.stdout  # this machine has no printer at /dev/hall/printer-k1
    assert "[ OK ] clock" in doctor.stdout and doctor.returncode == 1
