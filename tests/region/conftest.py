"""Region fixtures: one PostgreSQL cluster of the tests' own for the whole session (never the
machine's server), a fresh database per test module."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hall_devices.ops.broker import free_port
from hall_devices.region.pgcluster import PgCluster

_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    # Not under pytest's tmp folder: that is private to root, and as root the cluster runs as nobody.
    top = Path(tempfile.mkdtemp(prefix="hall-region-pg-"))
    top.chmod(0o755)
    cluster = PgCluster(top / "cluster", free_port())
    cluster.init()
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(top, ignore_errors=True)


def fresh_database(cluster: PgCluster) -> str:
    name = f"region_{next(_names)}"
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def region_db(pg_cluster: PgCluster) -> str:
    return fresh_database(pg_cluster)
