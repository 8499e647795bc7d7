"""Who is called next, and how long a ticket will wait: pure functions of the state.

Order at a window: class (green > appointment > transferred > priority > normal), then the level of
the ticket's service at that window (primary before secondary), then its place (``place``: the
issue sequence, never the wall clock). The starvation guard: after ``starvation_max_in_row``
higher-class calls in a row, a normal ticket that has waited longer than
``starvation_wait_minutes`` goes first.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from hall_devices.contract import TicketClass, TicketStatus, WindowStatus
from hall_devices.coordinator.model import CLASS_RANK, State, Ticket
from hall_devices.layout import Layout, Policy

OrderKey = tuple[int, int, tuple[int, int], str]


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
    return (CLASS_RANK[ticket.ticket_class], level, ticket.place, ticket.ticket_id)


NORMAL_RANK = CLASS_RANK[TicketClass.NORMAL]


class QueueIndex:
    """Each window's waiting tickets as a sorted list of order keys; derived from the state.

    Kept in step with the state after every event (:meth:`sync`), rebuilt after a replay, so that
    calling next, counting the waiting and people ahead cost a bisect, not a sweep of the day.
    """

    def __init__(self, services: ServiceMap) -> None:
        self.services = services
        self.keys: dict[int, list[OrderKey]] = {w: [] for w in services.levels}
        self._entries: dict[str, list[tuple[int, OrderKey]]] = {}
        self._service_of: dict[str, str] = {}
        self.per_service: dict[str, int] = {}

    def rebuild(self, state: State) -> None:
        self.keys = {w: [] for w in self.services.levels}
        self._entries.clear()
        self._service_of.clear()
        self.per_service.clear()
        for ticket in state.tickets.values():
            if ticket.status is TicketStatus.WAITING:
                self._add(ticket)

    def sync(self, ticket: Ticket | None, ticket_id: str) -> None:
        """Re-file one ticket after an event touched it (or drop it when it is gone)."""
        for window, key in self._entries.pop(ticket_id, []):
            keys = self.keys[window]
            del keys[bisect.bisect_left(keys, key)]
        if ticket_id in self._service_of:
            service_id = self._service_of.pop(ticket_id)
            self.per_service[service_id] -= 1
        if ticket is not None and ticket.status is TicketStatus.WAITING:
            self._add(ticket)

    def _add(self, ticket: Ticket) -> None:
        entries = []
        for window in self.services.windows_for(ticket):
            level = self.services.level(window, ticket)
            if level is not None and window in self.keys:
                key = order_key(ticket, level)
                bisect.insort(self.keys[window], key)
                entries.append((window, key))
        self._entries[ticket.ticket_id] = entries
        self._service_of[ticket.ticket_id] = ticket.service_id
        self.per_service[ticket.service_id] = self.per_service.get(ticket.service_id, 0) + 1

    def waiting_at(self, window: int) -> int:
        return len(self.keys.get(window, ()))

    def ahead_at(self, window: int, key: OrderKey) -> int:
        return bisect.bisect_left(self.keys.get(window, []), key)


def waiting(state: State) -> list[Ticket]:
    return [t for t in state.tickets.values() if t.status is TicketStatus.WAITING]


def pick_next(state: State, index: QueueIndex, policy: Policy, window: int, now: datetime
              ) -> Ticket | None:
    keys = index.keys.get(window, [])
    if not keys:
        return None
    best = state.tickets[keys[0][3]]
    runtime = state.windows.get(window)
    in_row = runtime.higher_in_row if runtime else 0
    if best.ticket_class is not TicketClass.NORMAL and in_row >= policy.starvation_max_in_row:
        # Normal tickets sit at the end, already in (level, place) order: the first starved wins.
        patience = timedelta(minutes=policy.starvation_wait_minutes)
        for key in keys[bisect.bisect_left(keys, (NORMAL_RANK,)):]:
            candidate = state.tickets[key[3]]
            if now - candidate.issued_at > patience:
                return candidate
    return best


def people_ahead(index: QueueIndex, services: ServiceMap, ticket: Ticket) -> int:
    """Waiting tickets called before this one at the window where it stands best."""
    counts = [index.ahead_at(window, order_key(ticket, level))
              for window in services.windows_for(ticket)
              if (level := services.level(window, ticket)) is not None]
    return min(counts, default=0)


def average_service_minutes(state: State, layout: Layout, service_id: str) -> float:
    recent = state.service_seconds.get(service_id)
    if recent:
        return sum(recent) / len(recent) / 60
    return float(layout.service(service_id).promised_minutes)


def open_windows(state: State, services: ServiceMap, service_id: str) -> int:
    open_states = {WindowStatus.IDLE, WindowStatus.CALLING, WindowStatus.SERVING}
    return sum(1 for w in services.windows_of.get(service_id, [])
               if w in state.windows and state.windows[w].status in open_states)


def signed_in_windows(state: State, services: ServiceMap, service_id: str) -> int:
    """Windows serving the service with a clerk signed in (paused ones included: they come back)."""
    return sum(1 for w in services.windows_of.get(service_id, [])
               if w in state.windows and state.windows[w].status is not WindowStatus.CLOSED)


def estimated_minutes(state: State, layout: Layout, services: ServiceMap, service_id: str,
                      ahead: int) -> int:
    """Minutes until a ticket with ``ahead`` people before it is called, from recent service times.

    With no window open for the service yet, the estimate assumes its windows will open.
    """
    windows = open_windows(state, services, service_id) or len(services.windows_of.get(service_id, []))
    if ahead == 0 or windows == 0:
        return 0
    return math.ceil(ahead * average_service_minutes(state, layout, service_id) / windows)


def reentry_place(state: State, ticket: Ticket, after: int) -> tuple[int, int]:
    """Where a reactivated no-show re-enters: behind ``after`` waiting tickets of its kind.

    A place is (issue order, tie): right behind a ticket is its order with the next tie; at the end
    is behind the last ticket issued.
    """
    same = sorted(t.place for t in waiting(state)
                  if t.service_id == ticket.service_id and t.ticket_class == ticket.ticket_class)
    if after == 0 and same:
        return (same[0][0], same[0][1] - 1)
    if not same or len(same) < after:
        return (state.issued_total, 1)
    return (same[after - 1][0], same[after - 1][1] + 1)
