"""The LED agent end to end: BX and EQ controllers on ptys, the real coordinator and Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hall_devices.contract import ALERT, DEVICE_STATUS
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.layout import HallScreenDevice, Layout, LedBusDevice, WindowScreenDevice, parse_layout
from hall_devices.leds import bx
from hall_devices.leds.agent import LedAgent
from hall_devices.leds.frames import screen_bytes
from tests.conftest import EXAMPLE
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker, probe, wait_until


@pytest.fixture
def leds(tmp_path: Path, layout: Layout) -> Iterator[LedBusSimulator]:
    addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
    sim = LedBusSimulator(tmp_path / "dev" / "led-bus-1", "bx", addresses).start()
    yield sim
    sim.stop()


@pytest.fixture
def hall_with_leds(own_broker: HallBroker, layout: Layout, tmp_path: Path,
                   leds: LedBusSimulator) -> Iterator[tuple[Hall, LedAgent]]:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = LedAgent(own_broker.settings("L1"), layout, "L1", url=str(leds.path), refresh_s=60)
    agent.start()
    yield hall, agent
    agent.stop()
    hall.stop()


def test_next_shows_the_number_at_that_address(hall_with_leds: tuple[Hall, LedAgent],
                                               leds: LedBusSimulator) -> None:
    hall, _agent = hall_with_leds
    assert leds.wait(lambda: leds.text(3) == "暂停服务")  # closed until a clerk signs in
    hall.ok(3, "login", clerk_id="0301")
    assert leds.wait(lambda: leds.text(3) == "欢迎光临\n市场监管")
    ticket = hall.take("company_change").ticket
    hall.ok(3, "next")
    assert leds.wait(lambda: leds.text(3) == f"请{ticket.number}号\n到3号窗口"), leds.text(3)  # type: ignore[union-attr]
    # Other windows untouched (their first frames, routine, go in pieces at the bus's pace).
    assert leds.wait(lambda: leds.text(4) == "暂停服务"), leds.text(4)
    # The hall screen lists the call and the waiting groups.
    assert leds.wait(lambda: f"请{ticket.number}号到3号窗口" in leds.text(200, 0))  # type: ignore[union-attr]
    hall.ok(3, "finish")
    hall.ok(3, "pause", reason="午间休息")
    assert leds.wait(lambda: leds.text(3) == "午间休息")


def test_hall_screen_updates_only_the_areas_that_changed(hall_with_leds: tuple[Hall, LedAgent],
                                                         leds: LedBusSimulator) -> None:
    """A new waiting count rewrites the waiting row alone; the calls and the notice stay as shown."""
    hall, agent = hall_with_leds
    hall.ok(3, "login", clerk_id="0301")
    # Every screen written once (the hall screen, lowest priority, last) and nothing left to write.
    assert leds.wait(lambda: all(c.frames >= 1 for c in leds.controllers.values()), 15)
    wait_until(lambda: not any(s.changed(agent.device.protocol) for s in agent.screens.values()))
    calls, notice = leds.text(200, 0), leds.text(200, 2)
    full = leds.controllers[200].last_size
    hall.take("company_change")
    assert leds.wait(lambda: "等候1人" in leds.text(200, 1)), leds.text(200, 1)
    hall_screen = leds.controllers[200]
    assert hall_screen.last_areas == (1,)
    assert hall_screen.last_size < full
    assert (leds.text(200, 0), leds.text(200, 2)) == (calls, notice)


def test_a_corrupted_frame_is_nacked_and_retried(hall_with_leds: tuple[Hall, LedAgent],
                                                 leds: LedBusSimulator) -> None:
    hall, _agent = hall_with_leds
    assert leds.wait(lambda: leds.text(6) == "暂停服务")
    nacks = leds.controllers[6].nacks
    leds.switches.corrupt[6] = 1
    hall.ok(6, "login", clerk_id="0601")
    assert leds.wait(lambda: leds.text(6) == "欢迎光临\n出入境")
    assert leds.controllers[6].nacks == nacks + 1  # the damaged copy was refused, the retry shown


def test_unplug_and_replug_recovers_by_itself(hall_with_leds: tuple[Hall, LedAgent],
                                              leds: LedBusSimulator, own_broker: HallBroker) -> None:
    hall, _agent = hall_with_leds
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="L1")])
    assert leds.wait(lambda: leds.text(5) == "暂停服务")
    leds.port.unplug()
    missing = status.expect(lambda m: "port_missing" in json.loads(m.payload)["faults"])
    assert json.loads(missing.payload)["state"] == "fault"
    members = json.loads(missing.payload)["members"]
    assert members and set(members.values()) == {"fault"}  # none of its screens is reachable
    hall.ok(5, "login", clerk_id="0501")  # happens while the cable is out
    leds.port.plug()
    assert leds.wait(lambda: leds.text(5) == "欢迎光临\n户籍 2", timeout_s=15)
    back = status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=10)
    assert set(json.loads(back.payload)["members"].values()) == {"ok"}
    status.stop()


def test_silent_screen_is_marked_faulted(hall_with_leds: tuple[Hall, LedAgent], leds: LedBusSimulator,
                                         own_broker: HallBroker) -> None:
    hall, _agent = hall_with_leds
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="L1")])
    # Every screen written first: silence must catch screen 7's next frame, not the first round.
    assert leds.wait(lambda: all(c.frames for c in leds.controllers.values()), 10)
    leds.switches.silent = True
    hall.ok(7, "login", clerk_id="0701")
    faulted = status.expect(lambda m: json.loads(m.payload)["members"].get("WS7") == "fault", timeout_s=10)
    assert json.loads(faulted.payload)["state"] == "warning"
    leds.switches.silent = False
    hall.ok(7, "pause")
    status.expect(lambda m: json.loads(m.payload)["members"].get("WS7") == "ok", timeout_s=10)
    status.stop()


def test_eq_screens(own_broker: HallBroker, tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('protocol = "bx"', 'protocol = "eq"')
    layout = parse_layout(text)
    bus = layout.device("L1")
    assert isinstance(bus, LedBusDevice) and bus.protocol == "eq"
    screens = [d for d in layout.members("L1") if isinstance(d, WindowScreenDevice | HallScreenDevice)]
    sim = LedBusSimulator(tmp_path / "dev" / "eq", "eq", [d.address for d in screens]).start()
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3")
    agent = LedAgent(own_broker.settings("L1"), layout, "L1", url=str(sim.path))
    agent.start()
    try:
        hall.ok(6, "login", clerk_id="0601")
        hall.take("passport")
        hall.ok(6, "next")
        assert sim.wait(lambda: sim.text(6) == "请B001号到6号窗口")
    finally:
        agent.stop()
        hall.stop()
        sim.stop()


# A clerk's pause reason with every sequence either protocol reserves: EQ's end mark $$ (and a
# trailing $), start mark !#, colour codes %1 %2 %3, CR LF; control bytes; BX's A5 A6 5A 5B (Z, [
# and the GBK of 亥乏俍俒); a character GBK cannot carry. (A NUL never gets here: the bus refuses it.)
HOSTILE_REASON = "午休$$A!#B%1C%2D%3$\x01\x1b\x7f\r\nZ[亥乏俍俒😀$"


def eq_or_bx_layout(protocol: str, **addresses: int) -> Layout:
    """The example hall with its LED bus on ``protocol``; ``addresses`` moves screens (by id)
    without the layout check, as a hand-edited file on a running hall could."""
    layout = parse_layout(EXAMPLE.read_text(encoding="utf-8").replace('protocol = "bx"',
                                                                        f'protocol = "{protocol}"'))
    if not addresses:
        return layout
    devices = [d.model_copy(update={"address": addresses[d.id]}) if d.id in addresses else d
               for d in layout.devices]
    return layout.model_copy(update={"devices": devices})


@pytest.fixture(params=["bx", "eq"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run_bus(own_broker: HallBroker, layout: Layout, tmp_path: Path, protocol: str,
            agent_layout: Layout | None = None, **options: Any) -> tuple[Hall, LedAgent, LedBusSimulator]:
    """Controllers at the layout's addresses, the hall, and the bus agent (of ``agent_layout``)."""
    addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
    sim = LedBusSimulator(tmp_path / "dev" / protocol, protocol, addresses).start()
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = LedAgent(own_broker.settings("L1"), agent_layout or layout, "L1", url=str(sim.path),
                     **{"refresh_s": 60, **options})
    agent.start()
    return hall, agent, sim


