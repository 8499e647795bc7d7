"""Backups of the event store that restore safely: named, pruned, and never a number issued twice.

How a restore keeps numbers unique (docs/deployment.md, "Backups"): a backup knows only the
numbers issued before it was taken. The coordinator keeps a *high-water file* next to the store
(``coordinator.sqlite3.numbers.json``: business day → prefix → a number none issued is above),
fsynced before the kiosk gets its reply or the ticket is printed; it names numbers ahead of those
issued (:class:`HighWater`), so only a ticket it does not cover yet waits for a write. A restore
reads the highest numbers from that file and from the store it replaces (when still readable),
keeps the replaced store aside, copies the backup in and appends a ``numbers_reserved`` event:
the coordinator then starts each counter of those days above anything issued. Without either
source the restore refuses, unless the technician states how many numbers may have been issued
(``assume_issued``), which moves the day to a fresh range above the backup's numbers.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hall_devices.coordinator import events as ev
from hall_devices.coordinator.store import EventRow, EventStore, StoreError, backup, open_read_only

Floors = dict[str, dict[str, int]]  # business day → prefix → highest number issued (or above it)
NAME = re.compile(r"^coordinator-(\d{8}T\d{6}Z)(?:-\d+)?\.sqlite3$")
STAMP = "%Y%m%dT%H%M%SZ"


class RestoreError(StoreError):
    """A restore that would not be safe; the message says why and what to do."""


def counter_of(ticket: ev.TicketIssued) -> str:
    """The counter a ticket's number comes from, as the engine's state keys it: its prefix, or its
    number range's own counter where the event names one (号段)."""
    counter: str | None = getattr(ticket, "counter", None)
    return counter or ticket.prefix


def high_water_path(store: Path) -> Path:
    """The high-water file of a store: ``<store>.numbers.json`` in the same folder."""
    return store.with_name(store.name + ".numbers.json")


def read_floors(path: Path) -> Floors:
    """The floors in a high-water file; an absent file is empty, a damaged one raises StoreError."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(d): {str(p): int(n) for p, n in v.items()} for d, v in data.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise StoreError(f"high-water file {path} is damaged: {exc}") from exc


def merge(into: Floors, more: Floors) -> Floors:
    for day, prefixes in more.items():
        kept = into.setdefault(day, {})
        for prefix, number in prefixes.items():
            kept[prefix] = max(kept.get(prefix, 0), number)
    return into


class HighWater:
    """The coordinator's record of the numbers issued per day, outside the database file.

    The file names, per business day and counter, a number no ticket has gone above: ``ahead``
    numbers beyond the highest issued, written again in the background (:meth:`plan`, then
    :meth:`write` on another thread) whenever a counter comes within half of that of its floor. So
    a ticket waits for the file only when what is on disk does not cover its number yet
    (:meth:`covered`): the first of a counter each day, or one that outran a write under way; the
    caller then waits for that write before any reply. A restore skips at most ``ahead`` numbers of
    a counter, never repeats one. Each write is atomic (temporary file, fsync, rename): the file is
    either the old or the new version.
    """

    KEEP_DAYS = 7
    AHEAD = 20

    def __init__(self, path: Path, ahead: int = AHEAD) -> None:
        self.path = path
        self.ahead = ahead
        try:
            floors = read_floors(path)
        except StoreError:
            floors = {}  # rewritten whole at the next ticket; the store still has the truth
        self._planned = floors  # the caller's thread only: the newest version asked for
        self._on_disk = {day: dict(counters) for day, counters in floors.items()}
        self._lock = threading.Lock()  # over _on_disk, which write() updates on its own thread

    def plan(self, issued: list[ev.TicketIssued], last: Callable[[ev.TicketIssued], int | None]
             ) -> Floors | None:
        """The next version of the file, when one of ``issued`` came within ``ahead // 2`` of its
        planned floor; None when every counter has room. ``last``: the end of a ticket's number
        range (号段), which a floor never passes (None: no end)."""
        planned = self._planned
        low = [t for t in issued if t.seq + self.ahead // 2 > planned.get(t.day, {}).get(counter_of(t), 0)]
        if not low:
            return None
        for ticket in low:
            end = last(ticket)
            floor = ticket.seq + self.ahead
            merge(planned, {ticket.day: {counter_of(ticket): floor if end is None
                                         else max(ticket.seq, min(floor, end))}})
        _prune(planned, self.KEEP_DAYS)
        return self.planned()

    def planned(self) -> Floors:
        """A copy of the newest version asked for."""
        return {day: dict(counters) for day, counters in self._planned.items()}

    def write(self, floors: Floors) -> None:
        """Write a version :meth:`plan` made (any thread); raises what the disk raises."""
        _write_atomic(self.path, json.dumps(floors, sort_keys=True).encode())
        with self._lock:
            merge(self._on_disk, floors)
            _prune(self._on_disk, self.KEEP_DAYS)

    def covered(self, issued: list[ev.TicketIssued]) -> bool:
        """True when the file on disk already names each ticket's number or a higher one."""
        with self._lock:
            return all(t.seq <= self._on_disk.get(t.day, {}).get(counter_of(t), 0) for t in issued)

    def replan(self) -> None:
        """After a write failed: plan again from what is on disk (the caller's thread)."""
        with self._lock:
            self._planned = {day: dict(counters) for day, counters in self._on_disk.items()}


