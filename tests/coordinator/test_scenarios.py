"""Every window action and every call rule, through a real Mosquitto, as the devices send them."""

from __future__ import annotations

from datetime import timedelta

from hall_devices.contract import WINDOW_COMMAND, TicketClass, WindowStatus
from tests.coordinator.harness import Hall, error_code


def test_numbers_call_and_screens(hall: Hall) -> None:
    first, second = hall.take("company_setup"), hall.take("sole_trader")
    assert first.ticket and second.ticket
    assert (first.ticket.number, second.ticket.number) == ("A001", "A002")  # one prefix per department
    assert first.ticket.windows == [1, 2, 3, 21]
    assert second.ticket.people_ahead == 1
    login = hall.ok(1, "login", clerk_id="Z0101")
    assert login.state is not None and login.state.status is WindowStatus.IDLE, login
    result = hall.ok(1, "next")
    assert result.ticket and result.ticket.number == "A001"
    assert result.state and result.state.status is WindowStatus.CALLING and result.state.waiting == 1
    call = hall.call()
    assert call.text.zh == "请A001号到1号窗口" and call.window == 1 and call.attempt == 1


def test_illegal_actions_name_the_state_and_change_nothing(hall: Hall) -> None:
    refused = hall.window(4, "next")
    assert error_code(refused) == "wrong_state"
    assert refused.error and "closed (未登录)" in refused.error.message
    hall.ok(4, "login", clerk_id="Z0401")
    assert error_code(hall.window(4, "finish")) == "wrong_state"
    assert error_code(hall.window(4, "next")) == "queue_empty"
    assert error_code(hall.window(4, "login", clerk_id="Z9")) == "wrong_state"
    hall.take("hukou_in")
    assert hall.next_number(4) == "B001"
    assert error_code(hall.window(4, "next")) == "wrong_state"  # finish or hand it on first
    assert error_code(hall.window(4, "login")) == "wrong_state"
    from hall_devices.contract import WindowAction, WindowCommand
    from tests.coordinator.harness import cid

    unknown = hall.web.requests.call(WINDOW_COMMAND, WindowCommand(
        command_id=cid(), action=WindowAction.LOGIN, clerk_id="x"), window=99)
    assert error_code(unknown) == "unknown_window"


def test_unknown_service_and_login_without_clerk(hall: Hall) -> None:
    reply = hall.take("no_such_service")
    assert not reply.ok and error_code(reply) == "unknown_service"
    assert reply.error and "no_such_service" in reply.error.message
    assert error_code(hall.window(4, "login")) == "missing_clerk"


def test_recall_limit(hall: Hall) -> None:
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    assert hall.call().attempt == 1
    for attempt in (2, 3, 4):  # three recalls after the first call
        hall.ok(6, "recall")
        assert hall.call().attempt == attempt
    refused = hall.window(6, "recall")
    assert error_code(refused) == "recall_limit"


def test_no_show_reactivation_re_enters_after_k(hall: Hall) -> None:
    for _ in range(5):
        hall.take("passport")
        hall.clock.advance(seconds=10)
    hall.ok(6, "login", clerk_id="Z0601")
    assert hall.next_number(6) == "B001"
    hall.ok(6, "no_show")
    hall.ok(6, "reactivate", ticket_number="B001")  # re-enters after K = 3 tickets
    order = []
    for _ in range(5):
        order.append(hall.next_number(6))
        hall.ok(6, "finish")
    assert order == ["B002", "B003", "B004", "B001", "B005"]


def test_reactivation_expires(hall: Hall) -> None:
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    hall.ok(6, "no_show")
    hall.clock.advance(minutes=31)
    assert error_code(hall.window(6, "reactivate", ticket_number="B001")) == "reactivation_expired"
    assert error_code(hall.window(6, "reactivate", ticket_number="B999")) == "unknown_ticket"


