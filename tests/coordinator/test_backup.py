"""Backups: named several a day, pruned by age; a restore never leads to a number issued twice."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hall_devices.coordinator import events as ev
from hall_devices.coordinator.backup import (
    HighWater,
    RestoreError,
    backup_name,
    high_water_path,
    read_floors,
    restore,
    take_backup,
)
from hall_devices.coordinator.calendar import business_day
from hall_devices.layout import Layout
from tests.coordinator.harness import Hall

SERVICE = "passport"


def _take(hall: Hall, count: int) -> list[str]:
    numbers = []
    for _ in range(count):
        reply = hall.take(SERVICE)
        assert reply.ok and reply.ticket is not None, reply.error
        numbers.append(reply.ticket.number)
    return numbers


def _restore(hall: Hall, backup: Path, layout: Layout, **extra: int) -> str:
    now = hall.clock()
    done = restore(backup, hall.store, now, business_day(layout.hall, now),
                   sorted({s.prefix for s in layout.services}), **extra)
    return done.describe()


def test_restore_of_a_mid_day_backup_never_reissues_a_number(hall: Hall, layout: Layout,
                                                              tmp_path: Path) -> None:
    before = _take(hall, 3)
    done = take_backup(hall.store, tmp_path / "backups", hall.clock())
    assert done.events >= 3 and done.file.name == backup_name(hall.clock())
    after = _take(hall, 3)
    hall.service.stop()
    said = _restore(hall, done.file, layout)
    # It says what it did and where the old store is; the high-water file names numbers ahead.
    floor = re.search(r"numbering continues after B(\d+)", said)
    assert floor and int(after[-1][1:]) <= int(floor[1]) <= int(after[-1][1:]) + HighWater.AHEAD
    assert "kept as" in said
    assert list(tmp_path.glob("coordinator.sqlite3.replaced-*"))
    hall.service = hall.start_coordinator()
    again = _take(hall, 3)
    issued = before + after + again
    assert len(set(issued)) == len(issued), issued
    # Above every number issued (a ticket request the broker redelivers after the restart may take
    # the next one: the restored store no longer knows it was answered).
    assert int(again[0][1:]) > int(after[-1][1:])
    hall.restart_coordinator()  # the reservation is an event: it holds after any later restart
    last = _take(hall, 1)
    assert last[0] not in issued


def test_restore_after_the_store_is_lost_uses_the_high_water_file(hall: Hall, layout: Layout,
                                                                  tmp_path: Path) -> None:
    _take(hall, 2)
    done = take_backup(hall.store, tmp_path / "backups", hall.clock())
    after = _take(hall, 4)
    hall.service.stop()
    for extra in ("", "-wal", "-shm"):  # the disk lost the database, not the high-water file
        hall.store.with_name(hall.store.name + extra).unlink(missing_ok=True)
    _restore(hall, done.file, layout)
    hall.service = hall.start_coordinator()
    assert _take(hall, 1)[0] not in after


def test_restore_without_any_record_refuses_unless_told_how_many(hall: Hall, layout: Layout,
                                                                 tmp_path: Path) -> None:
    first = _take(hall, 2)
    done = take_backup(hall.store, tmp_path / "backups", hall.clock())
    hall.service.stop()
    for extra in ("", "-wal", "-shm", ".numbers.json"):
        hall.store.with_name(hall.store.name + extra).unlink(missing_ok=True)
    with pytest.raises(RestoreError, match="assume-issued"):
        _restore(hall, done.file, layout)
    assert not hall.store.exists()  # a refused restore changes nothing
    _restore(hall, done.file, layout, assume_issued=100)
    hall.service = hall.start_coordinator()
    number = _take(hall, 1)[0]
    assert int(number[1:]) > int(first[-1][1:]) + 100


def test_a_restore_on_a_later_day_starts_that_day_above_its_numbers(hall: Hall, layout: Layout,
                                                                   tmp_path: Path) -> None:
    _take(hall, 2)
    yesterday = take_backup(hall.store, tmp_path / "backups", hall.clock())
    hall.clock.advance(days=1)
    today = _take(hall, 3)  # day two, not in the backup
    hall.service.stop()
    _restore(hall, yesterday.file, layout)
    hall.service = hall.start_coordinator()
    assert _take(hall, 1)[0] not in today


def test_a_restore_while_the_coordinator_runs_is_refused(hall: Hall, layout: Layout, tmp_path: Path) -> None:
    _take(hall, 1)
    done = take_backup(hall.store, tmp_path / "backups", hall.clock())
    with pytest.raises(RestoreError, match="stop the coordinator first"):
        _restore(hall, done.file, layout)  # this process's coordinator has the store open
    assert not list(tmp_path.glob("coordinator.sqlite3.replaced-*"))


def test_backups_are_named_per_second_and_old_ones_removed(tmp_path: Path) -> None:
    store = tmp_path / "coordinator.sqlite3"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
    db.close()
    high_water_path(store).write_text('{"2026-11-23": {"A": 7}}')
    folder = tmp_path / "var" / "backups" / "hall"  # created by the backup
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    old = take_backup(store, folder, now - timedelta(days=40))
    first = take_backup(store, folder, now)
    second = take_backup(store, folder, now)  # the same second: another name, not a refusal
    other = folder / "notes.txt"
    other.write_text("not a backup")
    latest = take_backup(store, folder, now + timedelta(hours=3), keep_days=30)
    assert len({first.file, second.file, latest.file}) == 3
    assert latest.removed == [old.file] and not old.file.exists()
    assert other.exists() and first.file.exists() and second.file.exists()
    assert high_water_path(latest.file).read_text() == '{"2026-11-23": {"A": 7}}'
    assert folder.stat().st_mode & 0o777 == 0o750


def test_the_backup_command_uses_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from hall_devices.cli import main

    store = tmp_path / "lib" / "coordinator.sqlite3"
    store.parent.mkdir()
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
    db.close()
    monkeypatch.setenv("HALL_DATABASE_URL", f"sqlite:///{store}")
    monkeypatch.setenv("HALL_BACKUP_DIR", str(tmp_path / "backups"))
    assert main(["store", "backup"]) == 0 and main(["store", "backup"]) == 0  # twice the same day
    assert len(list((tmp_path / "backups").glob("coordinator-*.sqlite3"))) == 2
    monkeypatch.setenv("HALL_DATABASE_URL", f"sqlite:///{tmp_path / 'none.sqlite3'}")
    assert main(["store", "backup"]) == 1
    assert "HALL_DATABASE_URL" in capsys.readouterr().err


def _issued(seq: int, prefix: str = "A", day: str = "2026-11-23") -> ev.TicketIssued:
    return ev.TicketIssued(at=datetime(2026, 11, 23, 1, tzinfo=UTC), ticket_id=f"{day}-{prefix}{seq:03d}",
                           number=f"{prefix}{seq:03d}", prefix=prefix, seq=seq, day=day,
                           service_id="passport", ticket_class="normal", token="t")


def test_the_high_water_file_names_numbers_ahead_and_is_waited_for_only_when_behind(tmp_path: Path) -> None:
    """A ticket waits for the file only when the file on disk does not cover its number; the next
    version is planned when a counter comes within half the reserve of its floor, never past the
    end of a number range, and again from what is on disk after a write that failed."""
    high_water = HighWater(tmp_path / "numbers.json", ahead=10)
    no_end = lambda _t: None  # noqa: E731
    first = [_issued(1)]
    assert not high_water.covered(first)
    version = high_water.plan(first, no_end)
    assert version == {"2026-11-23": {"A": 11}}
    high_water.write(version)
    assert high_water.covered(first) and HighWater(tmp_path / "numbers.json").covered([_issued(11)])
    assert high_water.plan([_issued(6)], no_end) is None  # room left: no write at all
    nearing = high_water.plan([_issued(7)], no_end)  # within half of the reserve: the next version
    assert nearing == {"2026-11-23": {"A": 17}}
    assert high_water.covered([_issued(7)]) and not high_water.covered([_issued(12)])  # not on disk yet
    high_water.replan()  # that version failed: planned again from what is on disk
    assert high_water.plan([_issued(12)], no_end) == {"2026-11-23": {"A": 22}}
    assert high_water.plan([_issued(3, "B")], lambda _t: 8) == {"2026-11-23": {"A": 22, "B": 8}}


def test_no_ticket_is_answered_before_the_high_water_file_covers_its_number(hall: Hall) -> None:
    for _ in range(2 * HighWater.AHEAD):  # across several versions of the file
        reply = hall.take(SERVICE)
        assert reply.ticket is not None
        day = reply.ticket.ticket_id.rsplit("-", 1)[0]
        on_disk = read_floors(high_water_path(hall.store))
        assert on_disk[day][reply.ticket.number[0]] >= int(reply.ticket.number[1:])
