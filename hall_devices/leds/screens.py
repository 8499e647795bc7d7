"""What the LED screens show: the texts the coordinator composed, fitted to a screen's pixels."""

from __future__ import annotations

from dataclasses import dataclass

from hall_devices.catalog import SCREEN
from hall_devices.contract import Call, QueueSummary, WindowState
from hall_devices.layout import Layout

FONT_PX = 16  # the controllers' CJK font: 16×16, ASCII 8×16
BREAK_AFTER = ("号", " ", "，", "、", "：")


def text_width(text: str, font_px: int = FONT_PX) -> int:
    return sum(font_px if ord(c) > 0x2E7F else font_px // 2 for c in text)


@dataclass(frozen=True)
class Fitted:
    lines: tuple[str, ...]
    scroll: bool  # more than fits: the controller moves it left

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _balanced_split(paragraph: str, width_px: int, font_px: int) -> tuple[str, str] | None:
    """Two halves that both fit, split after a natural point, as even as possible."""
    best: tuple[int, int] | None = None
    for i, char in enumerate(paragraph[:-1]):
        if char not in BREAK_AFTER:
            continue
        head, tail = paragraph[: i + 1].rstrip(), paragraph[i + 1:].lstrip()
        wide = max(text_width(head, font_px), text_width(tail, font_px))
        if wide <= width_px and (best is None or wide < best[0]):
            best = (wide, i + 1)
    return None if best is None else (paragraph[: best[1]].rstrip(), paragraph[best[1]:].lstrip())


def _greedy(paragraph: str, width_px: int, font_px: int) -> list[str]:
    lines, line = [], ""
    for char in paragraph:
        if line and text_width(line + char, font_px) > width_px:
            lines.append(line)
            line = ""
        line += char
    return [*lines, line]


def fit(text: str, width_px: int, height_px: int, font_px: int = FONT_PX) -> Fitted:
    """Break ``text`` into lines of the screen's width; scroll when they do not all fit."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if text_width(paragraph, font_px) <= width_px:
            lines.append(paragraph)
            continue
        halves = _balanced_split(paragraph, width_px, font_px)
        lines += list(halves) if halves else _greedy(paragraph, width_px, font_px)
    rows = max(1, height_px // font_px)
    if len(lines) <= rows:
        return Fitted(tuple(lines), scroll=False)
    return Fitted((text.replace("\n", " "),), scroll=True)


def window_text(state: WindowState) -> str:
    """The window screen's text, as the coordinator composed it (``WindowState.screen``): the call,
    who is served, a pause notice, or a welcome. Time-derived texts (临时有事，请稍候) come in it,
    decided by the coordinator's clock: this machine's clock may differ."""
    return state.screen.zh


def no_state_text() -> str:
    """A window screen before its window's first state arrives: 暂停服务 (catalog.SCREEN)."""
    return SCREEN["closed"][0]


def hall_calls_text(calls: list[Call]) -> str:
    """The latest calls, newest first, one per line (``Call.text``); 欢迎光临 before any call."""
    return "\n".join(call.text.zh for call in calls) or SCREEN["no_calls"][0]


def hall_waiting_text(layout: Layout, summary: QueueSummary | None) -> str:
    """Waiting per department group, as the coordinator composed each (``WaitingGroup.line``); only
    groups with someone waiting. ``layout`` is unused: kept for the agents' calls."""
    if summary is None:
        return ""
    return " ".join(group.line.zh for group in summary.groups if group.waiting)
