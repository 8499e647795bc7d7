"""How the pages show what the coordinator sends: hall time, names instead of ids, catalog words.

The coordinator speaks UTC ISO 8601 and ids; people read the hall's clock (``hall.utc_offset_hours``,
UTC+8 in China) and names. These are the Jinja filters the templates use, and the texts the web
shows for a refused command (:mod:`hall_devices.catalog`, never the engine's own message).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hall_devices.catalog import ALERT_KINDS, DEVICE_KINDS, FAULTS, both
from hall_devices.contract import WINDOW_TABLE, Problem
from hall_devices.layout import Hall, Layout

DATE_TIME = "%Y-%m-%d %H:%M"


def zone_of(hall: Hall) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hall.utc_offset_hours))


def hall_time(value: str | dt.datetime | None, hall: Hall, fmt: str = DATE_TIME) -> str:
    """``value`` (ISO 8601 with a zone, or an aware datetime) on the hall's clock, as ``fmt``;
    "" for None or "". A value without a zone is taken as UTC (the store writes UTC).

    Raises ValueError for a string that is not ISO 8601."""
    if value is None or value == "":
        return ""
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(zone_of(hall)).strftime(fmt)


def refusal(problem: Problem | None, hall: Hall) -> str:
    """A refused command in the catalog's words, Chinese / English, with the hall's desk."""
    desk = (hall.info_desk.zh, hall.info_desk.en)
    return both(problem.code if problem else "", desk)


def filters(layout: Layout) -> dict[str, Callable[..., Any]]:
    """The templates' filters: ``{{ r.rated_at | hall_time }}``, ``{{ c.deadline | hall_date }}``,
    ``{{ 3 | window_name }}``, ``{{ "passport" | service_name }}``."""
    windows = {w.number: w.name.zh for w in layout.windows}
    services = {s.id: s.name.zh for s in layout.services}

    def window_name(number: object) -> str:
        name = windows.get(number if isinstance(number, int) else -1)
        return f"{number}号窗口" + (f"（{name}）" if name else "")

    clerks = {member.id: member.name for member in layout.staff}

    def with_page(query: str, page: int) -> str:
        """The page's query string with ``page`` replaced: for the pager's links."""
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "page"]
        return urlencode([*kept, ("page", str(page))])

    return {
        "refusal": lambda problem: refusal(problem, layout.hall),
        "clerk_name": lambda clerk: (f"{clerks[clerk]}（{clerk}）" if clerk in clerks
                                     else "系统" if clerk == "system" else (clerk or "")),
        "with_page": with_page,
        "hall_time": lambda value, fmt=DATE_TIME: hall_time(value, layout.hall, fmt),
        "hall_date": lambda value: hall_time(value, layout.hall, "%Y-%m-%d"),
        "window_name": window_name,
        "service_name": lambda sid: services.get(str(sid), str(sid)),
    }


def console_context(layout: Layout) -> dict[str, Any]:
    """What the console page needs besides the window: the actions each window status allows (the
    contract's window table, the one the engine checks, so a button is enabled exactly when the
    coordinator would accept it) and the hall's pause reasons."""
    allowed: dict[str, list[str]] = {}
    for status, action in WINDOW_TABLE:
        allowed.setdefault(status.value, []).append(action.value)
    return {"allowed": allowed, "pause_reasons": layout.policy.pause_reasons}


def device_places(layout: Layout) -> dict[str, str]:
    """Where each device is, for the devices page: a kiosk's location, a printer's kiosk, a pad's
    or screen's window, a bus's windows."""
    places: dict[str, str] = {}
    for device in layout.devices:
        location = getattr(device, "location", None)
        if location is not None:
            places[device.id] = location.zh
        window = getattr(device, "window", None)
        if isinstance(window, int):
            places[device.id] = f"{window}号窗口"
    for device in layout.devices:
        printer = getattr(device, "printer", None)
        if printer and device.id in places:
            places.setdefault(printer, f"{places[device.id]}（{device.id}）")
        elif printer:
            places.setdefault(printer, f"取号机 {device.id}")
        members = [m for m in layout.devices if getattr(m, "bus", None) == device.id]
        windows = sorted({w for m in members if isinstance(w := getattr(m, "window", None), int)})
        if windows:
            places.setdefault(device.id, "、".join(str(w) for w in windows) + "号窗口")
    return places


def device_words() -> dict[str, dict[str, str]]:
    """Fault, kind and alert names (Chinese) for the pages' scripts."""
    return {"faults": {k: v[0] for k, v in FAULTS.items()},
            "kinds": {k: v[0] for k, v in DEVICE_KINDS.items()},
            "alerts": {k: v[0] for k, v in ALERT_KINDS.items()}}
