"""Statistics per day range and per department, service, window and clerk, from stored events.

满意率 = ratings of level 3–5 over ratings; 参评率 = ratings over served tickets; 未评价 (no rating
within the timeout) is counted apart and never as a score.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hall_devices.contract import CaseState
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.calendar import local
from hall_devices.coordinator.evolve import case_id_for
from hall_devices.layout import Layout

DIMENSIONS = ("department", "service", "window", "clerk")


@dataclass
class Figures:
    issued: int = 0
    served: int = 0
    no_show: int = 0
    waits_s: list[float] = field(default_factory=list)
    service_s: list[float] = field(default_factory=list)
    levels: Counter[int] = field(default_factory=Counter)
    unrated: int = 0
    bad_cases: Counter[str] = field(default_factory=Counter)

    def row(self) -> dict[str, float | int | None]:
        rated = sum(self.levels.values())
        good = sum(n for level, n in self.levels.items() if level >= 3)
        return {
            "issued": self.issued, "served": self.served, "no_show": self.no_show,
            "avg_wait_min": _minutes(_mean(self.waits_s)), "p90_wait_min": _minutes(_p90(self.waits_s)),
            "avg_service_min": _minutes(_mean(self.service_s)),
            "rated": rated, "unrated": self.unrated,
            "satisfaction_pct": round(100 * good / rated, 1) if rated else None,
            "participation_pct": round(100 * rated / self.served, 1) if self.served else None,
            "bad": self.levels[1] + self.levels[2],
            **{f"level_{level}": self.levels[level] for level in (5, 4, 3, 2, 1)},
        }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _p90(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


@dataclass
class _TicketTrack:
    service_id: str
    issued_at: datetime
    first_called: datetime | None = None
    began: datetime | None = None
    window: int | None = None


@dataclass
class Statistics:
    first_day: str
    last_day: str
    total: Figures = field(default_factory=Figures)
    by: dict[str, dict[str, Figures]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})
    per_hour: Counter[int] = field(default_factory=Counter)
    case_states: Counter[str] = field(default_factory=Counter)


def service_name(layout: Layout, service_id: str) -> str:
    """The service's 中文 name; its id when the layout no longer has it (removed by a later version:
    history and bookings keep the id)."""
    return next((s.name.zh for s in layout.services if s.id == service_id), service_id)


def department_name(layout: Layout, department_id: str) -> str:
    """The department's 中文 name; its id when the layout no longer has it."""
    return next((d.name.zh for d in layout.departments if d.id == department_id), department_id)


def compute(layout: Layout, events: Iterable[ev.Event], first_day: str,  # noqa: PLR0915 - a case a kind
            last_day: str) -> Statistics:
    stats = Statistics(first_day, last_day)
    tickets: dict[str, _TicketTrack] = {}
    clerks: dict[int, str] = {}
    prompts: dict[str, tuple[str, int, str | None]] = {}  # prompt → service, window, clerk
    unrated: set[str] = set()  # prompts that timed out (未评价) with no rating so far
    cases: dict[str, str] = {}

    def figures(service_id: str, window: int | None = None, clerk: str | None = None) -> list[Figures]:
        out = [stats.total, stats.by["service"].setdefault(service_id, Figures())]
        # a service a later layout removed: its history still counts, under no department
        department = next((s.department for s in layout.services if s.id == service_id), None)
        if department is not None:
            out.append(stats.by["department"].setdefault(department, Figures()))
        if window is not None:
            out.append(stats.by["window"].setdefault(str(window), Figures()))
        if clerk:
            out.append(stats.by["clerk"].setdefault(clerk, Figures()))
        return out

    stepped = timedelta(0)  # clock steps so far: durations are measured without them
    for event in events:
        at = event.at - stepped
        match event:
            case ev.ClockStepped() if event.held_from is None:  # else: back on the earlier scale
                stepped += timedelta(seconds=event.step_s)
            case ev.TicketIssued():
                tickets[event.ticket_id] = _TicketTrack(event.service_id, at)
                for f in figures(event.service_id):
                    f.issued += 1
                stats.per_hour[local(layout.hall, event.at).hour] += 1
            case ev.WindowOpened():
                clerks[event.window] = event.clerk_id
            case ev.TicketCalled() if event.ticket_id in tickets:
                track = tickets[event.ticket_id]
                track.window, track.began = event.window, at
                if track.first_called is None:
                    track.first_called = at
                    for f in figures(track.service_id, event.window, clerks.get(event.window)):
                        f.waits_s.append((at - track.issued_at).total_seconds())
            case ev.ServiceStarted() if event.ticket_id in tickets:
                tickets[event.ticket_id].began = at
            case ev.TicketTransferred() if event.ticket_id in tickets:
                tickets[event.ticket_id].service_id = event.to_service
            case ev.TicketNoShow() if event.ticket_id in tickets:
                track = tickets[event.ticket_id]
                for f in figures(track.service_id, event.window, clerks.get(event.window)):
                    f.no_show += 1
            case ev.TicketFinished() if event.ticket_id in tickets:
                track = tickets[event.ticket_id]
                clerk = event.clerk_id or clerks.get(event.window)
                for f in figures(track.service_id, event.window, clerk):
                    f.served += 1
                    f.service_s.append((at - (track.began or at)).total_seconds())
                prompts[event.prompt_id] = (track.service_id, event.window, clerk)
            case ev.RatingRecorded():
                late = event.prompt_id in unrated  # a late-delivered rating replaces its 未评价
                unrated.discard(event.prompt_id)
                for f in figures(event.service_id, event.window, event.clerk_id):
                    f.levels[int(event.level)] += 1
                    f.unrated -= 1 if late else 0
                if event.case_deadline is not None:
                    cases[case_id_for(event.ticket_id)] = CaseState.VERIFYING.value
            case ev.RatingTimedOut() if event.prompt_id in prompts:
                unrated.add(event.prompt_id)
                service_id, window, clerk = prompts[event.prompt_id]
                for f in figures(service_id, window, clerk):
                    f.unrated += 1
            case ev.CaseMoved() if event.case_id in cases:
                cases[event.case_id] = event.to_state.value
            case _:
                pass
    stats.case_states = Counter(cases.values())
    return stats

