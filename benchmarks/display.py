"""Display benchmark: a window's Next → the complete LED frame at the screen, against its limits.

Run: .venv/bin/python benchmarks/display.py [--calls 100] [--paced-calls 200] [--baud 9600]
                                           [--unreachable-after S]

The real coordinator and LED agent run as child processes on a Mosquitto provisioned on free ports;
the BX screen simulator reads its pty at the configured baud (10 bit times a byte), in a process of
its own too (benchmarks/sim_process.py): real screens have their own CPU, and a simulator thread in
this process would take the GIL and one of the cores from the benchmark's three MQTT clients (kiosk,
pads, watcher) and inflate the figures. Its times are taken in that process on the same
system-wide monotonic clock as ours. Probes, rewrites
and hall-screen frames go out in pieces that a call preempts (docs/display.md, "Preemption"). Five
set-ups of the serial bus, each with its own agent; each call follows a ticket, which changes the
hall screen's waiting row:
- the example hall (idle screens probed, every screen rewritten whole every 30 s) at a quick
  clerk's pace: 0.5–1.5 s from a Finish on screen to the next ticket and Next, as in a hall, where
  the bus has gaps for the hall screen's frames (issue 18's acceptance figure; ``--paced-calls``,
  by default twice ``--calls``: 200 calls, so its p99 is not merely the largest of a few);
- the example hall back to back: the next ticket and Next at once after the Finish is on screen, so
  the bus is never idle long enough for the hall screen's frame (~180 ms): it is preempted, and after
  two preemptions written whole, at times just before a call — a saturated bus, a stress figure;
- back to back with `probe_idle = false`, also `refresh_s = 0`, and also the hall screen on a bus of
  its own: what probes, rewrites and the hall screen's frames still cost a call.
Beside it the
BX-6 agent drives the same windows' screens as BX-6E network controllers (simulated on local TCP
ports, also in a process of their own, started for this part only): window Next → the complete
dynamic-area packet (A7 00, the call drawn as pixels) received on the controller's socket. Next to
the figures, measured in the same run: the frame's wire time (bits ÷ baud) and a raw MQTT hop (one
publish → one delivery through the same broker).

Each serial set-up's line gives the latency's p50/p99, and over the wire time p50/p90/p99 with the
p99s of its two parts before the bus (Next → window state delivered, state → first byte at the
screen); percentiles as ``benchmarks.support.pct`` defines them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sim_process import Bx6Mirror, Bx6Screen, LedBusMirror
from benchmarks.support import HALL, broker, pct, role
from hall_devices.contract import (
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_STATE,
    TicketRequest,
    WindowAction,
    WindowCommand,
    WindowState,
)
from hall_devices.layout import load_layout
from hall_devices.leds.render import ensure_qt, render_text
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.requests import NoReplyError, Requester

LAYOUT = Path(__file__).resolve().parent.parent / "examples" / "hall.toml"
# A quick clerk: from the applicant's Finish on screen to the next ticket and Next (seconds). In the
# gap the bus writes the hall screen's waiting row and calls, and probes an idle screen.
PACE = (0.5, 1.5)


def client(settings: object, user: str) -> tuple[Bus, Requester]:
    bus = Bus(settings, BusOptions(client_id=f"bench-{user}-{uuid.uuid4().hex[:4]}", hall_id=HALL,  # type: ignore[arg-type]
                                   device_id=user, device_kind="bench"))
    return bus, Requester(bus)


def raw_hop(hall: object, count: int) -> list[float]:
    """One-way: publish a call-sized message, time its delivery to another client."""
    got = threading.Event()
    arrived: list[float] = []

    def on(_m: Inbound[WindowState]) -> None:
        arrived.append(time.perf_counter())
        got.set()

    sender, _ = client(hall.settings("coordinator"), "coordinator")  # type: ignore[attr-defined]
    receiver, _ = client(hall.settings("monitor"), "monitor")  # type: ignore[attr-defined]
    receiver.subscribe(WINDOW_STATE, on, window=99)
    sender.start()
    receiver.start()
    from datetime import UTC, datetime

    from hall_devices.contract import Text, WindowState, WindowStatus
    from hall_devices.coordinator import texts

    state = WindowState(window=99, name=Text(zh="测", en="t"), status=WindowStatus.CALLING,
                        since=datetime.now(UTC), ticket_number="A001",
                        screen=texts.call_text("A001", 99), pad_text="A001",
                        window_label=texts.window_label(99, Text(zh="测", en="t")))
    hops = []
    for _ in range(count):
        got.clear()
        sent = time.perf_counter()
        sender.publish(WINDOW_STATE, state, window=99)
        got.wait(5)
        hops.append((arrived[-1] - sent) * 1000)
    sender.stop()
    receiver.stop()
    return hops


def shown(leds: LedBusMirror, text: str, frames_before: int) -> None:
    """Wait until window 3's screen has taken a new frame showing ``text``."""
    screen = leds.controllers[3]
    if not leds.wait(lambda: text in leds.text(3) and screen.frames > frames_before, 10):
        raise TimeoutError(f"window 3's screen never showed {text!r}")


