"""Printer benchmark: kiosk request → last byte at the printer, against the wire time.

Run: .venv/bin/python benchmarks/printer.py [--tickets 40]

The real coordinator and printer agent run as child processes against a Mosquitto provisioned on
free ports; the printer simulator reads its pty at the given baud rate (10 bit times a byte, as a
UART) in a process of its own (benchmarks/sim_process.py): a real printer has its own CPU, and a
simulator thread here would take the GIL and a core from the benchmark's clients. The limit is
the wire time of the same bytes: bits ÷ baud. "Last byte" is the ticket's last byte, not a status
query after it; the figure is read once the job's result is published (after the agent's poll that
follows the ticket), so every ticket byte has arrived by then.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.coordinator import client
from benchmarks.sim_process import PrinterMirror
from benchmarks.support import HALL, broker, pct, role
from hall_devices.contract import (
    DEVICE_STATUS,
    PRINT_JOB,
    PRINT_RESULT,
    TICKET_REQUEST,
    PrintResult,
    TicketRequest,
)
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.requests import Requester

Split = tuple[float, float, float, float]


def run(baud: int, tickets: int, directory: Path) -> tuple[list[float], list[float], list[int], list[float],
                                                            list[Split]]:
    """Per ticket: request → last ticket byte (ms), its wire time (ms), its size (bytes),
    request → the print job at the broker (ms: the coordinator's share, seen by a monitor), and the
    rest (the printer agent's share) split at the printer as the simulator saw it (ms): job at the
    broker → the DLE EOT 1 that cleared the ticket began to arrive (negative when the coordinator's
    heads-up had it asked before the job), → the ticket's first byte began to arrive, first → last
    byte minus the wire time; and job at the broker → the ticket's first byte, whole."""
    latencies, wire, sizes, to_job = [], [], [], []
    splits: list[Split] = []
    with broker(directory / f"b{baud}") as hall:
        sim = PrinterMirror(directory / f"dev{baud}" / "printer", baud=baud).start()
        store = f"sqlite:///{directory / f'store{baud}.sqlite3'}"
        with role(["coordinator"], hall.env("coordinator", HALL_DATABASE_URL=store)), \
                role(["printer", "--id", "P1", "--serial", str(sim.path)], hall.env("P1")):
            kiosk = Bus(hall.settings("K1"), BusOptions(client_id="bench-K1", hall_id=HALL,
                                                        device_id="K1", device_kind="kiosk"))
            requests = Requester(kiosk)
            requests.listen(TICKET_REQUEST, kiosk="K1")
            results: set[str] = set()
            answered = threading.Condition()

            def result(inbound: Inbound[PrintResult]) -> None:
                with answered:
                    results.add(inbound.payload.command_id or "")
                    answered.notify_all()

            kiosk.subscribe(PRINT_RESULT, result, printer="P1")
            printer_ok = threading.Event()
            kiosk.subscribe(DEVICE_STATUS, lambda m: printer_ok.set() if m.payload.state == "ok" else None,
                            device="P1")
            jobs_seen: dict[str, float] = {}
            monitor = client(hall.port, "monitor", hall.credentials["monitor"], "bench-monitor",
                             lambda m: jobs_seen.setdefault(json.loads(m.payload)["job_id"],
                                                            time.monotonic()),
                             [PRINT_JOB.topic(hall=HALL, printer="P1")])
            kiosk.start()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # until the coordinator answers
                try:
                    requests.call(TICKET_REQUEST, TicketRequest(
                        command_id=uuid.uuid4().hex, service_id="passport", paper=False), 1.0, kiosk="K1")
                    break
                except Exception:
                    time.sleep(0.2)
            # The agent has subscribed to its jobs and polled the printer once (a job published
            # before the agent's first subscription would be lost: nothing holds it yet).
            assert printer_ok.wait(30), "the printer agent never said ok"
            for i in range(tickets):
                before, queries = len(sim.received), sim.status_bytes
                printed = len(sim.tickets)
                sent = time.monotonic()
                reply = requests.call(TICKET_REQUEST, TicketRequest(
                    command_id=uuid.uuid4().hex, service_id="passport", paper=True), 30, kiosk="K1")
                job_id = getattr(reply, "print_job_id", None)
                assert reply.ok and job_id
                ticket = sim.wait_tickets(printed + 1, 60)[printed]

                def result_in(job: str | None = job_id) -> bool:
                    return job in results

                with answered:
                    assert answered.wait_for(result_in, 30)
                latencies.append((sim.last_print_byte_at - sent) * 1000)
                to_job.append((jobs_seen[job_id] - sent) * 1000)
                # The agent's status queries travel too; count the ticket's bytes only.
                size = len(sim.received) - before - (sim.status_bytes - queries)
                sizes.append(size)
                wire.append(size * 10 / baud * 1000)
                splits.append(((ticket.query_before_at - jobs_seen[job_id]) * 1000,
                               (ticket.first_byte_at - ticket.query_before_at) * 1000,
                               (sim.last_print_byte_at - ticket.first_byte_at) * 1000 - wire[-1],
                               (ticket.first_byte_at - jobs_seen[job_id]) * 1000))
                if i % 5 == 4:
                    print(f"  {baud} baud: {i + 1}/{tickets}", file=sys.stderr)
            kiosk.stop()
            monitor.loop_stop()
            monitor.disconnect()
        sim.stop()
    return latencies, wire, sizes, to_job, splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    # 40: with 15 or 20 the p99 was the slowest ticket, one late wake of the machine's.
    parser.add_argument("--tickets", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hall-bench-printer-") as tmp:
        for baud in (9600, 115200):
            latencies, wire, sizes, to_job, splits = run(baud, args.tickets, Path(tmp))
            agent = [x - j - w for x, j, w in zip(latencies, to_job, wire, strict=True)]
            over = [x - w for x, w in zip(latencies, wire, strict=True)]  # each ticket's own
            print(f"{baud} baud: kiosk request → last byte at the printer p50 "
                  f"{statistics.median(latencies):.0f} ms, p99 {pct(latencies, 99):.0f} ms "
                  f"({len(latencies)} tickets of ~{statistics.median(sizes):.0f} bytes); wire time of "
                  f"the same bytes (limit) {statistics.median(wire):.0f} ms; over it p50 "
                  f"{statistics.median(over):.1f} ms, p90 {pct(over, 90):.1f} ms, p99 "
                  f"{pct(over, 99):.1f} ms; of it request → "
                  f"job at the broker p50 {statistics.median(to_job):.1f} ms, p99 {pct(to_job, 99):.1f} ms, "
                  f"job → last byte minus wire time p50 {statistics.median(agent):.1f} ms, "
                  f"p99 {pct(agent, 99):.1f} ms")
            parts = [[split[i] for split in splits] for i in range(4)]
            print(f"{baud} baud: job → last byte minus wire time, at the printer: job at the broker → "
                  + "; → ".join(f"{name} p50 {statistics.median(part):.1f} ms, p99 {pct(part, 99):.1f} ms"
                                for name, part in zip(("DLE EOT 1 that cleared the ticket",
                                                       "the ticket's first byte",
                                                       "its last byte minus wire time"), parts[:3],
                                                      strict=True))
                  + f"; job at the broker → the ticket's first byte p50 {statistics.median(parts[3]):.1f} "
                  f"ms, p99 {pct(parts[3], 99):.1f} ms")


if __name__ == "__main__":
    main()
