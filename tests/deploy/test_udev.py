"""deploy/udev/99-hall-devices.rules gives every serial device of the example hall the stable name its
layout uses (/dev/hall/...): a name the rules do not make is a port the agent never finds."""

from __future__ import annotations

import re

from hall_devices.layout import load_layout
from tests.conftest import EXAMPLE, ROOT

RULES = ROOT / "deploy" / "udev" / "99-hall-devices.rules"


def test_every_serial_path_of_the_example_layout_is_a_udev_name() -> None:
    named = {f"/dev/{name}" for name in re.findall(r'SYMLINK\+="([^"]+)"', RULES.read_text(encoding="utf-8"))}
    paths = [getattr(device, field, None) for device in load_layout(EXAMPLE).devices
             for field in ("serial", "scanner_serial")]
    wanted = {path for path in paths if isinstance(path, str) and path.startswith("/dev/hall/")}
    assert len(wanted) >= 6  # printers, ID card reader, scanner, the LED and the pad buses
    assert wanted - named == set(), f"layout paths no udev rule makes: {sorted(wanted - named)}"
    assert named - wanted == set(), f"udev names no device of the layout uses: {sorted(named - wanted)}"