def test_hold_and_call_back(hall: Hall) -> None:
    hall.take("passport")
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    held = hall.ok(6, "hold")
    assert held.state and held.state.held == ["B001"] and held.state.status is WindowStatus.IDLE
    assert hall.next_number(6) == "B002"
    hall.ok(6, "finish")
    assert error_code(hall.window(6, "logout")) == "tickets_held"
    back = hall.ok(6, "call_back", ticket_number="B001")
    assert back.ticket and back.ticket.number == "B001" and back.state and back.state.held == []
    assert error_code(hall.window(6, "call_back", ticket_number="B002")) == "wrong_state"
    hall.ok(6, "finish")
    assert hall.ok(6, "logout").state.status is WindowStatus.CLOSED  # type: ignore[union-attr]


def test_transfer_to_a_service_keeps_its_place_and_class(hall: Hall) -> None:
    hall.take("hukou_in")  # B001, earliest
    hall.clock.advance(minutes=1)
    hall.take("passport")  # B002
    hall.clock.advance(minutes=1)
    hall.take("hukou_in")  # B003
    hall.ok(4, "login", clerk_id="Z0401")
    hall.ok(5, "login", clerk_id="Z0501")
    hall.ok(6, "login", clerk_id="Z0601")
    assert hall.next_number(6) == "B002"
    assert hall.next_number(4) == "B001"
    assert hall.next_number(5) == "B003"
    # Both go to passport; B003 is handed on first, but B001 was issued first and goes first.
    hall.ok(5, "transfer", target_service="passport")
    hall.ok(4, "transfer", target_service="passport")
    hall.ok(6, "finish")
    moved = hall.ok(6, "next")
    assert moved.ticket and moved.ticket.number == "B001"
    assert moved.ticket.ticket_class is TicketClass.TRANSFERRED
    hall.ok(6, "finish")
    assert hall.next_number(6) == "B003"


def test_transfer_to_a_window(hall: Hall) -> None:
    hall.take("hukou_in")
    hall.ok(4, "login", clerk_id="Z0401")
    hall.ok(5, "login", clerk_id="Z0501")
    hall.ok(4, "next")
    assert error_code(hall.window(4, "transfer")) == "missing_target"
    assert error_code(hall.window(4, "transfer", target_window=4)) == "same_window"
    # Nobody at window 6 yet: the ticket would wait where nobody can call it (issue 21).
    assert error_code(hall.window(4, "transfer", target_window=6)) == "window_closed"
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(4, "transfer", target_window=6)
    assert error_code(hall.window(5, "next")) == "queue_empty"  # window 5 serves hukou_in, not it
    assert hall.next_number(6) == "B001"


def test_pause_with_reason_and_resume(hall: Hall) -> None:
    hall.ok(6, "login", clerk_id="Z0601")
    paused = hall.ok(6, "pause", reason="午间休息")
    assert paused.state and paused.state.status is WindowStatus.PAUSED
    assert paused.state.pause_reason == "午间休息"
    hall.take("passport")
    assert error_code(hall.window(6, "next")) == "wrong_state"
    assert hall.ok(6, "resume").state.status is WindowStatus.IDLE  # type: ignore[union-attr]
    assert hall.next_number(6) == "B001"


def test_start_then_finish(hall: Hall) -> None:
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    started = hall.ok(6, "start")
    assert started.state and started.state.status is WindowStatus.SERVING
    assert error_code(hall.window(6, "recall")) == "wrong_state"
    finished = hall.ok(6, "finish")
    assert finished.state and finished.state.status is WindowStatus.IDLE


