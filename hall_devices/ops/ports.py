"""The serial ports a layout names, and whether this PC has them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import serial

from hall_devices.layout import KioskDevice, Layout, _SerialDevice


@dataclass(frozen=True)
class PortUse:
    device_id: str
    path: str
    baudrate: int


def local_ports(layout: Layout, devices: set[str] | None = None) -> list[PortUse]:
    """The device paths (``/dev/...``) of the layout, or of ``devices`` only; URLs such as
    ``socket://`` are not local paths and are left out."""
    found = []
    for device in layout.devices:
        if devices is not None and device.id not in devices:
            continue
        if isinstance(device, _SerialDevice) and device.serial.startswith("/"):
            found.append(PortUse(device.id, device.serial, device.baudrate))
        elif isinstance(device, KioskDevice) and (device.scanner_serial or "").startswith("/"):
            found.append(PortUse(f"{device.id} scanner", str(device.scanner_serial), 9600))
    return found


def port_problem(use: PortUse) -> str | None:
    """None when the path exists and opens; else what is wrong, in Chinese and English."""
    if not Path(use.path).exists():
        return (f"{use.device_id}: 串口 {use.path} 不存在（设备未接、udev 规则未生效或名称写错）/ "
                f"{use.path} does not exist (device unplugged, udev rule not active, or a wrong name)")
    if not os.access(use.path, os.R_OK | os.W_OK):
        return (f"{use.device_id}: 无权打开 {use.path}，请把运行账号加入 dialout 组 / no permission to open "
                f"{use.path}: add the role's account to the dialout group")
    try:
        port = serial.serial_for_url(use.path, baudrate=use.baudrate, timeout=0)
    except (OSError, serial.SerialException) as exc:
        return (f"{use.device_id}: {use.path} 打不开（可能被其他程序占用，如 ModemManager）/ "
                f"cannot be opened (maybe in use by another program such as ModemManager): {exc}")
    port.close()
    return None
