"""Versioned schema migrations of the region's PostgreSQL database: plain SQL files.

``migrations/NNNN_name.sql`` are applied in order, each in its own transaction together with its
row in ``schema_version``; an advisory lock keeps two region processes from migrating at once.
Plain files rather than a migration tool: the schema is a handful of tables owned by this one
service, with no ORM models to diff against, and SQL files are what a DBA reviews anyway.
"""

from __future__ import annotations

import re
from importlib import resources

import psycopg

LOCK_KEY = 20_2020  # pg_advisory_xact_lock key of the region's migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    pass


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration file shipped with the package, in order."""
    found = []
    for entry in resources.files("hall_devices.region").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql")
            continue
        found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _n, _s in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migration files share a version: {versions}")
    return found


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Apply the migrations the database lacks; returns the versions applied now."""
    applied_now = []
    with conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, "
                     "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    for version, name, sql in migrations():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            row = conn.execute("SELECT 1 FROM schema_version WHERE version = %s", (version,)).fetchone()
            if row is not None:
                continue
            conn.execute(sql.encode("utf-8"))
            conn.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (version, name))
            applied_now.append(version)
    return applied_now
