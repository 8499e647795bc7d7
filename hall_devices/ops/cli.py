"""The technician's subcommands of ``hall-devices``: doctor and the device tests."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from hall_devices.layout import Layout, LayoutError, load_layout
from hall_devices.registry import role_named
from hall_devices.role_spec import RoleArgs, load_or_say
from hall_devices.settings import Settings


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.ops.doctor import DoctorScope, Finding, run_doctor

    layout: Layout | None = None
    found: list[Finding] = []
    try:
        layout = load_layout(args.layout or settings.layout)
    except LayoutError as exc:
        found.append(Finding("fail", "layout", f"布局文件有误 / layout has problems: {exc}"))
    devices = set(args.device) if args.device else this_pc(layout, settings, args.config_dir)
    found += run_doctor(settings, DoctorScope(layout, devices, args.broker_dir, datetime.now(UTC)))
    for finding in found:
        print(finding.line())
    failed = sum(f.level == "fail" for f in found)
    warned = sum(f.level == "warn" for f in found)
    print(f"{failed} 项失败、{warned} 项警告 / {failed} failed, {warned} warnings")
    return 1 if failed else 0


def this_pc(layout: Layout | None, settings: Settings, config_dir: Path) -> set[str] | None:
    """This PC's devices: the one whose account the settings name, and every one with an account
    file ``<config_dir>/<ID>.env``; None (every device) when none is found."""
    if layout is None:
        return None
    ids = {d.id for d in layout.devices}
    found = {d for d in ids if (config_dir / f"{d}.env").is_file()}
    if settings.broker_username in ids:
        found.add(settings.broker_username)
    return found or None


def _device_test(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.ops import devtest
    from hall_devices.ops.reach import running_role

    given = RoleArgs.from_namespace(args)
    layout = load_or_say(given.layout or settings.layout)
    if layout is None:
        return 1
    device: str = args.device_id  # required by every device test's parser
    pid = running_role(device, None)
    if pid is not None and args.sub != "speak" and not given.serial:  # a serial port has one owner
        print(f"设备正被进程 {pid} 使用，请先停止该角色 / {device} is in use by process {pid}: stop its role "
              f"first (sudo systemctl stop 'hall-*@{device}')", file=sys.stderr)
        return 1
    try:
        if args.sub == "printer":
            good = devtest.print_test_ticket(layout, device, sys.stdout, given.serial)
        elif args.sub == "leds":
            good = devtest.show_led_test(layout, device, sys.stdout, given.serial)
        elif args.sub == "pads":
            good = devtest.watch_pads(layout, device, sys.stdout, given.serial, duration_s=args.duration,
                                      count=args.count)
        else:
            good = devtest.speak_test_call(layout, device, sys.stdout, output=given.output, voice=given.voice,
                                           segments=given.segments, number=args.number, window=args.window)
    except (KeyError, ValueError) as exc:
        print(f"无法测试 / cannot test: {exc}", file=sys.stderr)
        return 2
    return 0 if good else 1


def _test_of(tests: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_: str,
             role: str, leave_out: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A device test's sub-command with the device and port options of its device's role."""
    sub = tests.add_parser(name, help=help_)
    for option in role_named(role).all_options():
        if option.dest not in leave_out:
            option.add_to(sub)
    sub.set_defaults(run=_device_test)
    return sub


def _add_device_tests(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tests = commands.add_parser("device-test", help="test a printer, LED bus, keypads or the speaker "
                                "(stop its role first)").add_subparsers(dest="sub", required=True)
    _test_of(tests, "printer", "print a test ticket", "printer", leave_out=("poll_s",))
    _test_of(tests, "leds", "a test pattern and its address on every screen of a bus", "leds",
             leave_out=("screen_urls",))
    pads = _test_of(tests, "pads", "show keys and ratings live as they are pressed", "pads")
    pads.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    pads.add_argument("--count", type=int, help="stop after this many presses")
    speak = _test_of(tests, "speak", "speak a test call", "announcer")
    speak.add_argument("--number", default="A001", help="ticket number to call (default: A001)")
    speak.add_argument("--window", type=int, default=1, help="window number to call to (default: 1)")


def add_ops(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser("doctor", help="check this PC: broker, devices, clock, disk, certificates")
    doctor.add_argument("--layout", type=Path, help="layout file (default: settings.layout)")
    doctor.add_argument("--device", action="append",
                        help="a device of this PC (repeat); default: see --config-dir, else every device")
    doctor.add_argument("--broker-dir", type=Path, help="the provisioned broker folder (on the server)")
    doctor.add_argument("--config-dir", type=Path, default=Path("/etc/hall"),
                        help="without --device: the devices with an <ID>.env here are this PC's")
    doctor.set_defaults(run=_doctor)
    _add_device_tests(commands)


