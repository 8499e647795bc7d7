"""CPU work per call on the call path (issue 18): µs of thread CPU time per stage, not wall latency.

Run: .venv/bin/python benchmarks/cpu_path.py [--calls 300] [--profile]

Wall latency on a shared 2-core machine mostly measures the neighbours; CPU time per stage
(``time.thread_time_ns`` of the thread doing it, inclusive of the stages it calls) is what each
call costs whatever else runs. The real coordinator service (engine, SQLite store, bus) and the real
LED agent (session, BX frames on a pty read by the screen simulator) run in this process on a
provisioned Mosquitto; their workers are not started: this thread takes each message from the
worker's inbox and runs the worker's own batch and tick, so each stage is timed on one thread.
paho's stage (``Bus._deliver``: topic match, decode, validate, post) is timed on paho's thread.
``--profile`` also prints cProfile's top functions of the worker's stages (slower: the table's
figures are then inflated).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support import HALL, LAYOUT, Broker, broker
from hall_devices.contract import (
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_STATE,
    TicketRequest,
    WindowAction,
    WindowCommand,
    WindowState,
)
from hall_devices.coordinator import engine as engine_module
from hall_devices.coordinator import service as service_module
from hall_devices.coordinator import store as store_module
from hall_devices.coordinator.outbound import Outbound
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.layout import load_layout
from hall_devices.leds import agent as led_agent_module
from hall_devices.leds import session as session_module
from hall_devices.mqtt import bus as bus_module
from hall_devices.mqtt.bus import Bus, BusOptions
from hall_devices.mqtt.requests import Requester

WINDOW = 3


class Stages:
    """Inclusive thread CPU time (ns) per stage, per call label; each wrapper costs ~1 µs."""

    def __init__(self) -> None:
        self.label: str | None = None
        self.ns: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self._depth = threading.local()

    def wrap(self, owner: Any, name: str, stage: str,
             when: Callable[..., bool] = lambda *_a: True) -> None:
        original = getattr(owner, name)
        is_static = isinstance(owner, type) and isinstance(owner.__dict__.get(name), staticmethod)

        def timed(*args: Any, **kwargs: Any) -> Any:
            label = self.label
            if label is None or not when(*args):
                return original(*args, **kwargs)
            start = time.thread_time_ns()
            try:
                return original(*args, **kwargs)
            finally:
                self.ns[label][stage].append(time.thread_time_ns() - start)

        setattr(owner, name, staticmethod(timed) if is_static else timed)

    def add(self, stage: str, ns: int) -> None:
        if self.label is not None:
            self.ns[self.label][stage].append(ns)

    def table(self, label: str, calls: int) -> list[str]:
        rows = []
        for stage, values in self.ns[label].items():
            per_call = sum(values) / calls / 1000
            rows.append(f"  {stage:<58} {per_call:8.0f} µs/call  ({len(values) / calls:.1f}×, "
                        f"median {statistics.median(values) / 1000:.0f} µs)")
        return rows


def pump(inbox: queue.Queue[Any], timeout_s: float = 5.0) -> list[Any]:
    """Everything in a worker's inbox, waiting for the first item (its wakes dropped)."""
    items = [inbox.get(timeout=timeout_s)]
    while True:
        try:
            items.append(inbox.get_nowait())
        except queue.Empty:
            break
    return [i for i in items if type(i).__name__ != "_Wake"]


