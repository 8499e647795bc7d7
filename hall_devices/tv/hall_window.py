"""The hall screen for an LCD/TV: a full-screen PyQt6 window as halls use them.

A table of the latest calls (number → window, the newest highlighted), the waiting count per
department in columns that never wrap, the hall's clock and date, and the notice line. Sized for
1920×1080 and 1280×720: fonts follow the window's height. After a restart the table is filled from
the coordinator's retained window states (who is being called or served where), so it is never blank
while windows are busy.

MQTT arrives on paho's thread; it only emits Qt signals (queued connections), and every widget is
touched on the GUI thread alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QFont, QResizeEvent
from PyQt6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from hall_devices.contract import (
    CALL,
    QUEUE_SUMMARY,
    WINDOW_STATE,
    Call,
    QueueSummary,
    Text,
    WindowState,
    WindowStatus,
)
from hall_devices.layout import HallScreenDevice, Layout
from hall_devices.mqtt.bus import Bus
from hall_devices.mqtt.layout_follow import LayoutFollower

CJK_FAMILIES = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC"]
WEEKDAYS = "一二三四五六日"
HIGHLIGHT = "color: #0b1f3a; background: #ffd54a; padding: 4px 12px;"
PLAIN = "color: #e0e0e0; background: transparent; padding: 4px 12px;"


class HallFeed(QObject):
    """Thread-safe entry: call ``call_arrived.emit`` (and the others) from any thread."""

    call_arrived = pyqtSignal(object)
    summary_arrived = pyqtSignal(object)
    layout_arrived = pyqtSignal(object)  # Layout the coordinator now runs (mqtt/layout_follow.py)
    window_arrived = pyqtSignal(object)  # WindowState, retained: fills the table after a restart


def cjk_font(point_size: int, bold: bool = False) -> QFont:
    font = QFont()
    font.setFamilies(CJK_FAMILIES)
    font.setPointSize(max(6, point_size))
    font.setBold(bold)
    return font


@dataclass(frozen=True)
class Shown:
    """One row of the calls table."""

    number: str
    window: Text  # where, as the coordinator words it: 3号窗口  市场监管
    at: dt.datetime


def label(text: str = "", align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft) -> QLabel:
    widget = QLabel(text)
    widget.setWordWrap(False)  # a column never wraps ("4 / 人"): the layout gives it its width
    widget.setAlignment(align | Qt.AlignmentFlag.AlignVCenter)
    return widget


class HallScreenWindow(QWidget):
    def __init__(self, layout: Layout, device: HallScreenDevice,
                 clock: dt.datetime | None = None) -> None:
        super().__init__()
        self.layout_ = layout
        self.device = device
        self.zone = dt.timezone(dt.timedelta(hours=layout.hall.utc_offset_hours))
        self.fixed_clock = clock  # tests: the time to show; None: this computer's clock
        self.shown: list[Shown] = []
        self.feed = HallFeed()
        # Auto connections are queued when emitted from another thread: slots run on the GUI thread.
        self.feed.call_arrived.connect(self.show_call)
        self.feed.summary_arrived.connect(self.show_summary)
        self.feed.layout_arrived.connect(self.show_layout)
        self.summary: QueueSummary | None = None
        self.feed.window_arrived.connect(self.show_window)
        self.setWindowTitle(f"{layout.hall.name.zh} 叫号")
        self.setStyleSheet("background: #0b1f3a; color: #ffffff;")
        self.title = label(f"{layout.hall.name.zh}  {layout.hall.name.en}")
        self.clock = label(align=Qt.AlignmentFlag.AlignRight)
        self.clock.setObjectName("clock")
        self.calls_head = [label("号码 Number"), label("窗口 Window")]
        self.call_rows = [(label(), label()) for _ in range(device.latest_calls)]
        self.waiting_head = label("等候 Waiting")
        self.departments = [(d.id, label(d.name.zh), label(align=Qt.AlignmentFlag.AlignRight))
                            for d in layout.departments]
        self.notice = label(f"  {device.notice.zh}    {device.notice.en}  ")
        self.notice.setStyleSheet("color: #9fd3ff;")
        self._build()
        self._ticker = QTimer(self)
        self._ticker.timeout.connect(self._scroll_notice)
        self._ticker.start(300)
        self._seconds = QTimer(self)  # the clock on the wall, not a poll of anything
        self._seconds.timeout.connect(self._tick)
        self._seconds.start(1000)
        self._tick()
        self._fonts()
        self.show_summary(None)
        self._render_calls()

    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.clock)
        calls = QGridLayout()
        for column, head in enumerate(self.calls_head):
            head.setStyleSheet("color: #9fd3ff;")
            calls.addWidget(head, 0, column)
        for row, (number, window) in enumerate(self.call_rows, start=1):
            calls.addWidget(number, row, 0)
            calls.addWidget(window, row, 1)
        calls.setColumnStretch(1, 1)
        for row in range(1, len(self.call_rows) + 1):  # the rows share the height: no empty half
            calls.setRowStretch(row, 1)
        waiting = self.waiting_grid = QGridLayout()
        self.waiting_head.setStyleSheet("color: #9fd3ff;")
        waiting.addWidget(self.waiting_head, 0, 0, 1, 2)
        for row, (_id, name, count) in enumerate(self.departments, start=1):
            waiting.addWidget(name, row, 0)
            waiting.addWidget(count, row, 1)
        waiting.setColumnStretch(0, 1)
        waiting.setRowStretch(len(self.departments) + 1, 1)
        body = QHBoxLayout()
        body.addLayout(calls, 3)
        body.addSpacing(40)
        body.addLayout(waiting, 2)
        page = QVBoxLayout(self)
        page.addLayout(top)
        page.addLayout(body, 1)
        page.addWidget(self.notice)

    def _fonts(self) -> None:
        """Sizes for a 1080-line screen, scaled to this window's height (720 lines: two thirds)."""
        scale = max(0.3, self.height() / 1080) if self.height() > 100 else 1.0
        # The rows share the height left by the title, heads and notice (about 300 px at 1080).
        row_points = min(44, int((1080 - 300) / (len(self.call_rows) + 1) * 0.45))
        self.title.setFont(cjk_font(round(30 * scale), bold=True))
        self.clock.setFont(cjk_font(round(30 * scale), bold=True))
        for head in (*self.calls_head, self.waiting_head):
            head.setFont(cjk_font(round(24 * scale)))
        for i, (number, window) in enumerate(self.call_rows):
            points = round((row_points + (8 if i == 0 else 0)) * scale)
            number.setFont(cjk_font(points, bold=True))
            window.setFont(cjk_font(points, bold=i == 0))
        waiting_points = min(28, int((1080 - 300) / (len(self.departments) + 1) * 0.4))
        for _id, name, count in self.departments:
            name.setFont(cjk_font(round(waiting_points * scale)))
            count.setFont(cjk_font(round(waiting_points * scale), bold=True))
        self.notice.setFont(cjk_font(round(22 * scale)))

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fonts()

    # --- what arrives ------------------------------------------------------------------------

    def show_call(self, call: Call) -> None:
        """A call (or recall) goes to the top; the same ticket is never listed twice."""
        self._put(Shown(call.ticket_number, call.window_label, call.called_at))

    def show_window(self, state: WindowState) -> None:
        """A retained window state: after a restart, the tickets being called or served fill the
        table (newest first), so it shows what the hall is doing before the next call."""
        if state.status not in (WindowStatus.CALLING, WindowStatus.SERVING) or not state.ticket_number:
            return
        if any(s.number == state.ticket_number for s in self.shown):
            return
        self.shown.append(Shown(state.ticket_number, state.window_label, state.since))
        self.shown.sort(key=lambda s: s.at, reverse=True)
        del self.shown[len(self.call_rows):]
        self._render_calls()

    def _put(self, row: Shown) -> None:
        self.shown = [row, *(s for s in self.shown if s.number != row.number)][:len(self.call_rows)]
        self._render_calls()

    def _render_calls(self) -> None:
        for i, (number, window) in enumerate(self.call_rows):
            row = self.shown[i] if i < len(self.shown) else None
            number.setText(row.number if row else "")
            window.setText(row.window.zh if row else "")
            for cell in (number, window):
                cell.setStyleSheet(HIGHLIGHT if i == 0 and row else PLAIN)

    def show_layout(self, layout: Layout) -> None:
        """A new notice text and department names at once (the screen itself cannot change)."""
        self.layout_ = layout
        device = layout.device(self.device.id)
        assert isinstance(device, HallScreenDevice)  # LayoutFollower refuses a changed screen
        self.device = device
        self.notice.setText(f"  {device.notice.zh}    {device.notice.en}  ")
        self._set_departments(layout)
        self.show_summary(self.summary)

    def _set_departments(self, layout: Layout) -> None:
        """The waiting column's rows: one per department of ``layout`` (renamed, added, removed)."""
        self.waiting_grid.setRowStretch(len(self.departments) + 1, 0)
        for _id, name, count in self.departments:
            self.waiting_grid.removeWidget(name)
            self.waiting_grid.removeWidget(count)
            name.deleteLater()
            count.deleteLater()
        self.departments = [(d.id, label(d.name.zh), label(align=Qt.AlignmentFlag.AlignRight))
                            for d in layout.departments]
        for row, (_id, name, count) in enumerate(self.departments, start=1):
            self.waiting_grid.addWidget(name, row, 0)
            self.waiting_grid.addWidget(count, row, 1)
        self.waiting_grid.setRowStretch(len(self.departments) + 1, 1)
        self._fonts()

    def show_summary(self, summary: QueueSummary | None) -> None:
        """Each department's cell shows its group's count as the coordinator composed it (4 人);
        — until a summary names it."""
        self.summary = summary
        counts = {g.department_id: g.count.zh for g in summary.groups} if summary else {}
        for department_id, _name, count in self.departments:
            count.setText(counts.get(department_id, "—"))

    def _tick(self) -> None:
        now = (self.fixed_clock or dt.datetime.now(dt.UTC)).astimezone(self.zone)
        self.clock.setText(f"{now:%Y年%m月%d日} 星期{WEEKDAYS[now.weekday()]}  {now:%H:%M:%S}")

    def _scroll_notice(self) -> None:
        text = self.notice.text()
        self.notice.setText(text[1:] + text[:1])

    def shown_text(self) -> str:
        cells = [self.title, self.clock, *(c for row in self.call_rows for c in row),
                 *(c for _i, name, count in self.departments for c in (name, count)), self.notice]
        return "\n".join(cell.text() for cell in cells)


def bind(window: HallScreenWindow, bus: Bus) -> None:
    """Subscribe a bus to what the window shows; handlers only emit signals."""
    bus.subscribe(CALL, lambda m: window.feed.call_arrived.emit(m.payload))
    bus.subscribe(QUEUE_SUMMARY, lambda m: window.feed.summary_arrived.emit(m.payload))
    LayoutFollower(window.layout_, window.device.id,
                   lambda new, _version: window.feed.layout_arrived.emit(new)).subscribe(bus)
    bus.subscribe(WINDOW_STATE, lambda m: window.feed.window_arrived.emit(m.payload))
