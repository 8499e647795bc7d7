"""`hall-devices up --region 2`: two simulated halls and their region on this machine, end to end."""

from __future__ import annotations

import re
import shutil
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
