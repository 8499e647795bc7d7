"""The role registry: every role a PC of the hall (or the region) runs, named once (:data:`ROLES`).

Both ``hall-devices <role>`` (:func:`add_role_commands`) and ``hall-devices up`` (:func:`role_for`)
take their roles from here; what a role is and how it runs: :mod:`hall_devices.role_spec`. Each
builder imports its agent only when called, so the CLI starts without loading every device's code.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hall_devices.layout import (
    AnnouncerDevice,
    Device,
    HallScreenDevice,
    IdCardReaderDevice,
    KioskDevice,
    LedBusDevice,
    PadBusDevice,
    PrinterDevice,
)
from hall_devices.role_spec import (
    OUTPUT,
    SEGMENTS,
    SERIAL,
    VOICE,
    WINDOWED,
    Agent,
    Context,
    Option,
    Role,
    RoleError,
    Server,
    Target,
    Window,
)
from hall_devices.roles import QtView, Stoppable

if TYPE_CHECKING:
    from PyQt6.QtWidgets import QApplication


def _coordinator(ctx: Context) -> Stoppable:
    from hall_devices.coordinator.service import CoordinatorService
    from hall_devices.coordinator.store import StoreError

    layout = ctx.layout
    if ctx.settings.hall_id != layout.hall.id:
        raise RoleError(f"settings hall_id {ctx.settings.hall_id!r} differs from the layout's "
                        f"{layout.hall.id!r}")
    try:
        # The same file's text is published for every process to follow (mqtt/layout_follow.py).
        text = ctx.layout_file.read_text(encoding="utf-8")
        return CoordinatorService(ctx.settings, layout, ctx.settings.sqlite_path(), layout_text=text)
    except StoreError as exc:  # also another coordinator holding the store's lock
        raise RoleError(str(exc)) from exc


def _printer(ctx: Context) -> Stoppable:
    from hall_devices.printer.agent import PrinterAgent

    return PrinterAgent(ctx.settings, ctx.layout, ctx.device_id, ctx.settings.data_dir, url=ctx.args.serial,
                        poll_interval_s=ctx.args.poll_s)


def _idcard_reader(ctx: Context) -> Stoppable:
    from hall_devices.idcard.agent import IdCardReaderAgent
    from hall_devices.idcard.identity import hall_key

    return IdCardReaderAgent(ctx.settings, ctx.layout, ctx.device_id, hall_key(ctx.settings),
                             url=ctx.args.serial)


def _pads(ctx: Context) -> Stoppable:
    from hall_devices.pads.agent import PadAgent

    return PadAgent(ctx.settings, ctx.layout, ctx.device_id, ctx.settings.data_dir, url=ctx.args.serial)


def _leds(ctx: Context) -> Stoppable:
    """A serial bus (bx, eq): the LED agent; network controllers (protocol bx6): the BX-6 agent."""
    bus = ctx.layout.device(ctx.device_id)
    if isinstance(bus, LedBusDevice) and bus.protocol == "bx6":
        from hall_devices.leds.bx6_agent import Bx6Agent

        urls = dict(item.split("=", 1) for item in ctx.args.screen_urls)
        return Bx6Agent(ctx.settings, ctx.layout, ctx.device_id, urls=urls)
    from hall_devices.leds.agent import LedAgent

    return LedAgent(ctx.settings, ctx.layout, ctx.device_id, url=ctx.args.serial)


def _announcer(ctx: Context) -> Stoppable:
    from hall_devices.announcer.agent import AnnouncerAgent

    return AnnouncerAgent(ctx.settings, ctx.layout, ctx.device_id, output=ctx.args.output,
                          voice=ctx.args.voice, segments=ctx.args.segments)


def _hall_screen(ctx: Context, _app: QApplication) -> QtView:
    from hall_devices.mqtt.bus import Bus, BusOptions
    from hall_devices.tv.hall_window import HallScreenWindow, bind

    device = ctx.layout.device(ctx.device_id)
    assert isinstance(device, HallScreenDevice)  # run_role checked the kind
    window = HallScreenWindow(ctx.layout, device)
    bus = Bus(ctx.settings, BusOptions(client_id=device.id, hall_id=ctx.layout.hall.id, device_id=device.id,
                                       device_kind="hall_screen"))
    bind(window, bus)
    return QtView(window, (device.width // 2, device.height // 2), lambda: bus.start(None), bus.stop)


def _kiosk(ctx: Context, app: QApplication) -> QtView:
    from hall_devices.kiosk.app import KioskWindow
    from hall_devices.kiosk.link import KioskLink
    from hall_devices.kiosk.scanner import ScannerReader

    kiosk = ctx.layout.device(ctx.device_id)
    assert isinstance(kiosk, KioskDevice)  # run_role checked the kind
    link = KioskLink(ctx.settings, ctx.layout, kiosk)
    window = KioskWindow(ctx.layout, kiosk, link)
    app.installEventFilter(window)
    scanner_url = ctx.args.scanner or kiosk.scanner_serial
    scanner = ScannerReader(scanner_url) if scanner_url else None
    if scanner is not None:
        scanner.scanned.connect(window.check_in)

    def start() -> None:
        if scanner is not None:
            scanner.start()
        link.start()

    def stop() -> None:
        if scanner is not None:
            scanner.stop()
        link.stop()

    return QtView(window, (540, 960), start, stop)


def _web(ctx: Context) -> int:
    from hall_devices.web.serve import run

    busy = _port_in_use(ctx.settings.web_host, ctx.settings.web_port)
    if busy:
        print(f"网页无法启动 / web cannot start: {busy}", file=sys.stderr)
        return 1
    return run(ctx.settings, ctx.layout)


def _port_in_use(host: str, port: int) -> str | None:
    """One line saying that ``host:port`` cannot be listened on, or None when it can."""
    import errno
    import socket

    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use by another program (set HALL_WEB_PORT)"
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def _region(ctx: Context) -> Stoppable:
    from hall_devices.region.db import RegionDbError
    from hall_devices.region.service import RegionService

    url = ctx.args.db or ctx.settings.region_database_url
    if not url:
        raise RoleError("给出区域数据库 / give the region's database: --db postgresql://... "
                        "(or HALL_REGION_DATABASE_URL)", code=2)
    try:
        return RegionService(ctx.settings, url)
    except RegionDbError as exc:
        raise RoleError(f"区域数据库不可用 / {exc}") from exc


def _alone(device: Device) -> bool:
    """A hall screen with no LED bus is a TV of its own; one on a bus is its bus's."""
    return isinstance(device, HallScreenDevice) and device.bus is None


