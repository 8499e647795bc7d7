"""The demo's traffic: a booked applicant's slot is one the check-in at the card reader finds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hall_devices.demo.traffic import booked_slot
from hall_devices.layout import Layout


@pytest.mark.parametrize("hall_clock", ["2027-01-01 00:02:00", "2026-12-07 00:00:00", "2026-12-03 22:30:00",
                                        "2026-12-03 10:00:00"])
def test_the_booked_slot_lies_in_the_business_day_of_the_check_in(layout: Layout, hall_clock: str) -> None:
    """The engine checks in only a booking whose slot starts on today's business day: a slot started
    5 minutes back from just past hall midnight lay on yesterday and no card checked in."""
    hall = layout.hall
    now = datetime.fromisoformat(hall_clock).replace(tzinfo=UTC) - timedelta(hours=hall.utc_offset_hours)
    start, end = booked_slot(hall, now)
    assert hall.business_day(start) == hall.business_day(now)
    assert start <= now < end and end - start == timedelta(minutes=30)
    assert start.tzinfo is not None and end.tzinfo is not None
