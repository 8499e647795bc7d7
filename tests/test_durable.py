"""The private, durable SQLite file (hall_devices/durable.py), on a real file."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from hall_devices.durable import open_private


def test_made_private_with_its_folder_and_durable(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ledger.sqlite3"
    db = open_private(path)
    try:
        db.execute("CREATE TABLE t (x INTEGER)")
        db.execute("INSERT INTO t VALUES (1)")  # autocommit: committed here, the -wal file exists
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        for one in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            assert stat.S_IMODE(one.stat().st_mode) == 0o600, one
    finally:
        db.close()
    again = sqlite3.connect(path)
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]  # no open transaction held it back
    again.close()


def test_an_existing_file_becomes_private_and_synchronous_is_chosen(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    db = open_private(path, "OFF")
    assert db.execute("PRAGMA synchronous").fetchone() == (0,)
    db.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_not_a_database_raises(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not an SQLite file, just sixteen+ bytes of text" * 4)
    with pytest.raises(sqlite3.DatabaseError):
        open_private(path)
