"""Bookings in the coordinator: check-in by ID card hash, early and late by the slot tolerance, a
missed call reactivated like any 过号 ticket, cancelled bookings refused, capacity and idempotency."""

from __future__ import annotations

from datetime import timedelta

from hall_devices.contract import TICKET_REQUEST, TicketClass, TicketReply, TicketRequest
from hall_devices.demo.sim.idcard import DEMO_CARDS
from hall_devices.idcard.identity import id_hash
from tests.coordinator.harness import T0, Hall, error_code

HASH = id_hash(b"k", DEMO_CARDS[0].id_number)


def book(hall: Hall, code: str, start_min: int, end_min: int, **extra: object) -> str | None:
    reply = hall.staff("book_appointment", appointment_code=code, service_id="passport",
                       slot_start=T0 + timedelta(minutes=start_min), slot_end=T0 + timedelta(minutes=end_min),
                       **extra)
    return error_code(reply)


def test_card_check_in_tolerance_and_a_missed_call_reactivated(hall: Hall) -> None:
    assert book(hall, "EARLY", 60, 90) is None  # 09:00 now: 60 min early, beyond the 15 min tolerance
    assert book(hall, "CARD", 10, 40, id_hash=HASH) is None
    assert book(hall, "CARD", 10, 40, id_hash=HASH) is None  # the same again: booked once
    assert book(hall, "CARD", 20, 50) == "appointment_exists"
    early = hall.take(None, "appointment", code="EARLY")
    assert early.ticket is not None and early.ticket.ticket_class == "normal"  # too early: a normal ticket

    def by_card(command_id: str) -> TicketReply:
        request = TicketRequest(command_id=command_id, ticket_class=TicketClass.APPOINTMENT, id_hash=HASH)
        reply = hall.kiosk.requests.call(TICKET_REQUEST, request, kiosk="K1")
        assert isinstance(reply, TicketReply)
        return reply

    checked_in = by_card("card-1").ticket
    assert checked_in is not None and checked_in.ticket_class == "appointment"
    assert error_code(by_card("card-2")) == "no_booking_for_card"  # its one booking is used
    window = hall.layout.windows_serving("passport")[0]
    hall.ok(window, "login", clerk_id="c1")
    assert hall.next_number(window) == checked_in.number  # 预约 goes before the normal ticket
    hall.ok(window, "no_show")
    hall.ok(window, "reactivate", ticket_number=checked_in.number)  # missed the call: back like any 过号
    assert hall.service.engine.state.tickets[checked_in.ticket_id].status == "waiting"

    assert book(hall, "GONE", 10, 40) is None
    assert error_code(hall.staff("cancel_appointment", appointment_code="GONE")) is None
    assert error_code(hall.staff("cancel_appointment", appointment_code="GONE")) is None  # again: fine
    assert error_code(hall.take(None, "appointment", code="GONE")) == "appointment_cancelled"
    assert error_code(hall.staff("change_appointment", appointment_code="GONE",
                                 slot_start=T0 + timedelta(minutes=30))) == "appointment_cancelled"
    assert error_code(hall.staff("change_appointment", appointment_code="NONE")) == "unknown_appointment"


def test_a_cancelled_code_is_spent_and_bookings_stay_within_the_horizon(hall: Hall) -> None:
    assert book(hall, "SPENT", 60, 90) is None
    assert error_code(hall.staff("cancel_appointment", appointment_code="SPENT")) is None
    assert book(hall, "SPENT", 60, 90) == "appointment_cancelled"  # the same create again: not "exists"
    horizon = hall.layout.policy.booking_horizon_days
    assert book(hall, "FAR", horizon * 1440 + 60, horizon * 1440 + 90) == "slot_too_far"
    assert book(hall, "FAR", 2_900_000 * 1440, 2_900_000 * 1440 + 30) == "slot_too_far"  # year 9966
    assert book(hall, "PAST", -90, -60) == "slot_past"
    assert "FAR" not in hall.service.engine.state.appointments
    assert error_code(hall.staff("change_appointment", appointment_code="SPENT")) == "appointment_cancelled"
