"""长辈模式 (elder mode) of the kiosk: large text, high contrast, fewer choices, each page read aloud.

The national guidance on older people and smart technology (国务院办公厅《关于切实解决老年人运用智能技术
困难的实施方案》, 2020, and the MIIT 适老化 rules for public service terminals) asks for one-tap large
text, high contrast and voice. Reading aloud uses espeak-ng's Mandarin voice (``cmn``), the same engine
as the announcer, started as a QProcess so the GUI never waits for it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from PyQt6.QtCore import QProcess
from PyQt6.QtWidgets import QLabel, QPushButton, QWidget

log = logging.getLogger(__name__)

ENLARGE = 1.35  # elder mode's text, relative to the normal size
ELDER_STYLE = ("QWidget { background: #000000; color: #ffff00; } "
               "QPushButton { background: #000000; color: #ffffff; border: 4px solid #ffff00; "
               "border-radius: 12px; padding: 12px; } "
               "QPushButton:disabled { color: #7a7a7a; border-color: #7a7a7a; }")


def enlarge(root: QWidget, factor: float = ENLARGE) -> None:
    """Every label and button under ``root`` at ``factor`` times its point size (pages are built
    anew each time, so this never compounds)."""
    for widget in root.findChildren(QLabel) + root.findChildren(QPushButton):
        chosen = widget.font()
        if chosen.pointSize() > 0:
            chosen.setPointSize(round(chosen.pointSize() * factor))
            widget.setFont(chosen)


class Reader:
    """Reads a page aloud with espeak-ng. ``out_dir`` set: writes ``page-N.wav`` there instead of
    playing (tests, and kiosks without a sound card). A new page stops the one being read."""

    def __init__(self, out_dir: Path | None = None, voice: str = "cmn") -> None:
        self.out_dir = out_dir
        self.voice = voice
        self.binary = shutil.which("espeak-ng")
        self.process: QProcess | None = None
        self.spoken: list[str] = []  # what was given to read, in order
        self.files: list[Path] = []

    def read(self, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        self.spoken.append(text)
        if self.binary is None:
            log.warning("elder mode: espeak-ng is not installed, the page is not read aloud")
            return
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(1000)
        arguments = ["-v", self.voice, "-s", "140"]  # slower than the default 175 words a minute
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            path = self.out_dir / f"page-{len(self.spoken)}.wav"
            self.files.append(path)
            arguments += ["-w", str(path)]
        self.process = QProcess()
        self.process.start(self.binary, [*arguments, "--", text])

    def stop(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(1000)
