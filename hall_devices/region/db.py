"""The region's PostgreSQL store of every hall's events (schema: ``migrations/``).

:meth:`RegionDb.apply` stores a hall's next consecutive events and moves the hall's ``applied`` mark
in one transaction, guarded by the mark it expects: a crash before the commit stores nothing (the
broker redelivers, or the hall resends), a crash after it leaves the mark past those events, so they
are never stored twice; a second region process writing the same hall fails instead of doubling. An
event PostgreSQL refuses for what it holds is parked in that same transaction (``parked_events``,
:mod:`hall_devices.region.parking`), so its hall's stream goes on past it, and exactly once too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from hall_devices.contract import ActiveAlerts, ForwardedEvent
from hall_devices.coordinator import events as ev
from hall_devices.region.migrate import migrate
from hall_devices.region.parking import (
    Copy,
    Parked,
    mark_replaced,
    park,
    parked_copy,
    refused_copy,
    refused_data,
    unreplaced,
)
from hall_devices.region.ratings import RatingRecord, build

log = logging.getLogger(__name__)
RATING_KINDS = ("rating_recorded", "rating_timed_out")
# the ticket's events a 好差评 record is made from (ratings.build): one parked, the record is sent without
# what it held (a 未评价's case number and window, a rating's service and wait)
RECORD_SOURCE_KINDS = ("ticket_issued", "ticket_called", "service_started", "ticket_finished")
VERSION_MAX = 2**31 - 1  # the layout version columns are PostgreSQL int


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
        self.url = url
        self.conn = self._connect()
        migrate(self.conn)

    def _connect(self) -> psycopg.Connection[TupleRow]:
        """Always UTF-8 both ways: what a hall sends is Unicode, and parking (region/parking.py) takes
        an encoding refusal for the event's fault; in another encoding every event with a Chinese
        character would be parked (a LATIN1 database; ``client_encoding`` set for the database, the
        role or by ``PGCLIENTENCODING``), good ones and 好差评 among them."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, client_encoding="UTF8")
        except psycopg.OperationalError as exc:
            raise RegionDbError(f"cannot reach the region's database at {_safe(self.url)}: {exc}") from exc
        row = conn.execute("SHOW server_encoding").fetchone()
        if row is None or str(row[0]).upper() != "UTF8":
            conn.close()
            raise RegionDbError(f"the region's database at {_safe(self.url)} is in {row[0] if row else '?'}, "
                                "not UTF8: create it with ENCODING 'UTF8' (docs/region.md)")
        return conn

    def reconnect(self) -> None:
        """A new connection (after the database restarted or the link broke)."""
        self.conn.close()
        self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()

    def marks(self) -> list[HallMark]:
        rows = self.conn.execute("SELECT hall_id, district, applied, head FROM halls ORDER BY hall_id")
        return [HallMark(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def register(self, hall_id: str, district: str) -> None:
        self.conn.execute("INSERT INTO halls (hall_id, district) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                          (hall_id, district))

    def apply(self, hall_id: str, expected_applied: int, events: list[ForwardedEvent]) -> list[Parked]:
        """Store ``events`` (consecutive from ``expected_applied + 1``) and move the mark past them.
        An event PostgreSQL refuses for what it holds is parked instead, in the same transaction
        (:mod:`hall_devices.region.parking`); returns the events parked now."""
        if not events:
            return []
        if events[0].seq != expected_applied + 1:
            raise RegionDbError(f"hall {hall_id}: events start at {events[0].seq}, "
                                f"expected {expected_applied + 1}")
        parked: list[Parked] = []
        with self.conn.transaction():
            moved = self.conn.execute(
                "UPDATE halls SET applied = %s, head = GREATEST(head, %s), last_heard = now() "
                "WHERE hall_id = %s AND applied = %s",
                (events[-1].seq, events[-1].seq, hall_id, expected_applied)).rowcount
            if moved != 1:
                raise RegionDbError(f"hall {hall_id}: its applied mark is no longer {expected_applied} "
                                    "(another region process?): nothing stored")
            self._store_or_park(hall_id, events, parked)
        return parked

    def _store_or_park(self, hall_id: str, events: list[ForwardedEvent], parked: list[Parked]) -> None:
        """Store ``events`` in a savepoint; when one of them is refused, each half again, in order, down
        to the one event at fault, which is parked: the good ones around it are stored, at a few
        COPYs per refused event rather than one per event. Any other error is raised."""
        try:
            with self.conn.transaction():
                self._store(hall_id, events)
        except (psycopg.Error, UnicodeEncodeError) as exc:
            if self.conn.closed or self.conn.broken or not refused_data(exc):
                raise
            if len(events) > 1:
                half = len(events) // 2
                self._store_or_park(hall_id, events[:half], parked)
                self._store_or_park(hall_id, events[half:], parked)
            else:
                # In a savepoint of its own, as the store was: a moment that refused every write of a
                # savepoint (no transaction id left before wraparound: 54000, as an index row too
                # long) refuses the parking too and is raised, instead of parking a whole good batch.
                with self.conn.transaction():
                    one = park(self.conn, hall_id, events[0], exc)
                if one is not None:
                    parked.append(one)

    def parked_seqs(self, hall_id: str | None = None) -> dict[str, set[int]]:
        """hall → its parked seqs not replaced yet (every hall's, or ``hall_id``'s)."""
        return unreplaced(self.conn, hall_id)

    def store_copy(self, hall_id: str, one: ForwardedEvent) -> Copy:
        """A later copy of a parked seq, at or below the mark: stored in its place, with its 好差评
        record, and the parked row marked replaced, in one transaction, once (:mod:`.parking`)."""
        with self.conn.transaction():
            found = parked_copy(self.conn, hall_id, one)
            if found != "other":
                return Copy(found)
            try:
                with self.conn.transaction():
                    self._store(hall_id, [one])
            except (psycopg.Error, UnicodeEncodeError) as exc:
                if self.conn.closed or self.conn.broken or not refused_data(exc):
                    raise
                return refused_copy(exc)
            mark_replaced(self.conn, hall_id, one.seq)
        return Copy("stored")

    def _store(self, hall_id: str, events: list[ForwardedEvent]) -> None:
        with self.conn.cursor().copy("COPY events (hall_id, seq, at, day, kind, body) FROM STDIN") as copy:
            for one in events:
                copy.write_row((hall_id, one.seq, one.at, one.day, one.kind, one.body))
        rating_events = [e for e in events if e.kind in RATING_KINDS]
        if rating_events:
            self._record_ratings(hall_id, rating_events)

    def _record_ratings(self, hall_id: str, events: list[ForwardedEvent]) -> None:
        """The 好差评 records of rating events just stored (same transaction: made exactly once).
        Events are stored in order, so the ticket's earlier events are already here."""
        row = self.conn.execute("SELECT district FROM halls WHERE hall_id = %s", (hall_id,)).fetchone()
        district = str(row[0]) if row else ""
        for one in events:
            record = self._rating_record(hall_id, district, one)
            if record is None:
                continue
            self.conn.execute(
                "INSERT INTO rating_records (record_id, hall_id, seq, rated, record, next_attempt_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (record.record_id, hall_id, one.seq, record.level is not None, record.model_dump_json(),
                 one.at))  # due from the hall's time of the rating

    def _rating_record(self, hall_id: str, district: str, one: ForwardedEvent) -> RatingRecord | None:
        """The record of one rating event, or None (logged) when this region cannot read it or its
        ticket's events: a hall newer than the region. The event is stored all the same (it is the
        hall's, and refusing it would stop that hall's ingest for good); only its record is missing."""
        try:
            event = ev.event_from_json(one.body)
            if not isinstance(event, ev.RatingRecorded | ev.RatingTimedOut):
                raise ValueError(f"its body is a {event.kind}")
            ticket_id = event.ticket_id if isinstance(event, ev.RatingRecorded) else self._prompted(
                hall_id, event.prompt_id)
            rows = [] if ticket_id is None else self.conn.execute(
                "SELECT body::text FROM events WHERE hall_id = %s AND body->>'ticket_id' = %s ORDER BY seq",
                (hall_id, ticket_id)).fetchall()
            return build(hall_id, district, event, [ev.event_from_json(str(r[0])) for r in rows])
        except ValueError as exc:  # pydantic's ValidationError is one
            log.warning("hall %s event %d (%s): no 好差评 record, the region cannot read it: %s",
                        hall_id, one.seq, one.kind, str(exc)[:300])
            return None

    def _prompted(self, hall_id: str, prompt_id: str) -> str | None:
        row = self.conn.execute("SELECT body->>'ticket_id' FROM events WHERE hall_id = %s AND "
                                "kind = 'ticket_finished' AND body->>'prompt_id' = %s", (hall_id, prompt_id)
                                ).fetchone()
        return None if row is None else str(row[0])

    def heard(self, hall_id: str, head: int, at: datetime, layout_version: int | None = None) -> None:
        _version(hall_id, layout_version)
        self.conn.execute("UPDATE halls SET head = GREATEST(head, %s), last_heard = %s, "
                          "layout_version = COALESCE(%s, layout_version) WHERE hall_id = %s",
                          (head, at, layout_version, hall_id))

    def set_head(self, hall_id: str, head: int) -> None:
        """The hall's head as it said in answer to a resend, lower than what was heard or not."""
        self.conn.execute("UPDATE halls SET head = %s WHERE hall_id = %s", (head, hall_id))

    def set_alerts(self, hall_id: str, alerts: ActiveAlerts) -> None:
        """The hall's active alerts as last published (newer replaces older). A time ahead of the
        region's clock counts as now: a hall's clock wrong for a moment (or a stolen account) must not
        date its alerts years ahead and freeze them there."""
        self.conn.execute("UPDATE halls SET alerts = %s, alerts_at = LEAST(%s, now()) WHERE hall_id = %s "
                          "AND (alerts_at IS NULL OR alerts_at <= LEAST(%s, now()))",
                          (Jsonb([a.model_dump(mode="json") for a in alerts.alerts]), alerts.updated_at,
                           hall_id, alerts.updated_at))

    # --- configuration pushed to halls ---------------------------------------------------------

    def add_push(self, hall_id: str, layout_toml: str, version: int | None = None) -> int:
        """Queue a layout version for a hall; returns its version (default: the hall's next)."""
        with self.conn.transaction():
            if self.conn.execute("SELECT 1 FROM halls WHERE hall_id = %s", (hall_id,)).fetchone() is None:
                raise RegionDbError(f"no hall {hall_id!r} has reported to the region yet")
            if version is None:
                row = self.conn.execute("SELECT GREATEST(COALESCE(MAX(p.version), 0), "
                                        "COALESCE(MAX(h.layout_version), 0)) + 1 FROM halls h LEFT JOIN "
                                        "config_pushes p ON p.hall_id = h.hall_id WHERE h.hall_id = %s",
                                        (hall_id,)).fetchone()
                version = int(row[0]) if row else 1
            self.conn.execute("INSERT INTO config_pushes (hall_id, version, layout_toml) VALUES (%s, %s, %s)",
                              (hall_id, version, layout_toml))
        return version

    def pushes_to_send(self, resend_after_s: float) -> list[tuple[str, str, int, str]]:
        """(hall, district, version, layout) of pending pushes never sent or unanswered for a while."""
        rows = self.conn.execute(
            "SELECT p.hall_id, h.district, p.version, p.layout_toml FROM config_pushes p JOIN halls h "
            "USING (hall_id) WHERE p.state = 'pending' AND (p.sent_at IS NULL OR "
            "p.sent_at < now() - make_interval(secs => %s)) ORDER BY p.created_at", (resend_after_s,))
        return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]

    def push_sent(self, hall_id: str, version: int) -> None:
        self.conn.execute("UPDATE config_pushes SET sent_at = now() WHERE hall_id = %s AND version = %s",
                          (hall_id, version))

    def push_answered(self, hall_id: str, version: int, ok: bool, reasons: list[str],
                      running: int | None) -> None:
        _version(hall_id, version)
        _version(hall_id, running)
        with self.conn.transaction():
            self.conn.execute("UPDATE config_pushes SET state = %s, reasons = %s, answered_at = now() "
                              "WHERE hall_id = %s AND version = %s AND state = 'pending'",
                              ("applied" if ok else "refused", Jsonb(reasons), hall_id, version))
            if running is not None:
                self.conn.execute("UPDATE halls SET layout_version = %s WHERE hall_id = %s",
                                  (running, hall_id))

    def event_seqs(self, hall_id: str) -> list[int]:
        """The hall's stored sequence numbers in the order they were stored (tests, checks)."""
        rows = self.conn.execute("SELECT seq FROM events WHERE hall_id = %s ORDER BY ingest_id", (hall_id,))
        return [int(r[0]) for r in rows]


def _version(hall_id: str, version: int | None) -> None:
    """Refuse a layout version no push can have (a hall sends 0 for its own file, 1.. for pushes)."""
    if version is not None and not 0 <= version <= VERSION_MAX:
        raise RegionDbError(f"hall {hall_id}: {version} is not a layout version (0..{VERSION_MAX})")


def _safe(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    who, where = rest.rsplit("@", 1)
    return f"{scheme}://{who.split(':', 1)[0]}@{where}"
