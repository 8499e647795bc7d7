"""The printer agent end to end: real Mosquitto, the real coordinator, bytes on a pty."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall_devices.contract import (
    ALERT,
    DEVICE_STATUS,
    PRINT_EXPECTED,
    PRINT_JOB,
    PRINT_RESULT,
    PrintExpected,
    PrintJob,
    Text,
    TicketClass,
    TicketInfo,
    TicketStatus,
)
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from hall_devices.printer.agent import PrinterAgent
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.status import PrinterStatus
from hall_devices.printer.ticket import render
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe, wait_until


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[PrinterSimulator]:
    simulator = PrinterSimulator(tmp_path / "dev" / "printer-k1", encoding="gb18030").start()
    yield simulator
    simulator.stop()


def start_agent(broker: HallBroker, layout: Layout, sim: PrinterSimulator, data: Path,
                poll_s: float = 30.0) -> PrinterAgent:
    agent = PrinterAgent(broker.settings("P1"), layout, "P1", data, url=str(sim.path),
                         poll_interval_s=poll_s, fault_poll_interval_s=0.2)
    agent.start()
    return agent


@pytest.fixture
def hall_with_printer(own_broker: HallBroker, layout: Layout, tmp_path: Path,
                      sim: PrinterSimulator) -> Iterator[tuple[Hall, PrinterAgent]]:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = start_agent(own_broker, layout, sim, tmp_path / "agent")
    yield hall, agent
    agent.stop()
    hall.stop()


def test_ticket_prints_paper_out_fails_and_reprint_recovers(
        hall_with_printer: tuple[Hall, PrinterAgent], sim: PrinterSimulator) -> None:
    hall, _agent = hall_with_printer
    broker = hall.broker
    watch = probe(broker.port, "monitor", broker.credentials["monitor"],
                  subscribe=[ALERT.topic(hall="demo"),
                             PRINT_RESULT.topic(hall="demo", printer="P1")])
    reply = hall.take("passport", paper=True)
    assert reply.ticket and reply.print_job_id
    printed = sim.wait_tickets(1)[0]
    assert printed.big() == [reply.ticket.number]
    assert printed.qr_payloads == [reply.ticket.status_url]
    assert "普通护照申领" in printed.text and printed.cut
    done = json.loads(watch.expect(lambda m: m.topic.endswith("/result")).payload)
    assert done == {**done, "command_id": reply.print_job_id, "ok": True}

    sim.switches.paper_out = True
    failed_reply = hall.take("passport", paper=True)
    assert failed_reply.print_job_id  # the coordinator did not know yet; the agent finds out
    # The result comes from the agent, the alerts from the coordinator: in either order.
    failure = [json.loads(watch.expect(lambda m: m.topic.endswith(("/result", "/alert"))).payload)
               for _ in range(3)]
    results = [m for m in failure if "command_id" in m]
    assert [(r["command_id"], r["ok"], r["reason"]) for r in results] == [
        (failed_reply.print_job_id, False, "paper_out")]
    assert {m["kind"] for m in failure if m not in results} == {"paper_out", "print_failed"}
    retained = probe(broker.port, "monitor", broker.credentials["monitor"],
                     subscribe=[DEVICE_STATUS.topic(hall="demo", device="P1")])
    status = json.loads(retained.expect(lambda m: True).payload)
    assert status["state"] == "fault" and "paper_out" in status["faults"]
    retained.stop()
    # The coordinator now knows: no job for a printer without paper; the kiosk shows the number.
    assert hall.take("passport", paper=True).print_job_id is None
    assert len(sim.tickets) == 1

    sim.switches.paper_out = False
    wait_until(lambda: hall.service.engine.supervisor.printer_usable("P1"), 5, "paper back")
    assert failed_reply.ticket
    reprint = hall.staff("reprint", ticket_id=failed_reply.ticket.ticket_id)
    assert reprint.ok
    again = sim.wait_tickets(2)[1]
    assert again.big() == [failed_reply.ticket.number] and "（补打 / reprint）" in again.text
    cleared = {json.loads(watch.expect(lambda m: m.topic.endswith("/alert")).payload)["kind"]
               for _ in range(2)}
    assert cleared == {"paper_out", "print_failed"}
    watch.stop()


def make_job(job_id: str, number: str) -> PrintJob:
    return PrintJob(job_id=job_id, kiosk_id="K1", hall_name=Text(zh="示例大厅", en="Demo hall"),
                    ticket=TicketInfo(
                        ticket_id=f"2026-11-23-{number}", number=number, service_id="passport",
                        service_name=Text(zh="普通护照申领", en="Passport"),
                        department_name=Text(zh="公安局", en="Police"), ticket_class=TicketClass.NORMAL,
                        status=TicketStatus.WAITING, issued_at=datetime.now(UTC), people_ahead=0,
                        estimated_minutes=0, windows=[6]))


def test_a_job_id_never_prints_twice_across_restarts(own_broker: HallBroker, layout: Layout,
                                                     sim: PrinterSimulator, tmp_path: Path) -> None:
    coordinator = probe(own_broker.port, "coordinator", own_broker.credentials["coordinator"],
                        subscribe=[PRINT_RESULT.topic(hall="demo", printer="P1")])
    topic = PRINT_JOB.topic(hall="demo", printer="P1")
    data = tmp_path / "agent"
    agent = start_agent(own_broker, layout, sim, data)
    coordinator.client.publish(topic, encode(make_job("J-1", "B101")), qos=1)
    assert json.loads(coordinator.expect(lambda m: True).payload)["ok"] is True
    agent.stop()
    agent = start_agent(own_broker, layout, sim, data)
    coordinator.client.publish(topic, encode(make_job("J-1", "B101")), qos=1)  # redelivered
    assert json.loads(coordinator.expect(lambda m: True).payload)["ok"] is True
    agent.stop()
    # A crash between "started" and "done": maybe half printed, so answered failed, never reprinted.
    ledger = JobLedger(data / "printer-P1.sqlite3")
    ledger.started("J-2")
    ledger.close()
    agent = start_agent(own_broker, layout, sim, data)
    coordinator.client.publish(topic, encode(make_job("J-2", "B102")), qos=1)
    answer = json.loads(coordinator.expect(lambda m: True).payload)
    assert (answer["ok"], answer["reason"]) == (False, "interrupted")
    agent.stop()
    assert [t.big() for t in sim.tickets] == [["B101"]]
    coordinator.stop()


def test_unplugged_port_is_reported_and_reopened(own_broker: HallBroker, layout: Layout,
                                                 sim: PrinterSimulator, tmp_path: Path) -> None:
    statuses = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                     subscribe=[DEVICE_STATUS.topic(hall="demo", device="P1")])
    agent = start_agent(own_broker, layout, sim, tmp_path / "agent", poll_s=0.2)
    assert json.loads(statuses.expect(lambda m: True).payload)["state"] == "ok"
    sim.port.unplug()
    missing = json.loads(statuses.expect(lambda m: json.loads(m.payload)["state"] != "ok").payload)
    assert missing["state"] == "fault" and "port_missing" in missing["faults"]
    sim.port.plug()
    back = statuses.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=15)
    assert json.loads(back.payload)["faults"] == []
    coordinator = probe(own_broker.port, "coordinator", own_broker.credentials["coordinator"],
                        subscribe=[PRINT_RESULT.topic(hall="demo", printer="P1")])
    coordinator.client.publish(PRINT_JOB.topic(hall="demo", printer="P1"),
                               encode(make_job("J-3", "B103")), qos=1)
    assert json.loads(coordinator.expect(lambda m: True).payload)["ok"] is True
    assert sim.wait_tickets(1)[0].big() == ["B103"]
    agent.stop()
    statuses.stop()
    coordinator.stop()


class FrozenClock:
    """The agent's clock held still: the heads-up's answer is fresh when the job comes, however
    slowly the machine runs the test (the window is the runner tests' subject)."""

    def __call__(self) -> float:
        return 100.0


def test_a_heads_up_then_its_job_prints_once_behind_the_one_query(
        own_broker: HallBroker, layout: Layout, sim: PrinterSimulator, tmp_path: Path) -> None:
    agent = PrinterAgent(own_broker.settings("P1"), layout, "P1", tmp_path / "agent", url=str(sim.path),
                         poll_interval_s=30.0, clock=FrozenClock())
    agent.start()
    coordinator = probe(own_broker.port, "coordinator", own_broker.credentials["coordinator"],
                        subscribe=[PRINT_RESULT.topic(hall="demo", printer="P1")])
    try:
        wait_until(lambda: agent.runner.polled_at is not None, what="the agent's first poll")
        assert agent.runner.status.state == "ok"  # known fine: the heads-up's query takes the setup
        job = make_job("J-9", "B109")
        coordinator.client.publish(PRINT_EXPECTED.topic(hall="demo", printer="P1"),
                                   encode(PrintExpected(printer_id="P1", request_id="req-9")), qos=0)
        coordinator.client.publish(PRINT_JOB.topic(hall="demo", printer="P1"), encode(job), qos=1)
        answer = json.loads(coordinator.expect(lambda m: True).payload)
        assert (answer["command_id"], answer["ok"]) == ("J-9", True)
        assert [t.big() for t in sim.wait_tickets(1)] == [["B109"]]
        ticket = render(job, agent.printer, layout.hall)
        online, setup = b"\x10\x04\x01", b"\x1b\x40\x1c\x26"  # DLE EOT 1; ESC @ FS &
        poll = b"\x10\x04\x01" b"\x10\x04\x02" b"\x10\x04\x03" b"\x10\x04\x04"
        assert bytes(sim.received) == poll + online + setup + ticket[len(setup):] + poll  # one query
    finally:
        agent.stop()
        coordinator.stop()


def test_a_stream_of_heads_ups_does_not_make_the_status_poll_give_way(
        own_broker: HallBroker, layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Heads-ups with no job behind them (a kiosk's account repeating one paper request: each
    costs a heads-up, the engine answers it as a duplicate, no job) must not make the status poll
    give way as a job does: it stopped before each query for anything queued, so while the stream
    lasted a printer out of paper went on being reported fine (here 136 polls given up in 2 s).
    The printer paced at 9600 baud: a poll's four queries take ~12 ms, as on the wire."""
    sim = PrinterSimulator(tmp_path / "dev" / "printer-k1", encoding="gb18030", baud=9600).start()
    statuses = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                     subscribe=[DEVICE_STATUS.topic(hall="demo", device="P1")])
    agent = start_agent(own_broker, layout, sim, tmp_path / "agent", poll_s=0.2)
    coordinator = probe(own_broker.port, "coordinator", own_broker.credentials["coordinator"])
    stop = threading.Event()
    heads_up = encode(PrintExpected(printer_id="P1", request_id="req-1"))
    given_way: list[None] = []  # each periodic poll that stopped for what was queued (no job is ever sent)
    poll_unless = agent.runner.poll_unless

    def counted(job_waiting: Callable[[], bool]) -> PrinterStatus | None:
        status = poll_unless(job_waiting)
        if status is None:
            given_way.append(status)
        return status

    monkeypatch.setattr(agent.runner, "poll_unless", counted)  # counts, then the runner's own

    def stream() -> None:
        while not stop.is_set():
            for _ in range(20):
                coordinator.client.publish(PRINT_EXPECTED.topic(hall="demo", printer="P1"), heads_up, qos=0)
            time.sleep(0)

    streaming = threading.Thread(target=stream, daemon=True)
    try:
        assert json.loads(statuses.expect(lambda m: True).payload)["state"] == "ok"
        streaming.start()
        # The heads-ups reach the printer (their query, the setup behind it); then the paper runs out.
        wait_until(lambda: b"\x10\x04\x01\x1b\x40\x1c\x26" in bytes(sim.received), 10, "a heads-up's query")
        sim.switches.paper_out = True
        out = statuses.expect(lambda m: json.loads(m.payload)["state"] != "ok", timeout_s=15)
        assert "paper_out" in json.loads(out.payload)["faults"]
        assert given_way == []
    finally:
        stop.set()
        streaming.join(5)
        agent.stop()
        statuses.stop()
        coordinator.stop()
        sim.stop()
