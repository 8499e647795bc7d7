"""A ticket request's deadline, judged by the coordinator's clock (sans-IO engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from hall_devices.contract import CLOCK_SKEW_MAX_S, TICKET_REQUEST_TTL_S, TicketRequest
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.model import STATE_ADAPTER
from hall_devices.coordinator.outcome import TakeTicket
from hall_devices.layout import Layout

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TTL = timedelta(seconds=TICKET_REQUEST_TTL_S)
SKEW = timedelta(seconds=CLOCK_SKEW_MAX_S)


def request(deadline: datetime | None) -> TicketRequest:
    return TicketRequest(command_id="k1", deadline=deadline, service_id="passport", paper=False)


def refused(engine: Engine, req: TicketRequest, now: datetime) -> str | None:
    """The refusal code, or None when a ticket was issued; a refusal must change nothing."""
    before = STATE_ADAPTER.dump_json(engine.state)
    out = engine.handle(TakeTicket("K1", req), now, token="t")
    assert out.reply is not None
    if out.reply.ok:
        return None
    assert out.events == [] and out.effects == [] and not out.queue_changed
    assert STATE_ADAPTER.dump_json(engine.state) == before
    assert out.reply.error is not None
    return out.reply.error.code


@pytest.mark.parametrize(("arrives_after", "code"), [
    (timedelta(0), None),
    (TTL, None),  # at the deadline itself: still in time
    (TTL + timedelta(milliseconds=1), "request_expired"),
    (TTL + timedelta(hours=3), "request_expired"),  # a coordinator stalled for hours issues no ghost
])
def test_a_request_past_its_deadline_is_refused(layout: Layout, arrives_after: timedelta,
                                               code: str | None) -> None:
    assert refused(Engine(layout), request(T0 + TTL), T0 + arrives_after) == code


@pytest.mark.parametrize(("kiosk_ahead", "code"), [
    (-SKEW, None),
    (timedelta(0), None),
    (SKEW, None),
    (SKEW + timedelta(milliseconds=1), "clock_skew"),  # the kiosk would give up while we could issue
    (timedelta(minutes=10), "clock_skew"),
    (-TTL - timedelta(seconds=1), "request_expired"),  # a kiosk far behind: every request expired
])
def test_kiosk_clock_skew(layout: Layout, kiosk_ahead: timedelta, code: str | None) -> None:
    """A kiosk sets its deadline at its own now + TTL; the coordinator's clock reads T0."""
    assert refused(Engine(layout), request(T0 + kiosk_ahead + TTL), T0) == code


def test_the_refusal_names_the_times(layout: Layout) -> None:
    out = Engine(layout).handle(TakeTicket("K1", request(T0)), T0 + timedelta(seconds=4), token="t")
    assert out.reply is not None and out.reply.error is not None
    assert "4.0 s after its deadline 2026-11-23T01:00:00+00:00" in out.reply.error.message
    out = Engine(layout).handle(TakeTicket("K1", request(T0 + TTL + timedelta(seconds=30))), T0,
                                token="t")
    assert out.reply is not None and out.reply.error is not None
    assert "30.0 s ahead of the coordinator's" in out.reply.error.message


def test_no_deadline_means_nobody_waits_at_a_screen(layout: Layout) -> None:
    assert refused(Engine(layout), request(None), T0 + timedelta(days=1)) is None


def test_a_deadline_must_carry_its_zone() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        TicketRequest.model_validate({"command_id": "k1", "service_id": "passport",
                                      "deadline": "2026-11-23T09:00:00"})
