from __future__ import annotations

from pathlib import Path

import pytest

from hall_devices.cli import main
from hall_devices.layout import Layout, PadDevice, WindowKind, WindowScreenDevice, parse_layout
from hall_devices.ops.generate import generate


@pytest.mark.parametrize(("windows", "kiosks"), [(1, 1), (45, 3), (300, 30)])
def test_generated_layouts_are_valid(layout: Layout, windows: int, kiosks: int) -> None:
    generated = parse_layout(generate(layout, windows, kiosks))
    assert len(generated.windows) == windows
    assert sum(d.kind == "printer" for d in generated.devices) == kiosks
    pads = [d for d in generated.devices if isinstance(d, PadDevice)]
    screens = [d for d in generated.devices if isinstance(d, WindowScreenDevice)]
    assert sorted(p.window for p in pads) == sorted(s.window for s in screens) == list(range(1, windows + 1))
    assert max(sum(p.bus == bus for p in pads) for bus in {p.bus for p in pads}) <= 30  # a real RS-485 bus
    assert generated.windows[-1].kind is WindowKind.UNIVERSAL


def test_cli_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "big.toml"
    assert main(["layout", "generate", "--windows", "60", "--kiosks", "4", "--out", str(out)]) == 0
    assert main(["layout", "check", str(out)]) == 0
    assert "60 windows" in capsys.readouterr().out
