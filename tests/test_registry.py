"""The role registry: the CLI's role sub-commands and `hall-devices up` take the same roles from it;
a role's own words (what `up` gives a child) start it with the same arguments; a device of another
kind is refused in one line before anything is built."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from hall_devices.cli import build_parser, main
from hall_devices.demo.up import plan
from hall_devices.layout import load_layout
from hall_devices.registry import ROLES, role_for
from hall_devices.role_spec import Role, RoleArgs
from tests.conftest import EXAMPLE


def _sub_commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_cli_and_up_take_the_same_roles_from_the_registry() -> None:
    commands = _sub_commands(build_parser())
    cli_roles = {name for name, sub in commands.items() if sub.get_default("role") is not None}
    assert cli_roles == {role.name for role in ROLES}
    assert all(commands[name].get_default("role") == name for name in cli_roles)
    layout = load_layout(EXAMPLE)
    in_up = plan(layout, screens=True)
    assert {role.name for _, role in in_up} == {"printer", "idcard-reader", "pads", "leds", "announcer",
                                                "hall-screen", "kiosk"}
    assert all(role in ROLES for _, role in in_up)  # the registry's own entries, not copies
    # Every device with a role of its own is started once; the TV runs alone, HS1 is its LED bus's.
    assert sorted(d.id for d, _ in in_up) == sorted(d.id for d in layout.devices if role_for(d) is not None)
    assert "HS-TV" in {d.id for d, _ in in_up} and "HS1" not in {d.id for d, _ in in_up}
    without_screens = {role.name for _, role in plan(layout, screens=False)}
    assert without_screens == {role.name for _, role in in_up if not role.qt}
    assert {"hall-screen", "kiosk"} == {role.name for role in ROLES if role.qt}


EVERY = RoleArgs(device_id="X1", layout=Path("some/hall.toml"), serial="socket://127.0.0.1:4001", poll_s=0.5,
                 screen_urls=("S1=socket://127.0.0.1:5005", "S2=socket://127.0.0.1:5006"), output="wav:voice",
                 voice="en", segments=Path("words"), scanner="/dev/ttyACM0", windowed=True,
                 db="postgresql://region")  # every field other than its default


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_a_roles_words_start_it_with_the_same_arguments(role: Role) -> None:
    args = replace(RoleArgs(), **{option.dest: getattr(EVERY, option.dest) for option in role.all_options()})
    words = role.argv(args)
    assert words[0] == role.name
    parsed = build_parser().parse_args(words)
    assert parsed.role == role.name
    assert RoleArgs.from_namespace(parsed) == args
    assert role.argv(RoleArgs(device_id="X1")) == ([role.name, role.target.flag, "X1"] if role.target
                                                   else [role.name])


def test_a_device_of_another_kind_is_refused_before_anything_is_built(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["printer", "--id", "KB1", "--layout", str(EXAMPLE)]) == 1
    assert capsys.readouterr().err == "'KB1' is not a printer of the layout\n"
    assert main(["kiosk", "--id", "P1", "--layout", str(EXAMPLE)]) == 1  # before Qt loads
    assert capsys.readouterr().err == "'P1' is not a kiosk of the layout\n"
    assert main(["hall-screen", "--id", "NOPE", "--layout", str(EXAMPLE)]) == 1
    assert capsys.readouterr().err == "'NOPE' is not a hall_screen of the layout\n"
