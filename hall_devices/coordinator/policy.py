"""Who is called next, and how long a ticket will wait: pure functions of the state.

Order at a window: class (green > appointment > transferred > priority > normal), then the level of
the ticket's service at that window (primary before secondary), then the longest wait (its place,
``sort_at``). The starvation guard: after ``starvation_max_in_row`` higher-class calls in a row, a
normal ticket that has waited longer than ``starvation_wait_minutes`` goes first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from hall_devices.contract import TicketClass, TicketStatus, WindowStatus
from hall_devices.coordinator.model import CLASS_RANK, State, Ticket
from hall_devices.layout import Layout, Policy

OrderKey = tuple[int, int, datetime, str]


@dataclass(frozen=True)
class ServiceMap:
    """Which services each window serves, at which level; built once from the layout."""

    levels: dict[int, dict[str, int]]
    windows_of: dict[str, list[int]]

    @classmethod
    def of(cls, layout: Layout) -> ServiceMap:
        levels = {w.number: dict(layout.window_services(w)) for w in layout.windows}
        windows_of: dict[str, list[int]] = {s.id: [] for s in layout.services}
        for number, served in levels.items():
            for service_id in served:
                windows_of[service_id].append(number)
        return cls(levels, windows_of)

    def level(self, window: int, ticket: Ticket) -> int | None:
        """The ticket's level at a window, or None when that window may not call it."""
        if ticket.target_window is not None:
            return 1 if ticket.target_window == window else None
        return self.levels.get(window, {}).get(ticket.service_id)

    def windows_for(self, ticket: Ticket) -> list[int]:
        if ticket.target_window is not None:
            return [ticket.target_window]
        return self.windows_of.get(ticket.service_id, [])


def order_key(ticket: Ticket, level: int) -> OrderKey:
    return (CLASS_RANK[ticket.ticket_class], level, ticket.sort_at, ticket.ticket_id)


def waiting(state: State) -> list[Ticket]:
    return [t for t in state.tickets.values() if t.status is TicketStatus.WAITING]


def pick_next(state: State, services: ServiceMap, policy: Policy, window: int, now: datetime
              ) -> Ticket | None:
    candidates = []
    for ticket in waiting(state):
        level = services.level(window, ticket)
        if level is not None:
            candidates.append((order_key(ticket, level), ticket))
    if not candidates:
        return None
    best = min(candidates, key=lambda c: c[0])[1]
    runtime = state.windows.get(window)
    in_row = runtime.higher_in_row if runtime else 0
    if best.ticket_class is not TicketClass.NORMAL and in_row >= policy.starvation_max_in_row:
        patience = timedelta(minutes=policy.starvation_wait_minutes)
        starved = [(key, t) for key, t in candidates
                   if t.ticket_class is TicketClass.NORMAL and now - t.issued_at > patience]
        if starved:
            return min(starved, key=lambda c: (c[0][1], c[0][2], c[0][3]))[1]
    return best


def people_ahead(state: State, services: ServiceMap, ticket: Ticket) -> int:
    """Waiting tickets called before this one at the window where it stands best."""
    windows = services.windows_for(ticket)
    if not windows:
        return 0
    others = [t for t in waiting(state) if t.ticket_id != ticket.ticket_id]
    best = None
    for window in windows:
        own = services.level(window, ticket)
        if own is None:
            continue
        mine = order_key(ticket, own)
        ahead = 0
        for other in others:
            level = services.level(window, other)
            if level is not None and order_key(other, level) < mine:
                ahead += 1
        best = ahead if best is None else min(best, ahead)
    return best or 0


def average_service_minutes(state: State, layout: Layout, service_id: str) -> float:
    recent = state.service_seconds.get(service_id)
    if recent:
        return sum(recent) / len(recent) / 60
    return float(layout.service(service_id).promised_minutes)


def open_windows(state: State, services: ServiceMap, service_id: str) -> int:
    open_states = {WindowStatus.IDLE, WindowStatus.CALLING, WindowStatus.SERVING}
    return sum(1 for w in services.windows_of.get(service_id, [])
               if w in state.windows and state.windows[w].status in open_states)


def estimated_minutes(state: State, layout: Layout, services: ServiceMap, service_id: str,
                      ahead: int) -> int:
    """Minutes until a ticket with ``ahead`` people before it is called, from recent service times.

    With no window open for the service yet, the estimate assumes its windows will open.
    """
    windows = open_windows(state, services, service_id) or len(services.windows_of.get(service_id, []))
    if ahead == 0 or windows == 0:
        return 0
    return math.ceil(ahead * average_service_minutes(state, layout, service_id) / windows)


def reentry_place(state: State, ticket: Ticket, after: int, now: datetime) -> datetime:
    """Where a reactivated no-show re-enters: behind ``after`` waiting tickets of its kind."""
    same = sorted(t.sort_at for t in waiting(state)
                  if t.service_id == ticket.service_id and t.ticket_class == ticket.ticket_class)
    if after == 0:
        return same[0] - timedelta(microseconds=1) if same else now
    if len(same) < after:
        return now
    return same[after - 1] + timedelta(microseconds=1)
