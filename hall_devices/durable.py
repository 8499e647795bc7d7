"""A private, durable SQLite file: how the coordinator's store and the agents' own records open theirs.

The file is created 0600 before SQLite opens it, so its ``-wal`` and ``-shm`` files (which SQLite
creates with the database file's mode) are private too: these files hold ticket tokens, job ids
and ratings. WAL with ``synchronous=FULL`` makes a commit durable when it returns (a crash or a
power cut after it loses nothing), which is what the job ledger and the rating outbox promise.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Literal

Synchronous = Literal["FULL", "NORMAL", "OFF"]


def open_private(path: Path, synchronous: Synchronous = "FULL") -> sqlite3.Connection:
    """Open (creating it and its folder) the SQLite file at ``path``, mode 0600, WAL, in autocommit
    (``isolation_level=None``: a statement commits on its own, ``BEGIN`` opens a transaction).

    The connection may be handed to another thread (``check_same_thread=False``); one thread at a
    time must use it. ``synchronous``: ``FULL`` unless a benchmark fills a store fast on purpose.
    Raises OSError when the file or its folder cannot be made, ``sqlite3.DatabaseError`` when the
    file is not a database.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)  # a file made before by another tool: private from now on
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
