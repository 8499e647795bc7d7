"""Scale: a hall of 300 windows (each with its pad and LED screen) and 30 kiosks on this machine.

Run: .venv/bin/python benchmarks/scale.py [--windows 300] [--kiosks 30] [--calls 60]

The layout comes from `hall-devices layout generate`; Mosquitto and the coordinator run as their
own processes, the 51 device agents as threads of this process (as on a server hosting the buses),
every device simulated on a pty. Measured: time from starting the agents until every agent and every
pad and screen on the buses reports online (aim: within 10 s), then the call latency (keypad frame in
→ LED frame out) across all buses, next to the same measure with a single window calling.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.support import pct  # noqa: E402
from hall_devices.contract import DEVICE_STATUS, TICKET_REQUEST, DeviceState, TicketRequest  # noqa: E402
from hall_devices.demo.up import Hall, UpOptions  # noqa: E402
from hall_devices.layout import PadDevice, WindowScreenDevice, load_layout, parse_layout  # noqa: E402
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound  # noqa: E402
from hall_devices.mqtt.requests import Requester  # noqa: E402
from hall_devices.ops.generate import generate  # noqa: E402
from hall_devices.pads.codec import Key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=300)
    parser.add_argument("--kiosks", type=int, default=30)
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-bench-scale-") as tmp:
        path = Path(tmp) / "scale.toml"
        path.write_text(generate(load_layout(ROOT / "examples" / "hall.toml"), args.windows, args.kiosks))
        layout = parse_layout(path.read_text(), str(path))
        hall = Hall(layout, UpOptions(layout_path=path, data_dir=Path(tmp) / "hall", traffic=False,
                                      in_process=True, quiet=True))
        try:
            hall.start_broker()
            hall.start_coordinator()
            agent_kinds = ("printer", "led_bus", "pad_bus", "announcer")
            agents = {d.id for d in layout.devices if d.kind in agent_kinds}
            members = {d.id for d in layout.devices if d.kind in ("pad", "window_screen")}
            online: set[str] = set()

            def seen(inbound: Inbound[Any]) -> None:
                status = inbound.payload
                if status.state in (DeviceState.OK, DeviceState.WARNING):
                    online.add(status.device_id)
                    online.update(m for m, s in status.members.items() if s is DeviceState.OK)

            watch = Bus(hall.settings_for("monitor"), BusOptions(client_id="scale-watch", hall_id="demo",
                                                                 device_id="monitor", device_kind="bench"))
            watch.subscribe(DEVICE_STATUS, seen)
            watch.start(20)
            started = time.monotonic()
            hall.start_devices()
            while not (agents | members) <= online and time.monotonic() - started < 60:
                time.sleep(0.01)
            up_s = time.monotonic() - started
            missing = (agents | members) - online
            kiosk = Bus(hall.settings_for("traffic"), BusOptions(client_id="scale-kiosk", hall_id="demo",
                                                                 device_id="traffic", device_kind="bench"))
            tickets = Requester(kiosk)
            tickets.listen(TICKET_REQUEST, kiosk="K1")
            kiosk.start(20)
            # Buses are started in layout order: L1/KB1 first, so bus n is the n-th simulator.
            by_window = {d.window: (hall.pad_buses[int(d.bus[2:]) - 1], d.address)
                         for d in layout.devices if isinstance(d, PadDevice)}
            leds_of = {d.window: (hall.screens[int(d.bus[1:]) - 1], d.address)
                       for d in layout.devices if isinstance(d, WindowScreenDevice)}
            sample = [w for w in range(1, args.windows, max(1, args.windows // args.calls))][: args.calls]
            latencies = []
            for window in sample:
                pads, address = by_window[window]
                leds, screen = leds_of[window]
                pads.type(address, f"{window:04d}")
                leds.wait(lambda ls=leds, sc=screen: "欢迎光临" in ls.text(sc), 10)
                service = layout.window_services(layout.window(window))[0][0]
                reply = tickets.call(TICKET_REQUEST, TicketRequest(
                    command_id=uuid.uuid4().hex, service_id=service, paper=False), 10, kiosk="K1")
                assert reply.ticket is not None, reply
                number = reply.ticket.number
                pressed = time.monotonic()
                pads.press(address, Key.NEXT)
                if leds.wait(lambda ls=leds, sc=screen, n=number: n in ls.text(sc), 10):
                    latencies.append((leds.controllers[screen].updated_at - pressed) * 1000)
            kiosk.stop()
            watch.stop()
        finally:
            hall.stop()
    print(f"scale: {args.windows} windows with their pads and screens, {args.kiosks} kiosks' printers, "
          f"{len(agents)} agents: every device online {up_s:.1f} s after the agents started "
          f"(aim < 10 s){'; never online: ' + ', '.join(sorted(missing)[:5]) if missing else ''}")
    p50, p99 = statistics.median(latencies), pct(latencies, 99)
    print(f"scale: call latency keypad frame in → LED frame out over {len(latencies)} windows on "
          f"{len(hall.screens)} buses: p50 {p50:.1f} ms, p99 {p99:.1f} ms (baseline: the whole-hall figure "
          "for the 22-window example hall in the same run.py)")


if __name__ == "__main__":
    main()
