"""The coordinator's durable event store: SQLite in WAL mode, append-only.

- ``events``: every committed event, with the key of the command that caused it (``NULL`` for
  time-driven events) and its business day, for statistics.
- ``commands``: every command key applied (route + id) and the reply it got, so a redelivered
  command is answered with its original reply and never applied twice.
- ``snapshots``: the state at an event sequence number, so a restart replays only the tail.
- ``dead_letters``: every command the coordinator failed on (a bug, not a refusal): its topic,
  command key, a payload excerpt, the error and the time, for the manager. Its command key is in
  ``commands`` too, with the ``internal_error`` reply it got, so a redelivery is never re-run.

One coordinator writes a store: :class:`StoreLock` holds an exclusive lock on ``<store>.lock``
(released by the kernel when the process dies, also by SIGKILL) and names the holder to a second one.

Events and command keys of a batch are committed in one transaction with ``synchronous=FULL``:
once :meth:`EventStore.commit` returns, they survive a crash or power loss.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hall_devices.durable import Synchronous, open_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    day TEXT NOT NULL,
    kind TEXT NOT NULL,
    command TEXT,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_day ON events(day);
CREATE INDEX IF NOT EXISTS events_by_command ON events(command);
CREATE TABLE IF NOT EXISTS commands (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    reply BLOB
);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    body BLOB NOT NULL
);
-- The coordinator's clock reading with its latest commit: a restart within the same boot then
-- knows the wall time to expect (wall + boottime passed), so a step while it was down is seen.
CREATE TABLE IF NOT EXISTS clock_reading (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    boot TEXT NOT NULL,
    boottime REAL NOT NULL,
    wall TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    topic TEXT NOT NULL,
    command TEXT,
    excerpt TEXT NOT NULL,
    error TEXT NOT NULL
);
"""


class StoreError(Exception):
    pass


class StoreLockedError(StoreError):
    """Another process (named in the message) holds the store's lock."""


@dataclass(frozen=True)
class EventRow:
    kind: str
    at: str
    day: str
    command: str | None
    body: bytes


@dataclass(frozen=True)
class CommandRow:
    key: str
    at: str
    reply: bytes | None


@dataclass(frozen=True)
class ClockRow:
    boot: str  # /proc/sys/kernel/random/boot_id
    boottime: float  # seconds since that boot, suspend included (CLOCK_BOOTTIME)
    wall: str  # ISO 8601, UTC, read with boottime


@dataclass(frozen=True)
class DeadLetter:
    """A command that raised inside the coordinator. ``at``: ISO 8601 with zone; ``excerpt``: at
    most :data:`EXCERPT_CHARS` characters of the payload; ``error``: exception type and message."""

    at: str
    topic: str
    command: str | None
    excerpt: str
    error: str


EXCERPT_CHARS = 500