def coordinator(hall: Broker, tmp: Path, calls: int, stages: Stages, profile: cProfile.Profile | None
                ) -> None:
    layout = load_layout(LAYOUT)
    service = service_module.CoordinatorService(hall.settings("coordinator"), layout, tmp / "store.sqlite3")
    bus = service.bus
    this = lambda self, *_a: self is bus  # noqa: E731 (a predicate)
    stages.wrap(Bus, "_deliver", "paho: on_message → match, decode, validate, post", this)
    stages.wrap(bus_module, "decode", "paho:   decode (json + pydantic)")
    stages.wrap(service, "_decide", "worker: decide (dedup lookup, engine, rows)")
    stages.wrap(engine_module.Engine, "handle", "worker:   engine.handle")
    stages.wrap(store_module.EventStore, "reply_for", "worker:   store.reply_for (dedup read)")
    stages.wrap(service, "_commit", "worker: commit (high-water, SQLite fsync)")
    stages.wrap(service, "_publish", "worker: publish (all effects)")
    stages.wrap(service, "_window_state", "worker:   window states (view + publish)")
    stages.wrap(Outbound, "effect", "worker:   effects (call, prompt, …)")
    stages.wrap(service, "_answer", "worker:   reply")
    stages.wrap(Bus, "publish", "worker:     Bus.publish (topic, encode, paho)", this)
    stages.wrap(bus_module, "encode", "worker:       encode (model_dump_json)")
    stages.wrap(bus._client.__class__, "publish", "worker:       paho publish + socket write",
                lambda client, *_a: client is bus._client)
    stages.wrap(service, "_on_tick", "worker: tick (acks)")
    inbox = service.worker._inbox
    service.reader.start()
    bus.start(10)
    kiosk = Bus(hall.settings("K1"), BusOptions(client_id=f"cpu-K1-{uuid.uuid4().hex[:4]}", hall_id=HALL,
                                                 device_id="K1", device_kind="bench"))
    pad = Bus(hall.settings("KB1"), BusOptions(client_id=f"cpu-KB1-{uuid.uuid4().hex[:4]}", hall_id=HALL,
                                                device_id="KB1", device_kind="bench"))
    kiosk.start()
    pad.start()

    def run(label: str, publish: Callable[[], object]) -> None:
        stages.label = label
        publish()
        items = pump(inbox)
        start = time.thread_time_ns()
        if profile is not None and label != "ticket":
            profile.enable()
        service._process(items)
        service._on_tick(time.monotonic())
        if profile is not None:
            profile.disable()
        stages.add("worker: batch + tick, in all", time.thread_time_ns() - start)
        # The PUBACKs: their wakes are the tick's, counted apart from the call.
        time.sleep(0.003)
        stages.label = None
        for _ in range(20):
            if not service._unconfirmed:
                break
            with_items = pump(inbox, 1.0)
            service._process(with_items) if with_items else None
            service._on_tick(time.monotonic())

    def window(action: WindowAction, **fields: str) -> Callable[[], object]:
        return lambda: pad.publish(WINDOW_COMMAND, WindowCommand(command_id=uuid.uuid4().hex, action=action,
                                                                 **fields), window=WINDOW)

    time.sleep(0.3)
    while not inbox.empty():  # the connection's marker: every state republished
        service._process(pump(inbox))
    run("login", window(WindowAction.LOGIN, clerk_id="0301"))
    for _ in range(calls):
        run("ticket", lambda: kiosk.publish(TICKET_REQUEST, TicketRequest(
            command_id=uuid.uuid4().hex, service_id="company_change", paper=False), kiosk="K1"))
        run("Next", window(WindowAction.NEXT))
        run("Finish", window(WindowAction.FINISH))
    kiosk.stop()
    pad.stop()
    bus.stop()
    service.reader.stop()
    service.store.close()
    service.lock.release()


def threaded(hall: Broker, tmp: Path, calls: int, stages: Stages, _profile: cProfile.Profile | None
             ) -> None:
    """The coordinator as it runs (its worker thread started): this process's CPU per Next and
    per Finish (the device clients here included, the same in every run) and the worker's wakes."""
    layout = load_layout(LAYOUT)
    service = service_module.CoordinatorService(hall.settings("coordinator"), layout,
                                                tmp / "threaded.sqlite3")
    ticks = [0]
    original = service._on_tick

    def counted(mono: float) -> float | None:
        ticks[0] += 1
        return original(mono)

    service.worker._on_tick = counted
    service.start(10)
    requesters, devices = {}, []
    for user in ("K1", "KB1"):
        device = Bus(hall.settings(user), BusOptions(client_id=f"cpu-{user}-{uuid.uuid4().hex[:4]}",
                                                      hall_id=HALL, device_id=user, device_kind="bench"))
        requesters[user] = Requester(device)
        devices.append(device)
        device.start()
    tickets, windows = requesters["K1"], requesters["KB1"]
    tickets.listen(TICKET_REQUEST, kiosk="K1")
    windows.listen(WINDOW_COMMAND, window=WINDOW)

    def window(action: WindowAction, **fields: str) -> None:
        windows.call(WINDOW_COMMAND, WindowCommand(command_id=uuid.uuid4().hex, action=action, **fields),
                     10, window=WINDOW)

    window(WindowAction.LOGIN, clerk_id="0301")
    for _ in range(calls):
        tickets.call(TICKET_REQUEST, TicketRequest(command_id=uuid.uuid4().hex, service_id="company_change",
                                                   paper=False), 10, kiosk="K1")
        for label, action in (("Next", WindowAction.NEXT), ("Finish", WindowAction.FINISH)):
            stages.label = label
            before, woken = time.process_time_ns(), ticks[0]
            window(action)
            time.sleep(0.02)  # the PUBACKs and acknowledgements of this call
            stages.add("process CPU, reply waited + 20 ms (all threads, clients too)",
                       time.process_time_ns() - before)
            stages.add("worker wakes (count, not µs: ×1000)", (ticks[0] - woken) * 1_000_000)
            stages.label = None
    for device in devices:
        device.stop()
    service.stop()