def first_writes(leds: LedBusMirror, before: dict[int, int]) -> None:
    """Wait until every screen at the addresses of ``before`` has taken a frame since then."""
    if not leds.wait(lambda: all(leds.controllers[a].frames > n for a, n in before.items()), 30):
        raise TimeoutError("the LED agent never wrote every screen of its bus")


def bx6_layout(tmp: Path, sims: dict[str, Bx6Screen]) -> Path:
    """The example hall with L1 as BX-6 network screens, each at its simulator's URL."""
    text = LAYOUT.read_text(encoding="utf-8").replace('protocol = "bx"', 'protocol = "bx6"')
    for screen_id, sim in sims.items():
        text = text.replace(f'id = "{screen_id}"\nbus = "L1"',
                            f'id = "{screen_id}"\nbus = "L1"\nurl = "{sim.url}"')
    path = tmp / "hall-bx6.toml"
    path.write_text(text, encoding="utf-8")
    load_layout(path)  # every bx6 screen has its url
    return path


def bus_layout(tmp: Path, name: str, options: str, hall_screen_apart: bool = False) -> Path:
    """The example hall with ``options`` (TOML lines) added to L1, e.g. its probe period or
    ``probe_idle = false``; ``hall_screen_apart``: the LED hall screen on a bus of its own (L2,
    not driven here), so L1 carries the window screens only."""
    text = LAYOUT.read_text(encoding="utf-8").replace('protocol = "bx"', f'protocol = "bx"\n{options}')
    if hall_screen_apart:
        text = text.replace('id = "HS1"\nbus = "L1"', 'id = "HS1"\nbus = "L2"') + (
            '\n[[devices]]\nkind = "led_bus"\nid = "L2"\nserial = "/dev/hall/led-bus-2"\n')
    path = tmp / f"hall-{name}.toml"
    path.write_text(text, encoding="utf-8")
    load_layout(path)
    return path


@dataclass
class Serial:
    """One serial bus set-up's calls: per call (ms) the latency, its frame's wire time, and its
    parts; what held the bus while a call waited."""

    label: str
    pace: tuple[float, float] | None = None  # s from a Finish on screen to the next ticket; None: at once
    latencies: list[float] = field(default_factory=list)
    wire: list[float] = field(default_factory=list)
    to_agent: list[float] = field(default_factory=list)
    in_agent: list[float] = field(default_factory=list)
    on_wire: list[float] = field(default_factory=list)
    blockers: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)

    def lines(self, baud: int) -> list[str]:
        lat, wire, med = self.latencies, self.wire, statistics.median
        over = [x - w for x, w in zip(lat, wire, strict=True)]
        return [
            f"window Next → complete LED frame at the screen ({baud} baud, {self.label}): p50 "
            f"{statistics.median(lat):.1f} ms, p99 {pct(lat, 99):.1f} ms ({len(lat)} calls); the frame's "
            f"wire time (limit) {med(wire):.1f} ms for {med(wire) * baud / 10000:.0f} "
            f"bytes; over it p50 {statistics.median(over):.1f}, p90 {pct(over, 90):.1f}, p99 "
            f"{pct(over, 99):.1f} ms; p99 of its parts Next → state {pct(self.to_agent, 99):.1f}, "
            f"state → first byte {pct(self.in_agent, 99):.1f} ms",
            f"  of which: Next → window state delivered (coordinator, MQTT) p50 "
            f"{med(self.to_agent):.1f}, p99 {pct(self.to_agent, 99):.1f} ms; state → first byte "
            f"at the screen (agent, bus busy) p50 {statistics.median(self.in_agent):.1f}, "
            f"p99 {pct(self.in_agent, 99):.1f} ms; first byte → frame shown (wire, paced) p50 "
            f"{statistics.median(self.on_wire):.1f}, p99 {pct(self.on_wire, 99):.1f} ms",
            f"  frames on the bus between a call's state and its frame: {describe(self.blockers, len(lat))}"]


