"""Issue 21: no stranded ticket (every path refused or re-routed by policy); 号段 number ranges."""

from __future__ import annotations

from typing import Any

import pytest

from hall_devices.contract import TicketRequest, TicketStatus
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.outcome import Outcome, TakeTicket
from hall_devices.layout import Layout, cross_check
from tests.coordinator.test_time import Clocks, Hall, hall_time


def with_policy(layout: Layout, **policy: Any) -> Layout:
    return layout.model_copy(update={"policy": layout.policy.model_copy(update=policy)})


def error(outcome: Outcome) -> str | None:
    reply = outcome.reply
    assert reply is not None, outcome
    return reply.error.code if reply.error else None


def refusal(outcome: Outcome) -> str:
    """The refusal's message, for one known to be refused."""
    assert outcome.reply is not None and outcome.reply.error is not None, outcome
    return outcome.reply.error.message


def at_nine(layout: Layout) -> Hall:
    return Hall(layout, Clocks(hall_time("2026-11-23 09:00")))


def test_transfer_to_a_closed_window_is_refused(layout: Layout) -> None:
    hall = at_nine(layout)
    hall.take("hukou_in")
    hall.window(4, "login", clerk_id="Z0401")
    hall.next(4)
    before = len(hall.events)
    outcome = hall.window(4, "transfer", target_window=6)
    assert error(outcome) == "window_closed"
    assert "window 6" in refusal(outcome) and "未登录" in refusal(outcome)
    assert len(hall.events) == before  # nothing changed: B001 is still called at window 4
    hall.window(6, "login", clerk_id="Z0601")
    hall.window(6, "pause")  # signed in, away for a moment: the ticket will be called there
    assert error(hall.window(4, "transfer", target_window=6)) is None


def test_transfer_to_a_closed_window_requeues_when_the_policy_says_so(layout: Layout) -> None:
    hall = at_nine(with_policy(layout, stranded_tickets="requeue"))
    hall.take("hukou_in")
    hall.window(4, "login", clerk_id="Z0401")
    hall.window(5, "login", clerk_id="Z0501")
    hall.next(4)
    assert error(hall.window(4, "transfer", target_window=6)) is None
    ticket = hall.engine.state.tickets["2026-11-23-B001"]
    assert (ticket.status, ticket.target_window) == (TicketStatus.WAITING, None)
    assert hall.next(5) == "B001"  # back in its service's queue


def test_sign_out_with_transferred_tickets_waiting(layout: Layout) -> None:
    hall = at_nine(layout)
    hall.take("hukou_in")
    for window in (4, 5, 6):
        hall.window(window, "login", clerk_id=f"Z0{window}01")
    hall.next(4)
    hall.window(4, "transfer", target_window=6)
    outcome = hall.window(6, "logout")
    assert error(outcome) == "tickets_transferred" and "B001" in refusal(outcome)
    assert hall.engine.state.windows[6].status.value == "idle"
    assert hall.next(6) == "B001"  # whoever signs out first calls it


def test_sign_out_with_transferred_tickets_requeues_them(layout: Layout) -> None:
    hall = at_nine(with_policy(layout, stranded_tickets="requeue"))
    hall.take("hukou_in")
    for window in (4, 5, 6):
        hall.window(window, "login", clerk_id=f"Z0{window}01")
    hall.next(4)
    hall.window(4, "transfer", target_window=6)
    assert error(hall.window(6, "logout")) is None
    assert [e.ticket_ids for e in hall.kinds(ev.TicketsReturned) if isinstance(e, ev.TicketsReturned)] == [
        ["2026-11-23-B001"]]
    assert hall.next(5) == "B001"


@pytest.mark.parametrize("mode", ["warn", "stop"])
def test_the_last_window_of_a_service_signs_out(layout: Layout, mode: str) -> None:
    hall = at_nine(with_policy(layout, no_window_kiosk=mode))
    hall.window(6, "login", clerk_id="Z0601")
    hall.take("passport")
    assert error(hall.window(6, "logout")) is None  # allowed: the manager is told
    hall.tick()
    alerts = [a for a in hall.alerts if a.kind == "no_open_window"]
    assert [a.subject for a in alerts] == ["passport"]
    assert "没有已登录的窗口" in alerts[0].message.zh
    row = next(r for r in hall.engine.views.queue(hall.engine.state, hall.clocks.wall).services
               if r.service_id == "passport")
    assert (row.waiting, row.open_windows, row.accepting) == (1, 0, mode == "warn")
    if mode == "stop":
        outcome = hall.send(TakeTicket("K1", TicketRequest(command_id="late", service_id="passport",
                                                           paper=False)))
        assert error(outcome) == "service_closed" and "暂停取号" in refusal(outcome)
    hall.window(6, "login", clerk_id="Z0602")
    hall.tick()
    assert "no_open_window:passport" not in hall.engine.supervisor.active  # cleared
    assert hall.next(6) == "B001"  # still callable by any window serving it


