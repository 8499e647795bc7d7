"""Kiosk benchmark: resident memory after 500 tickets, and tap → ticket shown.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/kiosk.py [--tickets 500]

The kiosk window runs offscreen in this process against the real coordinator (a child process) on a
Mosquitto provisioned on free ports. A tap is a real mouse click on the 取号 button; "shown" is the
result page with the number on screen. Reference in the same run: the kiosk's memory before the
first ticket, and a raw request/reply through the same broker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PyQt6.QtCore import QEvent, Qt
from PyQt6.QtTest import QTest
from PyQt6.QtWidgets import QApplication, QPushButton, QWidget

from benchmarks.support import broker, pct, role
from hall_devices.kiosk.app import KioskWindow
from hall_devices.kiosk.link import KioskLink
from hall_devices.layout import KioskDevice, load_layout

LAYOUT = Path(__file__).resolve().parent.parent / "examples" / "hall.toml"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spin(app: QApplication) -> None:
    """One turn of an event loop, as app.exec() would: posted events and deferred deletes too."""
    app.processEvents()
    app.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


def wait(app: QApplication, condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the kiosk did not get there")
        spin(app)
        time.sleep(0.0005)


def tap(app: QApplication, window: KioskWindow, name: str) -> None:
    spin(app)
    buttons = [b for b in window.findChildren(QPushButton, name) if b.isVisible() and b.isEnabled()]
    # PyQt6's stub leaves @staticmethod off QTest's functions (static at run time).
    click = cast(Callable[[QWidget, Qt.MouseButton], None], QTest.mouseClick)
    click(buttons[0], Qt.MouseButton.LeftButton)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=500)
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    layout = load_layout(LAYOUT)
    kiosk = layout.device("K1")
    assert isinstance(kiosk, KioskDevice)
    with tempfile.TemporaryDirectory(prefix="hall-bench-kiosk-") as tmp, broker(Path(tmp)) as hall:
        store = f"sqlite:///{Path(tmp) / 'store.sqlite3'}"
        with role(["coordinator"], hall.env("coordinator", HALL_DATABASE_URL=store)):
            link = KioskLink(hall.settings("K1"), layout, kiosk)
            window = KioskWindow(layout, kiosk, link, idle_s=600, result_s=600)
            window.resize(1080, 1920)
            window.show()
            link.start()
            wait(app, lambda: link.coordinator_up, 20)
            link.printer_ok = False  # no printer here: the tap-to-screen path alone
            before = rss_mb()
            taps = []
            for i in range(args.tickets):
                tap(app, window, "dept-ga")
                tap(app, window, "service-passport")
                started = time.perf_counter()
                tap(app, window, "take")
                wait(app, lambda: window.page_name == "result")
                taps.append((time.perf_counter() - started) * 1000)
                tap(app, window, "done")
                if i % 100 == 99:
                    print(f"  {i + 1} tickets, {rss_mb():.0f} MB", file=sys.stderr)
            after = rss_mb()
            link.stop()
    print(f"kiosk resident memory: {before:.0f} MB before the first ticket, {after:.0f} MB after "
          f"{args.tickets} tickets (growth {after - before:+.1f} MB)")
    print(f"tap 取号 → number on screen: p50 {statistics.median(taps):.1f} ms, p99 {pct(taps, 99):.1f} ms "
          f"({len(taps)} taps, through MQTT to the coordinator, committed, and back)")


if __name__ == "__main__":
    main()