IN_LAYOUT = "device id in the layout"
ROLES: tuple[Role, ...] = (
    Role("coordinator", "run the coordinator (queue engine, store)",
         Agent(_coordinator, "协调服务无法启动 / coordinator cannot start"),
         layout_help="layout file (default: settings.layout)"),
    Role("printer", "run a ticket printer agent",
         Agent(_printer, "打印机代理无法启动 / printer agent cannot start"),
         Target("--id", f"printer {IN_LAYOUT}", (PrinterDevice,), "printer"),
         (SERIAL, Option("--poll", "poll_s", "status poll interval, seconds", "number"))),
    Role("idcard-reader", "run the agent of a kiosk's ID card reader",
         Agent(_idcard_reader, "身份证阅读器代理无法启动 / ID card reader agent cannot start"),
         Target("--id", f"idcard_reader {IN_LAYOUT}", (IdCardReaderDevice,), "idcard_reader"),
         (SERIAL,), log="idcard"),
    Role("pads", "run the agent of a bus of window pads (叫号评价器)",
         Agent(_pads, "评价器代理无法启动 / pad agent cannot start"),
         Target("--bus", f"pad_bus {IN_LAYOUT}", (PadBusDevice,), "pad_bus"), (SERIAL,)),
    Role("leds", "run the agent of a bus of LED screens (serial bx/eq, or bx6 network controllers)",
         Agent(_leds, "LED 屏代理无法启动 / LED agent cannot start"),
         Target("--bus", f"led_bus {IN_LAYOUT}", (LedBusDevice,), "led_bus"),
         (SERIAL, Option("--screen-url", "screen_urls", "bx6 buses: a screen's controller instead of the "
                         "layout's url (repeatable)", "repeat", metavar="ID=URL"))),
    Role("announcer", "run the voice announcer",
         Agent(_announcer, "语音播报无法启动 / announcer cannot start"),
         Target("--id", f"announcer {IN_LAYOUT}", (AnnouncerDevice,), "announcer"),
         (OUTPUT, VOICE, SEGMENTS)),
    Role("hall-screen", "run an LCD/TV hall screen (PyQt6 window)", Window(_hall_screen),
         Target("--id", "hall_screen device id (one without an LED bus)", (HallScreenDevice,), "hall_screen",
                owns=_alone), (WINDOWED,)),
    Role("kiosk", "run a touch kiosk (PyQt6)", Window(_kiosk),
         Target("--id", f"kiosk {IN_LAYOUT}", (KioskDevice,), "kiosk"),
         (Option("--scanner", "scanner", "the barcode scanner's serial URL instead of the layout's"),
          WINDOWED)),
    Role("web", "the manager's dashboard and the clerks' console", Server(_web)),
    Role("region", "run the regional service: every hall's events into PostgreSQL, once and in order "
         "(docs/region.md)", Agent(_region, "区域服务无法启动 / region service cannot start"),
         options=(Option("--db", "db", "PostgreSQL URL (default: settings.region_database_url)"),),
         in_hall=False),
)


def role_named(name: str) -> Role:
    """The role called ``name``; KeyError when there is none."""
    for role in ROLES:
        if role.name == name:
            return role
    raise KeyError(name)


def role_for(device: Device) -> Role | None:
    """The role that runs ``device`` in a hall (None: a device another role drives, e.g. a pad)."""
    return next((r for r in ROLES if r.target is not None and r.target.runs(device)), None)


def add_role_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """One ``hall-devices`` sub-command per role of :data:`ROLES`."""
    for role in ROLES:
        role.add_command(commands)

