"""Answers to read-only queries: ratings, 差评 cases, statistics, a window's queue, one ticket.

Computed from the engine's state and the store's events; nothing is changed or committed. A query
over stored days (statistics, ratings) is prepared on the engine's thread and run on a read
connection off it (reads.py), so a month of statistics never delays a command.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hall_devices.contract import RATING_NAMES, CaseState, QueryKind, QueryRequest, TicketStatus
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.bookings import appointment_figures, rows_of_day
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import EngineError
from hall_devices.coordinator.report import table
from hall_devices.coordinator.stats import compute, department_name, service_name
from hall_devices.layout import Layout

EventSource = Callable[[str, str], Iterable[bytes]]
WAIT_BINS = (5, 10, 15, 20, 30, 45, 60)  # minutes: the wait-time distribution's upper bounds


def answer(engine: Engine, events_of_days: EventSource, query: QueryRequest, now: datetime) -> dict[str, Any]:
    """The answer to ``query`` in one go: :func:`prepare`, then :meth:`StoredDays.run` if needed."""
    found = prepare(engine, query, now)
    return found if isinstance(found, dict) else found.run(events_of_days)


def prepare(engine: Engine, query: QueryRequest, now: datetime) -> dict[str, Any] | StoredDays:
    """On the engine's (write) thread: the answer of a query over the live state, or a query over
    stored days holding what it needs of the state, to :meth:`~StoredDays.run` on a read
    connection off that thread. Raises :class:`EngineError` (``missing_field``, ``unknown_window``,
    ``unknown_ticket``) for a query that cannot be answered."""
    if query.kind is QueryKind.CASES:
        return _cases(engine, now)
    if query.kind is QueryKind.WINDOW_QUEUE:
        return _window_queue(engine, query, now)
    if query.kind in (QueryKind.TICKET, QueryKind.TICKET_BY_NUMBER):
        return _ticket(engine, query)
    if query.kind is QueryKind.APPOINTMENTS:
        if not query.first_day:
            raise EngineError("missing_field", "this query needs first_day (YYYY-MM-DD)")
        return {"appointments": rows_of_day(engine.layout, engine.state, query.first_day, now)}
    first, last = query.first_day, query.last_day or query.first_day
    if not first or not last:
        raise EngineError("missing_field", "this query needs first_day (YYYY-MM-DD)")
    if query.kind is QueryKind.RATINGS:
        cases = {k: (c.case_id, c.state) for k, c in engine.state.cases.items()}
        return StoredDays(query, engine.layout, first, last, cases=cases)
    return StoredDays(query, engine.layout, first, last,
                      appointments=appointment_figures(engine.layout, engine.state, first, last, now))


@dataclass(frozen=True)
class StoredDays:
    """A query over the events of days ``first``..``last`` (YYYY-MM-DD, the hall's business days),
    with the little it needs of the live state copied in, so it runs on any thread."""

    query: QueryRequest
    layout: Layout
    first: str
    last: str
    cases: dict[str, tuple[str, CaseState]] = field(default_factory=dict)  # case id → (id, state)
    appointments: dict[str, Any] = field(default_factory=dict)  # booking figures of the days

    def run(self, events_of_days: EventSource) -> dict[str, Any]:
        found = [ev.event_from_json(raw) for raw in events_of_days(self.first, self.last)]
        if self.query.kind is QueryKind.RATINGS:
            return _ratings(self.layout, self.cases, found, self.query)
        return {**_statistics(self.layout, found, self.first, self.last), "appointments": self.appointments}


def _ratings(layout: Layout, cases: dict[str, tuple[str, CaseState]], found: list[ev.Event],
             query: QueryRequest) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for event in found:
        if not isinstance(event, ev.RatingRecorded):
            continue
        if query.window is not None and event.window != query.window:
            continue
        if query.level is not None and event.level != query.level:
            continue
        case = cases.get(f"C-{event.ticket_id}")
        rows.append({"rating_id": event.rating_id, "ticket_number": event.ticket_number,
                     "service": service_name(layout, event.service_id),
                     "department": department_name(layout, event.department_id),
                     "window": event.window, "clerk_id": event.clerk_id, "level": int(event.level),
                     "level_name": RATING_NAMES[int(event.level)].zh, "channel": event.channel,
                     "rated_at": event.rated_at.isoformat(), "reasons": event.reasons,
                     "case_id": case[0] if case else None, "case_state": case[1] if case else None})
    rows.sort(key=lambda r: str(r["rated_at"]), reverse=True)
    return {"ratings": rows}


def _cases(engine: Engine, now: datetime) -> dict[str, Any]:
    cases = []
    for case in sorted(engine.state.cases.values(), key=lambda c: c.deadline):
        info = json.loads(engine.views.case(case).model_dump_json())
        info["overdue"] = now > case.deadline and case.state not in ("closed", "revoked", "revisited")
        info["service"] = service_name(engine.layout, case.service_id)
        cases.append(info)
    return {"cases": cases}


def _window_queue(engine: Engine, query: QueryRequest, now: datetime) -> dict[str, Any]:
    if query.window is None or query.window not in engine.index.keys:
        raise EngineError("unknown_window", f"unknown window {query.window!r}")
    rows = []
    for key in engine.index.keys[query.window][:50]:
        ticket = engine.state.tickets[key[3]]
        rows.append({"number": ticket.number, "ticket_class": ticket.ticket_class.value,
                     "service": service_name(engine.layout, ticket.service_id),
                     "waited_min": int((now - ticket.issued_at).total_seconds() // 60)})
    return {"window": query.window, "waiting": rows, "count": len(engine.index.keys[query.window]),
            **_at_window(engine, query.window, now)}


def _at_window(engine: Engine, window: int, now: datetime) -> dict[str, Any]:
    """The console's details: the ticket called or served here (service, class, minutes waited
    from issue to first call, materials) and today's no-shows of the services it serves that may
    still be reactivated (a no-show keeps no window, so by service)."""
    current: dict[str, Any] | None = None
    no_show: list[str] = []
    limit = engine.policy.no_show_reactivate_minutes * 60
    desk = engine.layout.window(window)
    served = set(desk.primary) | set(desk.secondary)
    for ticket in engine.state.tickets.values():
        if ticket.window == window and ticket.status in (TicketStatus.CALLED, TicketStatus.SERVING):
            service = engine.layout.service(ticket.service_id)
            called = ticket.first_called_at or now
            current = {"number": ticket.number, "ticket_class": ticket.ticket_class.value,
                       "service": service.name.zh, "status": ticket.status.value,
                       "waited_min": int((called - ticket.issued_at).total_seconds() // 60),
                       "materials": [m.zh for m in service.materials]}
        elif (ticket.status is TicketStatus.NO_SHOW and ticket.no_show_at is not None
              and (now - ticket.no_show_at).total_seconds() <= limit and ticket.day == engine.state.day
              and (not served or ticket.service_id in served)):
            no_show.append(ticket.number)
    return {"current": current, "no_show": no_show}


def _ticket(engine: Engine, query: QueryRequest) -> dict[str, Any]:
    for ticket in engine.state.tickets.values():
        if (query.kind is QueryKind.TICKET and query.token and ticket.token == query.token) or (
                query.kind is QueryKind.TICKET_BY_NUMBER and ticket.number == query.ticket_number
                and ticket.day == engine.state.day):
            info = json.loads(engine.views.ticket(engine.state, ticket).model_dump_json())
            info["window"] = ticket.window if ticket.status in (TicketStatus.CALLED, TicketStatus.SERVING) \
                else None
            return {"ticket": info}
    raise EngineError("unknown_ticket", "no such ticket today")


def _statistics(layout: Layout, found: list[ev.Event], first: str, last: str) -> dict[str, Any]:
    stats = compute(layout, found, first, last)
    bins = [0] * (len(WAIT_BINS) + 1)
    for seconds in stats.total.waits_s:
        minutes = seconds / 60
        bins[next((i for i, top in enumerate(WAIT_BINS) if minutes <= top), len(WAIT_BINS))] += 1
    labels = [f"≤{top}" for top in WAIT_BINS] + [f">{WAIT_BINS[-1]}"]
    per_window = [{"window": key, "satisfaction_pct": figures.row()["satisfaction_pct"],
                   "rated": figures.row()["rated"]} for key, figures in
                  sorted(stats.by["window"].items(), key=lambda kv: int(kv[0]))]
    return {"first_day": first, "last_day": last, "rows": table(layout, stats),
            "tickets_per_hour": {str(h): n for h, n in sorted(stats.per_hour.items())},
            "wait_minutes": {"labels": labels, "counts": bins},
            "satisfaction_per_window": per_window, "cases": dict(stats.case_states)}
