"""The pad agent end to end: pads on a pty, the real coordinator, a real Mosquitto."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hall_devices.contract import DEVICE_STATUS, CaseState, DeviceState
from hall_devices.coordinator.model import PromptState
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.layout import Layout
from hall_devices.pads.agent import PadAgent
from hall_devices.pads.codec import Frame, Key
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, wait_until


@pytest.fixture
def pads(tmp_path: Path, layout: Layout) -> Iterator[PadBusSimulator]:
    addresses = [p.address for p in layout.members("KB1")]  # type: ignore[union-attr]
    sim = PadBusSimulator(tmp_path / "dev" / "pad-bus-1", addresses).start()
    yield sim
    sim.stop()


@pytest.fixture
def hall_with_pads(own_broker: HallBroker, layout: Layout, tmp_path: Path,
                   pads: PadBusSimulator) -> Iterator[tuple[Hall, PadAgent]]:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = PadAgent(own_broker.settings("KB1"), layout, "KB1", tmp_path / "agent", url=str(pads.path))
    agent.start()
    yield hall, agent
    agent.stop()
    hall.stop()


def test_next_finish_and_ratings_from_the_pad(hall_with_pads: tuple[Hall, PadAgent],
                                              pads: PadBusSimulator) -> None:
    hall, agent = hall_with_pads
    pads.type(3, "0301")  # clerk id + confirm at a closed window: sign in
    wait_until(lambda: hall.service.engine.state.windows.get(3) is not None, what="window 3 signed in")
    assert hall.service.engine.state.windows[3].clerk_id == "0301"
    first = hall.take("company_change")
    assert pads.wait(lambda: pads.display(3) == "1")  # idle: the waiting count
    pads.press(3, Key.NEXT)
    call = hall.call()
    assert (call.ticket_number, call.window) == (first.ticket.number, 3)  # type: ignore[union-attr]
    assert pads.wait(lambda: pads.display(3) == "001"), pads.pads[3].display

    pads.press(3, Key.RATE)  # finish: the coordinator asks for a rating; the pad beeps
    assert pads.wait(lambda: pads.pads[3].rating_asks == 1 and pads.pads[3].beeps == 1)
    assert 50 <= pads.pads[3].rating_open_s <= 60
    pads.rate(3, 5)
    pads.rate(3, 1)  # a second press is ignored: one rating per service
    engine = hall.service.engine
    prompt_id = f"{first.ticket.ticket_id}-r"  # type: ignore[union-attr]
    wait_until(lambda: engine.state.prompts[prompt_id].state is PromptState.RATED, what="rated")
    wait_until(lambda: not agent.outbox.pending(), what="ack received")
    ratings = _ratings(hall)
    assert [(r["level"], r["window"], r["clerk_id"], r["service_id"]) for r in ratings] == [
        (5, 3, "0301", "company_change")]

    second = hall.take("company_change")
    pads.press(3, Key.NEXT)
    pads.press(3, Key.RATE)
    assert pads.wait(lambda: pads.pads[3].rating_asks == 2)
    pads.rate(3, 1)  # 非常不满意
    case_id = f"C-{second.ticket.ticket_id}"  # type: ignore[union-attr]
    wait_until(lambda: case_id in engine.state.cases, what="follow-up case")
    assert engine.state.cases[case_id].state is CaseState.VERIFYING
    assert [r["level"] for r in _ratings(hall)] == [5, 1]


def _ratings(hall: Hall) -> list[dict[str, object]]:
    import json
    import sqlite3

    db = sqlite3.connect(f"file:{hall.store}?mode=ro", uri=True)
    rows = [json.loads(r[0]) for r in db.execute("SELECT body FROM events WHERE kind='rating_recorded'")]
    db.close()
    return rows


def test_clerk_actions_from_the_pad(hall_with_pads: tuple[Hall, PadAgent],
                                    pads: PadBusSimulator) -> None:
    hall, _agent = hall_with_pads
    engine = hall.service.engine
    pads.type(6, "0601")
    for _ in range(3):
        hall.take("passport")
    wait_until(lambda: 6 in engine.state.windows, what="sign in")
    pads.press(6, Key.NEXT)
    assert hall.call().ticket_number == "B001"
    pads.press(6, Key.RECALL)
    assert hall.call().attempt == 2
    pads.type(6, "0")  # hold
    wait_until(lambda: engine.state.windows[6].held != [], what="held")
    pads.press(6, Key.NEXT)
    assert hall.call().ticket_number == "B002"
    pads.type(6, "6")  # no-show
    wait_until(lambda: engine.state.tickets[f"{engine.state.day}-B002"].status == "no_show", what="no-show")
    pads.type(6, "3")  # call back the held one
    assert hall.call().ticket_number == "B001"
    hall.ok(21, "login", clerk_id="2101")  # a transfer goes only to a window someone is at
    pads.press(6, Key.TRANSFER)
    pads.type(6, "21")  # to the any-service window
    wait_until(lambda: engine.state.tickets[f"{engine.state.day}-B001"].target_window == 21, what="transfer")
    pads.press(6, Key.PAUSE)
    wait_until(lambda: engine.state.windows[6].status == "paused", what="pause")
    beeps = pads.pads[6].beeps
    pads.press(6, Key.NEXT)  # refused while paused: the pad beeps twice
    assert pads.wait(lambda: pads.pads[6].beeps == beeps + 2)
    pads.press(6, Key.PAUSE)
    wait_until(lambda: engine.state.windows[6].status == "idle", what="resume")
    pads.type(6, "000")
    wait_until(lambda: engine.state.windows[6].status == "closed", what="sign out")


def test_garbage_and_bad_checksums_are_logged_and_skipped(
        hall_with_pads: tuple[Hall, PadAgent], pads: PadBusSimulator,
        caplog: pytest.LogCaptureFixture) -> None:
    hall, _agent = hall_with_pads
    caplog.set_level(logging.WARNING, logger="hall_devices.pads.agent")
    pads.switches.bad_checksum = True
    pads.type(4, "0401")
    pads.switches.bad_checksum = False
    pads.switches.garbage = True
    pads.press(4, Key.NEXT)
    pads.switches.garbage = False
    wait_until(lambda: sum("bad checksum" in r.message for r in caplog.records) >= 5, what="logged")
    bad = [r.message for r in caplog.records if "bad checksum" in r.message]
    assert len(bad) == 5 and "ff 68 03 03 68 04 01 00" in bad[0]  # once each, with its bytes in hex
    wait_until(lambda: any("55 aa 00 68 02" in r.message for r in caplog.records), what="noise logged")
    assert 4 not in hall.service.engine.state.windows  # nothing was applied from the bad frames
    pads.type(4, "0401")  # the agent is alive and the bus in step again
    wait_until(lambda: 4 in hall.service.engine.state.windows, what="sign in after the noise")


def test_a_rating_counts_by_the_coordinator_not_the_pad_machines_clock(
        own_broker: HallBroker, layout: Layout, tmp_path: Path, pads: PadBusSimulator) -> None:
    """The coordinator's clock is 10 minutes behind this machine's: the rating still counts."""
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3",
                Clock(datetime.now(UTC) - timedelta(minutes=10)))
    agent = PadAgent(own_broker.settings("KB1"), layout, "KB1", tmp_path / "agent", url=str(pads.path))
    agent.start()
    try:
        hall.ok(3, "login", clerk_id="0301")
        ticket = hall.take("company_change").ticket
        assert ticket is not None
        hall.ok(3, "next")
        hall.ok(3, "finish")
        assert pads.wait(lambda: pads.pads[3].rating_asks == 1)
        assert pads.pads[3].rating_open_s == 60  # the policy's timeout, not "expired 9 min ago"
        pads.rate(3, 4)
        prompt_id = f"{ticket.ticket_id}-r"
        wait_until(lambda: hall.service.engine.state.prompts[prompt_id].state is PromptState.RATED,
                   what="rated")
    finally:
        agent.stop()
        hall.stop()


def test_a_bus_on_a_missing_port_reports_no_pad_as_ok(own_broker: HallBroker, layout: Layout,
                                                      tmp_path: Path) -> None:
    import json

    from tests.support import probe

    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="KB1")])
    agent = PadAgent(own_broker.settings("KB1"), layout, "KB1", tmp_path / "agent",
                     url=str(tmp_path / "dev" / "no-such-port"))
    agent.start()
    try:
        missing = status.expect(lambda m: "port_missing" in json.loads(m.payload)["faults"])
        members = json.loads(missing.payload)["members"]
        assert set(members) == {p.id for p in layout.members("KB1")}
        assert set(members.values()) == {"fault"}
    finally:
        agent.stop()
        status.stop()


def test_one_frame_confirm_acts_once(hall_with_pads: tuple[Hall, PadAgent],
                                     pads: PadBusSimulator) -> None:
    hall, _agent = hall_with_pads
    engine = hall.service.engine
    pads.switches.one_frame_confirm = True  # [digit, 0F] in one frame, the published form
    pads.type(6, "0601")
    wait_until(lambda: 6 in engine.state.windows, what="sign in with a one-frame confirm")
    for _ in range(2):
        hall.take("passport")
    pads.press(6, Key.NEXT)
    assert hall.call().ticket_number == "B001"
    pads.type(6, "0")  # hold 挂起
    wait_until(lambda: engine.state.windows[6].held != [], what="held")
    pads.press(6, Key.NEXT)
    assert hall.call().ticket_number == "B002"
    pads.type(6, "6")  # no-show 过号
    wait_until(lambda: engine.state.tickets[f"{engine.state.day}-B002"].status == "no_show", what="no-show")
    pads.type(6, "3")  # call back 回呼
    assert hall.call().ticket_number == "B001"
    pads.press(6, Key.RECALL)  # a later command is answered: every refusal before it was too
    assert hall.call().attempt == 2
    assert pads.pads[6].beeps == 0  # nothing was refused (a confirm applied twice would beep twice)


def test_non_echoing_pads_stay_ok_and_ignored_frames_are_logged_once(
        hall_with_pads: tuple[Hall, PadAgent], pads: PadBusSimulator,
        caplog: pytest.LogCaptureFixture) -> None:
    hall, agent = hall_with_pads
    caplog.set_level(logging.WARNING, logger="hall_devices.pads.agent")
    pads.switches.silent = True  # the facts say only the host echoes
    pads.type(2, "0201")
    wait_until(lambda: 2 in hall.service.engine.state.windows, what="sign in")
    for _ in range(4):
        hall.take("company_change")
    assert pads.wait(lambda: pads.display(2) == "4")
    assert len(pads.pads[2].frames) >= 4  # the host wrote and got no echo, several times
    pads.send(Frame(2, 0x07, b"\x0c"))  # C other than 01, twice
    pads.send(Frame(2, 0x07, b"\x0c"))
    wait_until(lambda: agent.ignored.counts.get("control 0x07 from a pad") == 2, what="counted")
    # Both frames may come in one read: the session counts both before the agent logs the first.
    wait_until(lambda: any("control 0x07" in r.message for r in caplog.records), what="logged")
    assert sum("control 0x07" in r.message for r in caplog.records) == 1
    supervisor = hall.service.engine.supervisor
    wait_until(lambda: "KB1" in supervisor.devices, what="bus status")
    status = supervisor.devices["KB1"]
    assert status.state is DeviceState.OK and not status.faults
    assert set(status.members.values()) == {DeviceState.OK}


def test_pad_displays_are_restored_when_the_port_comes_back(
        hall_with_pads: tuple[Hall, PadAgent], pads: PadBusSimulator) -> None:
    hall, agent = hall_with_pads
    pads.type(5, "0501")
    wait_until(lambda: 5 in hall.service.engine.state.windows, what="sign in")
    hall.take("id_card")
    assert pads.wait(lambda: pads.display(5) == "1")
    pads.unplug()
    wait_until(lambda: not agent.link.is_open, what="the agent saw the port go")
    assert pads.display(5) == ""
    pads.plug()  # no window changes state from here on: only the reopen can rewrite the display
    assert pads.wait(lambda: pads.display(5) == "1")
