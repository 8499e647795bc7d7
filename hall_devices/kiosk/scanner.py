"""The kiosk's 2D barcode scanner: a serial device that sends the code and CR.

Read on a thread of its own (serial I/O blocks); each code is handed to the GUI by a Qt signal.
The port is reopened with backoff if it vanishes.
"""

from __future__ import annotations

import logging
import threading

from PyQt6.QtCore import QObject, pyqtSignal

from hall_devices.link import LinkLostError, SerialLink

log = logging.getLogger(__name__)
MAX_CODE = 64


class ScannerReader(QObject):
    scanned = pyqtSignal(str)

    def __init__(self, url: str) -> None:
        super().__init__()
        self.link = SerialLink(url, 9600, "N", read_timeout_s=0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scanner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.link.close()

    def _run(self) -> None:
        pending = b""
        while not self._stop.is_set():
            if not self.link.ensure_open():
                self._stop.wait(0.5)
                continue
            try:
                pending += self.link.read()
            except LinkLostError:
                continue
            while b"\r" in pending:
                raw, _, pending = pending.partition(b"\r")
                code = raw.strip(b"\n").decode("ascii", errors="replace").strip()
                if code and len(code) <= MAX_CODE and code.isprintable():
                    self.scanned.emit(code)
                elif code:
                    log.warning("scanner sent an unreadable code: %s", raw[:80].hex(" "))
            if len(pending) > 256:
                log.warning("scanner sent %d bytes with no CR: dropped", len(pending))
                pending = b""
