"""The bytes that put a text on a screen: BX dynamic areas or EQ text, per protocol (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from hall_devices.display import bx, eq
from hall_devices.display.screens import FONT_PX, Fitted, fit, text_width

ENCODING = "gbk"


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


def bx_areas(regions: list[Region]) -> list[bx.DynamicArea]:
    areas = []
    for region in regions:
        fitted = fit(region.text, region.width, region.height)
        mode = bx.DisplayMode.MOVE_LEFT if fitted.scroll else bx.DisplayMode.STATIC
        areas.append(bx.DynamicArea(
            region.area_id, region.x, region.y, region.width, region.height,
            _padded(fitted, region.width).encode(ENCODING, errors="replace"), display_mode=mode,
            timeout_s=0, single_line=1 if fitted.scroll else 2, auto_wrap=0 if fitted.scroll else 1))
    return areas


def screen_bytes(protocol: str, address: int, regions: list[Region]) -> bytes:
    """One frame updating every region of the screen at ``address``."""
    if protocol == "bx":
        frame = bx.BxFrame(bx.Header(address), bx.dynamic_area_data(bx_areas(regions)))
        return frame.encode()
    text = "\n".join(region.text for region in regions)
    return eq.plain(address, text, eq.Colour.RED)


def window_regions(text: str, width: int, height: int) -> list[Region]:
    return [Region(0, 0, 0, width, height, text)]


def hall_regions(calls: str, waiting: str, notice: str, width: int, height: int) -> list[Region]:
    """Latest calls on top, waiting per group and a scrolling notice in the last two rows."""
    rows = max(3, height // FONT_PX)
    top = (rows - 2) * FONT_PX
    return [Region(0, 0, 0, width, top, calls),
            Region(1, 0, top, width, FONT_PX, waiting or " "),
            Region(2, 0, top + FONT_PX, width, FONT_PX, notice)]
