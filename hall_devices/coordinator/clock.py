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
from hall_devices.layout import Hall, Policy

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


class ClockKeeper:
    """This process's view of the coordinator's clock, for :class:`Engine`: the latest reading, the
    first reading of a later business day not yet started (settling), and the first reading after
    a start that no stored reading linked to the store's events."""

    def __init__(self, hall: Hall, policy: Policy) -> None:
        self.hall = hall
        self.policy = policy
        self.boot: str | None = None  # the boot this process's readings count from
        self.reading: Reading | None = None  # the latest; stored with each commit (resume())
        self.later_since: Reading | None = None
        self.unlinked_start: Reading | None = None

    @property
    def settling(self) -> bool:
        """The clock reads a later business day that has not started yet (no tickets meanwhile)."""
        return self.later_since is not None

    def resume(self, stored: Reading) -> None:
        """After a restart: the reading stored with the latest commit. Of this boot, it links the
        first reading to it, so a step while the process was down is seen exactly (the expected wall
        clock is the stored one plus the boottime that passed) and a night passing starts the day."""
        if stored.boot is not None and stored.boot == self.boot and self.reading is None:
            self.reading = stored

    def read(self, now: datetime, mono: float | None, day: str,
             latest_event_at: datetime | None) -> ev.ClockStepped | ev.DayStarted | None:
        """One reading: the event it means, if any (:func:`clock_event`)."""
        reading = Reading(now, mono, self.boot)
        if self.reading is None and latest_event_at is not None:
            self.unlinked_start = reading  # resume() links it when the store's reading allows
        verdict = clock_event(self.hall, timedelta(seconds=self.policy.clock_step_seconds),
                              timedelta(seconds=self.policy.day_change_settle_s), day,
                              latest_event_at, last=self.reading, now=reading,
                              later_since=self.later_since)
        self.reading, self.later_since, event = reading, verdict.later_since, verdict.event
        if isinstance(event, ev.ClockStepped):
            event = self._held_from(event)
        if event is not None:
            self.unlinked_start = None
        return event

    def _held_from(self, step: ev.ClockStepped) -> ev.ClockStepped:
        """A step soon after an unlinked start corrects the clock this process started with: the
        times held from before the start were on the old process's clock and stay where they are."""
        first, now = self.unlinked_start, self.reading
        if first is None or now is None or first is now or not first.linked(now):
            return step  # seen against the store's latest event: the old times move with it
        assert first.mono is not None and now.mono is not None
        if now.mono - first.mono > self.policy.day_change_settle_s:
            return step
        return step.model_copy(update={"held_from": first.wall})
