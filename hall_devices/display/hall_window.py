"""The hall screen for an LCD/TV: a full-screen PyQt6 window of calls, queues and a notice.

MQTT arrives on paho's thread; it only emits Qt signals (queued connections), and every widget is
touched on the GUI thread alone.
"""

from __future__ import annotations

from collections import deque

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from hall_devices.bus import Bus
from hall_devices.contract import Call, QueueSummary, route
from hall_devices.layout import HallScreenDevice, Layout
from hall_devices.layout_follow import LayoutFollower

CJK_FAMILIES = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC"]


class HallFeed(QObject):
    """Thread-safe entry: call ``call_arrived.emit`` from any thread."""

    call_arrived = pyqtSignal(object)
    summary_arrived = pyqtSignal(object)
    layout_arrived = pyqtSignal(object)  # Layout the coordinator now runs (layout_follow.py)


def cjk_font(point_size: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setFamilies(CJK_FAMILIES)
    font.setPointSize(point_size)
    font.setBold(bold)
    return font


class HallScreenWindow(QWidget):
    def __init__(self, layout: Layout, device: HallScreenDevice) -> None:
        super().__init__()
        self.layout_ = layout
        self.device = device
        self.calls: deque[Call] = deque(maxlen=device.latest_calls)
        self.feed = HallFeed()
        # Auto connections are queued when emitted from another thread: slots run on the GUI thread.
        self.feed.call_arrived.connect(self.show_call)
        self.feed.summary_arrived.connect(self.show_summary)
        self.feed.layout_arrived.connect(self.show_layout)
        self.summary: QueueSummary | None = None
        self.setWindowTitle(f"{layout.hall.name.zh} 叫号")
        self.setStyleSheet("background: #0b1f3a; color: #ffffff;")
        self.title = QLabel(f"{layout.hall.name.zh}\n{layout.hall.name.en}")
        self.title.setFont(cjk_font(28, bold=True))
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.call_rows = [QLabel("") for _ in range(device.latest_calls)]
        for i, row in enumerate(self.call_rows):
            row.setFont(cjk_font(44 if i == 0 else 32, bold=i == 0))
            row.setStyleSheet("color: #ffd54a;" if i == 0 else "color: #e0e0e0;")
        self.waiting = QLabel("")
        self.waiting.setFont(cjk_font(22))
        self.waiting.setWordWrap(True)
        self.notice = QLabel(f"  {device.notice.zh}    {device.notice.en}  ")
        self.notice.setFont(cjk_font(20))
        self.notice.setStyleSheet("color: #9fd3ff;")
        self.waiting.setAlignment(Qt.AlignmentFlag.AlignTop)
        calls = QVBoxLayout()
        for row in self.call_rows:
            calls.addWidget(row)
        calls.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(calls, 3)
        body.addWidget(self.waiting, 2)
        page = QVBoxLayout(self)
        page.addWidget(self.title)
        page.addLayout(body, 1)
        page.addWidget(self.notice)
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self._scroll_notice)
        self._ticker.start(300)
        self.show_summary(None)

    def show_call(self, call: Call) -> None:
        self.calls.appendleft(call)
        for row, shown in zip(self.call_rows, [*self.calls, *[None] * len(self.call_rows)], strict=False):
            row.setText(f"{shown.text.zh}    {shown.text.en}" if shown else "")

    def show_layout(self, layout: Layout) -> None:
        """A new notice text and department names at once (the screen itself cannot change)."""
        self.layout_ = layout
        device = layout.device(self.device.id)
        assert isinstance(device, HallScreenDevice)  # LayoutFollower refuses a changed screen
        self.device = device
        self.notice.setText(f"  {device.notice.zh}    {device.notice.en}  ")
        self.show_summary(self.summary)

    def show_summary(self, summary: QueueSummary | None) -> None:
        self.summary = summary
        if summary is None:
            self.waiting.setText("等候人数 Waiting\n—")
            return
        per_prefix: dict[str, int] = {}
        for row in summary.services:
            per_prefix[row.prefix] = per_prefix.get(row.prefix, 0) + row.waiting
        names = {s.prefix: self.layout_.department(s.department).name.zh for s in self.layout_.services}
        lines = [f"{names.get(p, p)}（{p}）  {n} 人" for p, n in sorted(per_prefix.items())]
        self.waiting.setText("等候人数 Waiting\n" + "\n".join(lines))

    def _scroll_notice(self) -> None:
        text = self.notice.text()
        self.notice.setText(text[1:] + text[:1])

    def shown_text(self) -> str:
        return "\n".join(label.text() for label in (self.title, *self.call_rows, self.waiting, self.notice))


def bind(window: HallScreenWindow, bus: Bus) -> None:
    """Subscribe a bus to what the window shows; handlers only emit signals."""
    bus.subscribe(route("call"), lambda m: window.feed.call_arrived.emit(m.payload))
    bus.subscribe(route("queue_summary"), lambda m: window.feed.summary_arrived.emit(m.payload))
    LayoutFollower(window.layout_, window.device.id,
                   lambda new, _version: window.feed.layout_arrived.emit(new)).subscribe(bus)
