"""The command line: every option and argument of every sub-command says what it is for."""

from __future__ import annotations

import argparse

import pytest

from hall_devices.cli import build_parser


def undocumented(parser: argparse.ArgumentParser, path: str = "hall-devices") -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += undocumented(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not action.help:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_has_help() -> None:
    parser = build_parser()
    assert undocumented(parser) == []
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"up", "web-user", "kiosk"} <= set(commands.choices)  # the walk sees the sub-commands


def test_messages_looks_a_code_up_in_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    from hall_devices.cli import main

    assert main(["messages", "unknown_appointment"]) == 0
    out = capsys.readouterr().out
    assert "预约码无效，请核对预约码或到咨询台咨询" in out and "this appointment code is not known" in out
    assert main(["messages", "no_such_code"]) == 1
    assert "no such code" in capsys.readouterr().err
