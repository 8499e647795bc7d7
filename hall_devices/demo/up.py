"""`hall-devices up`: the whole hall on one machine, on simulated devices, until Ctrl-C.

Starts Mosquitto from hall_devices/ops/broker_config/ (provisioned into the data folder,
credentials kept between runs), the coordinator as a child process, and the traffic generator;
prints where everything is and a live summary. Ctrl-C (or SIGTERM) stops the children in reverse
order and waits for each, so no process is left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from hall_devices.contract import (
    CALL,
    DEVICE_STATUS,
    QUEUE_SUMMARY,
    TICKET_REPLY,
    WINDOW_STATE,
    Call,
    DeviceState,
    DeviceStatus,
    QueueSummary,
    TicketClass,
    TicketReply,
    WindowState,
    WindowStatus,
    hall_subtree,
)
from hall_devices.coordinator.calendar import business_day, local
from hall_devices.demo.sim.idcard import IdCardReaderSimulator
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.demo.sim.scanner import ScannerSimulator
from hall_devices.demo.traffic import CardTraffic, TrafficGenerator, TrafficMix
from hall_devices.idcard.identity import hall_key
from hall_devices.layout import (
    AnnouncerDevice,
    Device,
    HallScreenDevice,
    IdCardReaderDevice,
    KioskDevice,
    Layout,
    LedBusDevice,
    PadBusDevice,
    PadDevice,
    PrinterDevice,
    WindowScreenDevice,
)
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
from hall_devices.ops.children import dying_with_parent, stop_child
from hall_devices.ops.provision import UP, provision
from hall_devices.registry import role_for, role_named
from hall_devices.role_spec import Agent, Context, Role, RoleArgs
from hall_devices.roles import Stoppable, StopSignals
from hall_devices.settings import Settings
from hall_devices.web.users import Role as WebRole
from hall_devices.web.users import add_user

if TYPE_CHECKING:
    from hall_devices.demo.sim.bx6 import Bx6Simulator

CARD_SERVICE = "social_card"  # booked by the demo's ID card applicants (a service without capacity bands)
DEMO_USERS: tuple[tuple[str, WebRole, str], ...] = (("manager", "manager", "manager-demo"),
                                                  ("clerk", "clerk", "clerk-demo"))


def shown_where() -> str:
    """Where the Qt windows (kiosk, TV screen) appear, as the platform Qt will use says."""
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    display = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
    if platform == "offscreen" or not display:
        return "offscreen (no display: running, not shown; start it from a desktop session to see it)"
    return f"a window on display {display}"


def qt_platform() -> dict[str, str]:
    """Offscreen when there is no display (Qt would abort), Qt's own choice (xcb, wayland) else."""
    if os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY"):
        return {}
    return {"QT_QPA_PLATFORM": "offscreen"}


def own_command(path: str | None = None, cwd: Path | None = None) -> str:
    """How a shell like this one runs `hall-devices`, for the hints `up` prints: the bare name where
    it is on the PATH (``path``, default ``$PATH``), else the console script beside this Python
    (``./hall up`` runs ``.venv/bin/hall-devices``, which a new shell does not have on its PATH),
    relative to ``cwd`` (default: the current folder) when it is under it."""
    if shutil.which("hall-devices", path=os.environ.get("PATH", "") if path is None else path):
        return "hall-devices"
    script = Path(sys.executable).parent / "hall-devices"
    try:
        return str(script.relative_to(Path.cwd() if cwd is None else cwd))
    except ValueError:
        return str(script)


