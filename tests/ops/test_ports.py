"""The layout's serial paths on this PC: `layout check` warns about missing ones, never fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hall_devices.cli import main
from hall_devices.layout import load_layout
from hall_devices.ops.ports import PortUse, local_ports, port_problem
from tests.conftest import EXAMPLE


def test_layout_check_warns_about_each_missing_port_and_passes(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    primary, secondary = os.openpty()
    present = os.ttyname(secondary)
    text = EXAMPLE.read_text(encoding="utf-8").replace("/dev/hall/printer-k1", present)
    layout_file = tmp_path / "hall.toml"
    layout_file.write_text(text, encoding="utf-8")
    try:
        assert main(["layout", "check", str(layout_file)]) == 0
    finally:
        os.close(primary)
        os.close(secondary)
    out = capsys.readouterr()
    assert out.out.startswith("OK:")
    assert "/dev/hall/printer-k2 is not on this PC" in out.err
    assert "/dev/hall/led-bus-1" in out.err and "/dev/hall/pad-bus-1" in out.err
    assert present not in out.err


def test_port_problems_are_named() -> None:
    uses = local_ports(load_layout(EXAMPLE), {"P1"})
    assert [u.path for u in uses] == ["/dev/hall/printer-k1"]
    problem = port_problem(uses[0])
    assert problem is not None and "does not exist" in problem and "不存在" in problem
    primary, secondary = os.openpty()
    try:
        assert port_problem(PortUse("P1", os.ttyname(secondary), 9600)) is None
    finally:
        os.close(primary)
        os.close(secondary)
