"""A 2D barcode scanner on a pty: ``scan(code)`` sends the code and CR, as the real one does."""

from __future__ import annotations

from pathlib import Path

from hall_devices.demo.sim.port import VirtualPort


class ScannerSimulator:
    def __init__(self, path: Path) -> None:
        self.port = VirtualPort(path)

    @property
    def path(self) -> Path:
        return self.port.path

    def scan(self, code: str) -> None:
        self.port.write(code.encode("ascii") + b"\r")

    def stop(self) -> None:
        self.port.close()