def with_ticket_page(text: str, url: str) -> str:
    """A layout file's text with ``policy.ticket_page_url`` set to ``url`` (replaced, added to the
    ``[policy]`` table, or a ``[policy]`` table appended)."""
    line = f'ticket_page_url = "{url}"'
    if re.search(r"(?m)^ticket_page_url\s*=.*$", text):
        return re.sub(r"(?m)^ticket_page_url\s*=.*$", lambda _m: line, text, count=1)
    if re.search(r"(?m)^\[policy\]\s*$", text):
        return re.sub(r"(?m)^\[policy\]\s*$", lambda m: f"{m.group(0)}\n{line}", text, count=1)
    return text.rstrip("\n") + f"\n\n[policy]\n{line}\n"


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Summary:
    """The live terminal line: waiting, windows open, calls, from the monitor's view of the bus."""

    def __init__(self, settings: Settings, layout: Layout) -> None:
        self.bus = Bus(settings, BusOptions(client_id=UP, hall_id=layout.hall.id,
                                            device_id=UP, device_kind="monitor"))
        self.queue: QueueSummary | None = None
        self.windows: dict[int, WindowState] = {}
        self.calls = 0
        self.kiosk_check_ins = 0  # appointment tickets a kiosk window took itself (an ID card)
        self.last_call = ""
        self.hall = layout.hall
        self.devices: dict[str, DeviceState] = {}
        self._changed = threading.Condition()
        self.bus.subscribe(DEVICE_STATUS, self._device)
        self.bus.subscribe(QUEUE_SUMMARY, self._queue)
        self.bus.subscribe(WINDOW_STATE, self._window)
        self.bus.subscribe(CALL, self._call)
        self.bus.subscribe(TICKET_REPLY, self._ticket)

    def _device(self, inbound: Inbound[DeviceStatus]) -> None:
        with self._changed:
            self.devices[inbound.payload.device_id] = inbound.payload.state
            self._changed.notify_all()

    def wait_online(self, device_id: str, timeout_s: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.devices.get(device_id) is DeviceState.OK,
                                          timeout_s)

    def wait_all_online(self, device_ids: list[str], timeout_s: float) -> list[str]:
        """Wait until every agent reports (any state but offline); the ids that did not."""
        def missing() -> list[str]:
            return [d for d in device_ids if self.devices.get(d, DeviceState.OFFLINE) is DeviceState.OFFLINE]

        with self._changed:
            self._changed.wait_for(lambda: not missing(), timeout_s)
            return missing()

    def _queue(self, inbound: Inbound[QueueSummary]) -> None:
        self.queue = inbound.payload

    def _window(self, inbound: Inbound[WindowState]) -> None:
        self.windows[inbound.payload.window] = inbound.payload

    def _ticket(self, inbound: Inbound[TicketReply]) -> None:
        """A kiosk window's own appointment ticket (its command ids start with the kiosk's id; the
        traffic's do not): an ID card or a code checked in at the kiosk."""
        reply = inbound.payload
        if reply.ok and reply.ticket is not None and reply.ticket.ticket_class == TicketClass.APPOINTMENT \
                and (reply.command_id or "").startswith(f"{inbound.params['kiosk']}-"):
            self.kiosk_check_ins += 1

    def _call(self, inbound: Inbound[Call]) -> None:
        self.calls += 1
        self.last_call = inbound.payload.text.zh

    def line(self, traffic: TrafficGenerator | None) -> str:
        open_ = sum(1 for w in self.windows.values() if w.status is not WindowStatus.CLOSED)
        waiting = self.queue.total_waiting if self.queue else 0
        made = f"取号 issued {traffic.issued}  办结 served {traffic.served}  评价 rated {traffic.rated}  " \
            if traffic else ""
        if traffic and traffic.cards is not None:
            checked = traffic.card_check_ins if traffic.cards.checks_in else self.kiosk_check_ins
            made += f"刷证签到 card check-ins {checked}  "
        now = local(self.hall, datetime.now(UTC)).strftime("%H:%M:%S")  # hall time, as the pages
        return (f"{now}  {made}等候 waiting {waiting}  开放窗口 open windows "
                f"{open_}  呼叫 calls {self.calls}  {self.last_call}")


@dataclass(frozen=True)
class UpOptions:
    layout_path: Path
    data_dir: Path
    port: int | None = None
    traffic: bool = True
    speed: float = 60.0
    duration_s: float | None = None
    screens: bool = False  # windows (TV hall screen, kiosk) when a display is available
    in_process: bool = False  # device agents as threads of this process (a server hosting many buses)
    quiet: bool = False  # no start-up lines (when a benchmark or test embeds the hall)


