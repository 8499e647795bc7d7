"""The hall layout file (TOML): departments, services, windows and devices, validated.

Structure is checked by pydantic; cross references (a window naming an unknown service, a device on
an unknown bus, two buses on one port, ...) by :func:`cross_check`, which collects every problem
rather than stopping at the first. :func:`load_layout` raises :class:`LayoutError` holding them all,
each with its place in the file.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hall_devices.leds import bx, eq

log = logging.getLogger(__name__)

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A text users see: simplified Chinese first, English available."""

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Hall(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: Text
    day_starts_at_hour: int = Field(0, ge=0, le=23, description="hour at which numbers reset to 001")
    utc_offset_hours: int = Field(8, ge=-12, le=14)
    info_desk: Text = Text(zh="咨询台", en="information desk")

    def business_day(self, at: dt.datetime) -> str:
        """``YYYY-MM-DD``: the day whose numbers a ticket issued at ``at`` (zone-aware) takes, in the
        hall's time; numbers reset at ``day_starts_at_hour``."""
        local = at.astimezone(dt.timezone(dt.timedelta(hours=self.utc_offset_hours)))
        return (local - dt.timedelta(hours=self.day_starts_at_hour)).date().isoformat()


class Policy(_Strict):
    """Queue, rating and supervision rules of a hall; every value has the seed default."""

    recall_limit: int = Field(3, ge=0, le=10)
    no_show_reactivate_minutes: int = Field(30, ge=0, le=480, description="0: no reactivation")
    no_show_reenter_after: int = Field(3, ge=0, le=50, description="K tickets before it again")
    starvation_max_in_row: int = Field(3, ge=1, le=50, description="higher-class calls in a row at most")
    starvation_wait_minutes: int = Field(20, ge=1, le=480)
    appointment_early_minutes: int = Field(15, ge=0, le=240)
    appointment_late_minutes: int = Field(15, ge=0, le=240)
    booking_horizon_days: int = Field(90, ge=1, le=366, description="bookings at most this many days "
                                      "ahead: a slot further out is refused (and no phone kept that long)")
    rating_timeout_s: int = Field(60, ge=5, le=600)
    case_deadline_working_days: int = Field(10, ge=1, le=60)
    holidays: tuple[dt.date, ...] = ()
    extra_working_days: tuple[dt.date, ...] = Field((), description="weekend days worked (调休)")
    long_wait_minutes: int = Field(30, ge=1, le=480)
    long_pause_minutes: int = Field(20, ge=1, le=480)
    long_pause_notice: Text = Text(zh="临时有事，请稍候", en="Back shortly, please wait")
    service_time_samples: int = Field(20, ge=1, le=500)
    ticket_page_url: str = Field("http://hall.local:8080/t/{token}",
                                 description="the QR code on a ticket; {token} is the ticket's token")
    clock_step_seconds: int = Field(5, ge=1, le=300, description="a jump of the clock beyond this is "
                                    "a step: alerted, nothing else changes")
    day_change_settle_s: int = Field(120, ge=0, le=3600, description="a later business day read "
                                     "after a clock step or a restart starts once the clock has "
                                     "read it this long with no step; tickets wait meanwhile")
    stranded_tickets: Literal["refuse", "requeue"] = Field(
        "refuse", description="transfer to a closed window or to a service no signed-in window "
        "serves, or sign-out with tickets transferred to it: refuse, or send the tickets back to "
        "their service's queue")
    no_window_kiosk: Literal["warn", "stop"] = Field(
        "warn", description="a service whose windows are all signed out: the kiosk warns, or stops "
        "issuing (暂停取号)")
    auto_call_after_s: int = Field(0, ge=0, le=600, description="自动叫号: an idle window calls the "
                                   "next ticket after this pause; 0: off")
    pause_reasons: tuple[str, ...] = Field(
        ("午休", "临时离开", "业务咨询", "会议", "系统故障"), max_length=20,
        description="the console's pause reasons (shown on the window's LED); a clerk may also type one")


class Department(_Strict):
    id: Ident
    name: Text


class ServiceKind(StrEnum):
    INSTANT = "instant"  # 即办件
    TIME_LIMITED = "time_limited"  # 承诺件


class Service(_Strict):
    id: Ident
    name: Text
    department: Ident
    prefix: str = Field(pattern=r"^[A-Z]$", description="ticket letter; shared by one department's group")
    materials: tuple[Text, ...] = ()
    promised_minutes: int = Field(ge=1, le=480, description="promised time at the window")
    kind: ServiceKind = ServiceKind.INSTANT
    time_limit_days: int | None = Field(None, ge=1, le=90)
    number_range: tuple[Annotated[int, Field(ge=1, le=9999)], Annotated[int, Field(ge=1, le=9999)]] | None = (
        Field(None, description="号段: first and last number of this service within its letter"))


class WindowKind(StrEnum):
    DEDICATED = "dedicated"  # 专窗
    COMPREHENSIVE = "comprehensive"  # 综合窗口
    UNIVERSAL = "universal"  # 无差别


class Window(_Strict):
    number: int = Field(ge=1, le=9999)
    name: Text
    kind: WindowKind = WindowKind.DEDICATED
    primary: tuple[Ident, ...] = ()
    secondary: tuple[Ident, ...] = ()
    auto_call_after_s: int | None = Field(None, ge=0, le=600, description="自动叫号 at this window; "
                                          "None: the hall's policy, 0: off")


class Parity(StrEnum):
    NONE = "N"
    EVEN = "E"
    ODD = "O"


class _SerialDevice(_Strict):
    id: Ident
    serial: str = Field(min_length=1, description="pyserial URL: /dev/ttyUSB0, socket://, loop://")
    baudrate: int = Field(9600, ge=300, le=921600)
    parity: Parity = Parity.NONE


class KioskDevice(_Strict):
    kind: Literal["kiosk"]
    id: Ident
    printer: Ident | None = None
    scanner_serial: str | None = None
    paper_out_fallback: Literal["screen_qr", "info_desk"] = "screen_qr"
    location: Text | None = Field(None, description="where it stands (一楼东侧入口), told to staff with a "
                                  "呼叫帮办 help request")


class PrinterDevice(_SerialDevice):
    kind: Literal["printer"]
    kiosk: Ident
    profile: str = "TM-T88V"
    encoding: Literal["gb18030", "gbk", "utf-8"] = "gb18030"
    paper_mm: Literal[58, 80] = 80


class IdCardReaderDevice(_SerialDevice):
    """A resident ID card reader module beside a kiosk (docs/appointments.md), typically 115200 8N1."""

    kind: Literal["idcard_reader"]
    kiosk: Ident
    baudrate: int = Field(115200, ge=300, le=921600)


class LedBusDevice(_SerialDevice):
    kind: Literal["led_bus"]
    # bx6: Onbon BX-6E network controllers (protocols.md §7), one TCP connection per screen to its
    # ``url``; the bus's ``serial`` is then only the group's name and is never opened.
    protocol: Literal["bx", "eq", "bx6"] = "bx"
    unreachable_after_s: float = Field(5.0, gt=0, le=3600,
                                       description="a screen unanswered this long is faulted and alerted")
    # Serial BX only. A frame on RS-485 cannot be interrupted: a call arriving during a probe or a
    # rewrite waits for it and its reply (~0.1 s at 9600 baud), so these trade fault detection and
    # recovery from a controller reboot against call latency (docs/display.md, Performance).
    probe_idle: bool = Field(True, description="probe each idle screen about every unreachable_after_s; "
                                               "false: a dead idle screen is found at its next write")
    refresh_s: float = Field(30.0, ge=0, le=86400,
                             description="rewrite each screen's whole content this often (a rebooted "
                                         "controller shows nothing until written); 0: never")
    brightness: int | None = Field(None, ge=0, le=15,
                                   description="bx6: brightness 0-15 set on every connection; none: leave it")


class WindowScreenDevice(_Strict):
    kind: Literal["window_screen"]
    id: Ident
    bus: Ident
    address: int = Field(ge=0, le=0xFFFD)
    window: int
    width: int = Field(128, ge=8, le=4096)
    height: int = Field(32, ge=8, le=1024)
    url: str | None = Field(None, description="bx6 screens: the controller, socket://HOST:5005")
    speaks: bool = Field(False, description="bx6 screens: calls spoken by the controller's voice queue")


class HallScreenDevice(_Strict):
    kind: Literal["hall_screen"]
    id: Ident
    bus: Ident | None = Field(None, description="LED bus; none for an LCD/TV page")
    address: int = Field(0, ge=0, le=0xFFFD)
    width: int = Field(256, ge=8, le=4096)
    height: int = Field(96, ge=8, le=2160)
    latest_calls: int = Field(5, ge=1, le=20)
    url: str | None = Field(None, description="bx6 screens: the controller, socket://HOST:5005")
    speaks: bool = Field(False, description="bx6 screens: calls spoken by the controller's voice queue")
    notice: Text = Text(zh="请留意叫号，过号请到窗口说明；办事材料请以一次性告知为准。",
                        en="Please listen for your number; if you missed it, tell the window.")


class StaffMember(_Strict):
    """A clerk as the dashboard names them: 张敏 rather than Z0601."""

    id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=32)