def unreachable_after(seconds: int) -> Layout:
    """The example hall whose LED bus faults a screen unanswered for ``seconds``."""
    return parse_layout(EXAMPLE.read_text(encoding="utf-8").replace(
        'protocol = "bx"', f'protocol = "bx"\nunreachable_after_s = {seconds}'))


def nothing_left(agent: LedAgent) -> bool:
    return not any(s.changed(agent.device.protocol) for s in agent.screens.values())


def test_pause_reasons_with_every_reserved_sequence(own_broker: HallBroker, tmp_path: Path,
                                                    protocol: str) -> None:
    hall, agent, sim = run_bus(own_broker, eq_or_bx_layout(protocol), tmp_path, protocol)
    try:
        for window in (3, 4):
            hall.ok(window, "login", clerk_id=f"0{window}01")
        assert sim.wait(lambda: sim.text(4) == "欢迎光临\n户籍 1")
        frames_before = sim.controllers[3].frames
        hall.ok(3, "pause", reason=HOSTILE_REASON)
        hall.ok(4, "pause", reason="午间休息")
        assert sim.wait(lambda: sim.text(4) == "午间休息" and sim.controllers[3].frames > frames_before)
        wait_until(lambda: nothing_left(agent), what="every screen written")  # none stuck or retried
        shown = sim.controllers[3].areas[0].text
        if protocol == "eq":
            assert shown == "午休＄＄A！#B％1C％2D％3＄    \nZ[亥乏俍俒□＄"
        else:  # the controller wraps the lines; the padding is spaces
            assert shown.replace(" ", "") == "午休$$A!#B%1C%2D%3$Z[亥乏俍俒□$"
        assert sim.controllers[3].frames == frames_before + 1  # written once, understood at once
        assert sim.bad_frames == 0
        assert not any(s.unencodable or s.health.tries for s in agent.screens.values())
    finally:
        agent.stop()
        hall.stop()
        sim.stop()


