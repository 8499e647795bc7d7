"""A layout version pushed by the region, on the hall's side: checked against the live hall, kept
beside the event store, applied without stopping anything.

:func:`check` is pure: the new layout must be valid (:func:`parse_layout`), of this hall, newer than
the one running, and must keep what the live state stands on: every service of a ticket that is
waiting, called, being served or held, of today's tickets (their history: rating prompts, today's
figures) and of a booking from today on that is not cancelled; and every window that is open or has
a ticket. Devices cannot
change by a push, since each has a broker account and ACL of its own (provision, then restart);
only what a screen shows may (``layout_follow.SHOWN_FIELDS``: a hall screen's notice).
Applying is the coordinator's: a new engine over the same state (queues and signed-in clerks kept).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hall_devices.contract import TicketStatus, WindowStatus
from hall_devices.coordinator.calendar import local
from hall_devices.coordinator.model import State
from hall_devices.layout import Layout, LayoutError, parse_layout
from hall_devices.mqtt.layout_follow import fixed

LIVE = (TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.SERVING, TicketStatus.HELD,
        TicketStatus.NO_SHOW)


@dataclass(frozen=True)
class Pushed:
    version: int
    layout: Layout
    text: str


def check(current: Layout, running_version: int, version: int, text: str, state: State, *, today: str
          ) -> tuple[Layout | None, list[str]]:
    """(the new layout, []) when it may be applied now, else (None, the hall's reasons).
    ``today``: the hall's business day (YYYY-MM-DD, hall time)."""
    try:
        new = parse_layout(text, f"region version {version}")
    except LayoutError as exc:
        return None, [str(p) for p in exc.problems]
    reasons = []
    if version <= running_version:
        reasons.append(f"版本 {version} 不比正在运行的 {running_version} 新 / version {version} is not newer "
                       f"than the running {running_version}")
    if new.hall.id != current.hall.id:
        reasons.append(f"布局属于大厅 {new.hall.id}，本厅是 {current.hall.id} / the layout is hall "
                       f"{new.hall.id!r}'s, this is {current.hall.id!r}")
    if fixed(new.devices) != fixed(current.devices):  # a screen's notice text may change
        reasons.append("设备不能远程更改 / devices cannot change by a push: provision the broker and "
                       "restart the hall")
    services = {s.id for s in new.services}
    for ticket in state.tickets.values():
        if ticket.status in LIVE and ticket.service_id not in services:
            reasons.append(f"号票 {ticket.number} 的事项 {ticket.service_id} 被删除 / service "
                           f"{ticket.service_id} of live ticket {ticket.number} would be removed")
    reasons += _removed_in_use(current, services, state, today)
    windows = {w.number for w in new.windows}
    for window in state.windows.values():
        if window.number not in windows and (window.status is not WindowStatus.CLOSED or window.ticket_id):
            reasons.append(f"窗口 {window.number} 正在服务 / window {window.number} is open and would be "
                           "removed")
    return (None, reasons) if reasons else (new, [])


def _removed_in_use(current: Layout, kept: set[str], state: State, today: str) -> list[str]:
    """Reasons for removed services that today's tickets (beyond the live ones, reported each) or
    bookings from today on still name."""
    reasons = []
    live = {t.service_id for t in state.tickets.values() if t.status in LIVE}
    served = sorted({t.service_id for t in state.tickets.values()
                     if t.day == today and t.service_id not in kept and t.service_id not in live})
    for service_id in served:
        reasons.append(f"事项 {_name(current, service_id)} 今日已有办件记录，请在闭厅后删除 / service "
                       f"{service_id} has tickets today: remove it after closing")
    booked: dict[str, int] = {}
    for booking in state.appointments.values():
        if (not booking.cancelled and booking.service_id not in kept
                and local(current.hall, booking.slot_start).date().isoformat() >= today):
            booked[booking.service_id] = booked.get(booking.service_id, 0) + 1
    for service_id, count in sorted(booked.items()):
        reasons.append(f"事项 {_name(current, service_id)} 有 {count} 个今日及以后的预约 / service "
                       f"{service_id} has {count} bookings from today on: cancel or move them first")
    return reasons


def _name(layout: Layout, service_id: str) -> str:
    return next((s.name.zh for s in layout.services if s.id == service_id), service_id)


def pushed_path(store: Path) -> Path:
    return store.with_name(store.stem + ".pushed-layout.json")


def save(store: Path, version: int, text: str) -> None:
    """Keep the applied version beside the store (atomically), so a restart runs it too."""
    path = pushed_path(store)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": version, "layout_toml": text}, ensure_ascii=False),
                   encoding="utf-8")
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load(store: Path) -> Pushed | None:
    """The version last applied, if the region ever pushed one; a broken file raises LayoutError."""
    path = pushed_path(store)
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    text = str(data["layout_toml"])
    return Pushed(int(data["version"]), parse_layout(text, str(path)), text)
