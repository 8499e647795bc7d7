"""The printer agent's durable record of jobs, so that a job id never prints twice.

A job is marked ``started`` (committed) before any of its bytes that print go to the printer
(only its setup bytes, ESC @ FS &, which print nothing, may go before) and ``done`` or ``failed``
after. A redelivered job that is ``done`` is answered done again; one left ``started``
by a crash may be half printed, so it is answered failed (``interrupted``) and never reprinted by
the agent: the coordinator raises an alert and staff reprint it under a new job id.
"""

from __future__ import annotations

import time
from pathlib import Path

from hall_devices.contract import PrintFailure
from hall_devices.durable import open_private


class JobLedger:
    def __init__(self, path: Path) -> None:
        self._db = open_private(path)  # 0600, WAL, synchronous=FULL: a mark is on disk when it returns
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, state TEXT NOT NULL,"
                         " reason TEXT, at REAL NOT NULL)")

    def state(self, job_id: str) -> tuple[str, PrintFailure | None] | None:
        row = self._db.execute("SELECT state, reason FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        return str(row[0]), PrintFailure(row[1]) if row[1] else None

    def started(self, job_id: str) -> None:
        self._db.execute("INSERT INTO jobs (job_id, state, at) VALUES (?, 'started', ?)",
                         (job_id, time.time()))

    def finished(self, job_id: str, failure: PrintFailure | None) -> None:
        self._db.execute("INSERT INTO jobs (job_id, state, reason, at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(job_id) DO UPDATE SET state = excluded.state, "
                         "reason = excluded.reason, at = excluded.at",
                         (job_id, "failed" if failure else "done", failure.value if failure else None,
                          time.time()))

    def close(self) -> None:
        self._db.close()