def test_a_screen_its_protocol_cannot_address_is_faulted_and_the_rest_written(
        own_broker: HallBroker, tmp_path: Path, protocol: str) -> None:
    """Screen WS3 at an address its protocol cannot carry: a named fault, every other screen
    written in the same pass, and the bus status says so instead of ok."""
    beyond = {"eq": 1000, "bx": 0x10000}[protocol]
    layout = eq_or_bx_layout(protocol, WS3=beyond)
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="L1")])
    # Controllers (and the coordinator) at the checked layout's addresses; the agent has WS3 beyond.
    hall, agent, sim = run_bus(own_broker, eq_or_bx_layout(protocol), tmp_path, protocol, layout)
    try:
        faulted = status.expect(lambda m: json.loads(m.payload)["members"].get("WS3") == "fault",
                                timeout_s=10)
        assert json.loads(faulted.payload)["state"] == "warning"
        assert json.loads(faulted.payload)["faults"] == ["unencodable"]
        for window in (4, 5):
            hall.ok(window, "login", clerk_id=f"0{window}01")
        assert sim.wait(lambda: sim.text(4) == "欢迎光临\n户籍 1" and sim.text(5) == "欢迎光临\n户籍 2")
        hall.ok(3, "login", clerk_id="0301")  # a change: WS3 is tried again, and faults again
        wait_until(lambda: nothing_left(agent), what="every screen written")
        assert all(c.frames >= 1 for a, c in sim.controllers.items() if a != 3)
        assert sim.controllers[3].frames == 0 and sim.bad_frames == 0
        assert agent.screens[beyond].unencodable
    finally:
        status.stop()
        agent.stop()
        hall.stop()
        sim.stop()


