"""Issue 21 review: the business day after a forward step, a suspended PC, and a restart, sans-IO.

The engine is shown each reading as the service shows it (wall clock + boottime + boot id); a
restart is a new engine rebuilt from the events, given the reading stored with the latest one.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hall_devices.contract import TicketRequest, TicketStatus
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.clock import Reading
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import TakeTicket
from hall_devices.coordinator.service import rebuild
from hall_devices.coordinator.store import ClockRow, EventRow, EventStore
from hall_devices.layout import Layout
from tests.coordinator.test_time import Clocks, Hall, hall_time

SETTLE_S = 120  # the policy's default day_change_settle_s


def days(hall: Hall) -> list[str]:
    return [e.day for e in hall.kinds(ev.DayStarted) if isinstance(e, ev.DayStarted)]


def tick_for(hall: Hall, seconds: int) -> None:
    for _ in range(seconds):
        hall.clocks.advance(seconds=1)
        hall.tick()


def unsettled_refusal(hall: Hall) -> str:
    reply = hall.send(TakeTicket("K1", TicketRequest(command_id=f"u{len(hall.events)}",
                                                     service_id="passport", paper=False))).reply
    assert reply is not None and reply.error is not None and not reply.ok
    return reply.error.code


def restart(hall: Hall, clocks: Clocks, *, boot: str | None, stored: Reading | None) -> None:
    """A new coordinator process: the state from the events, the stored reading if any."""
    engine = Engine(hall.engine.layout)
    for event in hall.events:
        engine.replay(event)
    engine.reindex()
    engine.clock.boot = boot
    if stored is not None:
        engine.clock.resume(stored)
    hall.engine, hall.clocks = engine, clocks


def test_a_forward_step_across_the_day_start_starts_the_day_after_settling(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 23:59:50")))
    yesterday = hall.take()[0]
    hall.clocks.advance(seconds=1)
    hall.clocks.step(seconds=30)  # NTP: 00:00:21, the step is seen, the day not yet moved
    hall.tick()
    assert hall.engine.state.day == "2026-11-23"
    assert unsettled_refusal(hall) == "clock_unsettled"  # no number under a day about to end
    tick_for(hall, SETTLE_S - 2)
    assert hall.engine.state.day == "2026-11-23"
    tick_for(hall, 2)
    assert hall.engine.state.day == "2026-11-24"  # not stuck until the next midnight
    assert yesterday not in hall.engine.state.tickets  # expired with its day
    assert hall.take()[0] == "2026-11-24-B001"
    assert days(hall) == ["2026-11-23", "2026-11-24"]
    assert len(hall.clock_alerts()) == 1


def test_a_two_hour_step_at_23_starts_the_day_it_lands_in(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 23:00")))
    first = hall.take()[0]
    hall.clocks.advance(seconds=1)
    hall.clocks.step(hours=2)  # the clock was 2 h slow: it is 01:00 of the next day
    tick_for(hall, SETTLE_S + 1)
    assert hall.engine.state.day == "2026-11-24"
    assert hall.take()[0] == "2026-11-24-B001"
    assert first == "2026-11-23-B001"
    assert len(hall.clock_alerts()) == 1


def test_a_step_within_the_settling_restarts_it(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 16:30")))
    hall.clocks.step(hours=8)
    tick_for(hall, SETTLE_S - 10)
    hall.clocks.step(seconds=-10)  # another step: the settling starts again
    tick_for(hall, SETTLE_S - 10)
    assert hall.engine.state.day == "2026-11-23"
    tick_for(hall, 20)
    assert hall.engine.state.day == "2026-11-24"  # read consistently long enough: taken as true


def test_a_pc_suspended_overnight_starts_the_day_at_once_without_an_alert(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 18:00")))
    left = hall.take()[0]
    hall.clocks.advance(hours=14)  # suspended: boottime counts the night, no reading meanwhile
    hall.tick()
    assert hall.engine.state.day == "2026-11-24"
    assert left not in hall.engine.state.tickets  # expired with its day
    assert hall.take()[0] == "2026-11-24-B001"
    assert hall.clock_alerts() == []


def test_eight_hours_ahead_at_boot_then_corrected(layout: Layout) -> None:
    """A reboot (a new boot id: nothing relates its clock to the store's) with the hardware clock
    in local time read as UTC; NTP corrects it a minute later."""
    hall = Hall(layout, Clocks(hall_time("2026-11-23 16:00")))
    hall.window(6, "login", clerk_id="Z0601")
    before = [hall.take()[0], hall.take()[0]]
    restart(hall, Clocks(hall_time("2026-11-24 00:31"), mono=5.0), boot="boot-2", stored=None)
    hall.tick()
    assert unsettled_refusal(hall) == "clock_unsettled"
    hall.window(6, "next")  # the clerks work on meanwhile
    tick_for(hall, 60)
    hall.clocks.step(hours=-8)  # 16:32
    hall.tick()
    after = hall.take()[0]
    tick_for(hall, 2 * SETTLE_S)
    state = hall.engine.state
    assert state.day == "2026-11-23" and days(hall) == ["2026-11-23"]
    assert after == "2026-11-23-B003"
    assert state.tickets[before[1]].status is TicketStatus.WAITING
    assert len(hall.clock_alerts()) == 1
    # Times from before the restart stay; the call made on the wrong clock shows its true time.
    assert state.tickets[before[1]].issued_at == hall_time("2026-11-23 16:00")
    assert state.tickets[before[0]].called_at == hall_time("2026-11-23 16:31")


def test_a_restart_the_next_morning_after_a_reboot_waits_the_settling(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 17:00")))
    left = hall.take()[0]
    restart(hall, Clocks(hall_time("2026-11-24 07:30"), mono=20.0), boot="boot-2", stored=None)
    hall.tick()
    assert hall.engine.state.day == "2026-11-23" and unsettled_refusal(hall) == "clock_unsettled"
    tick_for(hall, SETTLE_S)
    assert hall.engine.state.day == "2026-11-24"
    assert left not in hall.engine.state.tickets  # expired with its day
    assert hall.take()[0] == "2026-11-24-B001"
    assert hall.clock_alerts() == []


def test_a_restart_within_the_boot_sees_a_step_exactly(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 16:00"), mono=1000.0))
    hall.engine.clock.boot = "boot-1"
    taken = hall.take()[0]
    stored = Reading(hall.clocks.wall, hall.clocks.mono, "boot-1")
    # Down 5 minutes; meanwhile the clock was set 8 h ahead.
    clocks = Clocks(hall_time("2026-11-24 00:05"), mono=1300.0)
    restart(hall, clocks, boot="boot-1", stored=stored)
    hall.tick()
    steps = [round(e.step_s) for e in hall.kinds(ev.ClockStepped) if isinstance(e, ev.ClockStepped)]
    assert steps == [8 * 3600]
    assert hall.engine.state.tickets[taken].issued_at == hall_time("2026-11-24 00:00")  # waited 5 min
    assert len(hall.clock_alerts()) == 1


def test_a_restart_within_the_boot_across_midnight_starts_the_day_at_once(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 23:50"), mono=1000.0))
    hall.engine.clock.boot = "boot-1"
    hall.take()
    stored = Reading(hall.clocks.wall, hall.clocks.mono, "boot-1")
    restart(hall, Clocks(hall_time("2026-11-24 00:20"), mono=2800.0), boot="boot-1", stored=stored)
    hall.tick()
    assert hall.engine.state.day == "2026-11-24"
    assert hall.clock_alerts() == []
    # Of another boot, the same stored reading relates nothing: the new day waits the settling.
    other = Hall(layout, Clocks(hall_time("2026-11-23 23:50")))
    other.take()
    restart(other, Clocks(hall_time("2026-11-24 00:20"), mono=3.0), boot="boot-2", stored=stored)
    other.tick()
    assert other.engine.state.day == "2026-11-23"


def test_the_store_keeps_the_reading_of_its_latest_commit(layout: Layout, tmp_path: Path) -> None:
    store = EventStore(tmp_path / "store.sqlite3")
    try:
        at = hall_time("2026-11-23 16:00")
        started = ev.DayStarted(at=at, day="2026-11-23")
        row = EventRow(started.kind, at.isoformat(), "2026-11-23", None, ev.event_json(started))
        store.commit([row], [], reading=ClockRow("boot-1", 1000.0, at.isoformat()))
        assert store.clock_reading() == ClockRow("boot-1", 1000.0, at.isoformat())
        engine = rebuild(layout, store, "boot-1")
        outcome = engine.observe(at + timedelta(hours=8, minutes=1), 1060.0)
        assert [type(e) for e in outcome.events] == [ev.ClockStepped]
        other = rebuild(layout, store, "boot-2")
        assert other.observe(at + timedelta(hours=8, minutes=1), 5.0).events == []
        assert other.clock.settling
    finally:
        store.close()
