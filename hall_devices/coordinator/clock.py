"""The coordinator's one notion of time: a clock step told from time passing; the day's move.

Pure: readings in, at most one event out. A reading is the wall clock with a clock that never steps
and counts suspend (CLOCK_BOOTTIME) read at the same moment, and the id of the boot that clock
counts from; the wall clock moving more than the tolerance away from the time that passed is a step
(NTP correcting it, a hardware clock kept in local time read as UTC at boot, an operator setting it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from hall_devices.coordinator import events as ev
from hall_devices.coordinator.calendar import business_day
from hall_devices.layout import Hall

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class Reading:
    wall: datetime
    mono: float | None = None  # seconds of a clock that never steps; None: none was read
    boot: str | None = None  # the boot ``mono`` counts from: readings of two boots do not compare

    def linked(self, later: Reading) -> bool:
        """Whether the time that passed from this reading to ``later`` is known."""
        return self.mono is not None and later.mono is not None and self.boot == later.boot


@dataclass(frozen=True)
class Verdict:
    event: ev.ClockStepped | ev.DayStarted | None
    later_since: Reading | None  # first reading of a later business day not yet started: settling


def boottime() -> float:
    """Seconds since boot, suspend included (a PC or VM paused overnight is time that passed)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # not Linux: suspend then looks like a forward step
        return time.monotonic()


def boot_id() -> str | None:
    """This boot's id (Linux ``/proc/sys/kernel/random/boot_id``); None where there is none."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def clock_event(hall: Hall, tolerance: timedelta, settle: timedelta, day: str,
                latest_event_at: datetime | None, *, last: Reading | None, now: Reading,
                later_since: Reading | None = None) -> Verdict:
    """What a reading means, given the business day held and the previous reading.

    ``last`` is this process's previous reading, or after a restart the one stored with the latest
    event when it is of the same boot. Linked readings see a step either way; otherwise only a step
    back behind ``last`` or the latest event can be seen. A step yields :class:`ClockStepped` and
    nothing else, and restarts settling. The business day (``day``) moves only forward: at once when
    no day is held or when the clock ran (linked, no step) across the day start from ``last``;
    otherwise once the clock has read a later business day for ``settle`` with no step seen
    (``later_since`` is the first such reading; the caller keeps the returned one). Readings
    without ``mono`` (a test's own clock) move the day when the wall clock crosses the day start.
    """
    previous = last.wall if last else latest_event_at
    step: timedelta | None = None
    if last is not None and last.linked(now):
        assert last.mono is not None and now.mono is not None
        expected = last.wall + timedelta(seconds=now.mono - last.mono)
        if abs(now.wall - expected) > tolerance:
            step = now.wall - expected
    elif previous is not None and now.wall < previous - tolerance:
        step = now.wall - previous
    today = business_day(hall, now.wall)
    if step is not None:  # the settling (if the step lands in a later day) starts from here
        later = now if day and today > day else None
        return Verdict(ev.ClockStepped(at=now.wall, step_s=step.total_seconds()), later)
    if not day:
        return Verdict(ev.DayStarted(at=now.wall, day=today), None)
    if today <= day:
        return Verdict(None, None)
    ran_across = previous is not None and business_day(hall, previous) < today
    if now.mono is None:  # a test's own wall clock: with nothing to tell a step by, its word goes
        return Verdict(ev.DayStarted(at=now.wall, day=today) if ran_across else None, None)
    if ran_across and last is not None and last.linked(now):  # ran across the day start
        return Verdict(ev.DayStarted(at=now.wall, day=today), None)
    since = later_since if later_since is not None and later_since.linked(now) else now
    assert since.mono is not None and now.mono is not None
    if now.mono - since.mono >= settle.total_seconds():
        return Verdict(ev.DayStarted(at=now.wall, day=today), None)
    return Verdict(None, since)
