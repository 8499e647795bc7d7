"""The real coordinator process with its wall clock set by the test: a PC whose clock is wrong.

``python -m tests.coordinator.stepped 2026-11-24T00:00:20+08:00``: the clock starts there and runs
with the boottime clock, read with this boot's id. Settings come from the environment as for
``hall-devices coordinator``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from hall_devices.coordinator.clock import boot_id, boottime
from hall_devices.coordinator.service import CoordinatorService
from hall_devices.layout import load_layout
from hall_devices.roles import run_until_signalled
from hall_devices.settings import load_settings


def main(start: str) -> int:
    begun, origin = boottime(), datetime.fromisoformat(start)

    def clock() -> datetime:
        return origin + timedelta(seconds=boottime() - begun)

    settings = load_settings()
    # This boot's id and boottime, as in a hall: a restart is related to the store's last reading.
    service = CoordinatorService(settings, load_layout(settings.layout), settings.sqlite_path(),
                                 clock=clock, monotonic=boottime, boot=boot_id())
    return run_until_signalled(service)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
