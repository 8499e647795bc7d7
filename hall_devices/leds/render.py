"""A screen text rendered to a 1-bit bitmap with a CJK font, for controllers that take pixels (BX-6).

Qt's QPainter draws on a QImage, offscreen: no window, no display needed. The text is fitted to the
area exactly as for the font-card screens (:func:`hall_devices.leds.screens.fit`: balanced lines,
one scrolling line when it cannot fit), each line centred, antialiasing off so every pixel is on or
off as on the LED matrix. Font: WenQuanYi Micro Hei (Debian ``fonts-wqy-microhei``) or another CJK
family of :data:`hall_devices.tv.hall_window.CJK_FAMILIES`.

Qt needs an application object before it draws text: :func:`ensure_qt` makes one (offscreen unless
a platform is set) and must be called from the main thread, before any rendering thread starts.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter
from PyQt6.QtWidgets import QApplication

from hall_devices.leds.bx6_area import Bitmap
from hall_devices.leds.screens import FONT_PX, fit
from hall_devices.tv.hall_window import CJK_FAMILIES

_KEPT: list[QApplication] = []  # the application made here lives as long as the process


def ensure_qt() -> None:
    """A QApplication for font rendering; call from the main thread. Does nothing if one exists."""
    if QApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        _KEPT.append(QApplication([]))


def render_text(text: str, width: int, height: int, font_px: int = FONT_PX) -> Bitmap:
    """``text`` (``\\n`` separates paragraphs) as a ``width`` × ``height`` bitmap, lines centred."""
    fitted = fit(text, width, height, font_px)
    lines = [fitted.text] if fitted.scroll else list(fitted.lines)
    image = QImage(width, height, QImage.Format.Format_Grayscale8)
    image.fill(QColor(0, 0, 0))
    font = QFont()
    font.setFamilies(CJK_FAMILIES)
    font.setPixelSize(font_px)
    font.setStyleStrategy(QFont.StyleStrategy.NoAntialias)
    painter = QPainter(image)
    try:
        painter.setFont(font)
        painter.setPen(QColor(255, 255, 255))
        top = max(0, (height - font_px * len(lines)) // 2)
        for i, line in enumerate(lines):
            painter.drawText(QRect(0, top + i * font_px, width, font_px), Qt.AlignmentFlag.AlignCenter, line)
    finally:
        painter.end()
    stride = image.bytesPerLine()
    bits = image.constBits()
    assert bits is not None  # a non-null image always has bits
    raw = bits.asstring(stride * height)
    lit = bytes(1 if raw[y * stride + x] > 127 else 0 for y in range(height) for x in range(width))
    return Bitmap(width, height, lit)
