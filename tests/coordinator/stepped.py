"""The real coordinator process with its wall clock set by the test: a PC whose clock is wrong.

``python -m tests.coordinator.stepped 2026-11-24T00:00:20+08:00``: the clock starts there and runs
with the monotonic clock. Settings come from the environment as for ``hall-devices coordinator``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta

from hall_devices.coordinator.service import CoordinatorService
from hall_devices.layout import load_layout
from hall_devices.roles import run_until_signalled
from hall_devices.settings import load_settings


def main(start: str) -> int:
    begun, origin = time.monotonic(), datetime.fromisoformat(start)

    def clock() -> datetime:
        return origin + timedelta(seconds=time.monotonic() - begun)

    settings = load_settings()
    service = CoordinatorService(settings, load_layout(settings.layout), settings.sqlite_path(),
                                 clock=clock, monotonic=time.monotonic)
    return run_until_signalled(service)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
