"""Alert history and acknowledgements that survive a restart of the web: its own SQLite file
(``HALL_DATA_DIR/web-alerts.sqlite3``, created 0600 like the audit trail).

One row per raising of an alert (alert id + ``raised_at``): what it said, when the web saw it
cleared, and who acknowledged it when. Rows come from the coordinator's retained active-alerts list
(:meth:`AlertLog.seen`), so a web started later still records what is active then; what was raised
and cleared while no web ran is not known to it. Calls block (SQLite): the web makes them from paho's
thread or a worker thread, never on the event loop. Times are UTC ISO 8601; pages show hall time.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from hall_devices.web.users import give_like

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT NOT NULL,
    raised_at TEXT NOT NULL,   -- as the coordinator sent it (ISO 8601, UTC)
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_zh TEXT NOT NULL,
    message_en TEXT NOT NULL,
    cleared_at TEXT,           -- when the web saw it leave the active list (UTC), NULL while active
    ack_by TEXT,               -- web user who acknowledged it, NULL if nobody has
    ack_at TEXT,
    PRIMARY KEY (alert_id, raised_at)
);
CREATE INDEX IF NOT EXISTS alerts_raised ON alerts(raised_at);
"""
KEEP = 20000  # rows kept; the oldest raisings go first
Key = tuple[str, str]  # (alert id, raised_at)


def alert_file(data_dir: Path) -> Path:
    return data_dir / "web-alerts.sqlite3"


class AlertLog:
    """The history; one connection guarded by a lock (paho's thread and worker threads share it)."""

    def __init__(self, path: Path | None) -> None:
        """``path`` None: in memory (a Hub built without a data directory, in tests)."""
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)  # 0600 before SQLite opens it
            try:
                if os.fstat(fd).st_size == 0:
                    give_like(fd, path.parent)
            finally:
                os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path or ":memory:", timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def seen(self, active: list[dict[str, Any]], now: dt.datetime) -> dict[Key, dict[str, str]]:
        """The coordinator's active list now: new raisings are added, rows no longer in it are
        marked cleared at ``now``; returns the acknowledgements of the active ones (:meth:`acks`).
        ``active``: the contract's Alert as JSON (message ``{zh, en}``).

        An alert raised again with a new ``raised_at`` while its earlier raising was still active
        (never seen cleared: a restarted coordinator raises what still holds anew) keeps that
        raising's acknowledgement: the manager saw this very condition."""
        when = now.astimezone(dt.UTC).isoformat(timespec="seconds")
        keys = [(a["alert_id"], a["raised_at"]) for a in active]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR IGNORE INTO alerts (alert_id, raised_at, kind, subject, message_zh, message_en) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(a["alert_id"], a["raised_at"], a["kind"], a["subject"], a["message"]["zh"],
                  a["message"]["en"]) for a in active])
            self._db.executemany(
                "UPDATE alerts SET (ack_by, ack_at) = (SELECT o.ack_by, o.ack_at FROM alerts o "
                "WHERE o.alert_id = alerts.alert_id AND o.raised_at != alerts.raised_at "
                "AND o.cleared_at IS NULL AND o.ack_by IS NOT NULL ORDER BY o.raised_at DESC LIMIT 1) "
                "WHERE alert_id = ? AND raised_at = ? AND ack_by IS NULL AND EXISTS (SELECT 1 FROM alerts o "
                "WHERE o.alert_id = alerts.alert_id AND o.raised_at != alerts.raised_at "
                "AND o.cleared_at IS NULL AND o.ack_by IS NOT NULL)", keys)
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS active (alert_id TEXT, raised_at TEXT)")
            self._db.execute("DELETE FROM active")
            self._db.executemany("INSERT INTO active VALUES (?, ?)", keys)
            self._db.execute("UPDATE alerts SET cleared_at = ? WHERE cleared_at IS NULL AND NOT EXISTS "
                             "(SELECT 1 FROM active a WHERE a.alert_id = alerts.alert_id "
                             "AND a.raised_at = alerts.raised_at)", (when,))
            self._db.execute("DELETE FROM alerts WHERE rowid NOT IN "
                             f"(SELECT rowid FROM alerts ORDER BY raised_at DESC LIMIT {KEEP})")
            rows = self._db.execute("SELECT alert_id, raised_at, ack_by, ack_at FROM alerts "
                                    "WHERE cleared_at IS NULL AND ack_by IS NOT NULL").fetchall()
        return {(a, r): {"by": by, "at": at} for a, r, by, at in rows}

    def acknowledge(self, key: Key, by: str, at: dt.datetime) -> bool:
        """Record who saw the alert when; False if it is unknown or already acknowledged."""
        with self._lock, self._db:
            done = self._db.execute(
                "UPDATE alerts SET ack_by = ?, ack_at = ? WHERE alert_id = ? AND raised_at = ? "
                "AND ack_by IS NULL", (by, at.astimezone(dt.UTC).isoformat(timespec="seconds"), *key))
            return done.rowcount == 1

    def acks(self) -> dict[Key, dict[str, str]]:
        """Acknowledgements of the alerts still active: {(alert id, raised_at): {by, at}}."""
        with self._lock:
            rows = self._db.execute("SELECT alert_id, raised_at, ack_by, ack_at FROM alerts "
                                    "WHERE cleared_at IS NULL AND ack_by IS NOT NULL").fetchall()
        return {(a, r): {"by": by, "at": at} for a, r, by, at in rows}

    def page(self, number: int, size: int) -> tuple[list[dict[str, Any]], int]:
        """Page ``number`` (1-based) of the history, newest raising first, and the number of rows.
        Each row: alert_id, raised_at, kind, subject, message {zh, en}, cleared, cleared_at,
        ack ({by, at} or None)."""
        with self._lock:
            total = int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])
            rows = self._db.execute(
                "SELECT alert_id, raised_at, kind, subject, message_zh, message_en, cleared_at, ack_by, "
                "ack_at FROM alerts ORDER BY raised_at DESC, alert_id LIMIT ? OFFSET ?",
                (size, (max(1, number) - 1) * size)).fetchall()
        return [{"alert_id": a, "raised_at": r, "kind": k, "subject": s, "message": {"zh": zh, "en": en},
                 "cleared": cleared is not None, "cleared_at": cleared,
                 "ack": {"by": by, "at": at} if by else None}
                for a, r, k, s, zh, en, cleared, by, at in rows], total
