"""Which forwarded events the region applies, in what order, and which it asks a hall to resend.

Sans-IO (h11 style): messages and the time go in, decisions come out; the database and the broker
are the caller's. One :class:`HallIngest` per hall. Its rule: events are applied strictly in the
hall's sequence order, each once. An event at or below ``applied`` is a duplicate (the bridge's
redelivery, a resend overlapping the live stream) and is dropped; one beyond the next expected is
held until the gap before it is filled (at most :data:`HELD_MAX` events and :data:`HELD_CHARS_MAX`
characters of bodies; when full, the highest held give
way, so the events that fill the gap are always taken); a gap that stays open for :data:`GAP_GRACE_S` (events
still in flight are not a gap) is asked for with a :class:`Resend`, at most :data:`RESEND_CHUNK`
events at a time, again after :data:`RESEND_RETRY_S` if nothing came of it.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from hall_devices.contract import ForwardedEvent

GAP_GRACE_S = 1.0
RESEND_RETRY_S = 5.0
RESEND_CHUNK = 5_000
HELD_MAX = 50_000  # events held past a gap; beyond this the highest are dropped and asked for later
# ... and the characters of their bodies: a message may carry up to 1 MiB, so 50,000 held events of a
# stolen account (or a broken hall) could otherwise take ~50 GB. A day of a busy hall is ~10 MB.
HELD_CHARS_MAX = 64 * 1024 * 1024
SEQ_MAX = 2**63 - 1  # no hall's store (SQLite INTEGER) nor the region's (bigint) goes beyond


class IngestError(Exception):
    """A message the region cannot apply (its events are not consecutive, ...)."""


@dataclass(frozen=True)
class Resend:
    hall_id: str
    first_seq: int
    last_seq: int


@dataclass
class HallIngest:
    """The region's view of one hall's event stream. ``applied``: every event up to it is stored."""

    hall_id: str
    applied: int = 0
    head: int = 0  # the highest sequence number the hall is known to have committed
    _held: dict[int, ForwardedEvent] = field(default_factory=dict)
    held_chars: int = field(default=0, init=False)  # the characters of the held events' bodies
    _gap_since: float | None = None
    _asked: tuple[int, float] | None = None  # (last_seq asked for, when)

    def receive(self, events: list[ForwardedEvent], head: int, now_s: float,
                answers_resend: bool = False) -> list[ForwardedEvent]:
        """Take a message's events (and the hall's head when sent); returns the events to apply now,
        consecutive from ``applied + 1``. The caller stores them, then calls :meth:`applied_up_to`.
        ``answers_resend``: the message answers a resend request, so its head is where the hall's
        store ends now; a higher head believed before (a stolen account's lie) and events held
        beyond it are dropped, or the hall would be asked for them for ever.
        Raises :class:`IngestError`, changing nothing, for events not consecutive or a sequence
        number (or head) beyond :data:`SEQ_MAX`: believed, it would have the hall asked for ever."""
        if max([head, *(one.seq for one in events)]) > SEQ_MAX:
            raise IngestError(f"hall {self.hall_id}: a sequence number beyond {SEQ_MAX}")
        for one, after in itertools.pairwise(events):
            if after.seq != one.seq + 1:
                raise IngestError(f"hall {self.hall_id}: events {one.seq} and {after.seq} in one message "
                                  "are not consecutive")
        top = max(head, events[-1].seq if events else 0)
        if answers_resend:
            self.head = max(self.applied, top)
            for beyond in [s for s in self._held if s > self.head]:
                self._drop(beyond)
        else:
            self.head = max(self.head, top)
        self._hold(events)
        ready: list[ForwardedEvent] = []
        seq = self.applied + 1
        while seq in self._held:
            ready.append(self._drop(seq))
            seq += 1
        self._note_gap(seq - 1, now_s)
        return ready

    def applied_up_to(self, seq: int) -> None:
        """The caller has durably stored every event up to ``seq``."""
        if seq < self.applied:
            raise IngestError(f"hall {self.hall_id}: applied cannot go back from {self.applied} to {seq}")
        self.applied = seq
        for old in [s for s in self._held if s <= seq]:
            self._drop(old)

    def restore(self, applied: int, head: int) -> None:
        """After a restart: what the database says was stored."""
        self.applied = applied
        self.head = max(self.head, head, applied)

    def due(self, now_s: float) -> Resend | None:
        """A resend request to send now, if the hall is ahead of us for long enough."""
        self._note_gap(self.applied, now_s)
        if self._gap_since is None or now_s - self._gap_since < GAP_GRACE_S:
            return None
        asked = self._asked
        if asked is not None and asked[0] > self.applied and now_s - asked[1] < RESEND_RETRY_S:
            return None  # an answer is on its way
        first = self.applied + 1
        beyond = [s for s in self._held if s > first]
        last = min(self.head, first + RESEND_CHUNK - 1, (min(beyond) - 1) if beyond else self.head)
        self._asked = (last, now_s)
        return Resend(self.hall_id, first, max(first, last))

    @property
    def lagging(self) -> int:
        """Events the hall has committed that the region has not applied yet."""
        return max(0, self.head - self.applied)

    def _hold(self, events: list[ForwardedEvent]) -> None:
        """Hold the new events; when the buffer is full, the highest held ones give way (the gap's
        resend reaches them again), never the events that fill the gap, or catching up would stop."""
        fresh = [one for one in events if one.seq > self.applied and one.seq not in self._held]
        if not fresh:
            return
        if self._full() and fresh[0].seq > max(self._held):
            return  # all beyond everything held: dropping them is the eviction, at no cost
        for one in fresh:
            self._held[one.seq] = one
            self.held_chars += len(one.body)
        over = len(self._held) - HELD_MAX
        if over > 0:
            for seq in heapq.nlargest(over, self._held):
                self._drop(seq)
        if self.held_chars > HELD_CHARS_MAX:
            for seq in sorted(self._held, reverse=True):
                self._drop(seq)
                if self.held_chars <= HELD_CHARS_MAX:
                    break

    def _full(self) -> bool:
        return len(self._held) >= HELD_MAX or self.held_chars >= HELD_CHARS_MAX

    def _drop(self, seq: int) -> ForwardedEvent:
        one = self._held.pop(seq)
        self.held_chars -= len(one.body)
        return one

    def _note_gap(self, reached: int, now_s: float) -> None:
        if self.head > reached:
            if self._gap_since is None:
                self._gap_since = now_s
        else:
            self._gap_since = None