def test_class_order(hall: Hall) -> None:
    slot = hall.clock()
    booked = hall.staff("book_appointment", appointment_code="YY2026", service_id="passport",
                        slot_start=slot, slot_end=slot + timedelta(minutes=30))
    assert booked.ok
    hall.take("passport")  # normal
    hall.take("passport", "priority")
    hall.ok(4, "login", clerk_id="Z0401")
    hall.ok(6, "login", clerk_id="Z0601")  # a transfer goes only where a window is signed in
    hall.take("hukou_in")
    assert hall.next_number(4) == "B003"
    hall.ok(4, "transfer", target_service="passport")
    green = hall.staff("issue_green", service_id="passport")
    assert green.ok and green.ticket and green.ticket.ticket_class is TicketClass.GREEN
    appointment = hall.take(None, "appointment", code="YY2026")  # scanned: the booking has the service
    assert appointment.ticket and appointment.ticket.ticket_class is TicketClass.APPOINTMENT
    assert appointment.ticket.service_id == "passport"
    assert error_code(hall.take("passport", "appointment", code="YY2026")) == "appointment_used"
    assert error_code(hall.take("passport", "appointment", code="NOPE")) == "unknown_appointment"
    order = []
    for _ in range(5):
        order.append(hall.next_number(6))
        hall.ok(6, "finish")
    # green, appointment, transferred, priority, normal
    assert order == ["B004", "B005", "B003", "B002", "B001"]


def test_appointment_outside_its_slot_is_normal(hall: Hall) -> None:
    slot = hall.clock() + timedelta(hours=2)
    hall.staff("book_appointment", appointment_code="LATE1", service_id="passport",
               slot_start=slot, slot_end=slot + timedelta(minutes=30))
    early = hall.take("passport", "appointment", code="LATE1")
    assert early.ticket and early.ticket.ticket_class is TicketClass.NORMAL
    assert error_code(hall.take("passport", "appointment", code="LATE1")) == "appointment_used"
    wrong = hall.staff("book_appointment", appointment_code="X2", service_id="passport",
                       slot_start=slot, slot_end=slot)
    assert error_code(wrong) == "bad_slot"


def test_primary_before_secondary(hall: Hall) -> None:
    hall.take("sole_trader")  # secondary at window 2
    hall.clock.advance(minutes=1)
    hall.take("company_change")  # primary at window 2, issued later
    hall.ok(2, "login", clerk_id="Z0201")
    assert hall.next_number(2) == "A002"
    hall.ok(2, "finish")
    assert hall.next_number(2) == "A001"


def test_starvation_guard(hall: Hall) -> None:
    hall.take("passport")  # B001, normal
    hall.clock.advance(minutes=21)  # waited longer than M = 20 minutes
    for _ in range(5):
        hall.take("passport", "priority")
    hall.ok(6, "login", clerk_id="Z0601")
    order = []
    for _ in range(6):
        order.append(hall.next_number(6))
        hall.ok(6, "finish")
    # N = 3 priority calls in a row, then the starved normal ticket, then priority again.
    assert order == ["B002", "B003", "B004", "B001", "B005", "B006"]


def test_without_starving_normal_tickets_wait_for_priority(hall: Hall) -> None:
    hall.take("passport")
    for _ in range(4):
        hall.take("passport", "priority")
    hall.ok(6, "login", clerk_id="Z0601")
    order = []
    for _ in range(5):
        order.append(hall.next_number(6))
        hall.ok(6, "finish")
    assert order == ["B002", "B003", "B004", "B005", "B001"]


def test_a_command_id_is_applied_once(hall: Hall) -> None:
    first = hall.take("passport", command_id="kiosk-K1-000042")
    again = hall.take("passport", command_id="kiosk-K1-000042")
    assert first == again
    assert hall.take("passport").ticket.number == "B002"  # type: ignore[union-attr]
    hall.ok(6, "login", clerk_id="Z0601", command_id="login-1")
    assert hall.ok(6, "login", clerk_id="Z0601", command_id="login-1").ok  # original answer, not an error


def test_numbers_continue_after_a_restart_and_reset_the_next_day(hall: Hall) -> None:
    hall.take("passport")
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    hall.restart_coordinator()
    assert hall.take("passport").ticket.number == "B003"  # type: ignore[union-attr]
    assert hall.ok(6, "finish").ticket.number == "B001"  # type: ignore[union-attr]
    hall.clock.advance(days=1)
    fresh = hall.take("passport")
    assert fresh.ticket and fresh.ticket.number == "B001" and fresh.ticket.people_ahead == 0
