"""The kiosk's pages: large touch targets (at least 100 px), no keyboard needed anywhere."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import qrcode
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFont, QPixmap
from PyQt6.QtWidgets import (
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

CJK_FAMILIES = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC"]
TOUCH_PX = 100  # the smallest touch target: larger than the 80 px a hurried or elderly finger needs


def font(points: int, bold: bool = False) -> QFont:
    chosen = QFont()
    chosen.setFamilies(CJK_FAMILIES)
    chosen.setPointSize(points)
    chosen.setBold(bold)
    return chosen


def label(text: str = "", points: int = 22, bold: bool = False, wrap: bool = True,
          center: bool = False) -> QLabel:
    widget = QLabel(text)
    widget.setFont(font(points, bold))
    widget.setWordWrap(wrap)
    if center:
        widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return widget


def button(text: str, on_click: Callable[[], None], points: int = 24, height: int = TOUCH_PX,
           name: str = "") -> QPushButton:
    widget = QPushButton(text)
    widget.setFont(font(points, bold=True))
    widget.setMinimumHeight(height)
    widget.setMinimumWidth(TOUCH_PX)
    widget.setObjectName(name or text)
    widget.clicked.connect(on_click)
    return widget


def clear(layout: QVBoxLayout | QGridLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget() if item is not None else None
        if widget is not None:
            widget.hide()  # gone from the screen now; deleted when the event loop gets to it
            widget.setParent(None)
            widget.deleteLater()


class Page(QWidget):
    """A page: a title and a scrollable body of large widgets."""

    def __init__(self) -> None:
        super().__init__()
        self.title = label(points=30, bold=True, center=True)
        self.body = QVBoxLayout()
        self.body.setSpacing(18)
        self.holder = QWidget()
        self.holder.setLayout(self.body)
        self.scroller = QScrollArea()
        self.scroller.setWidgetResizable(True)
        self.scroller.setWidget(self.holder)
        self.scroller.setFrameShape(QScrollArea.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.addWidget(self.title)
        outer.addWidget(self.scroller, 1)

    def overflows(self) -> bool:
        """Whether the body is taller than the screen shows, or a button's text wider than it."""
        viewport = self.scroller.viewport()
        shown = viewport.size() if viewport is not None else self.holder.size()
        self.holder.resize(shown)  # the scroll area would, later: measure at the screen's size now
        for child in self.holder.findChildren(QWidget):
            # Widgets just added are shown by Qt on the next turn of the event loop, and layouts
            # skip hidden widgets: show them now (never one hidden on purpose) to measure them.
            if child.isHidden() and not child.testAttribute(Qt.WidgetAttribute.WA_WState_ExplicitShowHide):
                child.show()
        self.body.activate()
        for child in self.holder.findChildren(QWidget):
            inner = child.layout()
            if inner is not None:
                inner.activate()
        # wrapped labels are as tall as their width makes them: ask the layout for that width
        needed = max(self.holder.minimumSizeHint().height(), self.body.heightForWidth(shown.width())
                     if self.body.hasHeightForWidth() else 0)
        if needed + 24 > shown.height():  # a margin for the scroll area's own rounding
            return True
        for widget in self.holder.findChildren(QPushButton):
            lines = widget.text().split("\n")
            widest = max(widget.fontMetrics().horizontalAdvance(line) for line in lines)
            if widest > widget.width() - 24:  # the style's padding: 12 px a side
                return True
        return False

    def fit(self, smallest: float = 0.5, floor_px: int = TOUCH_PX * 3 // 4, largest: float = 1.0) -> float:
        """Scale the body's text, buttons and pictures so that the page fills the screen without
        scrolling or cutting anything off: shrink step by step down to ``smallest`` of the designed
        size (buttons not below ``floor_px``), or, with ``largest`` > 1, grow a sparse page up to
        that; the factor used. The pages are designed for portrait 1080×1920; a landscape screen or
        the demo's small window gets them smaller."""
        widgets = self.holder.findChildren(QLabel) + self.holder.findChildren(QPushButton)
        points = {w: w.font().pointSize() for w in widgets}
        heights = {w: w.minimumHeight() for w in widgets if isinstance(w, QPushButton)}
        pictures = {w: w.pixmap() for w in widgets if isinstance(w, QLabel) and not w.pixmap().isNull()}

        def scale(factor: float) -> None:
            for widget, size in points.items():
                chosen = widget.font()
                chosen.setPointSize(max(8, round(size * factor)))
                widget.setFont(chosen)
            for push, height in heights.items():  # never below the floor: still a finger's size
                push.setMinimumHeight(max(floor_px, round(height * factor)))
                push.setMinimumWidth(max(floor_px, round(TOUCH_PX * factor)))
            for picture, pixmap in pictures.items():
                picture.setPixmap(pixmap.scaledToHeight(round(pixmap.height() * factor)))

        factor = 1.0
        if not self.overflows():
            while factor * 1.1 <= largest:  # a sparse page: larger, while it still fits
                scale(factor * 1.1)
                if self.overflows():
                    scale(factor)
                    break
                factor *= 1.1
            return factor
        while self.overflows() and factor > smallest:
            factor = max(smallest, factor * 0.9)
            scale(factor)
        return factor

    def reset(self, title: str) -> None:
        self.title.setText(title)
        clear(self.body)


class LetterKeyboard(QWidget):
    """A–Z (and digits when asked), delete and clear: the kiosk's only way to type."""

    def __init__(self, on_key: Callable[[str], None], digits: bool = False, letters: bool = True,
                 columns: int = 7) -> None:
        """``columns``: 7 on a portrait screen, more on a landscape one (fewer rows)."""
        super().__init__()
        grid = QGridLayout(self)
        grid.setSpacing(8)
        keys = ([*"1234567890"] if digits else []) + ([*"ABCDEFGHIJKLMNOPQRSTUVWXYZ"] if letters else [])
        for i, key in enumerate(keys):
            grid.addWidget(button(key, partial(on_key, key), points=26, name=f"key-{key}"),
                           i // columns, i % columns)
        row = (len(keys) + columns - 1) // columns
        half = columns // 2
        grid.addWidget(button("⌫", lambda: on_key("DELETE"), name="key-delete"), row, 0, 1, half)
        grid.addWidget(button("✕", lambda: on_key("CLEAR"), name="key-clear"), row, half, 1, columns - half)


def qr_pixmap(payload: str, size: int = 320) -> QPixmap:
    import io

    image = qrcode.make(payload, box_size=8, border=2)
    raw = io.BytesIO()
    image.save(raw, format="PNG")
    pixmap = QPixmap()
    pixmap.loadFromData(raw.getvalue(), "PNG")
    return pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.FastTransformation)
