"""Delivering 好差评 records to the provincial platform: an outbox in PostgreSQL, retried over HTTP.

Each record is POSTed as JSON (the province's profile applied) with its record id in the body and in
an ``Idempotency-Key`` header, so a retry after an unclear failure (a timeout after the receiver
stored it) is recognised by the province and never counted twice. A 2xx or a 409 (already have it)
marks it delivered; anything else (a refusal, a 5xx, no connection) is retried with a growing delay
(:data:`BACKOFF_S`, at most :data:`BACKOFF_MAX_S`), the reason kept in ``last_error`` for the
dashboard. Records the profile wants later (a default rating after N days) wait in the outbox; records
it never wants (a 未评价 where it takes none) are marked ``not_wanted_at`` and are not unreported.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from hall_devices.region.profiles import Exported, Profile, ProfileError, export, wanted
from hall_devices.region.ratings import RatingRecord

log = logging.getLogger(__name__)
BACKOFF_S = 2.0
BACKOFF_MAX_S = 600.0
BATCH = 100
LATER = timedelta(hours=1)  # a record the profile wants later is looked at again after this


class OutboxError(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    """The provincial platform's HTTP endpoint: URL (https:// in production), credentials, CA."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    ca_file: Path | None = None
    timeout_s: float = 10.0


def post(endpoint: Endpoint, body: Exported) -> None:
    """POST one record; returns when the province has it, raises :class:`OutboxError` otherwise."""
    headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": str(body["record_id"])}
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    elif endpoint.username:
        pair = f"{endpoint.username}:{endpoint.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    request = urllib.request.Request(endpoint.url, data=json.dumps(body, ensure_ascii=False).encode(),
                                     headers=headers, method="POST")
    context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
    try:
        with urllib.request.urlopen(request, timeout=endpoint.timeout_s, context=context) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 409:  # the province has this record id already: delivered before
            return
        raise OutboxError(f"HTTP {exc.code} {exc.reason}: {exc.read()[:200].decode('utf-8', 'replace')}"
                          ) from exc
    except (OSError, urllib.error.URLError) as exc:
        raise OutboxError(f"no delivery: {exc}") from exc


class Outbox:
    """Delivers due records with its own database connection (call from one thread)."""

    def __init__(self, db_url: str, endpoint: Endpoint, profile: Profile) -> None:
        self.db_url = db_url
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.endpoint = endpoint
        self.profile = profile

    def reconnect(self) -> None:
        """A new database connection (after the database restarted)."""
        self.conn.close()
        self.conn = psycopg.connect(self.db_url, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def deliver_due(self, now: datetime) -> int:
        """Try every record due by ``now`` once; returns how many were delivered."""
        rows = self.conn.execute(
            "SELECT record_id, record::text, attempts FROM rating_records WHERE delivered_at IS NULL "
            "AND not_wanted_at IS NULL AND next_attempt_at <= %s ORDER BY next_attempt_at, record_id "
            "LIMIT %s", (now, BATCH)).fetchall()
        delivered = 0
        for record_id, text, attempts in rows:
            record = RatingRecord.model_validate_json(str(text))
            if not wanted(record, self.profile):
                self.conn.execute("UPDATE rating_records SET not_wanted_at = %s WHERE record_id = %s",
                                  (now, record_id))
                continue
            try:
                body = export(record, self.profile, now)
            except ProfileError as exc:
                self._failed(str(record_id), int(attempts), now, str(exc))
                continue
            if body is None:
                self.conn.execute("UPDATE rating_records SET next_attempt_at = %s WHERE record_id = %s",
                                  (now + LATER, record_id))
                continue
            try:
                post(self.endpoint, body)
            except OutboxError as exc:
                self._failed(str(record_id), int(attempts), now, str(exc))
                continue
            self.conn.execute("UPDATE rating_records SET delivered_at = %s, attempts = attempts + 1, "
                              "last_error = NULL WHERE record_id = %s", (now, record_id))
            delivered += 1
        return delivered

    def _failed(self, record_id: str, attempts: int, now: datetime, reason: str) -> None:
        delay = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** attempts)
        log.warning("好差评 record %s not delivered (attempt %d): %s; again in %.0f s",
                    record_id, attempts + 1, reason, delay)
        self.conn.execute("UPDATE rating_records SET attempts = attempts + 1, last_error = %s, "
                          "next_attempt_at = %s WHERE record_id = %s",
                          (reason[:500], now + timedelta(seconds=delay), record_id))

    def pending(self) -> int:
        """Records still to deliver (not those the province does not want)."""
        row = self.conn.execute("SELECT COUNT(*) FROM rating_records WHERE delivered_at IS NULL "
                                "AND not_wanted_at IS NULL").fetchone()
        return int(row[0]) if row else 0


def export_file(db_url: str, profile: Profile, now: datetime, first_day: str, last_day: str, *,
                fmt: str) -> str:
    """Every record of the days ``first_day..last_day`` (hall business days) as the province's CSV or
    JSON, for provinces that take files; does not touch the outbox."""
    from hall_devices.region.profiles import to_csv, to_json

    with psycopg.connect(db_url) as conn:
        texts = conn.execute(
            "SELECT r.record::text FROM rating_records r JOIN events e ON e.hall_id = r.hall_id "
            "AND e.seq = r.seq WHERE e.day BETWEEN %s AND %s ORDER BY r.hall_id, r.seq",
            (first_day, last_day)).fetchall()
    rows = [body for (text,) in texts
            if (body := export(RatingRecord.model_validate_json(str(text)), profile, now)) is not None]
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(rows)
    raise OutboxError(f"unknown export format {fmt!r}: csv or json")
