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
        holder = QWidget()
        holder.setLayout(self.body)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.addWidget(self.title)
        outer.addWidget(scroll, 1)

    def reset(self, title: str) -> None:
        self.title.setText(title)
        clear(self.body)


class LetterKeyboard(QWidget):
    """A–Z (and digits when asked), delete and clear: the kiosk's only way to type."""

    def __init__(self, on_key: Callable[[str], None], digits: bool = False, letters: bool = True) -> None:
        super().__init__()
        grid = QGridLayout(self)
        grid.setSpacing(8)
        keys = ([*"1234567890"] if digits else []) + ([*"ABCDEFGHIJKLMNOPQRSTUVWXYZ"] if letters else [])
        for i, key in enumerate(keys):
            grid.addWidget(button(key, partial(on_key, key), points=26, name=f"key-{key}"), i // 7, i % 7)
        row = (len(keys) + 6) // 7
        grid.addWidget(button("⌫", lambda: on_key("DELETE"), name="key-delete"), row, 0, 1, 3)
        grid.addWidget(button("✕", lambda: on_key("CLEAR"), name="key-clear"), row, 3, 1, 4)


def qr_pixmap(payload: str, size: int = 320) -> QPixmap:
    import io

    image = qrcode.make(payload, box_size=8, border=2)
    raw = io.BytesIO()
    image.save(raw, format="PNG")
    pixmap = QPixmap()
    pixmap.loadFromData(raw.getvalue(), "PNG")
    return pixmap.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.FastTransformation)
