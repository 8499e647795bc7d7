"""特呼 (call_ticket): a chosen waiting ticket before its turn, only with a reason, only one the
window serves; the reason stays with the call event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hall_devices.coordinator import events as ev
from hall_devices.coordinator.engine import Engine
from hall_devices.layout import Layout
from tests.coordinator.test_engine import act, issue, reply, snapshot

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def test_a_ticket_is_called_out_of_turn_with_a_reason(layout: Layout) -> None:
    engine = Engine(layout)
    issue(engine, "passport", T0)
    issue(engine, "passport", T0 + timedelta(minutes=1))
    issue(engine, "company_setup", T0 + timedelta(minutes=2))  # not served at window 6
    assert reply(act(engine, 6, "login", T0, clerk_id="Z0601")).ok
    numbers = {t.service_id: t.number for t in engine.state.tickets.values()}
    later = max(t.number for t in engine.state.tickets.values() if t.service_id == "passport")
    before = snapshot(engine)
    for fields, code in (({"ticket_number": later}, "missing_field"),
                         ({"ticket_number": later, "reason": "  "}, "missing_field"),
                         ({"ticket_number": numbers["company_setup"], "reason": "急"}, "not_for_window"),
                         ({"ticket_number": "Z999", "reason": "急"}, "unknown_ticket")):
        refused = reply(act(engine, 6, "call_ticket", T0 + timedelta(minutes=3), **fields))
        assert not refused.ok and refused.error is not None and refused.error.code == code, fields
        assert snapshot(engine) == before  # refused: nothing changed
    out = act(engine, 6, "call_ticket", T0 + timedelta(minutes=3), ticket_number=later, reason="行动不便")
    answered = reply(out)
    assert answered.ok and answered.ticket is not None and answered.ticket.number == later
    called = [e for e in out.events if isinstance(e, ev.TicketCalled)]
    assert len(called) == 1 and called[0].out_of_turn == "行动不便"
    again = reply(act(engine, 6, "call_ticket", T0 + timedelta(minutes=4), ticket_number=later, reason="x"))
    assert again.error is not None and again.error.code == "wrong_state"  # calling already: finish first
