"""Every benchmark in one go; writes benchmarks/RESULTS.md, each figure next to its baseline.

Run: .venv/bin/python benchmarks/run.py     (about 10 minutes on the 2-core machine; the display
                                            benchmark alone ~6 of them)

The component benchmarks run as they are (each prints its figures with the baselines it measured
in the same run). Then a whole hall (`hall-devices up` on simulated devices) gives the end-to-end
call latency (keypad frame in → LED frame out), resident memory of every role, and recovery times.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.support import pct  # noqa: E402
from hall_devices.contract import DEVICE_STATUS, TICKET_REQUEST, TicketRequest  # noqa: E402
from hall_devices.demo.up import Hall, UpOptions  # noqa: E402
from hall_devices.layout import load_layout  # noqa: E402
from hall_devices.mqtt.bus import Inbound  # noqa: E402
from hall_devices.pads.codec import Key  # noqa: E402

# (benchmark, its arguments, seconds it may take). The display's acceptance set-up (at a clerk's
# pace, ~1.2 s a call) takes 200 calls and each back-to-back set-up 100 (~0.25 s a call): ~6 minutes
# on the quiet 2-core machine, ~3.5 more than its 60 calls each did.
BENCHMARKS = [("coordinator", ["--commands", "5000", "--latency", "1000"], 400),
              ("printer", ["--tickets", "40"], 400),
              ("display", ["--calls", "100", "--paced-calls", "200"], 900),
              ("kiosk", ["--tickets", "500"], 400),
              ("scale", ["--windows", "300", "--kiosks", "30", "--calls", "60"], 400),
              ("web", ["--flood", "30", "--samples", "30"], 400),
              ("region", ["--tickets", "5000"], 400),
              ("booking_import", ["--rows", "1000", "--singles", "200"], 400)]


def run_component(name: str, args: list[str], timeout_s: float) -> list[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0:
        lines.append(f"FAILED ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return lines


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bare_python_mb() -> float:
    """Baseline: a Python interpreter that has only imported the package's bus and contract."""
    child = subprocess.Popen([sys.executable, "-c", "import time, hall_devices.mqtt.bus; time.sleep(5)"],
                             cwd=ROOT)
    time.sleep(2)
    size = rss_mb(child.pid)
    child.kill()
    child.wait()
    return size


def role_name(argv: list[str]) -> str:
    """'printer P1' from [setpriv ..., python, -m, hall_devices.cli, printer, --id, P1, ...]."""
    rest = [str(a) for a in argv[argv.index("hall_devices.cli") + 1:]]
    return " ".join(rest[0:3:2])


