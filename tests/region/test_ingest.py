"""The region's ingest rule, sans-IO: events in order, each once; gaps held and asked for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hall_devices.contract import ForwardedEvent
from hall_devices.region.ingest import (
    GAP_GRACE_S,
    HELD_CHARS_MAX,
    HELD_MAX,
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


def test_a_full_hold_still_takes_the_gap_and_catches_up_with_the_rest_resent() -> None:
    # the reviewer's case (r3/held.py), scaled to the buffer: 1..100 applied, 101..300 lost, the
    # backlog beyond arrives in 200-event messages until far more is held than HELD_MAX
    ingest = HallIngest("h1")
    take(ingest, 1, 100, 100, 0.0)
    last = 300 + HELD_MAX + 1_000
    for first in range(301, last, 200):
        assert take(ingest, first, first + 199, first + 199, 0.5) == []
    assert ingest.head == last
    resend = ingest.due(0.5 + GAP_GRACE_S)
    assert resend == Resend("h1", 101, 300)
    ready = take(ingest, 101, 300, last, 2.0)
    assert ready == list(range(101, 101 + HELD_MAX))  # the gap took the place of the top 200 held
    # what gave way when the hold was full is asked for next, and then catching up completes
    while (resend := ingest.due(3.0)) is not None:
        assert resend.first_seq == ingest.applied + 1
        take(ingest, resend.first_seq, resend.last_seq, last, 3.0)
    assert (ingest.applied, ingest.lagging) == (last, 0)


def test_when_the_hold_is_full_the_highest_held_give_way_to_lower_ones() -> None:
    ingest = HallIngest("h1")
    take(ingest, 1, 1, 1, 0.0)
    take(ingest, 1_000, 999 + HELD_MAX, 999 + HELD_MAX, 0.0)  # fills the hold past a gap 2..999
    assert take(ingest, 500, 599, 999 + HELD_MAX, 0.1) == []  # taken: the top 100 give way
    assert take(ingest, 2, 499, 999 + HELD_MAX, 0.2) == list(range(2, 600))  # the top 498 more
    assert ingest.due(0.2 + GAP_GRACE_S) == Resend("h1", 600, 999)
    assert take(ingest, 600, 999, 999 + HELD_MAX, 2.0) == list(range(600, 402 + HELD_MAX))
    assert ingest.due(2.0) == Resend("h1", 402 + HELD_MAX, 999 + HELD_MAX)  # what gave way


def test_a_sequence_number_no_store_can_hold_is_refused_and_changes_nothing() -> None:
    # A stolen hall account or a broken hall: believed, such a head has the hall asked for ever.
    ingest = HallIngest("h1")
    take(ingest, 1, 2, 2, 0.0)
    far = events(3, 3)[0].model_copy(update={"seq": 2**63})
    for head, batch in ((2**63, []), (2, [far])):
        with pytest.raises(IngestError, match="beyond"):
            ingest.receive(batch, head, 1.0)
    assert (ingest.applied, ingest.head, ingest.lagging) == (2, 2, 0)
    assert ingest.due(10.0) is None


def test_the_hold_is_bounded_in_characters_too_and_the_gap_still_fills() -> None:
    # 50,000 held events of ~1 MiB each (a stolen account's, past a gap) would be ~50 GB: the hold
    # is bounded by its bodies' size as well, the highest giving way as for the count.
    ingest = HallIngest("h1")
    take(ingest, 1, 1, 1, 0.0)
    big = "x" * (HELD_CHARS_MAX // 10)  # one string object: the test itself stays small
    at = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    for seq in range(100, 130):
        one = ForwardedEvent(seq=seq, at=at, day="2026-11-30", kind="ticket_issued", body=big)
        assert ingest.receive([one], 129, 0.1) == []
        assert ingest.held_chars <= HELD_CHARS_MAX
    ready = take(ingest, 2, 99, 129, 0.2)  # the gap is taken, the highest held give way to it
    assert ready[:98] == list(range(2, 100)) and ready == list(range(2, ready[-1] + 1))
    assert ingest.held_chars <= HELD_CHARS_MAX
    while (resend := ingest.due(3.0)) is not None:  # what gave way is asked for, and catching up ends
        assert resend.first_seq == ingest.applied + 1
        take(ingest, resend.first_seq, resend.last_seq, 129, 3.0)
    assert (ingest.applied, ingest.lagging, ingest.held_chars) == (129, 0, 0)
