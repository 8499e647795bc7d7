"""When the printer agent asks the printer's status, so that no poll stands before a job.

The worker's two handlers are called here as the worker calls them, on the test's thread, with a
clock the test sets; the printer is the simulator on a real pty, the broker a real Mosquitto.
DLE EOT n is ``10 04 n`` (protocols.md §1).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.contract import PRINT_EXPECTED, PRINT_JOB, PrintExpected, PrintJob
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.layout import Layout, PrinterDevice
from hall_devices.mqtt.bus import Inbound
from hall_devices.printer.agent import HeadsUp, PrinterAgent
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.runner import PrinterRunner
from hall_devices.printer.status import PORT_MISSING, PrinterStatus
from tests.printer.test_agent import make_job
from tests.support import HallBroker

POLL = b"\x10\x04\x01" b"\x10\x04\x02" b"\x10\x04\x03" b"\x10\x04\x04"


class SetClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PrinterSimulator]:
    simulator = PrinterSimulator(tmp_path / "dev" / "printer").start()
    yield simulator
    simulator.stop()


@pytest.fixture
def clock() -> SetClock:
    return SetClock(100.0)


@pytest.fixture
def agent(own_broker: HallBroker, layout: Layout, sim: PrinterSimulator, tmp_path: Path,
          clock: SetClock) -> Iterator[PrinterAgent]:
    agent = PrinterAgent(own_broker.settings("P1"), layout, "P1", tmp_path / "agent", url=str(sim.path),
                         poll_interval_s=5.0, clock=clock)
    agent.bus.start(10)  # connected, so a job's result is confirmed; the worker thread is not started
    yield agent
    agent.bus.stop()
    agent.runner.close()


def job_message(job: PrintJob) -> Inbound[PrintJob]:
    return Inbound(route=PRINT_JOB, topic=PRINT_JOB.topic(hall="demo", printer="P1"),
                   params={"hall": "demo", "printer": "P1"}, payload=job, duplicate=False,
                   retained=False, mid=1, qos=1)


def test_a_jobs_own_poll_restarts_the_interval_so_no_poll_follows_the_job(
        agent: PrinterAgent, sim: PrinterSimulator, clock: SetClock) -> None:
    assert agent._on_tick(100.0) == 105.0
    assert bytes(sim.received) == POLL
    clock.now = 104.0  # the periodic poll is due at 105, while the ticket is on the wire
    agent._on_batch([job_message(make_job("J-1", "B101"))])
    ticket = sim.wait_tickets(1)[0]
    assert ticket.big() == ["B101"]
    assert 0 < ticket.query_before_at <= ticket.first_byte_at  # DLE EOT 1 came, then the ticket
    assert agent.runner.ledger.state("J-1") == ("done", None)
    after_job = bytes(sim.received)
    assert after_job.startswith(POLL + b"\x10\x04\x01") and after_job.endswith(POLL)
    # At 106 the status read at 104 is fresh: nothing is asked until 109.
    assert agent._on_tick(106.0) == 109.0
    assert bytes(sim.received) == after_job
    assert agent._on_tick(109.0) == 114.0
    assert bytes(sim.received) == after_job + POLL


def test_a_job_answered_from_the_ledger_keeps_the_poll_due(
        agent: PrinterAgent, sim: PrinterSimulator, clock: SetClock) -> None:
    agent._on_tick(100.0)
    agent.runner.ledger.finished("J-2", None)  # printed before: answered again, no status read
    clock.now = 104.0
    agent._on_batch([job_message(make_job("J-2", "B102"))])
    assert bytes(sim.received) == POLL
    assert agent._on_tick(105.0) == 110.0
    assert bytes(sim.received) == POLL + POLL


def test_a_due_poll_gives_way_to_a_waiting_job(agent: PrinterAgent, sim: PrinterSimulator) -> None:
    agent._post_job(job_message(make_job("J-3", "B103")))  # as paho's thread posts it, not yet taken
    assert agent._on_tick(100.0) == 100.0  # no query sent: the worker takes the job, then polls
    assert bytes(sim.received) == b""


def test_a_due_poll_does_not_give_way_to_a_heads_up_or_a_poll_request(
        agent: PrinterAgent, sim: PrinterSimulator) -> None:
    """Only a job is worth stopping a poll for: heads-ups with no job behind them, coming faster than
    a poll's four round trips, kept the status from ever being read."""
    agent.worker.post(HeadsUp(Inbound(
        route=PRINT_EXPECTED, topic=PRINT_EXPECTED.topic(hall="demo", printer="P1"),
        params={"hall": "demo", "printer": "P1"}, payload=PrintExpected(printer_id="P1", request_id="r-1"),
        duplicate=False, retained=False, mid=0, qos=0)))
    agent.request_poll()
    assert agent._on_tick(100.0) == 105.0  # polled, and the next one due a poll interval on
    assert bytes(sim.received) == POLL


def test_a_poll_stops_between_queries_never_with_one_in_flight(layout: Layout, sim: PrinterSimulator,
                                                                tmp_path: Path) -> None:
    printer = layout.device("P1")
    assert isinstance(printer, PrinterDevice)
    runner = PrinterRunner(printer, layout.hall, JobLedger(tmp_path / "ledger.sqlite3"), str(sim.path))
    asked = iter([False, False, True])
    assert runner.poll_unless(lambda: next(asked)) is None
    assert bytes(sim.received) == b"\x10\x04\x01" b"\x10\x04\x02"  # both answered, the third not sent
    assert runner.status == PORT_MISSING and runner.polled_at is None  # as before the poll
    sim.switches.paper_near_end = True
    status = runner.poll_unless(lambda: False)
    assert isinstance(status, PrinterStatus) and status.state == "warning"
    assert bytes(sim.received)[6:] == POLL
    runner.close()
