"""What the runner writes to the printer around a job, byte for byte, on a real pty.

DLE EOT n is ``10 04 n``; ESC @ ``1B 40`` and FS & ``1C 26`` (protocols.md §1) begin every ticket and
print nothing, so they may go with the DLE EOT 1 that clears the job, never anything after them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.contract import PrintFailure
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.layout import Layout, PrinterDevice
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.runner import PrinterRunner
from hall_devices.printer.ticket import render
from tests.printer.test_agent import make_job

ONLINE = b"\x10\x04\x01"
SETUP = b"\x1b\x40\x1c\x26"
POLL = b"\x10\x04\x01" b"\x10\x04\x02" b"\x10\x04\x03" b"\x10\x04\x04"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PrinterSimulator]:
    simulator = PrinterSimulator(tmp_path / "dev" / "printer").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def runner(layout: Layout, sim: PrinterSimulator, tmp_path: Path) -> Iterator[PrinterRunner]:
    printer = layout.device("P1")
    assert isinstance(printer, PrinterDevice)
    runner = PrinterRunner(printer, layout.hall, JobLedger(tmp_path / "ledger.sqlite3"), str(sim.path))
    yield runner
    runner.close()


def test_a_ticket_goes_behind_its_online_query_whole_and_once(runner: PrinterRunner, sim: PrinterSimulator,
                                                              layout: Layout) -> None:
    runner.poll()
    job = make_job("J-1", "B101")
    assert runner.print_job(job).ok
    ticket = render(job, runner.printer, layout.hall)
    assert ticket.startswith(SETUP)
    assert bytes(sim.received) == POLL + ONLINE + ticket + POLL
    assert [t.big() for t in sim.wait_tickets(1)] == [["B101"]]


def test_a_printer_gone_offline_gets_the_setup_bytes_and_nothing_that_prints(
        runner: PrinterRunner, sim: PrinterSimulator) -> None:
    runner.poll()  # fine when last asked
    sim.switches.cover_open = True
    result = runner.print_job(make_job("J-2", "B102"))
    assert (result.ok, result.reason) == (False, PrintFailure.COVER_OPEN)
    assert bytes(sim.received) == POLL + ONLINE + SETUP + POLL
    assert runner.ledger.state("J-2") == ("failed", PrintFailure.COVER_OPEN)
    assert sim.tickets == []


def test_a_printer_last_seen_faulted_gets_only_the_query(runner: PrinterRunner,
                                                         sim: PrinterSimulator) -> None:
    sim.switches.paper_out = True
    runner.poll()  # known faulted: the job's first write is the query alone
    result = runner.print_job(make_job("J-3", "B103"))
    assert (result.ok, result.reason) == (False, PrintFailure.PAPER_OUT)
    assert bytes(sim.received) == POLL + ONLINE + POLL


def test_the_simulator_answers_a_query_before_the_bytes_behind_it(sim: PrinterSimulator) -> None:
    assert sim.segments(ONLINE + SETUP) == [ONLINE, SETUP]
    assert sim.segments(b"AB" + POLL) == [b"AB\x10\x04\x01", b"\x10\x04\x02", b"\x10\x04\x03",
                                          b"\x10\x04\x04"]
    assert sim.segments(SETUP) == [SETUP]