class Hall:
    """The processes and clients of one demo hall, started and stopped in order."""

    def __init__(self, layout: Layout, options: UpOptions) -> None:
        self.layout = layout
        self.options = options
        self.children: list[subprocess.Popen[bytes]] = []
        self.generator: TrafficGenerator | None = None
        self.summary: Summary | None = None
        self.broker: BrokerProcess | None = None
        self.port = 0
        self.credentials: dict[str, str] = {}
        self.printers: list[PrinterSimulator] = []
        self.pad_buses: list[PadBusSimulator] = []
        self.screens: list[LedBusSimulator] = []
        self.net_screens: list[Bx6Simulator] = []  # imported only for a bx6 layout
        self.readers: list[tuple[IdCardReaderDevice, IdCardReaderSimulator]] = []
        self.scanners: list[ScannerSimulator] = []
        self.web_url = ""
        self.web_port = 8080 if _port_free(8080) else free_port()
        self.layout_file = options.layout_path  # the demo's copy once the ticket page is set
        self.agents: list[Stoppable] = []  # in-process agents, when asked for
        self.agent_ids: list[str] = []  # every device agent started, whichever way
        self.muted = False

    def say(self, *text: object, **kwargs: Any) -> None:
        if self.muted or (self.options.quiet and kwargs.get("file") is not sys.stderr):  # warnings always
            return
        try:
            print(*text, **kwargs)
        except OSError:  # the terminal or pipe reading us went away; stopping must still work
            self.muted = True

    def settings_for(self, user: str) -> Settings:
        return Settings(hall_id=self.layout.hall.id, broker_port=self.port, broker_username=user,
                        broker_password=SecretStr(self.credentials[user]))

    def hall_key(self) -> bytes:
        """The key every child reads from the shared data directory (HALL_DATA_DIR)."""
        return hall_key(Settings(data_dir=self.options.data_dir))

    def start_broker(self) -> None:
        broker_dir = self.options.data_dir / "broker"
        self.credentials = provision(self.layout, broker_dir, demo=True).credentials
        self.port = self.options.port or (18830 if _port_free(18830) else free_port())
        config = render_config(broker_dir, Listeners(port=self.port, tls_port=free_port(),
                                                     tls_bind="127.0.0.1"))
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.say(f"broker: Mosquitto ({mosquitto}) with {config} on 127.0.0.1:{self.port}")
        self.broker = BrokerProcess(config, self.port, die_with_parent=True)
        self.broker.start()
        self.say(f"device credentials: {broker_dir / 'credentials.toml'}")

    def _spawn(self, role: Role, args: RoleArgs, extra_env: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        """``role`` as a child process (``hall-devices`` with the role's own words), logging to the
        data folder, as the broker user of its device (or of the role: coordinator, web)."""
        data, user = self.options.data_dir, args.device_id or role.name
        env = {**os.environ, "HALL_HALL_ID": self.layout.hall.id, "HALL_BROKER_PORT": str(self.port),
               "HALL_BROKER_USERNAME": user, "HALL_BROKER_PASSWORD": self.credentials[user],
               "HALL_DATABASE_URL": f"sqlite:///{data / 'coordinator.sqlite3'}",
               "HALL_LAYOUT": str(self.layout_file), "HALL_DATA_DIR": str(data),
               **(extra_env or {})}
        with (data / role.log_name(args.device_id)).open("ab") as log:
            child = subprocess.Popen(dying_with_parent(role.command(args)), env=env, stdout=log, stderr=log,
                                     start_new_session=True)
        self.children.append(child)
        return child

    def _start(self, role: Role, args: RoleArgs) -> None:
        """A device's role: a Qt window as a child; an agent as a child, or as a thread group of
        this process (``in_process``), built as the registry builds it."""
        if role.qt:
            self._spawn(role, args, extra_env=qt_platform())
            return
        user = args.device_id or role.name
        self.agent_ids.append(user)
        if not (self.options.in_process and isinstance(role.body, Agent)):
            self._spawn(role, args)
            return
        settings = self.settings_for(user).model_copy(update={"data_dir": self.options.data_dir})
        agent = role.body.build(Context(settings, args, self.layout_file, self.layout))
        agent.start(None)
        self.agents.append(agent)

    def _bx6_screens(self, device: LedBusDevice) -> tuple[RoleArgs, str]:
        """A simulated BX-6E network controller per screen, each on its own local TCP port."""
        from hall_devices.demo.sim.bx6 import Bx6Simulator

        urls: list[str] = []
        for screen in self.layout.members(device.id):
            if isinstance(screen, WindowScreenDevice | HallScreenDevice):
                sim = Bx6Simulator(screen.address).start()
                self.net_screens.append(sim)
                urls.append(f"{screen.id}={sim.url}")
        return RoleArgs(device.id, screen_urls=tuple(urls)), (
            f"LED bus {device.id}: {len(self.net_screens)} simulated BX-6E network controllers on "
            f"127.0.0.1 ports {', '.join(str(s.port) for s in self.net_screens)}")

    def demo_layout(self) -> None:
        """The ticket QR of the demo points at this PC's web (the layout's hall.local address is a
        real hall's): a copy of the layout with ``policy.ticket_page_url`` set, in the data folder."""
        if not self.layout.policy.ticket_page_url.startswith("http://hall.local"):
            return  # the hall's own address: kept
        url = f"http://127.0.0.1:{self.web_port}/t/{{token}}"
        text = with_ticket_page(self.options.layout_path.read_text(encoding="utf-8"), url)
        self.layout_file = self.options.data_dir / "demo-layout.toml"
        self.layout_file.write_text(text, encoding="utf-8")
        self.say(f"ticket QR codes: {url} (this PC's web; a hall sets policy.ticket_page_url)")

    def start_coordinator(self) -> None:
        data = self.options.data_dir
        child = self._spawn(role_named("coordinator"), RoleArgs())
        self.say(f"coordinator: pid {child.pid}, store {data / 'coordinator.sqlite3'}, "
                 f"log {data / 'coordinator.log'}")

    def start_devices(self) -> None:
        """Every device of the layout that has a role, on a simulated device behind a pty."""
        for device, role in plan(self.layout, self.options.screens):
            args, where = self._stand_in(device)
            self._start(role, args)
            self.say(where)

    def _stand_in(self, device: Device) -> tuple[RoleArgs, str]:
        """The simulated hardware of ``device`` started; its role's arguments, and a line saying
        what it is and where."""
        devices = self.options.data_dir / "dev"
        if isinstance(device, PrinterDevice):
            sim = PrinterSimulator(devices / f"printer-{device.id}", encoding=device.encoding).start()
            self.printers.append(sim)
            return RoleArgs(device.id, serial=str(sim.path)), (
                f"printer {device.id}: simulated {device.paper_mm} mm {device.profile} ({device.encoding}) "
                f"at {sim.path}")
        if isinstance(device, PadBusDevice):
            pads = [p.address for p in self.layout.members(device.id) if isinstance(p, PadDevice)]
            bus = PadBusSimulator(devices / f"pads-{device.id}", pads).start()
            self.pad_buses.append(bus)
            return RoleArgs(device.id, serial=str(bus.path)), (
                f"pad bus {device.id}: {len(pads)} simulated pads at {bus.path}")
        if isinstance(device, LedBusDevice) and device.protocol == "bx6":
            return self._bx6_screens(device)
        if isinstance(device, LedBusDevice):
            addresses = [d.address for d in self.layout.members(device.id)
                         if isinstance(d, WindowScreenDevice | HallScreenDevice)]
            leds = LedBusSimulator(devices / f"leds-{device.id}", device.protocol, addresses).start()
            self.screens.append(leds)
            return RoleArgs(device.id, serial=str(leds.path)), (
                f"LED bus {device.id}: {len(addresses)} simulated {device.protocol} screens at {leds.path}")
        if isinstance(device, IdCardReaderDevice):
            reader = IdCardReaderSimulator(devices / f"idcard-{device.id}").start()
            self.readers.append((device, reader))
            return RoleArgs(device.id, serial=str(reader.path)), (
                f"ID card reader {device.id}: simulated module at kiosk {device.kiosk}, {reader.path}")
        if isinstance(device, AnnouncerDevice):
            # each run its own folder: the WAV numbers of successive runs never mix
            voice = self.options.data_dir / "voice" / datetime.now().strftime("%Y%m%d-%H%M%S")
            return RoleArgs(device.id, output=f"wav:{voice}"), (
                f"announcer {device.id}: Mandarin calls as WAV files in {voice}")
        if isinstance(device, KioskDevice) and device.scanner_serial:
            # The layout names a real hall's port (/dev/hall/...): the demo's scanner is simulated.
            scanner = ScannerSimulator(devices / f"scanner-{device.id}")
            self.scanners.append(scanner)
            return RoleArgs(device.id, windowed=True, scanner=str(scanner.path)), (
                f"kiosk {device.id}: {shown_where()}; simulated barcode scanner at {scanner.path}")
        # The Qt windows (kiosk, TV hall screen): nothing to simulate.
        shown = "kiosk" if isinstance(device, KioskDevice) else "hall screen"
        return RoleArgs(device.id, windowed=True), f"{shown} {device.id}: {shown_where()}"

    def start_web(self) -> None:
        """The dashboard and console, with demo sign-ins (a real hall adds its own users)."""
        # The demo's own users file, never the hall's (settings.web_users); a production web refuses
        # these passwords anyway.
        users = self.options.data_dir / "demo-users.toml"
        for name, role, password in DEMO_USERS:
            # The demo clerk may open every window of the demo's layout (one session per window).
            windows = tuple(w.number for w in self.layout.windows) if role == "clerk" else ()
            add_user(users, name, role, password, windows)
        port = self.web_port
        self._spawn(role_named("web"), RoleArgs(), extra_env={
            "HALL_WEB_PORT": str(port), "HALL_WEB_USERS": str(users), "HALL_WEB_DEMO": "1",
            "HALL_WEB_HOST": "127.0.0.1"})
        self.web_url = f"http://127.0.0.1:{port}"
        self.say(f"web: {self.web_url}  sign in as manager / manager-demo (dashboard), or clerk / clerk-demo "
                 "choosing a window (console); demo only: plain HTTP on this PC, a hall's web serves HTTPS "
                 "(docs/web.md)")

    def start_clients(self) -> None:
        # An account of its own: `monitor` stays free for the operator's mosquitto_sub below.
        self.summary = Summary(self.settings_for(UP), self.layout)
        self.summary.bus.start(15)
        if not self.summary.wait_online("coordinator", 30):
            raise RuntimeError(f"the coordinator did not come online; see "
                               f"{self.options.data_dir / 'coordinator.log'}")
        # Traffic waits for the agents: a key pressed before the pad agent reads its bus is lost.
        started = time.monotonic()
        missing = self.summary.wait_all_online(self.agent_ids, 30)
        if missing:
            self.say(f"warning: not online after 30 s: {', '.join(missing)} (see their logs in "
                     f"{self.options.data_dir})", file=sys.stderr)
        else:
            self.say(f"devices: all {len(self.agent_ids)} agents online "
                     f"{time.monotonic() - started:.1f} s after the coordinator")
        hall, data = self.layout.hall.id, self.options.data_dir
        self.say(f"watch the bus: mosquitto_sub -p {self.port} -u monitor "
                 f"-P '{self.credentials['monitor']}' -t '{hall_subtree(hall)}' -v")
        today = business_day(self.layout.hall, datetime.now(UTC))  # the hall's day, not this machine's
        self.say(f"statistics: {own_command()} report --date {today} "
                 f"--store {data / 'coordinator.sqlite3'} --layout {self.options.layout_path}")
        if self.options.traffic:
            cards = None
            if self.readers:  # with a kiosk window (issue 19: always, offscreen without a display),
                # the window checks the card in and the traffic counts the tickets it got
                device, reader = self.readers[0]
                cards = CardTraffic(device.kiosk, reader, self.hall_key(), CARD_SERVICE,
                                    checks_in=not self.options.screens)
            self.generator = TrafficGenerator(self.settings_for("traffic"), self.layout,
                                              TrafficMix(speed=self.options.speed),
                                              pad_bus=self.pad_buses[0] if self.pad_buses else None,
                                              cards=cards)
            self.generator.start(15)
            self.say(f"traffic: simulated applicants and clerks, time x {self.options.speed:g}")

    def watch(self, stop: StopSignals) -> None:
        deadline = time.monotonic() + self.options.duration_s if self.options.duration_s else None
        while not stop.wait(2.0):
            if self.summary:
                printed = sum(len(sim.tickets) for sim in self.printers)
                screen = next((s for s in self.screens if 1 in s.controllers), None)
                led = f"  1号窗口屏 window 1 LED: {screen.text(1).replace(chr(10), ' ')}" if screen else ""
                self.say(f"{self.summary.line(self.generator)}  打印 printed {printed}{led}", flush=True)
            if deadline and time.monotonic() > deadline:
                return
            for child in self.children:
                if child.poll() is not None:
                    self.say(f"a child exited with {child.returncode}: {child.args!r}; stopping",
                          file=sys.stderr)
                    return

    def stop(self) -> None:
        self.say("stopping ...", flush=True)
        if self.generator:
            self.generator.stop()
        if self.summary:
            self.summary.bus.stop()
        for agent in self.agents:
            agent.stop()
        for child in reversed(self.children):
            stop_child(child, 10)
        if self.broker:
            self.broker.stop()
        for sim in self.printers:
            sim.stop()
        for bus in self.pad_buses:
            bus.stop()
        for leds in self.screens:
            leds.stop()
        for net in self.net_screens:
            net.stop()
        for _device, reader in self.readers:
            reader.stop()
        for scanner in self.scanners:
            scanner.stop()
        self.say("stopped.")


def plan(layout: Layout, screens: bool) -> list[tuple[Device, Role]]:
    """The devices of ``layout`` that ``up`` runs a role for, each with its role from the registry;
    the Qt windows (kiosk, TV hall screen) only with ``screens``."""
    found = [(device, role_for(device)) for device in layout.devices]
    return [(device, role) for device, role in found if role is not None and (screens or not role.qt)]


def run_up(layout: Layout, options: UpOptions) -> int:
    options.data_dir.mkdir(parents=True, exist_ok=True)
    stop = StopSignals((signal.SIGINT, signal.SIGTERM, signal.SIGHUP))
    hall = Hall(layout, options)
    try:
        hall.start_broker()
        hall.demo_layout()
        hall.start_coordinator()
        hall.start_devices()
        hall.start_web()
        hall.start_clients()
        hall.say("Ctrl-C stops everything.", flush=True)
        hall.watch(stop)
        return 0
    finally:
        hall.stop()
        stop.restore()