def describe(blockers: list[tuple[int, tuple[int, ...]]], calls: int) -> str:
    """What held the bus while a call waited: window 3's own earlier frame, the hall screen's areas,
    or another window's screen (only probes and periodic rewrites write those here)."""
    kinds: dict[str, int] = {}
    for address, areas in blockers:
        kind = ("window 3" if address == 3 else f"hall screen areas {list(areas)}" if address == 200
                else "other screens (probes, rewrites)")
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())) + f" (over {calls} calls)" \
        if kinds else f"none (over {calls} calls)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100,
                        help="calls in each back-to-back set-up and at the BX-6 screens, and raw MQTT hops")
    parser.add_argument("--paced-calls", type=int, metavar="N",
                        help="calls in the first set-up, at a quick clerk's pace (the acceptance figure; "
                             "default: twice --calls, 200)")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--unreachable-after", type=float, metavar="S",
                        help="the first set-up's unreachable_after_s (default: the example hall's, 5 s): "
                             "idle screens are probed one every S / screens seconds, each probe holding the "
                             "bus; the other two set-ups run without probes (probe_idle = false), and "
                             "without rewrites too (refresh_s = 0)")
    args = parser.parse_args()
    paced_calls = 2 * args.calls if args.paced_calls is None else args.paced_calls
    layout = load_layout(LAYOUT)
    with tempfile.TemporaryDirectory(prefix="hall-bench-display-") as tmp, broker(Path(tmp)) as hall:
        addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
        leds = LedBusMirror(Path(tmp) / "dev" / "leds", "bx", addresses, baud=args.baud).start()
        ensure_qt()
        store = f"sqlite:///{Path(tmp) / 'store.sqlite3'}"
        # Before the coordinator starts: the hop publishes as `coordinator`, and one account is one
        # session (the broker binds the client id to the username).
        hops = raw_hop(hall, args.calls)
        with role(["coordinator"], hall.env("coordinator", HALL_DATABASE_URL=store)):
            kiosk, tickets = client(hall.settings("K1"), "K1")
            pads, windows = client(hall.settings("KB1"), "KB1")
            tickets.listen(TICKET_REQUEST, kiosk="K1")
            windows.listen(WINDOW_COMMAND, window=3)
            watcher, _ = client(hall.settings("monitor"), "monitor")
            states: list[tuple[float, str | None]] = []  # window 3's states as a screen agent gets them
            watcher.subscribe(WINDOW_STATE, lambda m: states.append(
                (time.monotonic(), m.payload.ticket_number)), window=3)
            watcher.start()
            kiosk.start()
            pads.start()

            def command(action: WindowAction, **fields: str) -> bool:
                reply = windows.call(WINDOW_COMMAND, WindowCommand(
                    command_id=uuid.uuid4().hex, action=action, **fields), 10, window=3)
                return reply.ok

            def next_number() -> str:
                reply = tickets.call(TICKET_REQUEST, TicketRequest(
                    command_id=uuid.uuid4().hex, service_id="company_change", paper=False), 10, kiosk="K1")
                assert reply.ticket is not None, reply
                return reply.ticket.number

            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the coordinator may not have subscribed yet
                try:
                    if command(WindowAction.LOGIN, clerk_id="0301"):
                        break
                except NoReplyError:
                    continue
            net_latencies, net_bytes = [], []
            default = "idle screens probed, one every unreachable_after_s 5 s / 23 screens, each " \
                "rewritten whole every 30 s"
            if args.unreachable_after is not None:
                default = f"unreachable_after_s {args.unreachable_after:g}: idle screens probed one every " \
                    f"{args.unreachable_after:g} s / 23 screens, each rewritten whole every 30 s"
            probed = None if args.unreachable_after is None else bus_layout(
                Path(tmp), "probed", f"unreachable_after_s = {args.unreachable_after}")
            setups = [(Serial(f"the example hall at a quick clerk's pace, {PACE[0]:g}–{PACE[1]:g} s from a "
                              f"Finish on screen to the next ticket and Next; {default}", PACE), probed),
                      (Serial(f"the example hall back to back, the next ticket and Next at once after a "
                              f"Finish on screen; {default}"), probed),
                      (Serial("back to back, probe_idle = false: no probes, each screen rewritten whole "
                              "every 30 s"),
                       bus_layout(Path(tmp), "unprobed", "probe_idle = false")),
                      (Serial("back to back, probe_idle = false, refresh_s = 0: the bus carries only news"),
                       bus_layout(Path(tmp), "quiet", "probe_idle = false\nrefresh_s = 0")),
                      (Serial("back to back, probe_idle = false, refresh_s = 0, the hall screen on a bus of "
                              "its own"),
                       bus_layout(Path(tmp), "apart", "probe_idle = false\nrefresh_s = 0", True))]
            pauses = random.Random(18)  # the same pauses in every run
            for serial, path in setups:
                env = hall.env("L1") if path is None else hall.env("L1", HALL_LAYOUT=str(path))
                on_bus = [d.address for d in load_layout(path or LAYOUT).members("L1")]  # type: ignore[union-attr]
                before = {a: leds.controllers[a].frames for a in on_bus}
                with role(["leds", "--bus", "L1", "--serial", str(leds.path)], env):
                    # The agent's first writes of every screen at 9600 baud (~2 s; longer when the
                    # machine is loaded and the process starts slowly): calls are measured after them.
                    first_writes(leds, before)
                    time.sleep(0.5)
                    began = time.monotonic()
                    for _ in range(args.calls if serial.pace is None else paced_calls):
                        if serial.pace is not None:
                            time.sleep(pauses.uniform(*serial.pace))
                        number = next_number()
                        screen = leds.controllers[3]
                        frames = screen.frames
                        sent = time.monotonic()
                        command(WindowAction.NEXT)
                        shown(leds, number, frames)
                        serial.latencies.append((screen.updated_at - sent) * 1000)
                        serial.wire.append(screen.last_size * 10 / args.baud * 1000)
                        got = next((at for at, n in states if n == number and at >= sent), sent)
                        serial.to_agent.append((got - sent) * 1000)
                        serial.in_agent.append((screen.started_at - got) * 1000)
                        serial.on_wire.append((screen.updated_at - screen.started_at) * 1000)
                        serial.blockers += [(address, areas) for start, done, address, areas
                                            in list(leds.history) if got < done <= screen.started_at]
                        command(WindowAction.FINISH)
                        shown(leds, "欢迎", frames + 1)
                    print(f"  {len(serial.latencies)} calls in {time.monotonic() - began:.0f} s: "
                          f"{serial.label[:60]}", file=sys.stderr)
            # The same windows' screens as BX-6E network controllers, the same bus id (one agent at a
            # time). Their simulators start only now, in a process of their own: their socket threads
            # cost the serial set-ups nothing and take no GIL from this process's clients.
            members = list(layout.members("L1"))
            net_sims = Bx6Mirror(addresses).start()  # the addresses of ``members``, in order
            nets = {d.id: screen for d, screen in zip(members, net_sims.screens, strict=True)}
            net3 = next(nets[d.id] for d in members if getattr(d, "window", None) == 3)
            try:
                with role(["leds", "--bus", "L1"],
                          hall.env("L1", HALL_LAYOUT=str(bx6_layout(Path(tmp), nets)))):
                    time.sleep(3)  # connections and the first picture of every screen
                    for _ in range(args.calls):
                        drawn = render_text(f"请{next_number()}号\n到3号窗口", 128, 32)
                        sent = time.monotonic()
                        command(WindowAction.NEXT)
                        if not net3.wait(lambda: net3.bitmap(0) == drawn, 10):  # noqa: B023 (waited here)
                            raise TimeoutError("window 3's BX-6 screen never showed its call")
                        net_latencies.append((net3.state.updated_at - sent) * 1000)
                        net_bytes.append(net3.state.last_size)
                        command(WindowAction.FINISH)
            finally:
                net_sims.stop()
            kiosk.stop()
            pads.stop()
            watcher.stop()
        leds.stop()
    print(f"raw MQTT hop through the same broker: p50 {statistics.median(hops):.2f} ms, "
          f"p99 {pct(hops, 99):.2f} ms ({len(hops)} messages)")
    for serial, _path in setups:
        for line in serial.lines(args.baud):
            print(line)
    print(f"window Next → complete BX-6 dynamic-area packet on the controller's socket: p50 "
          f"{statistics.median(net_latencies):.1f} ms, p99 {pct(net_latencies, 99):.1f} ms "
          f"({len(net_latencies)} calls; {statistics.median(net_bytes):.0f} bytes of pixels and parameters)")


if __name__ == "__main__":
    main()