def ranged(layout: Layout) -> Layout:
    ranges = {"passport": (1, 2), "hk_macao_permit": (500, 999)}
    services = tuple(s.model_copy(update={"number_range": ranges.get(s.id, (100, 499))})
                     if s.prefix == "B" else s for s in layout.services)
    return layout.model_copy(update={"services": services})


def test_number_ranges_within_a_letter(layout: Layout) -> None:
    hall = at_nine(ranged(layout))
    assert [hall.take("passport")[0], hall.take("hk_macao_permit")[0], hall.take("hukou_in")[0],
            hall.take("passport")[0], hall.take("id_card")[0]] == [
        "2026-11-23-B001", "2026-11-23-B500", "2026-11-23-B100", "2026-11-23-B002", "2026-11-23-B101"]
    outcome = hall.send(TakeTicket("K1", TicketRequest(command_id="third", service_id="passport",
                                                       paper=False)))
    assert error(outcome) == "range_exhausted"
    message = refusal(outcome)
    assert "号段 B001–B002 已发完" in message and "used up for today" in message


def test_overlapping_ranges_are_a_layout_problem(layout: Layout) -> None:
    assert cross_check(ranged(layout)) == []
    services = tuple(s.model_copy(update={"number_range": (450, 600)}) if s.id == "hk_macao_permit" else s
                     for s in ranged(layout).services)
    problems = [str(p) for p in cross_check(layout.model_copy(update={"services": services}))]
    assert len(problems) == 1 and "overlap" in problems[0] and "'B'" in problems[0]
    mixed = tuple(s.model_copy(update={"number_range": (1, 499)}) if s.id == "passport" else s
                  for s in layout.services)
    assert any("overlap" in str(p) for p in cross_check(layout.model_copy(update={"services": mixed})))


def test_transfer_into_a_service_no_signed_in_window_serves(layout: Layout) -> None:
    """Refused by default, whatever the target; with requeue accepted and the manager alerted."""
    hall = at_nine(layout)
    hall.window(6, "login", clerk_id="Z0601")
    hall.take("passport")
    hall.next(6)
    before = len(hall.events)
    outcome = hall.window(6, "transfer", target_service="company_setup")
    assert error(outcome) == "no_open_window" and "暂无已登录的窗口" in refusal(outcome)
    assert len(hall.events) == before  # nothing changed: B001 is still called at window 6
    hall.window(1, "login", clerk_id="Z0101")  # window 1 serves company_setup: now it may go there
    assert error(hall.window(6, "transfer", target_service="company_setup")) is None


@pytest.mark.parametrize("kiosk", ["warn", "stop"])
def test_transfer_into_a_service_with_no_window_when_the_policy_requeues(layout: Layout, kiosk: str) -> None:
    hall = at_nine(with_policy(layout, stranded_tickets="requeue", no_window_kiosk=kiosk))
    hall.window(6, "login", clerk_id="Z0601")
    ticket = hall.take("passport")[0]
    hall.next(6)
    outcome = hall.window(6, "transfer", target_service="company_setup", target_window=1)
    if kiosk == "stop":  # the kiosks stop issuing for it: a transfer must not slip a ticket in
        assert error(outcome) == "no_open_window"
        return
    assert error(outcome) is None
    moved = hall.engine.state.tickets[ticket]
    assert (moved.status, moved.service_id, moved.target_window) == (
        TicketStatus.WAITING, "company_setup", None)
    hall.tick()
    assert [a.subject for a in hall.alerts if a.kind == "no_open_window"] == ["company_setup"]


def test_no_open_window_is_alerted_once_the_hall_has_opened(layout: Layout) -> None:
    hall = at_nine(layout)
    hall.take("company_setup")  # before any window signs in: the morning stays quiet
    hall.tick()
    assert [a for a in hall.alerts if a.kind == "no_open_window"] == []
    hall.window(6, "login", clerk_id="Z0601")  # the hall opens; nobody serves company_setup
    hall.tick()
    assert [a.subject for a in hall.alerts if a.kind == "no_open_window"] == ["company_setup"]
