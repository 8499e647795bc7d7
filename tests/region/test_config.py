"""The hall's check of a pushed layout (region/config.py): what a screen shows may change at once,
a device may not (it has a broker account and a port of its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hall_devices.contract import TicketClass, TicketStatus
from hall_devices.coordinator.model import Appointment, State, Ticket
from hall_devices.layout import Layout
from hall_devices.region.config import check
from tests.conftest import EXAMPLE

TEXT = EXAMPLE.read_text(encoding="utf-8")
HS1 = 'id = "HS1"\nbus = "L1"\naddress = 200\n'


def test_a_new_notice_on_a_hall_screen_is_applied(layout: Layout) -> None:
    assert TEXT.count(HS1) == 1
    notice = 'notice = { zh = "今日下午停电检修", en = "Power maintenance this afternoon" }\n'
    text = TEXT.replace(HS1, HS1 + notice)
    new, reasons = check(layout, 0, 1, text, State(), today="2026-11-30")
    assert reasons == [] and new is not None
    assert new.device("HS1").notice.zh == "今日下午停电检修"  # type: ignore[union-attr]


def test_a_device_moved_to_another_address_is_refused_with_the_reason(layout: Layout) -> None:
    new, reasons = check(layout, 0, 1, TEXT.replace(HS1, HS1.replace("200", "201")), State(),
                         today="2026-11-30")
    assert new is None
    assert any("devices cannot change by a push" in r for r in reasons), reasons


PASSPORT = TEXT[TEXT.index('[[services]]\nid = "passport"'):
                TEXT.index('[[services]]\nid = "hk_macao_permit"')]
NO_PASSPORT = TEXT.replace(PASSPORT, "").replace('primary = ["passport", "hk_macao_permit"]',
                                                 'primary = ["hk_macao_permit"]')
T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in the hall


def passport_ticket(day: str, status: TicketStatus) -> Ticket:
    return Ticket("T1", "B001", day, "passport", TicketClass.NORMAL, T0, (1, 0), "tok", status=status)


def booking(days: int, *, cancelled: bool = False) -> Appointment:
    start = T0 + timedelta(days=days)
    return Appointment("A1", "passport", start, start + timedelta(minutes=30), cancelled=cancelled)


def test_a_push_removing_a_service_with_history_today_or_bookings_ahead_is_refused(layout: Layout) -> None:
    served_today = State(day="2026-11-30", tickets={"T1": passport_ticket("2026-11-30", TicketStatus.DONE)})
    new, reasons = check(layout, 0, 1, NO_PASSPORT, served_today, today="2026-11-30")
    assert new is None and reasons == [
        "事项 普通护照申领 今日已有办件记录，请在闭厅后删除 / service passport has tickets today: remove "
        "it after closing"]
    for days in (0, 3):  # a booking later today, or in three days
        new, reasons = check(layout, 0, 1, NO_PASSPORT, State(appointments={"A1": booking(days)}),
                             today="2026-11-30")
        assert new is None and reasons == [
            "事项 普通护照申领 有 1 个今日及以后的预约 / service passport has 1 bookings from today on: "
            "cancel or move them first"]
    waiting = State(day="2026-11-30", tickets={"T1": passport_ticket("2026-11-30", TicketStatus.WAITING)})
    new, reasons = check(layout, 0, 1, NO_PASSPORT, waiting, today="2026-11-30")
    assert new is None and len(reasons) == 1 and "live ticket B001" in reasons[0]  # said once


def test_a_service_with_only_past_history_or_cancelled_bookings_may_be_removed(layout: Layout) -> None:
    past = State(day="2026-11-27", tickets={"T1": passport_ticket("2026-11-27", TicketStatus.DONE)},
                 appointments={"A1": booking(-3), "A2": booking(2, cancelled=True)})
    new, reasons = check(layout, 0, 1, NO_PASSPORT, past, today="2026-11-30")
    assert reasons == [] and new is not None and "passport" not in {s.id for s in new.services}
