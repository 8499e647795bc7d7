"""Read-only queries off the coordinator's write thread: a read connection on its own worker.

The store is SQLite in WAL mode, so a reader never waits for the writer nor the writer for it: a
month of statistics computed here never delays a Next on the write thread. What a query needs of
the live state is copied on the write thread first (:func:`queries.prepare`); the work handed here
only reads the store. Answers go back through ``done`` (called on this thread), which posts them to
the write thread to be published and acknowledged in order.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from hall_devices.agent import Worker
from hall_devices.contract import (
    MAX_PAYLOAD_BYTES,
    DeadLettersAnswer,
    Problem,
    QueryAnswer,
    QueryReply,
    QueryRequest,
)
from hall_devices.coordinator import queries
from hall_devices.coordinator.outcome import EngineError
from hall_devices.coordinator.store import read_dead_letters
from hall_devices.layout import Layout

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[sqlite3.Connection], QueryAnswer]  # reads the store, returns the reply's answer


@dataclass(frozen=True)
class Read:
    """One query to answer on the read connection; ``done`` gets its reply."""

    query: QueryRequest
    work: Work
    done: Callable[[QueryReply], None]


class QueryReader:
    """One thread with a read-only connection to the store at ``path``; queries run one at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self.worker: Worker[Read] = Worker("coordinator reads", self._batch, batch_max=1)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop(timeout_s=10)
        if self._db is not None and not self.worker.is_alive:
            self._db.close()

    def ask(self, read: Read) -> None:
        self.worker.post(read)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:  # opened and used on this worker's thread only (closed after it ends)
            self._db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
        return self._db

    def _batch(self, reads: list[Read]) -> None:
        for read in reads:  # every read is answered, even when the store cannot be opened
            read.done(guarded(read.query, partial(self._run, read)))

    def _run(self, read: Read) -> QueryAnswer:
        return read.work(self._connection())


def refused(query: QueryRequest, work: Callable[[], T]) -> T | QueryReply:
    """What ``work`` returns, or the ``ok: false`` reply to ``query`` for what it raised
    (``EngineError``: its code; ``ValueError``: ``bad_query``; else ``internal_error``, logged)."""
    try:
        return work()
    except EngineError as refusal:
        return QueryReply(command_id=query.command_id, ok=False,
                          error=Problem(code=refusal.code, message=refusal.message))
    except ValueError as exc:
        return QueryReply(command_id=query.command_id, ok=False,
                          error=Problem(code="bad_query", message=str(exc)))
    except Exception as exc:  # a read changed nothing: answer it, never fail a worker's batch
        log.exception("query %s (%s) failed", query.command_id, query.kind)
        return QueryReply(command_id=query.command_id, ok=False, error=Problem(
            code="internal_error", message=f"查询失败，已记录，请联系工作人员 / the query failed "
                                           f"({type(exc).__name__}); it is logged"))


def answered(query: QueryRequest, answer: QueryAnswer) -> QueryReply:
    """The reply carrying ``answer``; ``too_large`` when it is over ``MAX_PAYLOAD_BYTES``."""
    reply = QueryReply(command_id=query.command_id, ok=True, data=answer)
    size = len(reply.model_dump_json())
    if size > MAX_PAYLOAD_BYTES:  # the broker would drop it and the asker wait in vain
        return QueryReply(command_id=query.command_id, ok=False, error=Problem(
            code="too_large", message=f"the answer is {size} bytes, over the limit of "
                                      f"{MAX_PAYLOAD_BYTES}: ask for fewer days"))
    return reply


def guarded(query: QueryRequest, work: Callable[[], QueryAnswer]) -> QueryReply:
    """The reply to ``query`` with the answer ``work`` returns, or its refusal (:func:`refused`,
    :func:`answered`)."""
    found = refused(query, work)
    return found if isinstance(found, QueryReply) else answered(query, found)


def dead_letters(db: sqlite3.Connection, layout: Layout) -> DeadLettersAnswer:
    """The latest dead letters (with their hall-local time) and how many there are."""
    total = int(db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
    return queries.dead_letters(layout, read_dead_letters(db), total)
