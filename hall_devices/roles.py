"""Running a role until SIGINT/SIGTERM, then stopping it cleanly (offline status published): an
agent (:func:`run_until_signalled`) or a Qt window (:func:`run_window`). Which roles there are and
how each is built: :mod:`hall_devices.registry`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PyQt6.QtCore import QCoreApplication, QTimer
    from PyQt6.QtWidgets import QApplication, QWidget

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


# One bootstrap for every Qt role (kiosk, TV hall screen): the signals first, then Qt.


@dataclass(frozen=True)
class QtView:
    """A Qt role's window and what runs beside it: ``start`` once the window is built (the bus,
    a scanner), ``stop`` after Qt's loop ended; ``windowed_size`` (pixels) is its size when not
    full screen."""

    window: QWidget
    windowed_size: tuple[int, int]
    start: Callable[[], None]
    stop: Callable[[], None]


def run_window(build: Callable[[QApplication], QtView], windowed: bool, stop: StopSignals) -> int:
    """Run a Qt role until ``stop`` has a signal: the application, the error hook, the window
    ``build`` makes, full screen or (``windowed``) a window; Qt's exit code.

    ``stop`` is made by the caller before anything of Qt loads, so that a stop that comes while Qt
    loads or the window is built is kept.
    """
    from PyQt6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    keep_qt_running()
    view = build(app)
    view.start()
    try:
        pulse = quit_on_stop(app, stop)  # noqa: F841 - kept alive while the loop runs
        if windowed:
            view.window.resize(*view.windowed_size)
            view.window.show()
        else:
            view.window.showFullScreen()
        return app.exec()
    finally:
        view.stop()


def quit_on_stop(app: QCoreApplication, stop: StopSignals) -> QTimer:
    """End Qt's loop once a stop signal has come, checked by a timer inside the loop: a signal that
    came before the loop ran (while the window was built) is not lost, as ``app.quit()`` called
    from a handler then would be (quit does nothing before ``exec``)."""
    from PyQt6.QtCore import QTimer

    pulse = QTimer()
    pulse.timeout.connect(lambda: app.quit() if stop.received is not None else None)
    pulse.start(200)
    return pulse


def keep_qt_running() -> None:
    """PyQt aborts the process on an exception a slot does not catch, unless a hook of ours takes it:
    log it (a screen that stops is worse than one message shown late) and go on."""
    def hook(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        logging.getLogger("hall_devices.gui").error("unhandled error in the GUI thread; carrying on",
                                                    exc_info=(kind, value, trace))

    sys.excepthook = hook
