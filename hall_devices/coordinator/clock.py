"""The coordinator's one notion of time: a clock step told from time passing; the day's move.

Pure: readings in, at most one event out. A reading is the wall clock with a monotonic clock read
at the same moment; the monotonic clock never steps, so the wall clock moving more than the
tolerance away from the time that passed is a step (NTP correcting it, a hardware clock kept in
local time read as UTC at boot, an operator setting it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hall_devices.coordinator import events as ev
from hall_devices.coordinator.calendar import business_day
from hall_devices.layout import Hall


@dataclass(frozen=True)
class Reading:
    wall: datetime
    mono: float | None = None  # seconds of a monotonic clock; None: none was read


def clock_event(hall: Hall, tolerance: timedelta, day: str, latest_event_at: datetime | None, *,
                last: Reading | None, now: Reading) -> ev.ClockStepped | ev.DayStarted | None:
    """What a reading means, given the business day held and the previous reading of this process.

    With both readings monotonic, a step either way is seen. Without a previous one (the first
    reading after a start) only a step back behind the latest event can be seen. A step yields
    :class:`ClockStepped` and nothing else: no new day. The business day (``day``) moves only
    forward, when the clock runs across the configured day start from the previous reading (or
    from the latest event, after a restart) — or when no day is held yet.
    """
    previous = last.wall if last else latest_event_at
    step: timedelta | None = None
    if last is not None and last.mono is not None and now.mono is not None:
        expected = last.wall + timedelta(seconds=now.mono - last.mono)
        if abs(now.wall - expected) > tolerance:
            step = now.wall - expected
    elif previous is not None and now.wall < previous - tolerance:
        step = now.wall - previous
    if step is not None:
        return ev.ClockStepped(at=now.wall, step_s=step.total_seconds())
    today = business_day(hall, now.wall)
    crossed = previous is None or business_day(hall, previous) < today
    if not day or (crossed and today > day):
        return ev.DayStarted(at=now.wall, day=today)
    return None
