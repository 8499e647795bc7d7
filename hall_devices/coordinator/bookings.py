"""Booking rules, pure: slot capacity from the layout, and the state of each booking of a day.

A booking starts in at most one band of its service (``Layout.appointment_slots``, hall time); at most
``capacity`` live (not cancelled) bookings start in a band a day. A service without bands has no limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hall_devices.coordinator.calendar import local
from hall_devices.coordinator.model import Appointment, State
from hall_devices.coordinator.outcome import EngineError
from hall_devices.coordinator.stats import service_name
from hall_devices.layout import AppointmentSlot, Layout


def band_of(layout: Layout, service_id: str, start: datetime, end: datetime) -> AppointmentSlot | None:
    """The band the slot lies in; None for a service without bands. Raises ``no_slot``."""
    bands = [b for b in layout.appointment_slots if b.service == service_id]
    if not bands:
        return None
    first, last = local(layout.hall, start), local(layout.hall, end)
    for band in bands:
        if first.date() == last.date() and band.start <= first.time() and last.time() <= band.end:
            return band
    times = "、".join(f"{b.start:%H:%M}-{b.end:%H:%M}" for b in bands)
    raise EngineError("no_slot", f"service {service_id!r} takes bookings in {times} (hall time), "
                      f"not {first:%H:%M}-{last:%H:%M}")


def check_capacity(layout: Layout, state: State, *, code: str, service_id: str, start: datetime,
                   end: datetime) -> None:
    """Raise ``slot_full`` when the band already holds ``capacity`` other live bookings that day."""
    band = band_of(layout, service_id, start, end)
    if band is None:
        return
    day = local(layout.hall, start).date()
    taken = sum(1 for a in state.appointments.values()
                if a.code != code and not a.cancelled and a.service_id == service_id
                and local(layout.hall, a.slot_start).date() == day
                and band.start <= local(layout.hall, a.slot_start).time() < band.end)
    if taken >= band.capacity:
        raise EngineError("slot_full", f"the band {band.start:%H:%M}-{band.end:%H:%M} of {day} for "
                          f"{service_id!r} is full ({band.capacity} bookings)")


def same_booking(a: Appointment, service_id: str, start: datetime, end: datetime, id_hash: str | None
                 ) -> bool:
    return (a.service_id, a.slot_start, a.slot_end, a.id_hash) == (service_id, start, end, id_hash)


def state_of(a: Appointment, now: datetime, late_minutes: int) -> str:
    """booked, checked_in, cancelled, or no_show (the slot and its late tolerance passed)."""
    if a.cancelled:
        return "cancelled"
    if a.used_by is not None:
        return "checked_in"
    if now > a.slot_end + timedelta(minutes=late_minutes):
        return "no_show"
    return "booked"


def rows_of_day(layout: Layout, state: State, day: str, now: datetime) -> list[dict[str, Any]]:
    """The bookings whose slot starts on ``day`` (hall time), by slot then service. No ID data."""
    rows = []
    for a in state.appointments.values():
        start = local(layout.hall, a.slot_start)
        if start.date().isoformat() != day:
            continue
        ticket = state.tickets.get(a.used_by or "")
        rows.append({"code": a.code, "service_id": a.service_id,
                     "service": service_name(layout, a.service_id),
                     "slot_start": a.slot_start.isoformat(), "slot_end": a.slot_end.isoformat(),
                     "slot": f"{start:%H:%M}-{local(layout.hall, a.slot_end):%H:%M}",
                     "state": state_of(a, now, layout.policy.appointment_late_minutes),
                     "ticket_number": ticket.number if ticket else None, "by_id_card": a.id_hash is not None})
    rows.sort(key=lambda r: (r["slot_start"], r["service_id"], r["code"]))
    return rows


def appointment_figures(layout: Layout, state: State, first: str, last: str, now: datetime) -> dict[str, Any]:
    """Bookings of the days ``first``..``last`` (those still held: a week back) by state, and the
    no-show rate: 未到 over those that came or did not (cancelled ones left out), in percent."""
    counts = dict.fromkeys(("booked", "checked_in", "no_show", "cancelled"), 0)
    for a in state.appointments.values():
        if first <= local(layout.hall, a.slot_start).date().isoformat() <= last:
            counts[state_of(a, now, layout.policy.appointment_late_minutes)] += 1
    due = counts["checked_in"] + counts["no_show"]
    return {**counts, "no_show_pct": round(100 * counts["no_show"] / due, 1) if due else None}