class PadBusDevice(_SerialDevice):
    kind: Literal["pad_bus"]
    # The facts say the host echoes a pad's frame; they do not say pads echo the host's. A bus whose
    # pads do can turn this on, and a pad that then stops echoing is reported not responding.
    pads_echo: bool = False


class PadDevice(_Strict):
    kind: Literal["pad"]
    id: Ident
    bus: Ident
    address: int = Field(ge=1, le=254)
    window: int


class AnnouncerDevice(_Strict):
    kind: Literal["announcer"]
    id: Ident
    output: str = "default"
    repeat: int = Field(2, ge=1, le=5)


Device = Annotated[
    KioskDevice
    | PrinterDevice
    | LedBusDevice
    | WindowScreenDevice
    | HallScreenDevice
    | PadBusDevice
    | PadDevice
    | AnnouncerDevice
    | IdCardReaderDevice,
    Field(discriminator="kind"),
]
DEVICE_KINDS = frozenset(
    {"kiosk", "printer", "led_bus", "window_screen", "hall_screen", "pad_bus", "pad", "announcer",
     "idcard_reader"}
)


class AppointmentSlot(_Strict):
    """A time band of a service's bookings: at most ``capacity`` bookings start in it a day (hall time)."""

    service: Ident
    start: dt.time
    end: dt.time
    capacity: int = Field(ge=0, le=10000)


