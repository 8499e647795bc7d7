"""`hall-devices up --region 2`: two simulated halls and their region on this machine, end to end."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from hall_devices.ops.broker import free_port

STORED = re.compile(r"(hall\d) 已汇聚 stored (\d+)/(\d+)")


def test_up_region_runs_two_halls_into_the_region() -> None:
    data = Path(tempfile.mkdtemp(prefix="hall-up-region-"))
    data.chmod(0o755)  # PostgreSQL runs as nobody when the tests run as root
    try:
        done = subprocess.run([sys.executable, "-m", "hall_devices.cli", "up", "--region", "2",
                               "--duration", "8", "--data-dir", str(data),
                               "--region-web-port", str(free_port())],
                              capture_output=True, text=True, timeout=150, check=False)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "regional dashboard: https://" in done.stdout
    lines = [line for line in done.stdout.splitlines() if "已汇聚" in line]
    stored = {hall: (int(a), int(b)) for hall, a, b in STORED.findall(lines[-1])}
    assert set(stored) == {"hall1", "hall2"}
    assert all(applied > 0 for applied, _head in stored.values()), lines[-1]


def test_ctrl_c_stops_the_region_demo_in_order() -> None:
    # A terminal's Ctrl-C signals the whole foreground group. The children were in up's group, so
    # each got SIGINT at once, and the console said nothing of stopping (a newcomer also found a
    # KeyboardInterrupt traceback from the dashboard's password-check worker in region-web.log).
    data = Path(tempfile.mkdtemp(prefix="hall-up-region-"))
    data.chmod(0o755)
    try:
        errors = (data / "up-stderr.txt").open("w+", encoding="utf-8")
        up = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "up", "--region", "1",
                               "--data-dir", str(data), "--region-web-port", str(free_port())],
                              stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
        try:
            assert up.stdout is not None
            for line in up.stdout:  # until the region reports a stored event
                found = STORED.search(line)
                if found is not None and int(found.group(2)) > 0:
                    break
            os.killpg(up.pid, signal.SIGINT)
            out, _ = up.communicate(timeout=60)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait()
        errors.seek(0)
        err = errors.read()
        errors.close()
        assert up.returncode == 0, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        assert out.rstrip().endswith("stopping ...\nstopped."), out[-500:]
        logs = {log.name: log.read_text(encoding="utf-8", errors="replace") for log in data.rglob("*.log")}
        assert "region-web.log" in logs, sorted(logs)
        assert not [name for name, text in logs.items() if "Traceback" in text], \
            {name: text[-1500:] for name, text in logs.items() if "Traceback" in text}
    finally:
        shutil.rmtree(data, ignore_errors=True)