def test_auto_call_and_the_long_pause_notice_come_from_the_coordinator(
        own_broker: HallBroker, layout: Layout, tmp_path: Path, leds: LedBusSimulator) -> None:
    """自动叫号: an idle window calls without a key press; 临时有事 by the coordinator's clock."""
    auto = layout.model_copy(update={"policy": layout.policy.model_copy(update={"auto_call_after_s": 5})})
    hall = Hall(own_broker, auto, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = LedAgent(own_broker.settings("L1"), auto, "L1", url=str(leds.path), refresh_s=60)
    agent.start()
    try:
        hall.ok(3, "login", clerk_id="0301")
        ticket = hall.take("company_change").ticket
        assert ticket is not None
        hall.clock.advance(seconds=6)  # the window has been idle past its pause: no key is pressed
        call = hall.call()
        assert (call.ticket_number, call.window) == (ticket.number, 3)  # what the announcer speaks
        assert leds.wait(lambda: leds.text(3) == f"请{ticket.number}号\n到3号窗口"), leds.text(3)
        hall.ok(3, "finish")
        hall.ok(3, "pause", reason="午间休息")
        assert leds.wait(lambda: leds.text(3) == "午间休息")
        hall.clock.advance(minutes=21)  # the coordinator's clock, whatever the agent's says
        assert leds.wait(lambda: leds.text(3) == "临时有事，请稍候"), leds.text(3)
    finally:
        agent.stop()
        hall.stop()


def test_a_silent_screen_raises_its_alert_while_the_others_keep_updating(
        own_broker: HallBroker, tmp_path: Path) -> None:
    alerts = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    hall, agent, sim = run_bus(own_broker, unreachable_after(2), tmp_path, "bx")
    try:
        assert sim.wait(lambda: all(c.frames for c in sim.controllers.values()), 15)
        sim.switches.silent_at.add(7)  # screen WS7 at window 7 dies
        hall.ok(7, "login", clerk_id="0701")
        hall.ok(3, "login", clerk_id="0301")
        assert sim.wait(lambda: sim.text(3) == "欢迎光临\n市场监管")  # the others keep updating
        alert = json.loads(alerts.expect(lambda m: b"WS7" in m.payload, timeout_s=10).payload)
        assert alert["kind"] == "device_fault" and alert["subject"] == "WS7"
        assert "7 号窗口" in alert["message"]["zh"] and "无应答" in alert["message"]["zh"]
        status = hall.service.engine.supervisor.devices["L1"]
        assert status.state.value == "warning" and [f.value for f in status.faults] == ["not_responding"]
        hall.ok(4, "login", clerk_id="0401")  # still updating while WS7 is retried with backoff
        assert sim.wait(lambda: sim.text(4) == "欢迎光临\n户籍 1"), sim.text(4)
        sim.switches.silent_at.clear()
        hall.ok(7, "pause")
        cleared = json.loads(alerts.expect(lambda m: b"WS7" in m.payload, timeout_s=10).payload)
        assert cleared["cleared"] is True
    finally:
        agent.stop()
        alerts.stop()
        hall.stop()
        sim.stop()


def test_busy_is_retried_with_backoff_and_a_dead_bus_is_fault(own_broker: HallBroker, tmp_path: Path) -> None:
    status = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.topic(hall="demo", device="L1")])
    # Rewrites every 5 s: 23 screens every 2 s would fill a 9600-baud bus (~90 ms a frame), and the
    # busy screen, a failing one, waits behind the screens that answer.
    hall, agent, leds = run_bus(own_broker, unreachable_after(1), tmp_path, "bx", refresh_s=5, retries=1,
                                reply_timeout_s=0.1)
    try:
        assert leds.wait(lambda: all(c.frames for c in leds.controllers.values()), 15)
        leds.switches.busy[6] = 3  # NACK 3 three times, then it shows
        hall.ok(6, "login", clerk_id="0601")
        assert leds.wait(lambda: leds.text(6) == "欢迎光临\n出入境")
        assert leds.controllers[6].refused == 3
        wait_until(lambda: agent.screens[6].health.tries == 0, what="the ACK ended the busy spell")
        leds.switches.silent = True  # no screen answers: the whole bus is dead
        # The refresh writes every screen again; none answers.
        dead = status.expect(lambda m: json.loads(m.payload)["state"] == "fault", timeout_s=30)
        assert json.loads(dead.payload)["faults"] == ["not_responding"]
    finally:
        agent.stop()
        status.stop()
        hall.stop()
        leds.stop()


