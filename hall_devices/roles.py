"""Running a role until SIGINT/SIGTERM, then stopping it cleanly (offline status published)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType
from typing import Protocol

log = logging.getLogger(__name__)

# A clean stop takes well under a second; one that hangs (a broker or port that went away with
# us) must not keep the process alive. Everything a role holds is durable, so exiting is safe.
STOP_DEADLINE_S = 6.0
SIGNAL_POLL_S = 0.2


class Stoppable(Protocol):
    def start(self, wait_s: float | None = None) -> None: ...

    def stop(self) -> None: ...


def _exit_if_still_stopping(done: threading.Event, deadline_s: float) -> None:
    if not done.wait(deadline_s):
        log.error("stopping took longer than %g s; exiting without waiting further", deadline_s)
        logging.shutdown()
        os._exit(1)


def run_until_signalled(role: Stoppable, stop_deadline_s: float = STOP_DEADLINE_S) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stopped = threading.Event()
    try:
        role.start(None)
        # Timed waits: a signal the kernel hands to another thread (paho's, a worker's) only marks
        # itself pending, and Python runs the handler once the main thread runs again; a blocked
        # wait() would never notice it and the process would outlive its SIGTERM.
        while not stop.wait(SIGNAL_POLL_S):
            pass
    finally:
        threading.Thread(target=_exit_if_still_stopping, args=(stopped, stop_deadline_s),
                         name="stop deadline", daemon=True).start()
        role.stop()
        stopped.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
