from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from hall_devices.cli import main
from hall_devices.layout import Layout, LayoutError, WindowKind, parse_layout
from tests.conftest import EXAMPLE


def test_example_is_a_realistic_county_hall(layout: Layout) -> None:
    assert len(layout.departments) >= 8
    assert len(layout.services) >= 30
    assert len(layout.windows) >= 20
    assert all(service.materials for service in layout.services)
    kinds = {w.kind for w in layout.windows}
    assert {WindowKind.COMPREHENSIVE, WindowKind.UNIVERSAL} <= kinds
    devices = [d.kind for d in layout.devices]
    assert devices.count("kiosk") == 2 and devices.count("printer") == 2
    assert "led_bus" in devices and "hall_screen" in devices and "pad_bus" in devices
    # A universal window serves every service at primary level.
    universal = next(w for w in layout.windows if w.kind is WindowKind.UNIVERSAL)
    assert len(layout.window_services(universal)) == len(layout.services)


def test_cli_check_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["layout", "check", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_cli_check_warns_when_the_coming_year_has_no_holiday_calendar(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["layout", "check", str(EXAMPLE), "--today", "2026-06-01"]) == 0
    assert "make-up working days" not in capsys.readouterr().err  # chinesecalendar 1.11 knows 2026
    assert main(["layout", "check", str(EXAMPLE), "--today", "2026-11-30"]) == 0  # a warning, not a failure
    err = capsys.readouterr().err
    assert "警告：2027 年的法定节假日和调休上班日未知" in err
    assert "holidays and make-up working days of 2027" in err
    listed = tmp_path / "hall.toml"  # the hall typed in 2027's days itself: covered
    listed.write_text(EXAMPLE.read_text(encoding="utf-8") + "\n[policy]\nholidays = [2027-01-01]\n",
                      encoding="utf-8")
    assert main(["layout", "check", str(listed), "--today", "2026-11-30"]) == 0
    assert "2027" not in capsys.readouterr().err


def test_cli_check_names_every_problem_with_its_place(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('primary = ["passport", "hk_macao_permit"]', 'primary = ["passport", "visa_x"]')
    text = text.replace('id = "P2"\nkiosk = "K2"', 'id = "P1"\nkiosk = "K2"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    assert main(["layout", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "unknown service 'visa_x' at window 6" in err
    assert "duplicate device id 'P1'" in err
    lines = text.splitlines()
    for pattern in (r"line (\d+): windows\[5\]\.primary\[1\]", r"line (\d+): devices\[3\]"):
        found = re.search(pattern, err)
        assert found, f"{pattern} not in {err}"
        header = lines[int(found.group(1)) - 1]
        assert header.startswith("[["), f"line {found.group(1)} is {header!r}, not a table header"


MINIMAL = """
[hall]
id = "t"
name = { zh = "测试", en = "Test" }
[[departments]]
id = "d1"
name = { zh = "部门一", en = "One" }
[[departments]]
id = "d2"
name = { zh = "部门二", en = "Two" }
[[services]]
id = "s1"
name = { zh = "事项一", en = "S1" }
department = "d1"
prefix = "A"
promised_minutes = 10
[[services]]
id = "s2"
name = { zh = "事项二", en = "S2" }
department = "d2"
prefix = "B"
promised_minutes = 10
[[windows]]
number = 1
name = { zh = "一号", en = "One" }
primary = ["s1"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(LayoutError) as caught:
        parse_layout(text)
    return [str(p) for p in caught.value.problems]


def test_minimal_layout_parses() -> None:
    assert parse_layout(MINIMAL).service("s2").prefix == "B"


@pytest.mark.parametrize(("extra", "expected"), [
    ('[[services]]\nid = "s3"\nname = { zh = "三", en = "3" }\ndepartment = "d2"\nprefix = "A"\n'
     'promised_minutes = 5\n', "duplicate prefix 'A'"),
    ('[[windows]]\nnumber = 1\nname = { zh = "重", en = "dup" }\nprimary = ["s2"]\n',
     "duplicate window number '1'"),
    ('[[windows]]\nnumber = 2\nname = { zh = "综", en = "c" }\nkind = "comprehensive"\nprimary = ["s1"]\n',
     "at least two departments"),
    ('[[devices]]\nkind = "pad"\nid = "x"\nbus = "nobus"\naddress = 1\nwindow = 1\n',
     "pad 'x' is on unknown pad_bus 'nobus'"),
    ('[[devices]]\nkind = "pad"\nid = "x"\nbus = "kb"\naddress = 1\nwindow = 9\n'
     '[[devices]]\nkind = "pad_bus"\nid = "kb"\nserial = "/dev/ttyS1"\n',
     "bound to unknown window 9"),
    ('[[devices]]\nkind = "pad_bus"\nid = "kb"\nserial = "/dev/ttyS1"\n'
     '[[devices]]\nkind = "led_bus"\nid = "lb"\nserial = "/dev/ttyS1"\n', "two buses on one port"),
    ('[[devices]]\nkind = "printer"\nid = "p"\nkiosk = "k9"\nserial = "/dev/ttyS2"\n',
     "printer bound to unknown kiosk 'k9'"),
    ('[[devices]]\nkind = "printer"\nid = "p"\nkiosk = "k"\nserial = "/dev/ttyS2"\nbaudrate = 12\n'
     '[[devices]]\nkind = "kiosk"\nid = "k"\nprinter = "p"\n', "devices[0].baudrate"),
    ('[[devices]]\nkind = "toaster"\nid = "t"\n', "devices[0]"),
])
def test_each_problem_is_named(extra: str, expected: str) -> None:
    found = problems(MINIMAL + extra)
    assert any(expected in p for p in found), found


def test_not_toml_is_a_clear_error() -> None:
    assert "not valid TOML" in problems("[hall\n")[0]


def test_check_refuses_screen_addresses_the_bus_protocol_cannot_carry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('protocol = "bx"', 'protocol = "eq"')
    text = text.replace('id = "WS3"\nbus = "L1"\naddress = 3', 'id = "WS3"\nbus = "L1"\naddress = 999')
    text = text.replace('id = "WS4"\nbus = "L1"\naddress = 4', 'id = "WS4"\nbus = "L1"\naddress = 1000')
    bad = tmp_path / "eq.toml"
    bad.write_text(text, encoding="utf-8")
    assert main(["layout", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    lines = text.splitlines()
    for screen, address in (("WS3", 999), ("WS4", 1000)):
        found = re.search(rf"line (\d+): devices\[\d+\]\.address: window_screen '{screen}' on eq bus 'L1': "
                          rf"address {address} is not 0-998: EQ2023 carries three digits and 999 is its "
                          r"broadcast address", err)
        assert found, err
        assert lines[int(found.group(1)) - 1] == "[[devices]]"
        assert lines[int(found.group(1))] == 'kind = "window_screen"'
        assert lines[int(found.group(1)) + 1] == f'id = "{screen}"'
    # The same addresses on a BX bus: two bytes carry them.
    parse_layout(text.replace('protocol = "eq"', 'protocol = "bx"'))


@pytest.mark.parametrize("reserved", ["coordinator", "web", "monitor", "traffic", "up", "Coordinator"])
def test_cli_check_refuses_a_reserved_device_id_with_the_reason(
        reserved: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An announcer named after a process account would be provisioned with that account's rights.
    text = EXAMPLE.read_text(encoding="utf-8")
    assert 'id = "VOICE1"' in text
    bad = tmp_path / "reserved.toml"
    bad.write_text(text.replace('id = "VOICE1"', f'id = "{reserved}"'), encoding="utf-8")
    assert main(["layout", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"device id {reserved!r} is reserved" in err
    assert "broker account of the" in err and "credential and rights" in err


def test_every_process_account_is_reserved(layout: Layout) -> None:
    from hall_devices.layout import RESERVED_IDS
    from hall_devices.ops.provision import users_for

    devices = {d.id for d in layout.devices}
    processes = {u.name for u in users_for(layout, demo=True)} - devices
    assert processes and processes <= RESERVED_IDS.keys()


def test_the_old_pad_bus_kind_is_read_with_a_warning_naming_its_line(
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 18: the pad device has one name (``pad_bus``); a layout written with the old
    ``keypad_bus`` still loads, and the operator is told which line to rename."""
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count('kind = "pad_bus"') == 1
    old = text.replace('kind = "pad_bus"', 'kind = "keypad_bus"')
    line = old.splitlines().index('kind = "keypad_bus"')  # the [[devices]] header is the line above it
    with caplog.at_level(logging.WARNING, logger="hall_devices.layout"):
        layout = parse_layout(old, "hall.toml")
    assert [d.kind for d in layout.devices if d.id == "KB1"] == ["pad_bus"]
    assert layout.model_dump() == parse_layout(text, "hall.toml").model_dump()
    [warning] = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert f"hall.toml line {line}:" in warning and "'keypad_bus'" in warning and "'pad_bus'" in warning
    assert warning.startswith(f"hall.toml line {line}: 设备类型 'keypad_bus' 已改名为 'pad_bus'")


def test_layout_check_says_what_to_rename_as_a_warning(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "hall.toml"
    old.write_text(EXAMPLE.read_text(encoding="utf-8").replace('kind = "pad_bus"', 'kind = "keypad_bus"'),
                   encoding="utf-8")
    assert main(["layout", "check", str(old)]) == 0
    err = capsys.readouterr().err
    assert f"注意 / warning: {old} line " in err and "已改名为 'pad_bus'，仍可读取，请在布局中改名" in err