def test_probes_and_rewrites_are_the_bus_layouts(own_broker: HallBroker) -> None:
    default = LedAgent(own_broker.settings("L1"), unreachable_after(5), "L1", url="loop://")
    assert default.session.probes and default.session.refresh_s == 30.0
    quiet = parse_layout(EXAMPLE.read_text(encoding="utf-8").replace(
        'protocol = "bx"', 'protocol = "bx"\nprobe_idle = false\nrefresh_s = 0'))
    agent = LedAgent(own_broker.settings("L1"), quiet, "L1", url="loop://")
    assert not agent.session.probes and agent.session.refresh_s is None
    assert all(s.health.probe_s == 0.0 for s in agent.screens.values())  # faults counted from a failure


def shown_as_wanted(agent: LedAgent, sim: LedBusSimulator) -> list[int]:
    """The addresses whose controller does not show, area by area, what the agent wants there."""
    wrong = []
    for address, screen in agent.screens.items():
        (frame,) = bx.BxDecoder().feed(screen_bytes("bx", address, list(screen.wanted)))
        assert isinstance(frame, bx.BxFrame)
        wanted = {a.area_id: a.text.decode("gbk") for a in bx.parse_dynamic_area(frame.data)}
        if {i: area.text for i, area in sim.controllers[address].areas.items()} != wanted:
            wrong.append(address)
    return wrong


def test_calls_go_before_the_hall_screen_and_rewrites_and_every_screen_ends_up_right(
        own_broker: HallBroker, layout: Layout, tmp_path: Path) -> None:
    """A bus paced at 9600 baud, every screen rewritten every 2 s and the hall screen changed by
    each ticket: the frames that are not a window's news go out in pieces and are dropped for a
    call (protocols.md §2: any run of A5 is a frame head); every call is shown, and once the hall is
    quiet the hall screen and every other screen show exactly what they should."""
    addresses = [d.address for d in layout.members("L1")]  # type: ignore[union-attr]
    sim = LedBusSimulator(tmp_path / "dev" / "paced", "bx", addresses, baud=9600).start()
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    agent = LedAgent(own_broker.settings("L1"), layout, "L1", url=str(sim.path), refresh_s=2)
    agent.start()
    try:
        assert sim.wait(lambda: all(c.frames for c in sim.controllers.values()), 15)
        hall.ok(3, "login", clerk_id="0301")
        hall.ok(4, "login", clerk_id="0401")
        numbers = []
        for _ in range(4):
            ticket = hall.take("company_change").ticket  # the hall screen's waiting row changes
            assert ticket is not None
            hall.ok(3, "next")  # at once: the call meets the hall screen's frame on the wire
            numbers.append(ticket.number)
            assert sim.wait(lambda: sim.text(3) == f"请{ticket.number}号\n到3号窗口"), sim.text(3)  # noqa: B023
            hall.ok(3, "finish")
        hall.take("passport")  # waiting for window 6
        assert sim.wait(lambda: sim.text(3) == "欢迎光临\n市场监管" and "等候1人" in sim.text(200, 1))
        # Rewrites go on (every screen every 2 s): what each controller shows is what it should.
        wait_until(lambda: not shown_as_wanted(agent, sim), timeout_s=15, what="every screen right")
        calls = sim.text(200, 0)
        assert all(f"请{n}号到3号窗口" in calls for n in numbers[-3:]), calls
        assert sim.text(4) == "欢迎光临\n户籍 1"
        assert sim.bad_frames == 0  # dropped frames are not bad frames: nothing was NACKed
        assert not any(s.health.tries for s in agent.screens.values())
    finally:
        agent.stop()
        hall.stop()
        sim.stop()
