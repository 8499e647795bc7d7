"""Running a role until SIGINT/SIGTERM, then stopping it cleanly (offline status published)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable
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


class StopSignals:
    """Remembers that a stop signal came; the main thread asks with :meth:`wait`.

    The handler only assigns a field. Python runs it between any two bytecodes of the main thread,
    also while that thread holds a lock, so a handler that takes one (``Event.set``) can deadlock
    against the very ``Event.wait`` it should end. Waiting is short sleeps: a signal the kernel
    hands to another thread is only acted on once the main thread runs again.
    """

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.received: int | None = None
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signum

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once a signal has come; False when ``timeout_s`` passed first."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.received is None:
            left = SIGNAL_POLL_S if deadline is None else min(SIGNAL_POLL_S, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _exit_if_still_stopping(done: threading.Event, deadline_s: float) -> None:
    if not done.wait(deadline_s):
        log.error("stopping took longer than %g s; exiting without waiting further", deadline_s)
        logging.shutdown()
        os._exit(1)


def run_until_signalled(role: Stoppable, stop_deadline_s: float = STOP_DEADLINE_S) -> int:
    signals = StopSignals()
    stopped = threading.Event()
    try:
        role.start(None)
        signals.wait()
    finally:
        threading.Thread(target=_exit_if_still_stopping, args=(stopped, stop_deadline_s),
                         name="stop deadline", daemon=True).start()
        role.stop()
        stopped.set()
        signals.restore()
    return 0
