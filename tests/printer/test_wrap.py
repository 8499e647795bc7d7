"""Ticket lines measured by display width and wrapped at sensible boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall_devices.layout import Layout, PrinterDevice
from hall_devices.printer.decode import EscPosDecoder
from hall_devices.printer.decode import Text as Line
from hall_devices.printer.ticket import render
from hall_devices.printer.wrap import NBSP, display_width, wrap
from tests.printer.test_ticket import job, printer


def test_display_width_counts_cjk_double() -> None:
    assert display_width("B007") == 4
    assert display_width("号，") == 4  # 号 and the full-width comma
    assert display_width("取号时间 Issued:") == 16


@pytest.mark.parametrize(("text", "columns", "lines"), [
    ("Demo County Government Service Centre", 32, ["Demo County Government Service", "Centre"]),
    (f"取号时间 Issued: 2026-11-23{NBSP}09:05", 32, ["取号时间 Issued:", "2026-11-23 09:05"]),
    ("扫码查看排队进度 Scan for your place", 32, ["扫码查看排队进度 Scan for your", "place"]),
    ("前面还有 3 人，预计等候约 45 分钟", 32, ["前面还有 3 人，", "预计等候约 45 分钟"]),
    ("2. 出入境证件申请表（需本人签名）", 20, ["2. 出入境证件申请表", "（需本人签名）"]),
    ("办理窗口 Windows: 6、21、22、23、24", 32, ["办理窗口 Windows: 6、21、22、", "23、24"]),
    ("Supercalifragilisticexpialidocious", 16, ["Supercalifragili", "sticexpialidocio", "us"]),
    ("Demo County Government Service Centre", 48, ["Demo County Government Service Centre"]),
])
def test_breaks_at_sensible_boundaries(text: str, columns: int, lines: list[str]) -> None:
    assert wrap(text, columns) == lines


def test_no_line_starts_with_closing_punctuation_and_indent_continues() -> None:
    lines = wrap("1. 居民身份证，户口簿，结婚证，出生医学证明，", 16, indent="   ")
    assert all(display_width(line) <= 16 for line in lines)
    assert all(line.startswith("   ") and line[3] not in "，。" for line in lines[1:])
    assert "".join(line.strip() for line in lines) == "1. 居民身份证，户口簿，结婚证，出生医学证明，"


@given(st.text(st.characters(codec="gbk", exclude_categories=("Cc", "Cs", "Mn", "Me", "Zl", "Zp")),
               max_size=80), st.sampled_from([16, 32, 48]))
def test_every_line_fits_and_nothing_is_lost(text: str, columns: int) -> None:
    lines = wrap(text, columns)
    assert all(display_width(line) <= columns for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "").replace(NBSP, "")


@pytest.mark.parametrize(("device", "columns"), [("P1", 48), ("P2", 32)])
def test_every_printed_line_fits_its_paper(layout: Layout, device: str, columns: int) -> None:
    paper: PrinterDevice = printer(layout, device)
    data = render(job(), paper, layout.hall)
    lines = [e for e in EscPosDecoder().feed(data) if isinstance(e, Line)]
    for line in lines:
        text = line.data.decode(paper.encoding)
        assert display_width(text) * line.width <= columns, (text, line.width)
    texts = [line.data.decode(paper.encoding) for line in lines]
    if columns == 32:  # the three lines that wrapped mid-word on 58 mm paper
        assert texts[1:3] == ["Demo County Government Service", "Centre"]
        assert "2026-11-23 09:05" in texts and "扫码查看排队进度" in texts and "Scan for your place" in texts
