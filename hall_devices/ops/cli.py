"""The technician's subcommands of ``hall-devices``: doctor and the device tests."""

from __future__ import annotations

import argparse
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
    devices = set(args.device) if args.device else None
    found += run_doctor(settings, DoctorScope(layout, devices, args.broker_dir, datetime.now(UTC)))
    for finding in found:
        print(finding.line())
    failed = sum(f.level == "fail" for f in found)
    warned = sum(f.level == "warn" for f in found)
    print(f"{failed} 项失败、{warned} 项警告 / {failed} failed, {warned} warnings")
    return 1 if failed else 0


def add_ops(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser("doctor", help="check this PC: broker, devices, clock, disk, certificates")
    doctor.add_argument("--layout", type=Path, help="layout file (default: settings.layout)")
    doctor.add_argument("--device", action="append",
                        help="a device of this PC (repeat); default: every device of the layout")
    doctor.add_argument("--broker-dir", type=Path, help="the provisioned broker folder (on the server)")
    doctor.set_defaults(run=_doctor)