class Layout(_Strict):
    hall: Hall
    policy: Policy = Policy()
    departments: tuple[Department, ...] = Field(min_length=1)
    services: tuple[Service, ...] = Field(min_length=1)
    windows: tuple[Window, ...] = Field(min_length=1)
    devices: tuple[Device, ...] = ()
    appointment_slots: tuple[AppointmentSlot, ...] = Field(
        (), description="booking capacity per service and time band; a service without bands takes "
        "bookings at any time, without a limit")
    staff: tuple[StaffMember, ...] = Field((), description="clerks by id (the keypad's clerk id, the "
                                           "web account) and name, for the dashboard's names")

    def service(self, service_id: str) -> Service:
        for service in self.services:
            if service.id == service_id:
                return service
        raise KeyError(service_id)

    def department(self, department_id: str) -> Department:
        for department in self.departments:
            if department.id == department_id:
                return department
        raise KeyError(department_id)

    def window(self, number: int) -> Window:
        for window in self.windows:
            if window.number == number:
                return window
        raise KeyError(number)

    def device(self, device_id: str) -> Device:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)

    def window_services(self, window: Window) -> list[tuple[str, int]]:
        """(service id, level) pairs a window serves; level 1 is primary, 2 secondary."""
        if window.kind is WindowKind.UNIVERSAL and not window.primary:
            return [(s.id, 1) for s in self.services]
        return [(s, 1) for s in window.primary] + [(s, 2) for s in window.secondary]

    def windows_serving(self, service_id: str) -> list[int]:
        return [
            w.number for w in self.windows if any(s == service_id for s, _ in self.window_services(w))
        ]

    def members(self, bus_id: str) -> list[Device]:
        return [d for d in self.devices if getattr(d, "bus", None) == bus_id]


@dataclass(frozen=True)
class LayoutProblem:
    where: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        at = f"line {self.line}: " if self.line else ""
        return f"{at}{self.where}: {self.message}"


# The broker accounts of the hall's own processes (see ops/provision.py). A device with one of these
# ids would be provisioned with that process's credential and ACL, so layout check refuses them.
RESERVED_IDS: dict[str, str] = {
    "coordinator": "the coordinator (writes everything of the hall)",
    "web": "the web server (sends window and staff commands)",
    "monitor": "the read-only monitor",
    "traffic": "the demo's traffic generator (acts as every kiosk and pad)",
    "up": "the live summary of `hall-devices up`",
}


