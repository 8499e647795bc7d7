"""Issue 21: the queue engine against a clock that steps (NTP, a wrong clock at boot), sans-IO.

The engine is shown each clock reading as the service shows it: the wall time with a monotonic
reading taken at once (:meth:`Engine.observe`), then the command.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hall_devices.contract import Alert, TicketRequest, TicketStatus, WindowAction, WindowCommand
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import ActAtWindow, Command, Outcome, RaiseAlert, TakeTicket
from hall_devices.coordinator.stats import compute
from hall_devices.layout import Layout

_ids = itertools.count()


def hall_time(local: str) -> datetime:
    """A UTC instant from the hall's local time (UTC+8)."""
    return datetime.fromisoformat(local).replace(tzinfo=UTC) - timedelta(hours=8)


@dataclass
class Clocks:
    """The hall PC's wall clock and its monotonic clock: time passing moves both, a step one."""

    wall: datetime
    mono: float = 1000.0

    def advance(self, **delta: float) -> None:
        self.wall += timedelta(**delta)
        self.mono += timedelta(**delta).total_seconds()

    def step(self, **delta: float) -> None:
        self.wall += timedelta(**delta)


class Hall:
    def __init__(self, layout: Layout, clocks: Clocks) -> None:
        self.engine = Engine(layout)
        self.clocks = clocks
        self.events: list[ev.Event] = []
        self.alerts: list[Alert] = []
        self.tick()

    def _record(self, outcome: Outcome) -> Outcome:
        self.events += outcome.events
        self.alerts += [e.alert for e in outcome.effects
                        if isinstance(e, RaiseAlert) and not e.alert.cleared]
        return outcome

    def tick(self) -> None:
        self._record(self.engine.tick(self.clocks.wall, self.clocks.mono))

    def send(self, command: Command) -> Outcome:
        self._record(self.engine.observe(self.clocks.wall, self.clocks.mono))
        outcome = self._record(self.engine.handle(command, self.clocks.wall, token="t"))
        assert outcome.reply is not None
        return outcome

    def take(self, service: str = "passport") -> tuple[str, int]:
        """(ticket id, people ahead) of a new normal ticket."""
        reply = self.send(TakeTicket("K1", TicketRequest(command_id=f"k{next(_ids)}", service_id=service,
                                                         paper=False))).reply
        assert reply is not None and reply.ok, reply
        ticket = getattr(reply, "ticket")  # noqa: B009 - a TicketReply
        return ticket.ticket_id, ticket.people_ahead

    def window(self, number: int, action: str, **fields: object) -> Outcome:
        command = WindowCommand(command_id=f"w{next(_ids)}", action=WindowAction(action),
                                **fields)
        return self.send(ActAtWindow(number, command))

    def next(self, number: int) -> str:
        reply = self.window(number, "next").reply
        assert reply is not None and reply.ok, reply
        return getattr(reply, "ticket").number  # type: ignore[no-any-return]  # noqa: B009

    def kinds(self, kind: type[ev._Event]) -> list[ev.Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def clock_alerts(self) -> list[Alert]:
        return [a for a in self.alerts if a.kind == "clock_step"]

    def numbers_issued(self) -> list[str]:
        return [e.ticket_id for e in self.events if isinstance(e, ev.TicketIssued)]


def test_a_step_back_between_two_tickets_keeps_arrival_order_and_people_ahead(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 09:00")))
    hall.window(6, "login", clerk_id="Z0601")
    first, ahead_first = hall.take()
    hall.clocks.advance(seconds=30)
    hall.clocks.step(minutes=-10)  # NTP corrects the clock
    second, ahead_second = hall.take()
    assert (ahead_first, ahead_second) == (0, 1)  # the second applicant is told one is ahead
    assert [hall.next(6)] == [first.rsplit("-", 1)[1]]
    hall.window(6, "finish")
    assert hall.next(6) == second.rsplit("-", 1)[1]
    # The first ticket waited 30 s (not -9.5 min): its issue time moved with the step.
    assert hall.engine.state.tickets[first].first_called_at == hall.clocks.wall
    assert hall.engine.state.tickets[first].issued_at == hall.clocks.wall - timedelta(seconds=30)
    steps = hall.kinds(ev.ClockStepped)
    assert [round(e.step_s) for e in steps if isinstance(e, ev.ClockStepped)] == [-600]
    hall.tick()
    assert len(hall.clock_alerts()) == 1
    assert "-10分0秒" in hall.clock_alerts()[0].message.zh
    # The day's statistics, read from the events, measure the true waits (not -9.5 min): the
    # first waited 30 s, the second was called the moment it was issued.
    figures = compute(layout, hall.events, "2026-11-23", "2026-11-23").by["service"]["passport"]
    assert figures.waits_s == [30.0, 0.0]


def test_eight_hours_ahead_then_corrected_at_1630_expires_nothing_and_reissues_nothing(
        layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 16:00")))
    hall.window(6, "login", clerk_id="Z0601")
    issued = [hall.take()[0], hall.take()[0]]
    hall.clocks.advance(minutes=30)
    hall.clocks.step(hours=8)  # 00:30 "tomorrow": a hardware clock in local time read as UTC
    hall.tick()
    # The clock reads a business day not yet started: no number under either day meanwhile.
    refused = hall.send(TakeTicket("K1", TicketRequest(command_id="k-unsettled", service_id="passport",
                                                       paper=False))).reply
    assert refused is not None and refused.error is not None
    assert refused.error.code == "clock_unsettled" and "系统正在校准时间" in refused.error.message
    for _ in range(120):  # a minute of ticks on the wrong clock
        hall.clocks.advance(seconds=0.5)
        hall.tick()
    hall.clocks.step(hours=-8)  # NTP puts it right
    hall.tick()
    issued.append(hall.take()[0])
    state = hall.engine.state
    assert hall.kinds(ev.DayStarted) == [ev.DayStarted(at=hall_time("2026-11-23 16:00"), day="2026-11-23")]
    assert issued == [f"2026-11-23-B00{n}" for n in (1, 2, 3)]
    assert all(state.tickets[t].status is TicketStatus.WAITING for t in issued)
    assert state.tickets[issued[0]].issued_at == hall_time("2026-11-23 16:00")  # waits not +8 h
    assert len(hall.clock_alerts()) == 2  # one a step
    # Time then runs across midnight: the day moves on, at the day start only.
    hall.clocks.advance(hours=7, minutes=28)  # 23:59
    hall.tick()
    assert state.day == "2026-11-23"
    hall.clocks.advance(minutes=2)
    hall.tick()
    assert state.day == "2026-11-24"
    assert hall.take()[0] == "2026-11-24-B001"


def test_sixty_seconds_back_at_half_a_minute_past_midnight(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 23:59:50")))
    hall.clocks.advance(seconds=20)
    hall.tick()  # 00:00:10: a new business day, by time passing
    assert hall.engine.state.day == "2026-11-24"
    first = hall.take()[0]
    hall.clocks.advance(seconds=20)
    hall.clocks.step(seconds=-60)  # 23:59:30 "yesterday"
    hall.tick()
    second = hall.take()[0]
    for _ in range(100):  # runs across midnight a second time
        hall.clocks.advance(seconds=0.5)
        hall.tick()
    third = hall.take()[0]
    assert [first, second, third] == ["2026-11-24-B001", "2026-11-24-B002", "2026-11-24-B003"]
    assert [e.day for e in hall.kinds(ev.DayStarted) if isinstance(e, ev.DayStarted)] == [
        "2026-11-23", "2026-11-24"]
    assert hall.engine.state.tickets[first].status is TicketStatus.WAITING
    assert len(hall.clock_alerts()) == 1


def test_a_step_back_seen_after_a_restart_without_a_monotonic_reading(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-24 00:00:20")))
    first = hall.take()[0]
    restarted = Engine(layout)
    for event in hall.events:
        restarted.replay(event)
    restarted.reindex()
    hall.engine, hall.events = restarted, list(hall.events)
    hall.clocks = Clocks(hall_time("2026-11-23 23:59:30"), mono=5.0)  # a new process, 50 s back
    second = hall.take()[0]
    assert (first, second) == ("2026-11-24-B001", "2026-11-24-B002")
    assert [round(e.step_s) for e in hall.kinds(ev.ClockStepped) if isinstance(e, ev.ClockStepped)] == [-50]


def test_waits_and_pauses_keep_their_length_across_a_step(layout: Layout) -> None:
    hall = Hall(layout, Clocks(hall_time("2026-11-23 10:00")))
    hall.window(6, "login", clerk_id="Z0601")
    hall.window(6, "pause", reason="临时离开")
    hall.take()
    hall.clocks.advance(minutes=5)
    hall.clocks.step(hours=-3)
    hall.tick()
    summary = hall.engine.views.queue(hall.engine.state, hall.clocks.wall)
    passport = next(r for r in summary.services if r.service_id == "passport")
    assert passport.longest_wait_s == 300
    shown = hall.engine.views.window(hall.engine.state, 6, hall.clocks.wall)
    assert shown.pause_notice is None  # 5 minutes, not 3 hours the wrong way
    hall.clocks.advance(minutes=16)
    outcome = hall.engine.tick(hall.clocks.wall, hall.clocks.mono)
    assert 6 in outcome.dirty_windows  # republished: the notice is now due
    shown = hall.engine.views.window(hall.engine.state, 6, hall.clocks.wall)
    assert shown.pause_notice is not None and shown.pause_notice.zh == "临时有事，请稍候"


def test_auto_call_after_the_idle_pause_only_at_idle_windows(layout: Layout) -> None:
    windows = tuple(w.model_copy(update={"auto_call_after_s": 0}) if w.number == 5 else w
                    for w in layout.windows)  # window 5 opts out
    auto = layout.model_copy(update={"windows": windows, "policy": layout.policy.model_copy(
        update={"auto_call_after_s": 10})})
    hall = Hall(auto, Clocks(hall_time("2026-11-23 09:00")))
    for window in (4, 5, 6):
        hall.window(window, "login", clerk_id=f"Z{window}")
    hall.window(6, "pause")
    hall.take("hukou_in")
    hall.take("passport")
    hall.clocks.advance(seconds=9)
    hall.tick()
    assert not hall.kinds(ev.TicketCalled)  # not idle long enough yet
    hall.clocks.advance(seconds=1)
    hall.tick()
    called = [(e.window, e.ticket_id) for e in hall.kinds(ev.TicketCalled) if isinstance(e, ev.TicketCalled)]
    assert called == [(4, "2026-11-23-B001")]  # window 5 is off, window 6 paused
    hall.clocks.advance(seconds=30)
    hall.tick()
    assert len(hall.kinds(ev.TicketCalled)) == 1  # window 4 is calling now, not idle