def _prune(floors: Floors, keep_days: int) -> None:
    for day in sorted(floors)[:-keep_days]:
        del floors[day]


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def floors_in_store(path: Path, since_day: str = "") -> Floors:
    """Highest numbers issued per day in a store (its tickets and earlier reservations)."""
    db = open_read_only(path)
    try:
        rows = db.execute("SELECT body FROM events WHERE kind IN ('ticket_issued', 'numbers_reserved') "
                          "AND day >= ?", (since_day,)).fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    finally:
        db.close()
    floors: Floors = {}
    for (body,) in rows:
        event = ev.event_from_json(body)
        if isinstance(event, ev.TicketIssued):
            merge(floors, {event.day: {counter_of(event): event.seq}})
        elif isinstance(event, ev.NumbersReserved):
            merge(floors, event.floors)
    return floors


# --- scheduled backups ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BackupDone:
    file: Path
    events: int
    removed: list[Path] = field(default_factory=list)


def backup_name(now: datetime) -> str:
    """``coordinator-YYYYMMDDTHHMMSSZ.sqlite3`` (UTC): sorts by time, several a day."""
    return f"coordinator-{now.astimezone(UTC).strftime(STAMP)}.sqlite3"


def take_backup(store: Path, folder: Path, now: datetime, keep_days: int | None = None) -> BackupDone:
    """Back up ``store`` into ``folder`` under a new timestamped name, then remove backups older
    than ``keep_days`` (by the time in their names; other files are never touched).

    The folder is created (mode 0750). Raises StoreError when the store is missing or unreadable.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o750)
    target = folder / backup_name(now)
    n = 1
    while target.exists():  # two backups in the same second
        target = folder / backup_name(now).replace(".sqlite3", f"-{n}.sqlite3")
        n += 1
    events = backup(store, target)
    target.chmod(0o640)
    high_water = high_water_path(store)
    if high_water.exists():  # a copy travels with the backup, for a restore on another machine
        _write_atomic(high_water_path(target), high_water.read_bytes())
    removed: list[Path] = []
    if keep_days is not None:
        oldest = now - timedelta(days=keep_days)
        for old in sorted(folder.iterdir()):
            match = NAME.match(old.name)
            if match and datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC) < oldest:
                old.unlink()
                high_water_path(old).unlink(missing_ok=True)
                removed.append(old)
    return BackupDone(target, events, removed)


# --- restore ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreDone:
    backup: Path
    backup_events: int
    floors: Floors
    sources: list[str]
    kept_aside: Path | None

    def describe(self) -> str:
        lines = [f"restored {self.backup} ({self.backup_events} events)"]
        if self.kept_aside is not None:
            lines.append(f"the replaced store is kept as {self.kept_aside}")
        lines.append("numbers issued after the backup, known from " + (", ".join(self.sources) or "-"))
        for day in sorted(self.floors):
            prefixes = ", ".join(f"{p}{n:03d}" for p, n in sorted(self.floors[day].items()))
            lines.append(f"  {day}: numbering continues after {prefixes}")
        return "\n".join(lines)


def restore(backup_file: Path, store: Path, now: datetime, today: str, prefixes: list[str], *,
            assume_issued: int | None = None) -> RestoreDone:
    """Replace ``store`` by ``backup_file`` so that no number of a business day is issued twice.

    ``today`` is the hall's business day now, ``prefixes`` the layout's number prefixes. The
    coordinator must be stopped. The replaced store (and its -wal/-shm) is renamed
    ``<store>.replaced-<time>``, never deleted. Raises RestoreError when the numbers issued after
    the backup cannot be known (store and high-water file both unreadable) and ``assume_issued``
    (numbers per prefix that may have been issued since) is not given.
    """
    users = processes_using(store)
    if users:
        raise RestoreError(f"协调服务仍在运行 / {store} is open in process {', '.join(map(str, users))}: "
                           "stop the coordinator first (systemctl stop hall-coordinator)")
    try:
        backup_db = open_read_only(backup_file)
        backup_seq = int(backup_db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
        first_day = str(backup_db.execute("SELECT COALESCE(MAX(day), '') FROM events").fetchone()[0])
        backup_db.close()
    except (StoreError, sqlite3.DatabaseError) as exc:
        raise RestoreError(f"{backup_file} is not a readable event store: {exc}") from exc
    first_day = min(first_day or today, today)
    floors, sources = _known_floors(store, first_day)
    in_backup = floors_in_store(backup_file, first_day)
    if not sources:
        if assume_issued is None:
            raise RestoreError(
                "无法得知备份之后已发出的号码 / cannot tell which numbers were issued after the backup: "
                f"neither {store} nor its high-water file {high_water_path(store)} can be read. "
                "Give --assume-issued N (how many numbers per prefix may have been issued since) "
                "to start today's numbering above them.")
        merge(floors, {today: {p: in_backup.get(today, {}).get(p, 0) + assume_issued for p in prefixes}})
        sources.append(f"--assume-issued {assume_issued}")
    reserve = {day: {p: n for p, n in found_day.items() if n > in_backup.get(day, {}).get(p, 0)}
               for day, found_day in floors.items() if day >= first_day}
    reserve = {day: found_day for day, found_day in reserve.items() if found_day}
    copied, kept_aside = _replace(backup_file, store, now)
    restored = EventStore(store)
    try:
        if reserve:
            event = ev.NumbersReserved(at=now, floors=reserve, backup=backup_file.name,
                                       backup_seq=backup_seq)
            restored.commit([EventRow(event.kind, now.isoformat(), max(reserve), None,
                                      ev.event_json(event))], [])
    finally:
        restored.close()
    _write_atomic(high_water_path(store), json.dumps(merge(floors, in_backup), sort_keys=True).encode())
    return RestoreDone(backup_file, copied, reserve, sources, kept_aside)


def _known_floors(store: Path, first_day: str) -> tuple[Floors, list[str]]:
    """The numbers issued from ``first_day`` on, from the store's high-water file and the store
    itself where readable, and the sources that spoke."""
    floors: Floors = {}
    sources: list[str] = []
    try:
        found = read_floors(high_water_path(store))
        if found or high_water_path(store).exists():
            merge(floors, found)
            sources.append(str(high_water_path(store)))
    except StoreError:
        pass
    if store.exists():
        try:
            merge(floors, floors_in_store(store, first_day))
            sources.append(str(store))
        except (StoreError, ValueError):
            pass  # a damaged store: the high-water file speaks for it, or the technician
    return floors, sources


def _replace(backup_file: Path, store: Path, now: datetime) -> tuple[int, Path | None]:
    """The store set aside and the backup copied in; a copy that fails puts the store back."""
    kept_aside = _set_aside(store, now) if store.exists() else None
    try:
        return backup(backup_file, store), kept_aside
    except (StoreError, OSError, sqlite3.DatabaseError):
        for extra in ("", "-wal", "-shm"):
            store.with_name(store.name + extra).unlink(missing_ok=True)
        if kept_aside is not None:
            _set_aside_back(kept_aside, store)
        raise


def processes_using(path: Path) -> list[int]:
    """Ids of the processes (that this user may see) with ``path`` or its -wal open, from /proc."""
    names = {str(path.resolve()), str(path.resolve()) + "-wal"}
    found = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in names for fd in fd_dir.iterdir()):
                found.append(int(fd_dir.parent.name))
        except OSError:  # gone meanwhile, or not ours to look at
            continue
    return sorted(found)


def _set_aside_back(aside: Path, store: Path) -> None:
    aside.rename(store)
    for suffix in ("-wal", "-shm"):
        extra = aside.with_name(aside.name + suffix)
        if extra.exists():
            extra.rename(store.with_name(store.name + suffix))


def _set_aside(store: Path, now: datetime) -> Path:
    aside = store.with_name(f"{store.name}.replaced-{now.astimezone(UTC).strftime(STAMP)}")
    store.rename(aside)
    for suffix in ("-wal", "-shm"):
        extra = store.with_name(store.name + suffix)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + suffix))
    return aside
