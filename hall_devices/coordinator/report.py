"""`hall-devices report`: statistics of a day or range as a text table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from hall_devices.catalog import DIMENSION_ZH, STAT_COLUMNS
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.stats import DIMENSIONS, Statistics, compute
from hall_devices.coordinator.store import open_read_only
from hall_devices.layout import Layout

# The words are the catalog's (the dashboard shows the same).
COLUMNS = list(STAT_COLUMNS)
COLUMN_ZH = list(STAT_COLUMNS.values())


def load_statistics(layout: Layout, store: Path, first: str, last: str) -> Statistics:
    for day in (first, last):
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"not a date (YYYY-MM-DD): {day!r}") from None
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    db = open_read_only(store)
    try:
        rows = db.execute("SELECT body FROM events WHERE day BETWEEN ? AND ? ORDER BY seq", (first, last))
        return compute(layout, (ev.event_from_json(r[0]) for r in rows), first, last)
    finally:
        db.close()


def _label(layout: Layout, dimension: str, key: str) -> str:
    try:
        if dimension == "department":
            return layout.department(key).name.zh
        if dimension == "service":
            return layout.service(key).name.zh
        if dimension == "window":
            return layout.window(int(key)).name.zh
    except (KeyError, ValueError):
        pass
    return key


def table(layout: Layout, stats: Statistics) -> list[dict[str, Any]]:
    rows = [{"dimension": "total", "key": "", "name": "合计", **stats.total.row()}]
    for dimension in DIMENSIONS:
        for key in sorted(stats.by[dimension], key=lambda k: (len(k), k)):
            rows.append({"dimension": dimension, "key": key, "name": _label(layout, dimension, key),
                         **stats.by[dimension][key].row()})
    return rows


def render_report(layout: Layout, store: Path, first: str, last: str, fmt: str) -> str:
    stats = load_statistics(layout, store, first, last)
    rows = table(layout, stats)
    if fmt == "json":
        return json.dumps({"first_day": first, "last_day": last, "rows": rows,
                           "tickets_per_hour": {str(h): n for h, n in sorted(stats.per_hour.items())},
                           "bad_rating_cases": dict(stats.case_states)},
                          ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["dimension", "key", "name", *COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    lines = [f"{layout.hall.name.zh} 统计 / statistics {first}" + (f" – {last}" if last != first else "")]
    lines.append("维度\t名称\t" + "\t".join(COLUMN_ZH))
    for row in rows:
        values = ["-" if row[c] is None else str(row[c]) for c in COLUMNS]
        lines.append(f"{DIMENSION_ZH[row['dimension']]}\t{row['name']}\t" + "\t".join(values))
    hours = " ".join(f"{h:02d}时:{n}" for h, n in sorted(stats.per_hour.items()))
    lines.append(f"每小时取号 / tickets per hour: {hours or '-'}")
    cases = ", ".join(f"{k}:{v}" for k, v in sorted(stats.case_states.items()))
    lines.append(f"差评工单 / bad-rating cases: {cases or '-'}")
    return "\n".join(lines) + "\n"