def whole_hall(tmp: Path) -> list[str]:
    layout = load_layout(ROOT / "examples" / "hall.toml")
    hall = Hall(layout, UpOptions(layout_path=ROOT / "examples" / "hall.toml", data_dir=tmp / "hall",
                                  traffic=False, quiet=True))
    out = []
    try:
        hall.start_broker()
        hall.start_coordinator()
        hall.start_devices()
        hall.start_clients()
        from hall_devices.mqtt.bus import Bus, BusOptions
        from hall_devices.mqtt.requests import Requester

        kiosk = Bus(hall.settings_for("traffic"), BusOptions(client_id="bench-kiosk", hall_id="demo",
                                                              device_id="traffic", device_kind="bench"))
        tickets = Requester(kiosk)
        tickets.listen(TICKET_REQUEST, kiosk="K1")
        kiosk.start()
        pads, leds = hall.pad_buses[0], hall.screens[0]
        pads.type(3, "0301")
        assert leds.wait(lambda: "欢迎光临" in leds.text(3), 10)
        calls = []
        for _ in range(30):
            reply = tickets.call(TICKET_REQUEST, TicketRequest(
                command_id=uuid.uuid4().hex, service_id="company_change", paper=False), 10, kiosk="K1")
            assert reply.ticket is not None, reply
            number = reply.ticket.number
            time.sleep(0.3)  # the hall screen's update of the waiting count goes out first
            pressed = time.monotonic()
            pads.press(3, Key.NEXT)
            leds.wait(lambda n=number: n in leds.text(3), 10)
            calls.append((leds.controllers[3].updated_at - pressed) * 1000)
            pads.press(3, Key.RATE)
            leds.wait(lambda: "欢迎光临" in leds.text(3), 10)
        out.append(f"call latency, keypad frame in → LED frame out (whole hall, BX bus unpaced pty): "
                   f"p50 {statistics.median(calls):.1f} ms, p99 {pct(calls, 99):.1f} ms ({len(calls)} calls)")
        baseline = bare_python_mb()
        sizes = ", ".join(f"{role_name(list(c.args))} {rss_mb(c.pid):.0f} MB"  # type: ignore[arg-type]
                          for c in hall.children)
        out.append(f"resident memory: {sizes}; baseline: a bare interpreter with the bus imported "
                   f"{baseline:.0f} MB")
        # Recovery: the coordinator SIGKILLed, until it answers again; the broker restarted, until
        # every agent is back.
        coordinator = hall.children[0]
        coordinator.kill()
        coordinator.wait()
        hall.children.remove(coordinator)
        killed = time.monotonic()
        hall.start_coordinator()
        while True:
            try:
                tickets.call(TICKET_REQUEST, TicketRequest(command_id=uuid.uuid4().hex,
                             service_id="passport", paper=False), 0.5, kiosk="K1")
                break
            except Exception:
                continue
        out.append(f"recovery: coordinator SIGKILLed → answering again {time.monotonic() - killed:.2f} s "
                   "(baseline: its restart alone, process start + state rebuild, is most of it)")
        assert hall.broker is not None
        hall.broker.stop()
        stopped, down_at = datetime.now(UTC), time.monotonic()
        hall.broker.start()
        listening = time.monotonic()
        back = time.monotonic() - listening if _all_back(hall, stopped) else float("nan")
        out.append(f"recovery: broker restarted → every agent online again {back:.2f} s after it "
                   f"listened (it was down {listening - down_at:.2f} s; agents retry after 1, 2, 4 … s)")
        kiosk.stop()
    finally:
        hall.stop()
    return out


def _all_back(hall: Hall, since: datetime, timeout_s: float = 60) -> bool:
    """Every agent has published an online status stamped after ``since``."""
    from hall_devices.mqtt.bus import Bus, BusOptions

    agents = {"coordinator", "P1", "P2", "L1", "KB1", "VOICE1"}
    fresh: set[str] = set()
    watch = Bus(hall.settings_for("monitor"), BusOptions(client_id="bench-watch", hall_id="demo",
                                                          device_id="monitor", device_kind="bench"))

    def seen(inbound: Inbound[Any]) -> None:
        status = inbound.payload
        if status.updated_at > since and status.state in ("ok", "warning"):
            fresh.add(status.device_id)

    watch.subscribe(DEVICE_STATUS, seen)
    watch.start(timeout_s)
    deadline = time.monotonic() + timeout_s
    while not agents <= fresh and time.monotonic() < deadline:
        time.sleep(0.02)
    watch.stop()
    return agents <= fresh


def main() -> None:
    started = time.monotonic()
    sections = []
    for name, args, timeout_s in BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr)
        sections.append((name, run_component(name, args, timeout_s)))
    with tempfile.TemporaryDirectory(prefix="hall-bench-all-") as tmp:
        print("running the whole hall ...", file=sys.stderr)
        sections.append(("whole hall", whole_hall(Path(tmp))))
    took = time.monotonic() - started
    lines = ["# Benchmark results", "",
             f"`benchmarks/run.py`, {datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, "
             f"Python {sys.version.split()[0]}; {took / 60:.1f} minutes in all. Each figure is printed "
             "next to the baseline measured in the same run.", ""]
    for name, found in sections:
        lines += [f"## {name}", "", "```", *found, "```", ""]
    (ROOT / "benchmarks" / "RESULTS.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
