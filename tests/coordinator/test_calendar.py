from __future__ import annotations

import datetime as dt

from hall_devices.coordinator.calendar import business_day, deadline
from hall_devices.layout import Hall, Policy, Text

HALL = Hall(id="h", name=Text(zh="厅", en="hall"), day_starts_at_hour=4, utc_offset_hours=8)


def at(local: str) -> dt.datetime:
    return dt.datetime.fromisoformat(local).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))


def test_numbers_reset_at_the_configured_hour() -> None:
    assert business_day(HALL, at("2026-11-23 03:59")) == "2026-11-22"
    assert business_day(HALL, at("2026-11-23 04:00")) == "2026-11-23"
    assert business_day(HALL, at("2026-11-23 04:00").astimezone(dt.UTC)) == "2026-11-23"


def test_deadline_counts_working_days_only() -> None:
    friday = at("2026-11-27 16:00")
    # 5 working days after a Friday: Mon..Fri of the next week; the deadline is that Friday's end.
    assert deadline(HALL, Policy(), friday, 5) == at("2026-12-05 00:00")
    holiday = Policy(holidays=(dt.date(2026, 12, 1),))
    assert deadline(HALL, holiday, friday, 5) == at("2026-12-08 00:00")
    makeup = Policy(extra_working_days=(dt.date(2026, 11, 28),))  # a worked Saturday (调休)
    assert deadline(HALL, makeup, friday, 5) == at("2026-12-04 00:00")