class LayoutError(Exception):
    def __init__(self, source: str, problems: list[LayoutProblem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}:{p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in layout {source}:\n{listing}")


def _loc(parts: Iterable[int | str]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Lines:
    """Maps ``devices[3]`` to the line of the fourth ``[[devices]]`` header, for messages."""

    def __init__(self, text: str) -> None:
        self._headers: dict[str, list[int]] = defaultdict(list)
        for number, line in enumerate(text.splitlines(), start=1):
            match = re.match(r"\s*\[\[\s*([A-Za-z0-9_]+)\s*\]\]", line)
            if match:
                self._headers[match.group(1)].append(number)

    def of(self, section: str, index: int) -> int | None:
        lines = self._headers.get(section, [])
        return lines[index] if 0 <= index < len(lines) else None


def _structure_problems(exc: ValidationError, lines: _Lines) -> list[LayoutProblem]:
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        # Drop the discriminator tag pydantic inserts ("devices", 2, "printer", "baudrate").
        if len(loc) > 2 and loc[0] == "devices" and isinstance(loc[1], int) and loc[2] in DEVICE_KINDS:
            del loc[2]
        line = lines.of(str(loc[0]), loc[1]) if len(loc) > 1 and isinstance(loc[1], int) else None
        problems.append(LayoutProblem(_loc(loc), err["msg"], line))
    return problems


class _Checker:
    """Collects cross-reference problems, one method per section of the file."""

    def __init__(self, layout: Layout, lines: _Lines) -> None:
        self.layout = layout
        self.lines = lines
        self.problems: list[LayoutProblem] = []
        self.service_ids = {s.id for s in layout.services}
        self.devices = {d.id: d for d in layout.devices}

    def problem(self, section: str, index: int, where: str, message: str) -> None:
        self.problems.append(LayoutProblem(f"{section}[{index}]{where}", message,
                                           self.lines.of(section, index)))

    def duplicates(self, section: str, keys: list[str], what: str) -> None:
        seen: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key in seen:
                self.problem(section, index, "",
                             f"duplicate {what} {key!r} (first at {section}[{seen[key]}])")
            else:
                seen[key] = index

    def identities(self) -> None:
        layout = self.layout
        self.duplicates("departments", [d.id for d in layout.departments], "department id")
        self.duplicates("services", [s.id for s in layout.services], "service id")
        self.duplicates("windows", [str(w.number) for w in layout.windows], "window number")
        self.duplicates("devices", [d.id for d in layout.devices], "device id")
        for index, device in enumerate(layout.devices):
            holder = RESERVED_IDS.get(device.id.lower())  # Coordinator vs coordinator misleads people
            if holder is not None:
                self.problem("devices", index, ".id", f"device id {device.id!r} is reserved: it is the "
                             f"broker account of {holder}, whose credential and rights the device "
                             "would get; choose another id")

    def services(self) -> None:
        department_ids = {d.id for d in self.layout.departments}
        prefix_owner: dict[str, tuple[str, int]] = {}
        for i, service in enumerate(self.layout.services):
            if service.department not in department_ids:
                self.problem("services", i, ".department", f"unknown department {service.department!r}")
            owner = prefix_owner.setdefault(service.prefix, (service.department, i))
            if owner[0] != service.department:
                self.problem("services", i, ".prefix",
                             f"duplicate prefix {service.prefix!r}: already used by department "
                             f"{owner[0]!r} (services[{owner[1]}]); a prefix belongs to one department")
            if service.kind is ServiceKind.TIME_LIMITED and service.time_limit_days is None:
                self.problem("services", i, ".time_limit_days", "a time-limited service needs "
                             "time_limit_days")
        self.number_ranges()

    def number_ranges(self) -> None:
        """号段: within a letter, ranges are disjoint (services sharing one range share its numbers)."""
        seen: dict[str, list[tuple[tuple[int, int] | None, int]]] = defaultdict(list)
        for i, service in enumerate(self.layout.services):
            mine = service.number_range
            if mine is not None and mine[0] > mine[1]:
                self.problem("services", i, ".number_range", f"range {mine[0]}–{mine[1]} ends before "
                             "it starts")
                continue
            for other, j in seen[service.prefix]:
                if other == mine:
                    continue
                if other is None or mine is None or not (mine[1] < other[0] or other[1] < mine[0]):
                    shown = "all numbers" if other is None else f"{other[0]}–{other[1]}"
                    self.problem("services", i, ".number_range", f"numbers of prefix "
                                 f"{service.prefix!r} overlap services[{j}] ({shown}): give each "
                                 "service sharing a letter its own range")
                    break
            seen[service.prefix].append((mine, i))

    def windows(self) -> None:
        for i, window in enumerate(self.layout.windows):
            for level in ("primary", "secondary"):
                for j, service_id in enumerate(getattr(window, level)):
                    if service_id not in self.service_ids:
                        self.problem("windows", i, f".{level}[{j}]",
                                     f"unknown service {service_id!r} at window {window.number}")
            both = set(window.primary) & set(window.secondary)
            if both:
                self.problem("windows", i, "", f"services both primary and secondary: {sorted(both)}")
            if window.kind is not WindowKind.UNIVERSAL and not window.primary:
                self.problem("windows", i, ".primary", f"window {window.number} serves no service")
            if window.kind is WindowKind.COMPREHENSIVE:
                departments = {self.layout.service(s).department
                               for s in window.primary + window.secondary if s in self.service_ids}
                if len(departments) < 2:
                    self.problem("windows", i, ".kind", "a comprehensive window (综合窗口) must serve "
                                 "services of at least two departments")

    def ports_and_bindings(self) -> None:
        ports: dict[str, tuple[str, int]] = {}
        for i, device in enumerate(self.layout.devices):
            if isinstance(device, PrinterDevice | LedBusDevice | PadBusDevice | IdCardReaderDevice):
                first = ports.setdefault(device.serial, (device.id, i))
                if first[0] != device.id:
                    self.problem("devices", i, ".serial", f"two buses on one port: {device.serial!r} is "
                                 f"already used by device {first[0]!r} (devices[{first[1]}])")
            if isinstance(device, KioskDevice) and device.printer is not None:
                printer = self.devices.get(device.printer)
                if not isinstance(printer, PrinterDevice):
                    self.problem("devices", i, ".printer", f"kiosk {device.id!r} names unknown printer "
                                 f"{device.printer!r}")
                elif printer.kiosk != device.id:
                    self.problem("devices", i, ".printer", f"printer {printer.id!r} is bound to kiosk "
                                 f"{printer.kiosk!r}, not {device.id!r}")
            if isinstance(device, PrinterDevice) and not isinstance(self.devices.get(device.kiosk),
                                                                    KioskDevice):
                self.problem("devices", i, ".kiosk", f"printer bound to unknown kiosk {device.kiosk!r}")
            if isinstance(device, IdCardReaderDevice) and not isinstance(self.devices.get(device.kiosk),
                                                                         KioskDevice):
                self.problem("devices", i, ".kiosk", f"ID card reader bound to unknown kiosk "
                             f"{device.kiosk!r}")

    def appointment_slots(self) -> None:
        for i, slot in enumerate(self.layout.appointment_slots):
            if slot.service not in self.service_ids:
                self.problem("appointment_slots", i, ".service", f"unknown service {slot.service!r}")
            if slot.end <= slot.start:
                self.problem("appointment_slots", i, ".end", f"the band ends ({slot.end}) before it starts "
                             f"({slot.start})")

    def bus_members(self) -> None:
        window_numbers = {w.number for w in self.layout.windows}
        addresses: set[tuple[str, int]] = set()
        bound: dict[tuple[str, int], str] = {}
        for i, device in enumerate(self.layout.devices):
            if isinstance(device, PadDevice):
                wanted, bus_id = "pad_bus", device.bus
            elif isinstance(device, WindowScreenDevice | HallScreenDevice) and device.bus is not None:
                wanted, bus_id = "led_bus", device.bus
            else:
                continue
            if getattr(self.devices.get(bus_id), "kind", None) != wanted:
                self.problem("devices", i, ".bus", f"{device.kind} {device.id!r} is on unknown "
                             f"{wanted} {bus_id!r}")
            if (bus_id, device.address) in addresses:
                self.problem("devices", i, ".address", f"address {device.address} used twice on bus "
                             f"{bus_id!r}")
            bus = self.devices.get(bus_id)
            if isinstance(bus, LedBusDevice) and isinstance(device, WindowScreenDevice | HallScreenDevice):
                refused = _screen_address_problem(bus.protocol, device.address)
                if bus.protocol == "bx6" and not device.url:
                    refused = "a bx6 screen needs its controller's url (socket://HOST:5005)"
                if refused:
                    self.problem("devices", i, ".address", f"{device.kind} {device.id!r} on {bus.protocol} "
                                 f"bus {bus_id!r}: {refused}")
            addresses.add((bus_id, device.address))
            if isinstance(device, HallScreenDevice):
                continue
            if device.window not in window_numbers:
                self.problem("devices", i, ".window", f"{device.kind} {device.id!r} bound to unknown "
                             f"window {device.window}")
            other = bound.setdefault((device.kind, device.window), device.id)
            if other != device.id:
                self.problem("devices", i, ".window", f"window {device.window} already has "
                             f"{device.kind} {other!r}")


def _screen_address_problem(protocol: str, address: int) -> str | None:
    """Why ``protocol`` cannot address one screen at ``address`` (protocols.md §2, §3), or None."""
    if protocol == "eq" and not 0 <= address < eq.BROADCAST:
        return (f"address {address} is not 0-{eq.BROADCAST - 1}: EQ2023 carries three digits and "
                f"{eq.BROADCAST} is its broadcast address")
    if protocol == "bx" and not 0 <= address < bx.BROADCAST_REPLY:
        return (f"address {address} is not 0-{bx.BROADCAST_REPLY - 1}: BX carries two bytes and "
                f"{bx.BROADCAST_REPLY:#X}/{bx.BROADCAST:#X} are its broadcast addresses")
    return None


def cross_check(layout: Layout, lines: _Lines | None = None) -> list[LayoutProblem]:
    """Every cross-reference problem of a structurally valid layout."""
    checker = _Checker(layout, lines or _Lines(""))
    checker.identities()
    checker.services()
    checker.windows()
    checker.ports_and_bindings()
    checker.bus_members()
    checker.appointment_slots()
    return checker.problems


# Device kinds that were renamed: still read, with a warning naming the line (issue 18: one name for
# the pad device).
OLD_KINDS = {"keypad_bus": "pad_bus"}


def _renamed_kinds(raw: dict[str, Any], lines: _Lines, source: str) -> list[str]:
    """Rename old device kinds in ``raw`` in place; one message (Chinese first) for each."""
    devices = raw.get("devices")
    notes: list[str] = []
    if not isinstance(devices, list):
        return notes
    for index, device in enumerate(devices):
        old = device.get("kind") if isinstance(device, dict) else None
        if isinstance(old, str) and old in OLD_KINDS:
            device["kind"] = OLD_KINDS[old]
            line = lines.of("devices", index)
            where = f"{source} line {line}" if line else source
            notes.append(f"{where}: 设备类型 {old!r} 已改名为 {OLD_KINDS[old]!r}，仍可读取，请在布局中改名 / "
                         f"devices[{index}].kind {old!r} is deprecated, read as {OLD_KINDS[old]!r}; "
                         "rename it in the layout")
    return notes


def parse_layout(text: str, source: str = "<layout>", notes: list[str] | None = None) -> Layout:
    """Parse and validate layout TOML text; raises :class:`LayoutError` listing every problem.

    What it still reads the old way (a renamed device kind) is appended to ``notes`` when given
    (``layout check`` prints them), else logged as a warning."""
    lines = _Lines(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError(source, [LayoutProblem("file", f"not valid TOML: {exc}")]) from exc
    renamed = _renamed_kinds(raw, lines, source)
    if notes is not None:
        notes.extend(renamed)
    for note in renamed if notes is None else ():
        log.warning("%s", note)
    try:
        layout = Layout.model_validate(raw)
    except ValidationError as exc:
        raise LayoutError(source, _structure_problems(exc, lines)) from exc
    problems = cross_check(layout, lines)
    if problems:
        raise LayoutError(source, problems)
    return layout


def load_layout(path: Path, notes: list[str] | None = None) -> Layout:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(str(path), [LayoutProblem("file", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise LayoutError(str(path), [LayoutProblem("file", f"not UTF-8 text: {exc}")]) from exc
    return parse_layout(text, str(path), notes)
