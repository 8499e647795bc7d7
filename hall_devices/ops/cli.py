"""The technician's subcommands of ``hall-devices``: doctor and the device tests."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from hall_devices.layout import Layout, LayoutError, load_layout
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


def _layout(args: argparse.Namespace, settings: Settings) -> Layout | None:
    try:
        return load_layout(args.layout or settings.layout)
    except LayoutError as exc:
        print(f"布局文件有误 / layout has problems: {exc}", file=sys.stderr)
        return None


def _device_test(args: argparse.Namespace, settings: Settings) -> int:
    from hall_devices.ops import devtest
    from hall_devices.ops.reach import running_role

    layout = _layout(args, settings)
    if layout is None:
        return 1
    device = getattr(args, "id", None) or args.bus
    pid = running_role(device, None)
    if pid is not None and args.sub != "speak" and not args.serial:  # a serial port has one owner
        print(f"设备正被进程 {pid} 使用，请先停止该角色 / {device} is in use by process {pid}: stop its role "
              f"first (sudo systemctl stop 'hall-*@{device}')", file=sys.stderr)
        return 1
    try:
        if args.sub == "printer":
            good = devtest.print_test_ticket(layout, args.id, sys.stdout, args.serial)
        elif args.sub == "leds":
            good = devtest.show_led_test(layout, args.bus, sys.stdout, args.serial)
        elif args.sub == "pads":
            good = devtest.watch_pads(layout, args.bus, sys.stdout, args.serial, duration_s=args.duration,
                                      count=args.count)
        else:
            good = devtest.speak_test_call(layout, args.id, sys.stdout, output=args.output, voice=args.voice,
                                           segments=args.segments, number=args.number, window=args.window)
    except (KeyError, ValueError) as exc:
        print(f"无法测试 / cannot test: {exc}", file=sys.stderr)
        return 2
    return 0 if good else 1


def _add_device_tests(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tests = commands.add_parser("device-test", help="test a printer, LED bus, keypads or the speaker "
                                "(stop its role first)").add_subparsers(dest="sub", required=True)
    printer = tests.add_parser("printer", help="print a test ticket")
    printer.add_argument("--id", required=True, help="printer device id")
    leds = tests.add_parser("leds", help="a test pattern and its address on every screen of a bus")
    leds.add_argument("--bus", required=True, help="led_bus device id")
    pads = tests.add_parser("pads", help="show keys and ratings live as they are pressed")
    pads.add_argument("--bus", required=True, help="keypad_bus device id")
    pads.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    pads.add_argument("--count", type=int, help="stop after this many presses")
    speak = tests.add_parser("speak", help="speak a test call")
    speak.add_argument("--id", required=True, help="announcer device id")
    speak.add_argument("--output", help="off, wav:FOLDER or device[:NAME] (default: the layout's)")
    speak.add_argument("--voice", default="cmn", help="espeak-ng voice (default: cmn, Mandarin)")
    speak.add_argument("--segments", type=Path, help="folder of recorded WAV words")
    speak.add_argument("--number", default="A001", help="ticket number to call (default: A001)")
    speak.add_argument("--window", type=int, default=1, help="window number to call to (default: 1)")
    for sub in (printer, leds, pads):
        sub.add_argument("--serial", help="serial URL instead of the layout's (a pty, socket://...)")
    for sub in (printer, leds, pads, speak):
        sub.add_argument("--layout", type=Path, help="the hall's layout file (default: the settings)")
        sub.set_defaults(run=_device_test)


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


