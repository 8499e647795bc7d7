"""Apply one committed event to the state. Events are facts: applying one never fails.

Used both live (after a command is decided) and on restart (replaying the store), so the state
after a restart is the state before it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hall_devices.contract import CaseState, RatingLevel, TicketClass, TicketStatus, WindowStatus
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.model import (
    CLASS_RANK,
    Appointment,
    CaseRecord,
    JobState,
    PrintJobRecord,
    Prompt,
    PromptState,
    State,
    Ticket,
    WindowRuntime,
)

_AT_WINDOW = {TicketStatus.CALLED, TicketStatus.SERVING}


def case_id_for(ticket_id: str) -> str:
    return f"C-{ticket_id}"


def evolve(state: State, event: ev.Event, samples: int) -> None:  # noqa: PLR0915 - one branch a kind
    match event:
        case ev.DayStarted(day=day):
            _start_day(state, day)
        case ev.TicketIssued():
            state.issued_total += 1
            state.tickets[event.ticket_id] = Ticket(
                ticket_id=event.ticket_id, number=event.number, day=event.day,
                service_id=event.service_id, ticket_class=event.ticket_class, issued_at=event.at,
                place=(state.issued_total, 0), token=event.token, kiosk_id=event.kiosk_id,
                appointment_code=event.appointment_code)
            counter = event.counter or event.prefix
            state.counters[counter] = max(state.counters.get(counter, 0), event.seq)
            if event.appointment_code in state.appointments:
                state.appointments[event.appointment_code].used_by = event.ticket_id
        case ev.NumbersReserved():
            _reserve(state, event.floors)
        case ev.WindowOpened():
            state.windows[event.window] = WindowRuntime(event.window, WindowStatus.IDLE, event.at,
                                                        clerk_id=event.clerk_id)
        case ev.WindowClosed():
            state.windows[event.window] = WindowRuntime(event.window, WindowStatus.CLOSED, event.at)
        case ev.TicketCalled():
            ticket = state.tickets[event.ticket_id]
            window = state.windows[event.window]
            ticket.status = TicketStatus.CALLED
            ticket.window, ticket.target_window = event.window, None
            ticket.attempts = 1
            ticket.calls += 1
            ticket.called_at = event.at
            ticket.first_called_at = ticket.first_called_at or event.at
            ticket.clerk_id = window.clerk_id
            if event.call_back and event.ticket_id in window.held:
                window.held.remove(event.ticket_id)
            window.status, window.ticket_id, window.since = WindowStatus.CALLING, event.ticket_id, event.at
            window.higher_in_row = window.higher_in_row + 1 if event.higher_class else 0
        case ev.TicketRecalled():
            ticket = state.tickets[event.ticket_id]
            ticket.attempts += 1
            ticket.calls += 1
            ticket.called_at = event.at
        case ev.ServiceStarted():
            state.tickets[event.ticket_id].status = TicketStatus.SERVING
            state.tickets[event.ticket_id].started_at = event.at
            window = state.windows[event.window]
            window.status, window.since = WindowStatus.SERVING, event.at
        case ev.TicketNoShow():
            ticket = state.tickets[event.ticket_id]
            ticket.status, ticket.no_show_at, ticket.window = TicketStatus.NO_SHOW, event.at, None
            _free(state.windows[event.window], event.at)
        case ev.TicketReactivated():
            ticket = state.tickets[event.ticket_id]
            ticket.status, ticket.attempts = TicketStatus.WAITING, 0
            if event.place is not None:
                ticket.place = event.place
        case ev.TicketHeld():
            state.tickets[event.ticket_id].status = TicketStatus.HELD
            window = state.windows[event.window]
            window.held.append(event.ticket_id)
            _free(window, event.at)
        case ev.TicketTransferred():
            ticket = state.tickets[event.ticket_id]
            ticket.status, ticket.window, ticket.attempts = TicketStatus.WAITING, None, 0
            ticket.service_id, ticket.target_window = event.to_service, event.to_window
            if CLASS_RANK[ticket.ticket_class] > CLASS_RANK[TicketClass.TRANSFERRED]:
                ticket.ticket_class = TicketClass.TRANSFERRED
            _free(state.windows[event.window], event.at)
        case ev.WindowPaused():
            window = state.windows[event.window]
            window.status, window.since, window.pause_reason = WindowStatus.PAUSED, event.at, event.reason
        case ev.WindowResumed():
            window = state.windows[event.window]
            window.status, window.since, window.pause_reason = WindowStatus.IDLE, event.at, None
        case ev.TicketFinished():
            ticket = state.tickets[event.ticket_id]
            ticket.status, ticket.finished_at = TicketStatus.DONE, event.at
            began = ticket.started_at or ticket.called_at or event.at
            recent = state.service_seconds.setdefault(ticket.service_id, [])
            recent.append((event.at - began).total_seconds())
            del recent[:-samples]
            window = state.windows[event.window]
            state.prompts[event.prompt_id] = Prompt(event.prompt_id, ticket.ticket_id, event.window,
                                                    window.clerk_id, ticket.service_id,
                                                    event.rating_expires_at)
            _free(window, event.at)
        case ev.RatingRecorded():
            prompt = state.prompts[event.prompt_id]
            prompt.state, prompt.rating_id = PromptState.RATED, event.rating_id
            if event.case_deadline is not None:
                case_id = case_id_for(event.ticket_id)
                state.cases[case_id] = CaseRecord(
                    case_id, event.rating_id, RatingLevel(event.level), event.ticket_number,
                    event.service_id, event.department_id, event.window, event.clerk_id, event.at,
                    event.case_deadline, history=[(CaseState.VERIFYING, event.at, "system", None)])
        case ev.RatingTimedOut():
            state.prompts[event.prompt_id].state = PromptState.TIMED_OUT
        case ev.CaseMoved():
            case = state.cases[event.case_id]
            case.state = event.to_state
            case.history.append((event.to_state, event.at, event.by, event.note))
        case ev.CaseAssigned():
            case = state.cases[event.case_id]
            case.assignee, case.assigned_by, case.assigned_at = event.assignee, event.by, event.at
        case ev.AppointmentBooked():
            state.appointments[event.code] = Appointment(event.code, event.service_id, event.slot_start,
                                                         event.slot_end, id_hash=event.id_hash)
        case ev.AppointmentChanged():
            booking = state.appointments[event.code]
            booking.service_id, booking.slot_start, booking.slot_end = (event.service_id, event.slot_start,
                                                                        event.slot_end)
            booking.id_hash = event.id_hash
        case ev.AppointmentCancelled():
            state.appointments[event.code].cancelled = True
        case ev.PrintJobSent():
            state.jobs[event.job_id] = PrintJobRecord(event.job_id, event.ticket_id, event.kiosk_id,
                                                      event.printer_id)
        case ev.PrintJobEnded():
            job = state.jobs[event.job_id]
            job.state = JobState.DONE if event.ok else JobState.FAILED
            job.reason = event.reason
        case ev.ClockStepped():
            _shift(state, timedelta(seconds=event.step_s), event.held_from)
            state.clock_steps = [*state.clock_steps[-9:],
                                 (event.at, event.step_s, event.at.isoformat(timespec="seconds"))]
        case ev.TicketsReturned():
            for ticket_id in event.ticket_ids:
                state.tickets[ticket_id].target_window = None
    if not isinstance(event, ev.NumbersReserved):
        # A restore's record is written by another process at restore time: it says nothing of the
        # coordinator's clock, and taking its time would hide the day the hall moved into since.
        state.clock_at = event.at


def _shift(state: State, step: timedelta, held_from: datetime | None = None) -> None:
    """Move every time the live state measures from by a clock step, so waits, pauses and rating
    deadlines keep their true length on the new clock (a wait never turns negative or 8 h long).
    With ``held_from``, only times at or after it move (see :class:`ClockStepped`)."""

    def moved(at: datetime) -> datetime:
        return at + step if held_from is None or at >= held_from else at

    for ticket in state.tickets.values():
        ticket.issued_at = moved(ticket.issued_at)
        for name in ("first_called_at", "called_at", "started_at", "finished_at", "no_show_at"):
            value = getattr(ticket, name)
            if value is not None:
                setattr(ticket, name, moved(value))
    for window in state.windows.values():
        window.since = moved(window.since)
    for prompt in state.prompts.values():
        prompt.expires_at = moved(prompt.expires_at)
    state.clock_steps = [(moved(at), size, label) for at, size, label in state.clock_steps]


def _free(window: WindowRuntime, at: datetime) -> None:
    window.status, window.ticket_id, window.since = WindowStatus.IDLE, None, at


def _start_day(state: State, day: str) -> None:
    """Numbers restart; tickets left from an earlier day expire and leave the live state."""
    state.day = day
    state.counters = dict(state.reserved.get(day, {}))
    state.reserved = {d: f for d, f in state.reserved.items() if d >= day}
    kept = {}
    for ticket_id, ticket in state.tickets.items():
        if ticket.day == day or ticket.status in _AT_WINDOW:
            kept[ticket_id] = ticket
        elif ticket.status is not TicketStatus.DONE:
            ticket.status = TicketStatus.EXPIRED
    state.tickets = kept
    for window in state.windows.values():
        window.held = [t for t in window.held if t in kept]
    state.jobs = {k: j for k, j in state.jobs.items() if j.ticket_id in kept}
    state.prompts = {k: p for k, p in state.prompts.items() if p.state is PromptState.PENDING}
    # Appointments a week old can no longer be checked in; forget them.
    state.appointments = {k: a for k, a in state.appointments.items()
                          if a.slot_end.date().isoformat() >= _days_before(day, 7)}


def _reserve(state: State, floors: dict[str, dict[str, int]]) -> None:
    """Numbers of a day start above its floors: now for the current day, at its start for a later one."""
    for day, prefixes in floors.items():
        if state.day and day < state.day:
            continue  # a past day: nothing more is issued on it
        kept = state.reserved.setdefault(day, {})
        for prefix, number in prefixes.items():
            kept[prefix] = max(kept.get(prefix, 0), number)
            if day == state.day:
                state.counters[prefix] = max(state.counters.get(prefix, 0), number)


def _days_before(day: str, days: int) -> str:
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()
