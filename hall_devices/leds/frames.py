"""The bytes that put a text on a screen: BX dynamic areas or EQ text, per protocol (pure).

Texts come from people (pause reasons, notices, names): each is made safe for its protocol first
(:func:`safe_text`); a frame that still cannot be built raises :class:`ScreenEncodingError`, and
the LED agent marks that one screen faulted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from hall_devices.leds import bx, eq
from hall_devices.leds.screens import FONT_PX, Fitted, fit, text_width

ENCODING = "gbk"


class ScreenEncodingError(Exception):
    """A screen's frame cannot be built in its protocol (an address or a length the protocol's
    fields cannot carry); the message names the screen's address and the codec's reason."""


MISSING = "□"  # shown for a character the controller's encoding cannot carry
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # what safe_text makes a space


def safe_text(protocol: str, line: str, encoding: str = ENCODING) -> str:
    """One line of a text from people, made carriable by ``protocol`` (``bx`` or ``eq``).

    Both: a control character (CR, LF too: lines are passed separately) becomes a space and a
    character ``encoding`` cannot carry becomes □. EQ2023 (protocols.md §3) also: every ``$``
    becomes ＄ (``$$`` is the end mark, and a trailing ``$`` would make one with it) and ``!#`` (the
    start mark, where a controller resynchronises) becomes ！#; ``eq.encode`` turns a ``%`` before
    a digit into ％. BX's reserved bytes (A5 A6 5A 5B, inside GBK characters or as ``Z`` and ``[``)
    need nothing here: the frame escapes them (protocols.md §2).
    """
    if not _CONTROL.search(line) and (protocol != "eq" or ("$" not in line and "!#" not in line)):
        # Nearly every line (a call, a name) needs nothing: one encode of the whole line, not one
        # per character, on the path of every call's frame.
        try:
            line.encode(encoding)
        except UnicodeEncodeError:
            pass
        else:
            return line
    out = []
    for char in line:
        if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            out.append(" ")
        elif protocol == "eq" and char == "$":
            out.append("＄")
        else:
            try:
                char.encode(encoding)
            except UnicodeEncodeError:
                out.append(MISSING)
            else:
                out.append(char)
    text = "".join(out)
    return text.replace("!#", "！#") if protocol == "eq" else text


@dataclass(frozen=True)
class Region:
    """A rectangle of a screen and what it shows."""

    area_id: int
    x: int
    y: int
    width: int
    height: int
    text: str


def _padded(fitted: Fitted, width_px: int) -> str:
    """Lines padded with spaces to the area's width, so the controller's wrap breaks them there."""
    if fitted.scroll:
        return fitted.text
    lines = list(fitted.lines)
    out = []
    for line in lines[:-1]:
        gap = max(0, width_px - text_width(line)) // (FONT_PX // 2)
        out.append(line + " " * gap)
    return "".join(out) + lines[-1]


def bx_areas(regions: Sequence[Region]) -> list[bx.DynamicArea]:
    areas = []
    for region in regions:
        text = "\n".join(safe_text("bx", line) for line in region.text.split("\n"))
        fitted = fit(text, region.width, region.height)
        mode = bx.DisplayMode.MOVE_LEFT if fitted.scroll else bx.DisplayMode.STATIC
        areas.append(bx.DynamicArea(
            region.area_id, region.x, region.y, region.width, region.height,
            _padded(fitted, region.width).encode(ENCODING), display_mode=mode,
            timeout_s=0, single_line=1 if fitted.scroll else 2, auto_wrap=0 if fitted.scroll else 1))
    return areas


def screen_bytes(protocol: str, address: int, regions: list[Region]) -> bytes:
    """One frame updating every region of the screen at ``address``; raises
    :class:`ScreenEncodingError` when the protocol cannot carry it even with safe texts."""
    return _screen_bytes(protocol, address, tuple(regions))


# The same frames come back: a window's welcome after each Finish, every probe (an idle screen's
# smallest area, one every few seconds on a bus) and every periodic rewrite. A frame is a function
# of its arguments alone; one that cannot be built raises and is not kept.
@lru_cache(maxsize=256)
def _screen_bytes(protocol: str, address: int, regions: tuple[Region, ...]) -> bytes:
    try:
        if protocol == "bx":
            frame = bx.BxFrame(bx.Header(address), bx.dynamic_area_data(bx_areas(regions)))
            return frame.encode()
        lines = [safe_text("eq", line) for region in regions for line in region.text.split("\n")]
        return eq.encode(address, [[(eq.Colour.RED, line)] for line in lines], ENCODING)
    except (bx.BxError, eq.EqError) as exc:
        raise ScreenEncodingError(f"{protocol} screen at address {address}: {exc}") from exc


def window_regions(text: str, width: int, height: int) -> list[Region]:
    return [Region(0, 0, 0, width, height, text)]


def hall_regions(calls: str, waiting: str, notice: str, width: int, height: int) -> list[Region]:
    """Latest calls on top, waiting per group and a scrolling notice in the last two rows."""
    rows = max(3, height // FONT_PX)
    top = (rows - 2) * FONT_PX
    return [Region(0, 0, 0, width, top, calls),
            Region(1, 0, top, width, FONT_PX, waiting or " "),
            Region(2, 0, top + FONT_PX, width, FONT_PX, notice)]
