from __future__ import annotations

import datetime as dt

from hall_devices.coordinator.calendar import business_day, deadline, is_working_day, uncovered_years
from hall_devices.layout import Hall, Layout, Policy, Text

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


def test_deadline_across_national_day_and_its_make_up_saturday_from_the_library() -> None:
    """2025: 1–8 October off, Saturday 11 October worked (调休), known to chinesecalendar only."""
    policy = Policy()  # nothing typed into the layout
    assert not is_working_day(policy, dt.date(2025, 10, 8))
    assert is_working_day(policy, dt.date(2025, 10, 11))  # a Saturday
    rated = at("2025-09-30 15:00")
    # Working days after it: 9, 10, 11 (Sat), 13, 14 October; the deadline is the end of the 14th.
    assert deadline(HALL, policy, rated, 5) == at("2025-10-15 00:00")
    # The layout's lists stay local overrides: this hall did not work that Saturday.
    local_rule = Policy(holidays=(dt.date(2025, 10, 11),))
    assert deadline(HALL, local_rule, rated, 5) == at("2025-10-16 00:00")


def test_years_covered_by_neither_the_library_nor_the_layout() -> None:
    assert uncovered_years(Policy(), dt.date(2026, 6, 1)) == []
    assert uncovered_years(Policy(), dt.date(2026, 11, 30)) == [2027]  # the coming year
    assert uncovered_years(Policy(holidays=(dt.date(2027, 1, 1),)), dt.date(2026, 11, 30)) == []
    assert uncovered_years(Policy(), dt.date(2028, 3, 1)) == [2028]


def test_a_time_limited_service_completes_in_working_days(layout: Layout) -> None:
    """限时办结: passport (承诺件, 7 working days) taken on 30 September 2025."""
    from hall_devices.contract import TicketReply, TicketRequest
    from hall_devices.coordinator.engine import Engine
    from hall_devices.coordinator.outcome import TakeTicket

    service = layout.service("passport")
    assert service.time_limit_days is not None
    assert service.time_limit_days == 7
    request = TicketRequest(command_id="k", service_id="passport", paper=False)
    outcome = Engine(layout).handle(TakeTicket("K1", request), at("2025-09-30 10:00"), token="t")
    assert isinstance(outcome.reply, TicketReply) and outcome.reply.ticket
    # 9, 10, 11 (Sat, worked), 13, 14, 15, 16 October: the end of the 16th.
    assert outcome.reply.ticket.complete_by == at("2025-10-17 00:00")