class StoreLock:
    """An exclusive ``flock`` on ``<store>.lock`` that holds the holder's pid, host and start time.

    Raises :class:`StoreLockedError` naming the holder when another process has it.
    """

    def __init__(self, store: Path) -> None:
        self.path = store.with_name(store.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "a process"
            os.close(fd)
            raise StoreLockedError(f"the event store {store} is in use by another coordinator "
                                   f"({holder}); stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{datetime.now(UTC).isoformat(timespec='seconds')}\n".encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


class EventStore:
    def __init__(self, path: Path, synchronous: Synchronous = "FULL") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # 0600: the store holds the ticket pages' tokens. One writer thread uses it; opened here,
            # used there.
            self._db = open_private(path, synchronous)
            self._db.executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreError(f"cannot open the event store {path}: {exc}") from exc
        self.path = path
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        self.last_seq: int = int(row[0])

    def close(self) -> None:
        self._db.close()

    def commit(self, events: list[EventRow], commands: list[CommandRow],
               dead: list[DeadLetter] | None = None, reading: ClockRow | None = None) -> int:
        """Append events, command keys and dead letters atomically, and keep the clock reading
        taken with them; returns the last event sequence number."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq = self.last_seq
            rows = []
            for event in events:
                seq += 1
                rows.append((seq, event.at, event.day, event.kind, event.command, event.body))
            db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO commands VALUES (?, ?, ?, ?)",
                           [(c.key, seq, c.at, c.reply) for c in commands])
            if dead:
                db.executemany("INSERT INTO dead_letters (at, topic, command, excerpt, error) "
                               "VALUES (?, ?, ?, ?, ?)",
                               [(d.at, d.topic, d.command, d.excerpt[:EXCERPT_CHARS], d.error)
                                for d in dead])
            if reading is not None:
                db.execute("INSERT OR REPLACE INTO clock_reading VALUES (1, ?, ?, ?)",
                           (reading.boot, reading.boottime, reading.wall))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.last_seq = seq
        return seq

    def clock_reading(self) -> ClockRow | None:
        """The clock reading stored with the latest commit that had one."""
        row = self._db.execute("SELECT boot, boottime, wall FROM clock_reading").fetchone()
        return None if row is None else ClockRow(str(row[0]), float(row[1]), str(row[2]))

    def reply_for(self, key: str) -> tuple[bool, bytes | None]:
        """(seen, reply) of a command key."""
        row = self._db.execute("SELECT reply FROM commands WHERE key = ?", (key,)).fetchone()
        return (False, None) if row is None else (True, row[0])

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        row = self._db.execute("SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def save_snapshot(self, seq: int, at: str, body: bytes) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (seq, at, body))
        db.execute("DELETE FROM snapshots WHERE seq NOT IN "
                   "(SELECT seq FROM snapshots ORDER BY seq DESC LIMIT 2)")
        db.execute("COMMIT")

    def events_after(self, seq: int) -> Iterator[tuple[int, bytes]]:
        cursor = self._db.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq", (seq,))
        for row in cursor:
            yield int(row[0]), bytes(row[1])

    def event_range(self, first: int, last: int) -> list[tuple[int, str, str, str, bytes]]:
        """(seq, at, day, kind, body) of the events ``first..last``, in order (the region's resends)."""
        rows = self._db.execute("SELECT seq, at, day, kind, body FROM events WHERE seq BETWEEN ? AND ? "
                                "ORDER BY seq", (first, last)).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), bytes(r[4])) for r in rows]

    def events_of_days(self, first: str, last: str) -> Iterator[bytes]:
        return events_of_days(self._db, first, last)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The latest dead letters, newest first."""
        return read_dead_letters(self._db, limit)

    def count(self, table: str) -> int:
        if table not in {"events", "commands", "snapshots", "dead_letters"}:
            raise StoreError(f"no table {table!r}")
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def backup(source: Path, target: Path) -> int:
    """A consistent copy of a live store (SQLite's online backup); returns the events copied."""
    if target.exists():
        raise StoreError(f"{target} exists: choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    live = open_read_only(source)
    copy = sqlite3.connect(target)
    try:
        live.backup(copy)
        return int(copy.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        copy.close()
        live.close()


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection for reports; fails clearly when the file is missing."""
    if not path.exists():
        raise StoreError(f"no event store at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def events_of_days(db: sqlite3.Connection, first: str, last: str) -> Iterator[bytes]:
    """The bodies of the events of business days ``first``..``last`` (YYYY-MM-DD), in order."""
    cursor = db.execute("SELECT body FROM events WHERE day BETWEEN ? AND ? ORDER BY seq", (first, last))
    for row in cursor:
        yield bytes(row[0])


def read_dead_letters(db: sqlite3.Connection, limit: int = 100) -> list[DeadLetter]:
    """The latest ``limit`` dead letters of a store (newest first); none in a store made before
    the table existed."""
    try:
        rows = db.execute("SELECT at, topic, command, excerpt, error FROM dead_letters "
                          "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    except sqlite3.OperationalError:  # an older store opened read-only: no such table
        return []
    return [DeadLetter(*row) for row in rows]
