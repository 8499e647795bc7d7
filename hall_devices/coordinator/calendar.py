"""Business days and working-day deadlines; pure functions of the times passed in."""

from __future__ import annotations

import datetime as dt

from hall_devices.layout import Hall, Policy


def local(hall: Hall, at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.timezone(dt.timedelta(hours=hall.utc_offset_hours)))


def business_day(hall: Hall, at: dt.datetime) -> str:
    """The day whose numbers a ticket issued at ``at`` takes (numbers reset at the configured hour)."""
    shifted = local(hall, at) - dt.timedelta(hours=hall.day_starts_at_hour)
    return shifted.date().isoformat()


def is_working_day(policy: Policy, day: dt.date) -> bool:
    if day in policy.extra_working_days:
        return True
    return day.weekday() < 5 and day not in policy.holidays


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
