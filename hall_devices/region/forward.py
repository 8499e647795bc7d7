"""The hall's side of the region: committed events out, resend requests answered from the store.

The coordinator calls :meth:`Forwarder.committed` right after each commit and publishes the result on
its own (local) broker; the broker's bridge to the region queues them (Mosquitto's persistent
queueing) while the WAN is down, so the hall never waits for the region. Whatever the queue could not
keep (its limit, a broker restart without a save) the region sees as a gap, from a later event or
from the head published every :data:`HEAD_EVERY_S`, and asks for again: :meth:`resend` answers from
the hall's own store, which is the truth.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from hall_devices.contract import ForwardedEvent, RegionEvents, RegionHead, ResendRequest
from hall_devices.coordinator.store import EventRow, EventStore

CHUNK = 200  # events per message: ~100 kB, well under any broker's message limit
RESEND_MAX = 5_000  # events one resend request may ask for; the region asks again for the rest
HEAD_EVERY_S = 2.0


class Forwarder:
    """Builds the region's messages of one hall; no I/O but reads of the hall's own store."""

    def __init__(self, hall_id: str, store: EventStore) -> None:
        self.hall_id = hall_id
        self.store = store
        self._head_sent_at: float | None = None

    def committed(self, last_seq: int, rows: list[EventRow]) -> list[RegionEvents]:
        """Messages for events just committed; ``last_seq`` is what :meth:`EventStore.commit` returned."""
        first = last_seq - len(rows) + 1
        events = [_forwarded(first + i, row.at, row.day, row.kind, row.body) for i, row in enumerate(rows)]
        return self._chunks(events, last_seq, None)

    def resend(self, request: ResendRequest) -> list[RegionEvents]:
        """The events a resend request asks for that the store holds (at most :data:`RESEND_MAX`).

        A range past the store's end gets what exists; the region learns the head from the reply.
        """
        last = min(request.last_seq, request.first_seq + RESEND_MAX - 1, self.store.last_seq)
        events = [_forwarded(seq, at, day, kind, body)
                  for seq, at, day, kind, body in self.store.event_range(request.first_seq, last)]
        if not events:  # nothing to send still tells the region where the hall is
            return [RegionEvents(hall_id=self.hall_id, events=[], head=self.store.last_seq,
                                 resend_of=request.command_id)]
        return self._chunks(events, self.store.last_seq, request.command_id)

    def head(self, now: datetime, monotonic_s: float, layout_version: int = 0) -> RegionHead | None:
        """The head message when one is due (every :data:`HEAD_EVERY_S`), else None."""
        if self._head_sent_at is not None and monotonic_s - self._head_sent_at < HEAD_EVERY_S:
            return None
        self._head_sent_at = monotonic_s
        return RegionHead(hall_id=self.hall_id, head=self.store.last_seq, at=now,
                          layout_version=layout_version or None)

    def _chunks(self, events: list[ForwardedEvent], head: int, resend_of: str | None) -> list[RegionEvents]:
        return [RegionEvents(hall_id=self.hall_id, events=events[i:i + CHUNK], head=head,
                             resend_of=resend_of)
                for i in range(0, len(events), CHUNK)]


def _forwarded(seq: int, at: str, day: str, kind: str, body: bytes) -> ForwardedEvent:
    return ForwardedEvent(seq=seq, at=datetime.fromisoformat(at), day=day, kind=kind,
                          body=body.decode("utf-8"))


def all_events(store: EventStore) -> Iterable[ForwardedEvent]:
    """Every event of a store, in order (tests and the benchmark compare the region with this)."""
    for seq, at, day, kind, body in store.event_range(1, store.last_seq):
        yield _forwarded(seq, at, day, kind, body)
