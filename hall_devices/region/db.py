"""The region's PostgreSQL store of every hall's events (schema: ``migrations/``).

:meth:`RegionDb.apply` stores a hall's next consecutive events and moves the hall's ``applied`` mark
in one transaction, guarded by the mark it expects: a crash before the commit stores nothing (the
broker redelivers, or the hall resends), a crash after it leaves the mark past those events, so they
are never stored twice; a second region process writing the same hall fails instead of doubling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from hall_devices.contract import ForwardedEvent
from hall_devices.region.migrate import migrate


class RegionDbError(Exception):
    pass


@dataclass(frozen=True)
class HallMark:
    hall_id: str
    district: str
    applied: int
    head: int


class RegionDb:
    def __init__(self, url: str) -> None:
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise RegionDbError(f"cannot reach the region's database at {_safe(url)}: {exc}") from exc
        migrate(self.conn)

    def close(self) -> None:
        self.conn.close()

    def marks(self) -> list[HallMark]:
        rows = self.conn.execute("SELECT hall_id, district, applied, head FROM halls ORDER BY hall_id")
        return [HallMark(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def register(self, hall_id: str, district: str) -> None:
        self.conn.execute("INSERT INTO halls (hall_id, district) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (hall_id, district))

    def apply(self, hall_id: str, expected_applied: int, events: list[ForwardedEvent]) -> None:
        """Store ``events`` (consecutive from ``expected_applied + 1``) and move the mark past them."""
        if not events:
            return
        if events[0].seq != expected_applied + 1:
            raise RegionDbError(f"hall {hall_id}: events start at {events[0].seq}, "
                                f"expected {expected_applied + 1}")
        with self.conn.transaction():
            moved = self.conn.execute(
                "UPDATE halls SET applied = %s, head = GREATEST(head, %s), last_heard = now() "
                "WHERE hall_id = %s AND applied = %s",
                (events[-1].seq, events[-1].seq, hall_id, expected_applied)).rowcount
            if moved != 1:
                raise RegionDbError(f"hall {hall_id}: its applied mark is no longer {expected_applied} "
                                    "(another region process?): nothing stored")
            with self.conn.cursor().copy(
                    "COPY events (hall_id, seq, at, day, kind, body) FROM STDIN") as copy:
                for one in events:
                    copy.write_row((hall_id, one.seq, one.at, one.day, one.kind, one.body))

    def heard(self, hall_id: str, head: int, at: datetime) -> None:
        self.conn.execute("UPDATE halls SET head = GREATEST(head, %s), last_heard = %s WHERE hall_id = %s",
                          (head, at, hall_id))

    def event_seqs(self, hall_id: str) -> list[int]:
        """The hall's stored sequence numbers in the order they were stored (tests, checks)."""
        rows = self.conn.execute("SELECT seq FROM events WHERE hall_id = %s ORDER BY ingest_id", (hall_id,))
        return [int(r[0]) for r in rows]


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    who, where = rest.rsplit("@", 1)
    return f"{scheme}://{who.split(':', 1)[0]}@{where}"