def leds(hall: Broker, tmp: Path, calls: int, stages: Stages, profile: cProfile.Profile | None) -> None:
    # Without probes and rewrites (they would hold the bus): this measures the call's own work.
    quiet = tmp / "hall-quiet.toml"
    quiet.write_text(LAYOUT.read_text(encoding="utf-8").replace(
        'protocol = "bx"', 'protocol = "bx"\nprobe_idle = false\nrefresh_s = 0'), encoding="utf-8")
    layout = load_layout(quiet)
    addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
    sim = LedBusSimulator(tmp / "dev" / "leds", "bx", addresses, baud=9600).start()
    agent = led_agent_module.LedAgent(hall.settings("L1"), layout, "L1", url=str(sim.path))
    this = lambda self, *_a: self is agent.bus  # noqa: E731
    stages.wrap(Bus, "_deliver", "paho: on_message → match, decode, validate, post", this)
    stages.wrap(bus_module, "decode", "paho:   decode (json + pydantic)")
    stages.wrap(agent, "_on_batch", "worker: batch (render, want)")
    stages.wrap(agent, "_render_window", "worker:   render window (text → regions → want)")
    stages.wrap(session_module.LedSession, "want", "worker:     session.want")
    stages.wrap(agent, "_on_tick", "worker: tick (next_write, write, report)")
    stages.wrap(session_module.LedSession, "next_write", "worker:   session.next_write (incl. BX encode)")
    stages.wrap(session_module, "screen_bytes", "worker:     screen_bytes (BX frame encode)")
    stages.wrap(agent.link, "write", "worker:   serial write")
    stages.wrap(session_module.LedSession, "written", "worker:   session.written")
    stages.wrap(session_module.LedSession, "report", "worker:   session.report + status")
    inbox = agent.worker._inbox
    agent._render_all()
    agent.reader.start()
    agent.bus.start(10)
    coordinator_bus = Bus(hall.settings("coordinator"), BusOptions(
        client_id="coordinator", hall_id=HALL, device_id="coordinator", device_kind="bench"))
    coordinator_bus.start()
    from datetime import UTC, datetime

    from hall_devices.contract import Text, WindowStatus
    from hall_devices.coordinator import texts

    def state(number: str | None) -> WindowState:
        screen = texts.call_text(number, WINDOW) if number else Text(zh="欢迎光临", en="Welcome")
        return WindowState(window=WINDOW, name=Text(zh="综合窗口", en="General"),
                           status=WindowStatus.CALLING if number else WindowStatus.IDLE,
                           since=datetime.now(UTC), ticket_number=number, screen=screen,
                           pad_text=number or "",
                           window_label=texts.window_label(WINDOW, Text(zh="综合", en="G")))

    def settle(within_s: float) -> None:
        """Run the worker (untimed) until the bus is idle: replies taken, nothing to write."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                agent._on_batch(pump(inbox, 0.05))
            next_at = agent._on_tick(agent.clock())
            idle = agent.session.state is session_module.LinkState.IDLE
            if idle and (next_at is None or next_at > agent.clock() + 0.5):
                return

    settle(30)
    for i in range(calls):
        for label, number in (("Next", f"A{i % 900 + 100}"), ("Finish", None)):
            stages.label = label
            frames = sim.controllers[WINDOW].frames
            coordinator_bus.publish(WINDOW_STATE, state(number), window=WINDOW)
            items = pump(inbox)
            start = time.thread_time_ns()
            if profile is not None:
                profile.enable()
            agent._on_batch(items)
            agent._on_tick(agent.clock())
            if profile is not None:
                profile.disable()
            stages.add("worker: batch + tick until the frame is written, in all",
                       time.thread_time_ns() - start)
            stages.label = None
            sim.wait(lambda: sim.controllers[WINDOW].frames > frames, 5)  # noqa: B023
            settle(5)
    coordinator_bus.stop()
    agent.bus.stop()
    agent.reader.stop()
    sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--only", choices=["coordinator", "threaded", "leds"])
    parser.add_argument("--sort", default="tottime", help="cProfile's order (tottime, cumulative)")
    parser.add_argument("--callees", metavar="REGEX", help="also print the callees of these functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-bench-cpu-") as tmp, broker(Path(tmp)) as hall:
        for name, part in (("coordinator", coordinator), ("threaded", threaded), ("leds", leds)):
            if args.only not in (None, name):
                continue
            stages = Stages()
            profile = cProfile.Profile(time.thread_time) if args.profile else None  # CPU, not wall
            part(hall, Path(tmp), args.calls, stages, profile)
            for label in ("Next", "Finish"):
                print(f"{name}, {label} ({args.calls} calls): thread CPU µs per call, by stage")
                for line in stages.table(label, args.calls):
                    print(line)
            if profile is not None:
                stats = pstats.Stats(profile).sort_stats(args.sort)
                stats.print_stats(35)
                if args.callees:
                    stats.print_callees(args.callees)


if __name__ == "__main__":
    main()
