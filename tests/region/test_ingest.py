"""The region's ingest rule, sans-IO: events in order, each once; gaps held and asked for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hall_devices.contract import ForwardedEvent
from hall_devices.region.ingest import (
    GAP_GRACE_S,
    RESEND_CHUNK,
    RESEND_RETRY_S,
    HallIngest,
    IngestError,
    Resend,
)


def events(first: int, last: int) -> list[ForwardedEvent]:
    at = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    return [ForwardedEvent(seq=s, at=at, day="2026-11-30", kind="ticket_issued", body="{}")
            for s in range(first, last + 1)]


def seqs(batch: list[ForwardedEvent]) -> list[int]:
    return [e.seq for e in batch]


def take(ingest: HallIngest, first: int, last: int, head: int, now: float) -> list[int]:
    ready = ingest.receive(events(first, last), head, now)
    if ready:
        ingest.applied_up_to(ready[-1].seq)
    return seqs(ready)


def test_in_order_events_are_applied_and_duplicates_dropped() -> None:
    ingest = HallIngest("h1")
    assert take(ingest, 1, 3, 3, 0.0) == [1, 2, 3]
    assert take(ingest, 2, 5, 5, 0.1) == [4, 5]  # 2, 3 again: a redelivery overlapping new ones
    assert take(ingest, 1, 5, 5, 0.2) == []
    assert (ingest.applied, ingest.head, ingest.lagging) == (5, 5, 0)
    assert ingest.due(100.0) is None


def test_events_past_a_gap_wait_for_it_and_the_gap_is_asked_for_after_a_grace() -> None:
    ingest = HallIngest("h1")
    take(ingest, 1, 2, 2, 0.0)
    assert take(ingest, 6, 8, 8, 0.0) == []  # 3..5 missing: held, nothing applied out of order
    assert ingest.due(GAP_GRACE_S / 2) is None  # may still be in flight
    assert ingest.due(GAP_GRACE_S) == Resend("h1", 3, 5)
    assert ingest.due(GAP_GRACE_S + 0.1) is None  # asked: wait for the answer
    assert ingest.due(GAP_GRACE_S + RESEND_RETRY_S) == Resend("h1", 3, 5)  # no answer: ask again
    assert take(ingest, 3, 5, 8, 9.0) == [3, 4, 5, 6, 7, 8]
    assert ingest.due(20.0) is None


def test_a_lost_tail_shows_in_the_head_and_is_asked_for_in_chunks() -> None:
    ingest = HallIngest("h1")
    take(ingest, 1, 1, 1, 0.0)
    assert ingest.receive([], 1 + RESEND_CHUNK + 10, 1.0) == []
    assert ingest.due(1.0 + GAP_GRACE_S) == Resend("h1", 2, 1 + RESEND_CHUNK)
    take(ingest, 2, 1 + RESEND_CHUNK, 1, 3.0)
    assert ingest.due(3.0) == Resend("h1", 2 + RESEND_CHUNK, 11 + RESEND_CHUNK)  # next chunk at once


def test_a_message_with_a_hole_inside_is_refused_and_changes_nothing() -> None:
    ingest = HallIngest("h1")
    take(ingest, 1, 2, 2, 0.0)
    with pytest.raises(IngestError, match="not consecutive"):
        ingest.receive([*events(3, 3), *events(5, 5)], 9, 1.0)
    assert (ingest.applied, ingest.head) == (2, 2)
    assert take(ingest, 3, 3, 3, 2.0) == [3]


def test_the_applied_mark_never_goes_back() -> None:
    ingest = HallIngest("h1")
    ingest.restore(10, 12)
    with pytest.raises(IngestError):
        ingest.applied_up_to(9)
    assert take(ingest, 11, 12, 12, 0.0) == [11, 12]
