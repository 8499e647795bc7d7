"""Answers to read-only queries: ratings, 差评 cases, statistics, a window's queue, one ticket.

Computed from the engine's state and the store's events; nothing is changed or committed. Each
kind's answer is its model in the contract (``RatingsAnswer``, ``CasesAnswer``...). A query over
stored days (statistics, ratings) is prepared on the engine's thread and run on a read connection
off it (reads.py), so a month of statistics never delays a command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hall_devices.contract import (
    RATING_NAMES,
    AppointmentFigures,
    AppointmentRow,
    AppointmentsAnswer,
    CaseRow,
    CasesAnswer,
    CaseState,
    DeadLetterRow,
    DeadLettersAnswer,
    FoundTicket,
    QueryKind,
    QueryRequest,
    QueuedTicket,
    RatingRow,
    RatingsAnswer,
    StatisticsAnswer,
    StatisticsRow,
    TicketAnswer,
    TicketAtWindow,
    TicketStatus,
    WaitHistogram,
    WindowQueueAnswer,
    WindowSatisfaction,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.bookings import appointment_figures, rows_of_day
from hall_devices.coordinator.calendar import local
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import EngineError
from hall_devices.coordinator.report import table
from hall_devices.coordinator.stats import compute, department_name, service_name
from hall_devices.coordinator.store import DeadLetter
from hall_devices.layout import Layout

EventSource = Callable[[str, str], Iterable[bytes]]
WAIT_BINS = (5, 10, 15, 20, 30, 45, 60)  # minutes: the wait-time distribution's upper bounds
Answer = (RatingsAnswer | CasesAnswer | StatisticsAnswer | WindowQueueAnswer | TicketAnswer
          | AppointmentsAnswer)


def answer(engine: Engine, events_of_days: EventSource, query: QueryRequest, now: datetime) -> Answer:
    """The answer to ``query`` in one go (any kind but ``dead_letters``: the store's, see
    :func:`dead_letters`): :func:`prepare`, then :meth:`StoredDays.run` if needed."""
    found = prepare(engine, query, now)
    return found.run(events_of_days) if isinstance(found, StoredDays) else found


def prepare(engine: Engine, query: QueryRequest, now: datetime) -> Answer | StoredDays:
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
        rows = rows_of_day(engine.layout, engine.state, query.first_day, now)
        return AppointmentsAnswer(appointments=[AppointmentRow.model_validate(row) for row in rows])
    first, last = query.first_day, query.last_day or query.first_day
    if not first or not last:
        raise EngineError("missing_field", "this query needs first_day (YYYY-MM-DD)")
    if query.kind is QueryKind.RATINGS:
        cases = {k: (c.case_id, c.state) for k, c in engine.state.cases.items()}
        return StoredDays(query, engine.layout, first, last, cases=cases)
    figures = AppointmentFigures.model_validate(
        appointment_figures(engine.layout, engine.state, first, last, now))
    return StoredDays(query, engine.layout, first, last, appointments=figures)


@dataclass(frozen=True)
class StoredDays:
    """A query over the events of days ``first``..``last`` (YYYY-MM-DD, the hall's business days),
    with the little it needs of the live state copied in, so it runs on any thread."""

    query: QueryRequest
    layout: Layout
    first: str
    last: str
    cases: dict[str, tuple[str, CaseState]] = field(default_factory=dict)  # case id → (id, state)
    appointments: AppointmentFigures | None = None  # booking figures of the days (statistics)

    def run(self, events_of_days: EventSource) -> RatingsAnswer | StatisticsAnswer:
        found = [ev.event_from_json(raw) for raw in events_of_days(self.first, self.last)]
        if self.query.kind is QueryKind.RATINGS:
            return _ratings(self.layout, self.cases, found, self.query)
        assert self.appointments is not None  # prepare() copies them for statistics
        return _statistics(self.layout, found, self.first, self.last, self.appointments)


def dead_letters(layout: Layout, letters: Sequence[DeadLetter], total: int) -> DeadLettersAnswer:
    """The ``dead_letters`` answer: ``letters`` (newest first) with their hall time, of ``total``."""
    return DeadLettersAnswer(total=total, dead_letters=[DeadLetterRow(
        at=d.at, topic=d.topic, command=d.command, excerpt=d.excerpt, error=d.error,
        at_local=local(layout.hall, datetime.fromisoformat(d.at)).strftime("%Y-%m-%d %H:%M:%S"))
        for d in letters])


def _ratings(layout: Layout, cases: dict[str, tuple[str, CaseState]], found: list[ev.Event],
             query: QueryRequest) -> RatingsAnswer:
    rows: list[RatingRow] = []
    for event in found:
        if not isinstance(event, ev.RatingRecorded):
            continue
        if query.window is not None and event.window != query.window:
            continue
        if query.level is not None and event.level != query.level:
            continue
        case = cases.get(f"C-{event.ticket_id}")
        rows.append(RatingRow(
            rating_id=event.rating_id, ticket_number=event.ticket_number,
            service=service_name(layout, event.service_id),
            department=department_name(layout, event.department_id),
            window=event.window, clerk_id=event.clerk_id, level=int(event.level),
            level_name=RATING_NAMES[int(event.level)].zh, channel=event.channel,
            rated_at=event.rated_at.isoformat(), reasons=event.reasons,
            case_id=case[0] if case else None, case_state=case[1] if case else None))
    rows.sort(key=lambda r: r.rated_at, reverse=True)
    return RatingsAnswer(ratings=rows)


def _cases(engine: Engine, now: datetime) -> CasesAnswer:
    cases = []
    for case in sorted(engine.state.cases.values(), key=lambda c: c.deadline):
        cases.append(CaseRow(
            **dict(engine.views.case(case)),
            overdue=now > case.deadline and case.state not in ("closed", "revoked", "revisited"),
            service=service_name(engine.layout, case.service_id)))
    return CasesAnswer(cases=cases)


def _window_queue(engine: Engine, query: QueryRequest, now: datetime) -> WindowQueueAnswer:
    if query.window is None or query.window not in engine.index.keys:
        raise EngineError("unknown_window", f"unknown window {query.window!r}")
    rows = []
    for key in engine.index.keys[query.window][:50]:
        ticket = engine.state.tickets[key[3]]
        rows.append(QueuedTicket(number=ticket.number, ticket_class=ticket.ticket_class,
                                 service=service_name(engine.layout, ticket.service_id),
                                 waited_min=int((now - ticket.issued_at).total_seconds() // 60)))
    current, no_show = _at_window(engine, query.window, now)
    return WindowQueueAnswer(window=query.window, waiting=rows, count=len(engine.index.keys[query.window]),
                             current=current, no_show=no_show)


def _at_window(engine: Engine, window: int, now: datetime) -> tuple[TicketAtWindow | None, list[str]]:
    """The console's details: the ticket called or served here (service, class, minutes waited
    from issue to first call, materials) and today's no-shows of the services it serves that may
    still be reactivated (a no-show keeps no window, so by service)."""
    current: TicketAtWindow | None = None
    no_show: list[str] = []
    limit = engine.policy.no_show_reactivate_minutes * 60
    desk = engine.layout.window(window)
    served = set(desk.primary) | set(desk.secondary)
    for ticket in engine.state.tickets.values():
        if ticket.window == window and ticket.status in (TicketStatus.CALLED, TicketStatus.SERVING):
            service = engine.layout.service(ticket.service_id)
            called = ticket.first_called_at or now
            current = TicketAtWindow(number=ticket.number, ticket_class=ticket.ticket_class,
                                     service=service.name.zh, status=ticket.status,
                                     waited_min=int((called - ticket.issued_at).total_seconds() // 60),
                                     materials=[m.zh for m in service.materials])
        elif (ticket.status is TicketStatus.NO_SHOW and ticket.no_show_at is not None
              and (now - ticket.no_show_at).total_seconds() <= limit and ticket.day == engine.state.day
              and (not served or ticket.service_id in served)):
            no_show.append(ticket.number)
    return current, no_show


def _ticket(engine: Engine, query: QueryRequest) -> TicketAnswer:
    for ticket in engine.state.tickets.values():
        if (query.kind is QueryKind.TICKET and query.token and ticket.token == query.token) or (
                query.kind is QueryKind.TICKET_BY_NUMBER and ticket.number == query.ticket_number
                and ticket.day == engine.state.day):
            at = ticket.window if ticket.status in (TicketStatus.CALLED, TicketStatus.SERVING) else None
            found = FoundTicket(**dict(engine.views.ticket(engine.state, ticket)), window=at)
            return TicketAnswer(kind=query.kind, ticket=found)
    raise EngineError("unknown_ticket", "no such ticket today")


def _statistics(layout: Layout, found: list[ev.Event], first: str, last: str,
                figures: AppointmentFigures) -> StatisticsAnswer:
    stats = compute(layout, found, first, last)
    bins = [0] * (len(WAIT_BINS) + 1)
    for seconds in stats.total.waits_s:
        minutes = seconds / 60
        bins[next((i for i, top in enumerate(WAIT_BINS) if minutes <= top), len(WAIT_BINS))] += 1
    labels = [f"≤{top}" for top in WAIT_BINS] + [f">{WAIT_BINS[-1]}"]
    per_window = [WindowSatisfaction.model_validate({"window": key, **{k: window.row()[k] for k in (
                      "satisfaction_pct", "rated")}})
                  for key, window in sorted(stats.by["window"].items(), key=lambda kv: int(kv[0]))]
    return StatisticsAnswer(
        first_day=first, last_day=last,
        rows=[StatisticsRow.model_validate(row) for row in table(layout, stats)],
        tickets_per_hour={str(h): n for h, n in sorted(stats.per_hour.items())},
        wait_minutes=WaitHistogram(labels=labels, counts=bins), satisfaction_per_window=per_window,
        cases=dict(stats.case_states), appointments=figures)
