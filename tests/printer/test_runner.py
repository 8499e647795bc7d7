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
from hall_devices.printer.runner import FRESH_ANSWER_S, PrinterRunner
from hall_devices.printer.ticket import render
from tests.printer.test_agent import make_job
from tests.support import wait_until

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


# --- the coordinator's heads-up (print_expected): the job's DLE EOT 1 asked before the job comes ---

class SetClock:
    """The runner's clock, set by the test (the answer's freshness is counted on it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def received(sim: PrinterSimulator, expected: bytes) -> bool:
    """Whether the printer got exactly ``expected`` once as many bytes have come (a write the
    runner did not wait on reaches the simulator's thread a moment later)."""
    wait_until(lambda: len(sim.received) >= len(expected), what=f"{len(expected)} bytes at the printer")
    return bytes(sim.received) == expected


@pytest.fixture
def clock() -> SetClock:
    return SetClock(100.0)


@pytest.fixture
def timed(layout: Layout, sim: PrinterSimulator, tmp_path: Path, clock: SetClock) -> Iterator[PrinterRunner]:
    printer = layout.device("P1")
    assert isinstance(printer, PrinterDevice)
    runner = PrinterRunner(printer, layout.hall, JobLedger(tmp_path / "timed.sqlite3"), str(sim.path),
                           clock=clock)
    assert runner.poll().state == "ok"  # opens the port; the printer is known fine
    yield runner
    runner.close()


def test_after_a_heads_up_the_job_reads_its_answer_and_the_ticket_goes_at_once(
        timed: PrinterRunner, sim: PrinterSimulator, layout: Layout) -> None:
    assert timed.expect()  # written at once, the reply not awaited
    assert received(sim, POLL + ONLINE + SETUP)
    job = make_job("J-11", "B111")
    assert timed.print_job(job).ok
    ticket = render(job, timed.printer, layout.hall)
    assert bytes(sim.received) == POLL + ONLINE + SETUP + ticket[len(SETUP):] + POLL  # no 2nd query
    assert [t.big() for t in sim.wait_tickets(1)] == [["B111"]]
    assert timed.ledger.state("J-11") == ("done", None)


def test_duplicate_heads_ups_ask_once(timed: PrinterRunner, sim: PrinterSimulator, layout: Layout) -> None:
    assert [timed.expect(), timed.expect(), timed.expect()] == [True, False, False]
    job = make_job("J-12", "B112")
    assert timed.print_job(job).ok
    ticket = render(job, timed.printer, layout.hall)
    assert bytes(sim.received) == POLL + ONLINE + SETUP + ticket[len(SETUP):] + POLL


def test_a_heads_up_with_no_job_leaves_what_a_poll_finds(layout: Layout, tmp_path: Path,
                                                         clock: SetClock) -> None:
    # Paced like a UART at 1200 baud (~6 ms a byte): the heads-up's reply comes well after the
    # poll's first query could be written, so a reply not read first would be taken for its answer.
    sim = PrinterSimulator(tmp_path / "dev" / "slow", baud=1200).start()
    printer = layout.device("P1")
    assert isinstance(printer, PrinterDevice)
    runner = PrinterRunner(printer, layout.hall, JobLedger(tmp_path / "slow.sqlite3"), str(sim.path),
                           clock=clock)
    try:
        assert runner.poll().state == "ok"
        assert runner.expect()
        sim.switches.paper_near_end = True  # told by DLE EOT 4's reply only: one reply off misses it
        status = runner.poll()
        assert bytes(sim.received) == POLL + ONLINE + SETUP + POLL  # the pending reply read, then four
        assert status == runner.status and status.state == "warning"
        assert sorted(status.faults) == ["paper_near_end"]
        assert sim.tickets == []  # the setup bytes print nothing
    finally:
        runner.close()
        sim.stop()


def test_a_printer_last_seen_faulted_gets_the_query_alone_and_the_job_fails_as_before(
        timed: PrinterRunner, sim: PrinterSimulator) -> None:
    sim.switches.paper_out = True
    assert timed.poll().failure is PrintFailure.PAPER_OUT
    assert timed.expect()
    assert received(sim, POLL + POLL + ONLINE)  # no setup bytes
    result = timed.print_job(make_job("J-13", "B113"))
    assert (result.ok, result.reason) == (False, PrintFailure.PAPER_OUT)
    assert bytes(sim.received) == POLL + POLL + ONLINE + POLL  # nothing of the job, as without it
    assert timed.ledger.state("J-13") == ("failed", PrintFailure.PAPER_OUT)
    assert sim.tickets == []


def test_an_answer_read_just_now_clears_the_job_and_a_stale_one_does_not(
        timed: PrinterRunner, sim: PrinterSimulator, clock: SetClock, layout: Layout) -> None:
    assert timed.expect()
    # A due poll reads the reply first, then gives way to the job waiting: nothing written since.
    assert timed.poll_unless(lambda: True) is None
    clock.now += FRESH_ANSWER_S / 2
    job = make_job("J-14", "B114")
    assert timed.print_job(job).ok
    ticket = render(job, timed.printer, layout.hall)
    assert bytes(sim.received) == POLL + ONLINE + SETUP + ticket[len(SETUP):] + POLL
    sent = len(sim.received)
    assert timed.expect()
    assert timed.poll_unless(lambda: True) is None
    clock.now += FRESH_ANSWER_S + 0.1  # older than FRESH_ANSWER_S: the job asks again
    job = make_job("J-15", "B115")
    assert timed.print_job(job).ok
    ticket = render(job, timed.printer, layout.hall)
    assert bytes(sim.received)[sent:] == ONLINE + SETUP + ONLINE + SETUP + ticket[len(SETUP):] + POLL
    assert [t.big() for t in sim.wait_tickets(2)] == [["B114"], ["B115"]]


def test_a_heads_up_query_older_than_the_window_is_read_away_and_the_job_asks_again(
        timed: PrinterRunner, sim: PrinterSimulator, clock: SetClock, layout: Layout) -> None:
    assert timed.expect()
    clock.now += FRESH_ANSWER_S + 0.1
    job = make_job("J-16", "B116")
    assert timed.print_job(job).ok
    ticket = render(job, timed.printer, layout.hall)
    assert bytes(sim.received) == POLL + ONLINE + SETUP + ONLINE + SETUP + ticket[len(SETUP):] + POLL


def test_a_silent_printer_after_a_heads_up_ends_the_job_as_without_one(
        timed: PrinterRunner, sim: PrinterSimulator) -> None:
    sim.switches.silent = True
    assert timed.expect()
    with_heads_up = timed.print_job(make_job("J-17", "B117"))
    after_first = bytes(sim.received)[len(POLL):]
    timed.poll()  # known faulted now (not responding) either way; asked again, no heads-up
    before = len(sim.received)
    without = timed.print_job(make_job("J-18", "B118"))
    assert (with_heads_up.ok, with_heads_up.reason) == (without.ok, without.reason) == (
        False, PrintFailure.NOT_RESPONDING)
    assert after_first == ONLINE + SETUP + ONLINE  # the query (unanswered), the poll's first, given up
    assert bytes(sim.received)[before:] == ONLINE + ONLINE  # faulted: no setup bytes
    assert timed.ledger.state("J-17") == timed.ledger.state("J-18") == ("failed", PrintFailure.NOT_RESPONDING)
    assert sim.tickets == []
