"""Events of a hall that PostgreSQL refuses, parked (``parked_events``) so that the hall's stream
goes on past them instead of stalling on them for good.

Which errors are the event's own (:func:`refused_data`): those that the same event meets every time,
whatever the moment.

- SQLSTATE class 22, data exception: a value its type cannot take. A date that is none (22008,
  22007), a body that is no JSON or holds a number ``jsonb`` cannot (22P02, 22003), an escaped NUL or
  a lone surrogate escape ``jsonb`` cannot keep (22P05, 22P02), bytes the encoding has no character
  for (22021).
- Class 54, program limit exceeded: a body nested beyond the server's stack depth (54001), a ticket
  id too long for an index row (54000), a ``jsonb`` over its size limits. The limits are the
  server's configuration, changed rarely and on purpose: the same event meets the same limit. But
  54000 is also the stop before transaction-id wraparound, a moment's: every savepoint's write is
  refused. So ``RegionDb`` parks in a savepoint too, which that moment refuses as well.
- The driver's refusals before anything is sent: a :class:`psycopg.DataError` without a SQLSTATE (a
  NUL in text) and a :class:`UnicodeEncodeError` of UTF-8 (a lone surrogate: no UTF-8 for it). The
  region's bus refuses both on the way in; the store does not depend on it. The store's connection
  is UTF-8 and its database too (``RegionDb`` refuses another): in another encoding a Chinese
  character would meet 22P05 or an encoding error, and a good event would be parked.

Not the event's, retried as before (its hall is asked for it again): class 08 (connection), 40
(serialization failure, deadlock), 53 (disk full, out of memory, too many connections), 55 (lock
not available), 57 (admin shutdown, statement timeout, query canceled), 58 and XX (the server's own
failures), and any error on a connection that is closed or broken. Nor class 23 (integrity
constraint violation): the only constraints an event meets are the keys the region keeps itself
((hall, seq), guarded by the mark; ``rating_records`` takes a record once), so a violation says the
region's own state disagrees (a second process, a hand edit), not that the event is bad, and parking
would hide a good event. It is refused and logged as before.

A later copy of a parked seq (:meth:`RegionDb.store_copy`): the parked event may be junk a stolen or
broken hall account sent at the hall's next seq, and the hall's own event at that seq, arriving
after it, is then the copy; the mark drops it as a duplicate, so without this it was lost. One that
differs from the parked event is stored in its place (the row is free: the parked one never went
in) and the parked row marked ``replaced_at``, kept for the record, in one transaction; one
PostgreSQL refuses too is left, said once. An identical copy (a resend of the parked one) is left.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg.rows import TupleRow

from hall_devices.contract import ForwardedEvent

ERROR_CHARS = 1000  # of PostgreSQL's message kept: it may quote a whole refused value
DATA_CLASSES = ("22", "54")
KIND_SAID = 100  # of a kind in the log (kept whole in the table): a hall may send one of a megabyte


@dataclass(frozen=True)
class Parked:
    hall_id: str
    seq: int
    kind: str
    sqlstate: str | None
    error: str


@dataclass(frozen=True)
class Copy:
    """What became of a later copy of a parked seq: ``stored`` in its place, the ``same`` as the
    parked one, ``gone`` (no parked row not yet replaced at that seq), ``refused`` by PostgreSQL too."""

    outcome: Literal["stored", "same", "gone", "refused"]
    sqlstate: str | None = None
    error: str = ""


def refused_data(exc: BaseException) -> bool:
    """Whether ``exc``, raised storing one hall's events, is the events' own (the module's doc)."""
    if isinstance(exc, UnicodeEncodeError):  # only UTF-8 refuses what no text holds (a lone surrogate)
        return exc.encoding == "utf-8"
    if not isinstance(exc, psycopg.Error):
        return False
    if exc.sqlstate is None:
        return isinstance(exc, psycopg.DataError)
    return exc.sqlstate[:2] in DATA_CLASSES


def safe_text(value: str) -> str:
    """``value`` as text PostgreSQL takes: a lone surrogate or a NUL written as its escape."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def park(conn: psycopg.Connection[TupleRow], hall_id: str, one: ForwardedEvent,
         exc: BaseException) -> Parked | None:
    """Keep ``one`` in ``parked_events`` (the caller's transaction moves the mark past it); None when
    it was parked already (the mark set back by hand, say): never twice."""
    state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    error = safe_text(f"{type(exc).__name__}: {exc}")[:ERROR_CHARS]
    kind = safe_text(one.kind)
    done = conn.execute(
        "INSERT INTO parked_events (hall_id, seq, kind, at, day, body, sqlstate, error) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (hall_id, one.seq, kind, one.at, safe_text(one.day), one.body.encode("utf-8", "surrogatepass"),
         state, error)).rowcount
    return Parked(hall_id, one.seq, kind[:KIND_SAID], state, error) if done == 1 else None


def unreplaced(conn: psycopg.Connection[TupleRow], hall_id: str | None = None) -> dict[str, set[int]]:
    """hall → the seqs of its parked events not replaced yet (every hall's, or ``hall_id``'s)."""
    out: dict[str, set[int]] = defaultdict(set)
    for hall, seq in conn.execute("SELECT hall_id, seq FROM parked_events WHERE replaced_at IS NULL "
                                  "AND (%s::text IS NULL OR hall_id = %s)", (hall_id, hall_id)):
        out[str(hall)].add(int(seq))
    return dict(out)


def parked_copy(conn: psycopg.Connection[TupleRow], hall_id: str, one: ForwardedEvent
                ) -> Literal["same", "gone", "other"]:
    """Whether ``one`` is a copy of the parked event at its seq, locking that row (the caller's
    transaction) so a second region process cannot store a copy too."""
    row = conn.execute(
        "SELECT kind = %s AND day = %s AND at = %s AND body = %s FROM parked_events "
        "WHERE hall_id = %s AND seq = %s AND replaced_at IS NULL FOR UPDATE",
        (safe_text(one.kind), safe_text(one.day), one.at, one.body.encode("utf-8", "surrogatepass"),
         hall_id, one.seq)).fetchone()
    return "gone" if row is None else "same" if row[0] else "other"


def refused_copy(exc: BaseException) -> Copy:
    return Copy("refused", exc.sqlstate if isinstance(exc, psycopg.Error) else None,
                safe_text(f"{type(exc).__name__}: {exc}")[:ERROR_CHARS])


def mark_replaced(conn: psycopg.Connection[TupleRow], hall_id: str, seq: int) -> None:
    conn.execute("UPDATE parked_events SET replaced_at = now() WHERE hall_id = %s AND seq = %s",
                 (hall_id, seq))
