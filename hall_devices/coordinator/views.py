"""Contract payloads built from the coordinator's state (what others see of it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hall_devices.contract import (
    Call,
    CaseInfo,
    CaseStep,
    QueueSummary,
    ServiceQueue,
    Text,
    TicketClass,
    TicketInfo,
    WindowState,
    WindowStatus,
)
from hall_devices.coordinator import texts
from hall_devices.coordinator.calendar import deadline
from hall_devices.coordinator.model import CaseRecord, State, Ticket, WindowRuntime
from hall_devices.coordinator.policy import (
    QueueIndex,
    ServiceMap,
    estimated_minutes,
    people_ahead,
    signed_in_windows,
    waiting,
)
from hall_devices.layout import Layout
from hall_devices.layout import Text as LayoutText


def text(value: LayoutText) -> Text:
    return Text(zh=value.zh, en=value.en)


class Views:
    def __init__(self, layout: Layout, services: ServiceMap, index: QueueIndex) -> None:
        self.layout = layout
        self.services = services
        self.index = index

    def ticket(self, state: State, ticket: Ticket) -> TicketInfo:
        service = self.layout.service(ticket.service_id)
        ahead = people_ahead(self.index, self.services, ticket) if ticket.status == "waiting" else 0
        return TicketInfo(
            ticket_id=ticket.ticket_id, number=ticket.number, service_id=service.id,
            service_name=text(service.name),
            department_name=text(self.layout.department(service.department).name),
            ticket_class=ticket.ticket_class, status=ticket.status, issued_at=ticket.issued_at,
            people_ahead=ahead,
            estimated_minutes=estimated_minutes(state, self.layout, self.services, service.id, ahead),
            windows=self.services.windows_for(ticket),
            materials=[text(m) for m in service.materials],
            status_url=self.layout.policy.ticket_page_url.format(token=ticket.token),
            complete_by=deadline(self.layout.hall, self.layout.policy, ticket.issued_at,
                                 service.time_limit_days) if service.time_limit_days else None)

    def window(self, state: State, number: int, now: datetime | None = None) -> WindowState:
        """The window's state; with ``now``, the long-pause notice when it is due."""
        runtime = state.windows.get(number)
        config = self.layout.window(number)
        ticket = state.tickets.get(runtime.ticket_id) if runtime and runtime.ticket_id else None
        held = [state.tickets[t].number for t in runtime.held if t in state.tickets] if runtime else []
        status = runtime.status if runtime else WindowStatus.CLOSED
        name = text(config.name)
        number_shown = ticket.number if ticket else None
        reason = runtime.pause_reason if runtime else None
        notice = self._pause_notice(runtime, now) if runtime else None
        waiting_here = self.index.waiting_at(number)
        return WindowState(
            window=number, name=name, status=status,
            clerk_id=runtime.clerk_id if runtime else None,
            ticket_id=ticket.ticket_id if ticket else None,
            ticket_number=number_shown,
            service_id=ticket.service_id if ticket else None,
            since=runtime.since if runtime else datetime.fromtimestamp(0).astimezone(),
            pause_reason=reason, waiting=waiting_here, held=held, pause_notice=notice,
            window_label=texts.window_label(number, name),
            screen=texts.window_screen(number, name, status, ticket_number=number_shown,
                                      pause_reason=reason, pause_notice=notice),
            pad_text=texts.pad_text(status, number_shown, waiting_here))

    def _pause_notice(self, runtime: WindowRuntime, now: datetime | None) -> Text | None:
        long_pause = timedelta(minutes=self.layout.policy.long_pause_minutes)
        if now is None or runtime.status is not WindowStatus.PAUSED or now - runtime.since < long_pause:
            return None
        return text(self.layout.policy.long_pause_notice)

    def accepting(self, state: State, service_id: str) -> bool:
        """False when the hall stops issuing for a service no signed-in window serves."""
        return (self.layout.policy.no_window_kiosk != "stop"
                or signed_in_windows(state, self.services, service_id) > 0)

    def queue(self, state: State, now: datetime) -> QueueSummary:
        per_service: dict[str, list[Ticket]] = {s.id: [] for s in self.layout.services}
        for ticket in waiting(state):
            per_service.setdefault(ticket.service_id, []).append(ticket)
        rows = []
        for service in self.layout.services:
            tickets = per_service[service.id]
            longest = max(((now - t.issued_at).total_seconds() for t in tickets), default=0.0)
            longest = max(longest, 0.0)  # never negative, whatever the clock did
            probe = Ticket(ticket_id="~new", number="", day=state.day, service_id=service.id,
                           ticket_class=TicketClass.NORMAL, issued_at=now,
                           place=(state.issued_total + 1, 0), token="")
            ahead = people_ahead(self.index, self.services, probe)
            rows.append(ServiceQueue(
                service_id=service.id, prefix=service.prefix, waiting=len(tickets),
                longest_wait_s=int(longest),
                estimated_minutes=estimated_minutes(state, self.layout, self.services, service.id,
                                                    ahead),
                open_windows=signed_in_windows(state, self.services, service.id),
                accepting=self.accepting(state, service.id), ahead=ahead))
        return QueueSummary(updated_at=now, total_waiting=sum(r.waiting for r in rows), services=rows,
                            groups=texts.waiting_groups(self.layout, {r.service_id: r.waiting
                                                                      for r in rows}))

    def call(self, ticket: Ticket, window: int, at: datetime) -> Call:
        config = self.layout.window(window)
        return Call(
            call_id=f"{ticket.ticket_id}@{window}#{ticket.calls}", ticket_id=ticket.ticket_id,
            ticket_number=ticket.number, window=window, window_name=text(config.name),
            service_id=ticket.service_id, attempt=ticket.attempts, called_at=at,
            text=texts.call_text(ticket.number, window), speech=texts.speech(ticket.number, window),
            window_label=texts.window_label(window, text(config.name)))

    @staticmethod
    def case(case: CaseRecord) -> CaseInfo:
        return CaseInfo(
            case_id=case.case_id, rating_id=case.rating_id, level=case.level,
            ticket_number=case.ticket_number, service_id=case.service_id,
            department_id=case.department_id, window=case.window, clerk_id=case.clerk_id,
            state=case.state, opened_at=case.opened_at, deadline=case.deadline,
            history=[CaseStep(state=s, at=at, by=by, note=note) for s, at, by, note in case.history],
            assignee=case.assignee, assigned_by=case.assigned_by, assigned_at=case.assigned_at)
