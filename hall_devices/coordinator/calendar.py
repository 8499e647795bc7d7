"""Business days and working-day deadlines; pure functions of the times passed in.

Working days follow China's statutory holidays and 调休 make-up working days from the
``chinesecalendar`` package (the State Council's yearly notice; 1.11 covers 2004–2026). The layout's
``holidays`` and ``extra_working_days`` override it and are the only source for years it does not
cover yet; a year covered by neither falls back to Monday–Friday and is warned about.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import chinese_calendar

from hall_devices.layout import Hall, Policy


def local(hall: Hall, at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.timezone(dt.timedelta(hours=hall.utc_offset_hours)))


def business_day(hall: Hall, at: dt.datetime) -> str:
    """The day whose numbers a ticket issued at ``at`` takes (numbers reset at the configured hour)."""
    return hall.business_day(at)


@cache
def library_years() -> frozenset[int]:
    """Years whose holidays and make-up days the installed ``chinesecalendar`` knows."""
    known: dict[dt.date, object] = chinese_calendar.constants.holidays
    return frozenset(day.year for day in known)


@cache
def library_workday(day: dt.date) -> bool:
    """The library's answer, kept: it validates each date (~40 µs), and a ticket's deadline asks
    for every day up to it on the call path."""
    return bool(chinese_calendar.is_workday(day))


def is_working_day(policy: Policy, day: dt.date) -> bool:
    if day in policy.extra_working_days:
        return True
    if day in policy.holidays:
        return False
    if day.year in library_years():
        return library_workday(day)
    return day.weekday() < 5


def year_covered(policy: Policy, year: int) -> bool:
    """A year is covered by the library, or by holidays the layout lists for it."""
    return year in library_years() or any(d.year == year for d in policy.holidays)


def uncovered_years(policy: Policy, today: dt.date, ahead_days: int = 92) -> list[int]:
    """This year and, in its last ``ahead_days`` days, the coming one, when covered by neither."""
    years = sorted({today.year, (today + dt.timedelta(days=ahead_days)).year})
    return [year for year in years if not year_covered(policy, year)]


def deadline(hall: Hall, policy: Policy, opened_at: dt.datetime, working_days: int) -> dt.datetime:
    """End (local midnight) of the ``working_days``-th working day after the day of ``opened_at``."""
    day = local(hall, opened_at).date()
    remaining = working_days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if is_working_day(policy, day):
            remaining -= 1
    tz = dt.timezone(dt.timedelta(hours=hall.utc_offset_hours))
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=tz)
