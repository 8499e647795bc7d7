"""Running a role until SIGINT/SIGTERM, then stopping it cleanly (offline status published)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Protocol


class Stoppable(Protocol):
    def start(self, wait_s: float | None = None) -> None: ...

    def stop(self) -> None: ...


def run_until_signalled(role: Stoppable) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        role.start(None)
        stop.wait()
    finally:
        role.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
