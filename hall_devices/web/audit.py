"""The audit trail: who did what and when, in the web's own SQLite file (created 0600).

Written by the web (sign-ins, failed sign-ins, sign-outs, password changes, manager actions on
cases, window commands from the console, green-channel tickets, reprints) and by
`hall-devices web-user` (user changes). Rows are only ever added. Times are UTC ISO 8601 with
offset; pages show them in hall time. Calls block (SQLite): the web runs them in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hall_devices.web.users import give_like

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,          -- UTC, ISO 8601
    actor TEXT NOT NULL,       -- web user name, or `system-user@host` for the command line
    address TEXT NOT NULL,     -- the browser's IP address, '' for the command line
    action TEXT NOT NULL,      -- a code, e.g. sign_in_failed, case_verify (pages: catalog.AUDIT_ACTIONS)
    target TEXT NOT NULL,      -- what it acted on: a case id, window, ticket number, user name
    outcome TEXT NOT NULL,     -- ok, refused or the coordinator's error message
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
"""
COLUMNS = ("at", "actor", "address", "action", "target", "outcome", "detail")
LIMIT = 2000  # rows on one page; the CSV has them all


def audit_file(data_dir: Path) -> Path:
    """Where the web and `hall-devices web-user` keep the audit trail."""
    return data_dir / "web-audit.sqlite3"


class AuditError(Exception):
    """The audit file cannot be opened or written; the message names the file."""


@dataclass(frozen=True)
class Entry:
    at: str
    actor: str
    address: str
    action: str
    target: str
    outcome: str
    detail: str


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it (SQLite gives its journal files the same mode).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size == 0:  # new (or never written): root gives it to the folder's owner
                    give_like(fd, path.parent)
            finally:
                os.close(fd)
            with self._connect() as db:
                db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"cannot open the audit trail {path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def record(self, actor: str, action: str, target: str = "", *, outcome: str = "ok", detail: str = "",
               address: str = "", at: dt.datetime | None = None) -> None:
        """Append one row (committed when this returns)."""
        when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
        try:
            db = self._connect()
            try:
                with db:
                    db.execute("INSERT INTO audit (at, actor, address, action, target, outcome, detail) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (when, actor, address, action, target, outcome, detail[:500]))
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise AuditError(f"cannot write the audit trail {self.path}: {exc}") from exc

    def entries(self, since: dt.datetime | None = None, until: dt.datetime | None = None,
                actor: str | None = None, action: str | None = None, limit: int | None = LIMIT,
                ) -> list[Entry]:
        """Rows newest first, ``since`` <= at < ``until``; ``actor`` and ``action`` match exactly."""
        where, args = [], []
        if since is not None:
            where.append("at >= ?")
            args.append(since.astimezone(dt.UTC).isoformat(timespec="seconds"))
        if until is not None:
            where.append("at < ?")
            args.append(until.astimezone(dt.UTC).isoformat(timespec="seconds"))
        if actor:
            where.append("actor = ?")
            args.append(actor)
        if action:
            where.append("action = ?")
            args.append(action)
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        sql += " ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        db = self._connect()
        try:
            return [Entry(*row) for row in db.execute(sql, args)]
        finally:
            db.close()

    def actions(self) -> list[str]:
        db = self._connect()
        try:
            return [row[0] for row in db.execute("SELECT DISTINCT action FROM audit ORDER BY action")]
        finally:
            db.close()
