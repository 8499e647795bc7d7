"""What the regional dashboard shows, read from the region's PostgreSQL (blocking: call in a thread).

Figures per hall come from the halls' own events, so they agree with the halls' reports: issued
(``ticket_issued``), served (``ticket_finished``), waits (issue → first call), 满意率 (levels 3–5 over
rated), 参评率 (rated over served), 差评 (levels 1–2) and overdue 差评 (deadline passed, case not
revisited, closed or revoked). A hall is online when it was heard within :data:`ONLINE_S`. Events
PostgreSQL refused are counted per hall and listed on its page (``parked_events``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

ONLINE_S = 15
DONE_CASE_STATES = ("revisited", "closed", "revoked")
PARKED_SHOWN = 200  # a hall's latest parked events on its page; the overview counts them all
KIND_SHOWN = 100  # of a parked event's kind (kept whole): a hall may send one of a megabyte

_OVERVIEW = """
SELECT h.hall_id, h.district, h.applied, h.head, h.layout_version,
       h.last_heard IS NOT NULL AND h.last_heard > %(now)s - make_interval(secs => %(online)s) AS online,
       (SELECT count(*) FROM events e WHERE e.hall_id = h.hall_id AND e.day = %(day)s
          AND e.kind = 'ticket_issued') AS issued,
       (SELECT count(DISTINCT e.body->>'ticket_id') FROM events e WHERE e.hall_id = h.hall_id
          AND e.day = %(day)s AND e.kind = 'ticket_called') AS called,
       (SELECT count(*) FROM (SELECT DISTINCT ON (e.body->>'window') e.kind FROM events e
          WHERE e.hall_id = h.hall_id AND e.day = %(day)s AND e.kind IN ('window_opened', 'window_closed')
          ORDER BY e.body->>'window', e.seq DESC) w WHERE w.kind = 'window_opened') AS open_windows,
       (SELECT count(*) FROM rating_records r WHERE r.hall_id = h.hall_id AND r.delivered_at IS NULL
          AND r.not_wanted_at IS NULL)
          AS unreported,
       jsonb_array_length(h.alerts) AS alerts,
       (SELECT count(*) FROM parked_events p WHERE p.hall_id = h.hall_id AND p.replaced_at IS NULL)
          AS parked
FROM halls h ORDER BY h.hall_id
"""

_COMPARE = """
WITH days AS (SELECT * FROM events WHERE day BETWEEN %(first)s AND %(last)s),
waits AS (
  SELECT i.hall_id, EXTRACT(EPOCH FROM min(c.at) - i.at) AS wait_s
  FROM days i JOIN days c ON c.hall_id = i.hall_id AND c.kind = 'ticket_called'
    AND c.body->>'ticket_id' = i.body->>'ticket_id'
  WHERE i.kind = 'ticket_issued' GROUP BY i.hall_id, i.body->>'ticket_id', i.at),
ratings AS (
  SELECT hall_id, (body->>'level')::int AS level, body->>'case_deadline' AS deadline,
         body->>'ticket_id' AS ticket
  FROM days WHERE kind = 'rating_recorded')
SELECT h.hall_id,
  (SELECT count(*) FROM days d WHERE d.hall_id = h.hall_id AND d.kind = 'ticket_issued') AS issued,
  (SELECT count(*) FROM days d WHERE d.hall_id = h.hall_id AND d.kind = 'ticket_finished') AS served,
  (SELECT avg(wait_s) FROM waits w WHERE w.hall_id = h.hall_id) AS avg_wait_s,
  (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s) FROM waits w WHERE w.hall_id = h.hall_id)
     AS p90_wait_s,
  (SELECT count(*) FROM ratings r WHERE r.hall_id = h.hall_id) AS rated,
  (SELECT count(*) FROM ratings r WHERE r.hall_id = h.hall_id AND r.level >= 3) AS satisfied,
  (SELECT count(*) FROM ratings r WHERE r.hall_id = h.hall_id AND r.level <= 2) AS bad,
  (SELECT count(*) FROM ratings r WHERE r.hall_id = h.hall_id AND r.level <= 2
     AND r.deadline IS NOT NULL AND r.deadline::timestamptz < %(now)s
     AND NOT EXISTS (SELECT 1 FROM events m WHERE m.hall_id = r.hall_id AND m.kind = 'case_moved'
       AND m.body->>'case_id' = 'C-' || r.ticket AND m.body->>'to_state' = ANY(%(done)s))) AS overdue
