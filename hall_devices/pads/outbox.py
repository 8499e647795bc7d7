"""The pad agent's durable outbox of ratings: kept until the coordinator acknowledges each.

A rating is written (committed) before it is published and deleted only when its ack arrives, so
an agent killed in between sends it again after its restart; the coordinator records a rating id
once however often it arrives.
"""

from __future__ import annotations

import time
from pathlib import Path

from hall_devices.contract import Rating
from hall_devices.durable import open_private


class RatingOutbox:
    def __init__(self, path: Path) -> None:
        self._db = open_private(path)  # 0600, WAL, synchronous=FULL: a put is on disk when it returns
        self._db.execute("CREATE TABLE IF NOT EXISTS outbox (rating_id TEXT PRIMARY KEY, window INTEGER "
                         "NOT NULL, body TEXT NOT NULL, created REAL NOT NULL)")

    def put(self, rating: Rating) -> None:
        self._db.execute("INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?)",
                         (rating.rating_id, rating.window, rating.model_dump_json(), time.time()))

    def pending(self) -> list[Rating]:
        rows = self._db.execute("SELECT body FROM outbox ORDER BY created").fetchall()
        return [Rating.model_validate_json(row[0]) for row in rows]

    def acknowledged(self, rating_id: str) -> bool:
        return self._db.execute("DELETE FROM outbox WHERE rating_id = ?", (rating_id,)).rowcount > 0

    def close(self) -> None:
        self._db.close()