FROM halls h ORDER BY h.hall_id
"""


@dataclass(frozen=True)
class HallNow:
    hall_id: str
    district: str
    applied: int
    head: int
    layout_version: int | None
    online: bool
    issued: int
    called: int
    open_windows: int
    unreported: int
    alerts: int
    parked: int  # events PostgreSQL refused, parked and not replaced since (region/parking.py)

    @property
    def waiting(self) -> int:
        """Issued today and not yet called (no-shows and transfers aside)."""
        return max(0, self.issued - self.called)


@dataclass(frozen=True)
class HallFigures:
    hall_id: str
    issued: int
    served: int
    avg_wait_s: float | None
    p90_wait_s: float | None
    rated: int
    satisfied: int
    bad: int
    overdue: int

    @property
    def satisfaction(self) -> float | None:  # 满意率
        return self.satisfied / self.rated if self.rated else None

    @property
    def participation(self) -> float | None:  # 参评率
        return self.rated / self.served if self.served else None


def overview(conn: psycopg.Connection[tuple[object, ...]], day: str, now: datetime) -> list[HallNow]:
    rows = conn.execute(_OVERVIEW, {"day": day, "now": now, "online": ONLINE_S}).fetchall()
    return [HallNow(str(r[0]), str(r[1]), int(str(r[2])), int(str(r[3])),
                    None if r[4] is None else int(str(r[4])), bool(r[5]), int(str(r[6])), int(str(r[7])),
                    int(str(r[8])), int(str(r[9])), int(str(r[10])), int(str(r[11]))) for r in rows]


def compare(conn: psycopg.Connection[tuple[object, ...]], first: str, last: str, now: datetime
            ) -> list[HallFigures]:
    rows = conn.execute(_COMPARE, {"first": first, "last": last, "now": now,
                                   "done": list(DONE_CASE_STATES)}).fetchall()
    return [HallFigures(str(r[0]), int(str(r[1])), int(str(r[2])), _float(r[3]), _float(r[4]),
                        int(str(r[5])), int(str(r[6])), int(str(r[7])), int(str(r[8]))) for r in rows]


def pushes(conn: psycopg.Connection[tuple[object, ...]], hall_id: str) -> list[tuple[object, ...]]:
    """(version, state, reasons, created_at, answered_at) of a hall's layout pushes, newest first."""
    return conn.execute("SELECT version, state, reasons, created_at, answered_at FROM config_pushes "
                        "WHERE hall_id = %s ORDER BY version DESC LIMIT 20", (hall_id,)).fetchall()


def bad_ratings(conn: psycopg.Connection[tuple[object, ...]], hall_id: str) -> list[tuple[object, ...]]:
    """(rated_at, ticket number, window, clerk, level, reasons, delivered_at) of a hall's latest 差评."""
    return conn.execute(
        "SELECT record->>'rated_at', record->>'ticket_number', record->>'window', record->>'clerk_id', "
        "(record->>'level')::int, record->>'text', delivered_at FROM rating_records WHERE hall_id = %s "
        "AND rated AND (record->>'level')::int <= 2 ORDER BY seq DESC LIMIT 50", (hall_id,)).fetchall()


def parked(conn: psycopg.Connection[tuple[object, ...]], hall_id: str) -> list[tuple[object, ...]]:
    """(seq, kind, hall time in China Standard Time as text, SQLSTATE, error, parked_at, replaced_at)
    of a hall's parked events, latest first, those stored since from a later copy too (replaced_at).
    The hall time is written by PostgreSQL: a parked event's may be one Python cannot hold in UTC or
    China time (year 1 at +14:00 is 1 BC), which made the page a 500."""
    return conn.execute(
        "SELECT seq, left(kind, %s), replace(to_char((at AT TIME ZONE 'UTC') + interval '8 hours', "
        "'YYYY-MM-DD HH24:MI AD'), ' AD', ''), sqlstate, error, parked_at, replaced_at "
        "FROM parked_events "
        "WHERE hall_id = %s ORDER BY seq DESC LIMIT %s", (KIND_SHOWN, hall_id, PARKED_SHOWN)).fetchall()


def alerts(conn: psycopg.Connection[tuple[object, ...]], hall_id: str) -> list[dict[str, Any]]:
    """The hall's active alerts as it last published them (Alert fields)."""
    row = conn.execute("SELECT alerts FROM halls WHERE hall_id = %s", (hall_id,)).fetchone()
    return list(row[0]) if row and isinstance(row[0], list) else []


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))
