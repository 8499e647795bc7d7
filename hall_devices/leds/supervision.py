"""LED screen supervision, sans-IO: each write's outcome and ``now`` in, when to try next and the
screen's fault out.

Outcomes are told apart (BX replies, protocols.md §2 and §7): the screen ACKed; it was **silent**
(no reply within the reply timeout); it **NACKed** (A0 01 with an error code); it was **busy** (NACK
error 3, ERR_BUSY); or the reply was **garbled** (a frame that does not decode or check). Silence
means "not responding", a NACK "nack", garbage "garbled": a manager sees which.

Decisions:
- a failure other than busy is retried at once up to ``retries`` tries, then with backoff (1, 2, 4 …
  up to ``max_backoff_s`` seconds), so a dead screen costs the bus one reply timeout now and then
  while the other screens keep updating;
- busy is answered with backoff from the first time (0.1, 0.2, 0.4 … s, at most 2 s): the controller
  asked for time, so three retries within 20 ms would only keep it busy;
- a screen with no ACK for ``unreachable_after_s`` seconds (and at least ``retries`` tries) is
  faulted; the bus is ``fault`` when none of its screens is reachable, ``warning`` when some are not;
- a screen whose text does not change is probed (its areas written again) about every ``probe_s``
  seconds, so a silent screen is noticed within about ``unreachable_after_s`` counted from its last
  ACK; and a bus on which two answering screens (or its only one) failed and none has ACKed since,
  for ``unreachable_after_s``, is ``fault`` (:class:`BusHealth`), before every screen is faulted in
  turn.
Times are seconds on any monotonic clock, passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from hall_devices.contract import DeviceFault, DeviceState
from hall_devices.leds import bx

BUSY_FIRST_S = 0.1
BUSY_MAX_S = 2.0


class Outcome(StrEnum):
    ACK = "ack"
    SILENT = "silent"
    NACK = "nack"
    BUSY = "busy"
    GARBLED = "garbled"


FAULT_OF = {Outcome.SILENT: DeviceFault.NOT_RESPONDING, Outcome.NACK: DeviceFault.NACK,
            Outcome.BUSY: DeviceFault.NACK, Outcome.GARBLED: DeviceFault.GARBLED}


def reply_outcome(items: Iterable[bx.BxFrame | bx.BadFrame], address: int) -> Outcome | None:
    """The outcome told by decoded reply items for the screen at ``address``; None: no reply yet.

    A reply from another address is not this screen's and is skipped; a bad frame is garbled.
    """
    for item in items:
        if isinstance(item, bx.BadFrame):
            return Outcome.GARBLED
        if item.header.source != address or item.command[0] != 0xA0:
            continue
        try:
            reply = bx.parse_reply(item)
        except bx.BxError:
            return Outcome.GARBLED
        if reply.ok:
            return Outcome.ACK
        return Outcome.BUSY if reply.code == bx.ErrorCode.BUSY else Outcome.NACK
    return None


@dataclass
class ScreenHealth:
    """One screen's write history. :meth:`record` each outcome; ask :meth:`may_write` and
    :meth:`fault` with the current time."""

    retries: int = 3
    unreachable_after_s: float = 5.0
    max_backoff_s: float = 8.0
    tries: int = 0  # failed tries since the last ACK (busy included)
    last: Outcome | None = None
    failing_since: float | None = None
    not_before: float = 0.0
    probe_s: float = 0.0  # how often the agent probes it when idle (0: never)
    acked_at: float | None = None

    def record(self, outcome: Outcome, now: float) -> None:
        if outcome is Outcome.ACK:
            self.tries, self.last, self.failing_since, self.not_before = 0, outcome, None, 0.0
            self.acked_at = now
            return
        self.tries += 1
        self.last = outcome
        if self.failing_since is None:
            self.failing_since = now
        if outcome is Outcome.BUSY:
            busy_delay = min(BUSY_MAX_S, BUSY_FIRST_S * 2 ** min(self.tries - 1, 16))
            self.not_before = now + busy_delay
        elif self.tries >= self.retries:
            self.not_before = now + min(self.max_backoff_s, 2.0 ** (self.tries - self.retries))
        else:
            self.not_before = now

    def news(self) -> None:
        """The screen has something new to show: a failed (not busy) screen gets one try now."""
        if self.last is not Outcome.BUSY:
            self.not_before = 0.0

    def may_write(self, now: float) -> bool:
        return now >= self.not_before

    def fault(self, now: float) -> DeviceFault | None:
        """Why the screen counts as faulted now, or None while it answers (or has not failed long)."""
        at = self.faulted_at()
        if at is None or now < at or self.last is None:
            return None
        return FAULT_OF[self.last]

    def faulted_at(self) -> float | None:
        """When :meth:`fault` turns from None to a fault if nothing more is recorded (seconds on the
        caller's clock; None: not on its way to a fault). A session wakes then to report it."""
        if self.failing_since is None or self.last is None or self.tries < self.retries:
            return None
        # Counted from the last ACK when the screen is probed (the silence began after it, within
        # one probe period of the first failure); else from the first failure.
        since = self.failing_since
        if self.acked_at is not None:
            since = max(self.acked_at, self.failing_since - self.probe_s)
        return since + self.unreachable_after_s


@dataclass
class BusHealth:
    """The bus as a whole: :meth:`record` every write's outcome (``address`` the screen's,
    ``answering``: its last write had not failed); :meth:`silent` says at least ``needed`` screens
    that were answering failed and no screen has ACKed since the first of those failures, for
    ``unreachable_after_s`` seconds. Screens already failing do not count: their retries alone,
    between the probes of the others, say nothing of the bus."""

    unreachable_after_s: float = 5.0
    needed: int = 2
    acked_at: float | None = None
    failing_since: float | None = None
    failed: set[int] = field(default_factory=set)

    def record(self, address: int, outcome: Outcome, now: float, answering: bool = True) -> None:
        if outcome is Outcome.ACK:
            self.acked_at, self.failing_since = now, None
            self.failed.clear()
            return
        if not answering:
            return
        if self.failing_since is None:
            self.failing_since = now
        self.failed.add(address)

    def silent(self, now: float) -> bool:
        at = self.silent_at()
        return at is not None and now >= at

    def silent_at(self) -> float | None:
        """When :meth:`silent` turns true if nothing more is recorded; None: not on its way."""
        if self.failing_since is None or len(self.failed) < self.needed:
            return None
        return self.failing_since + self.unreachable_after_s


def bus_state(screen_faults: list[DeviceFault | None], silent: bool = False
              ) -> tuple[DeviceState, list[DeviceFault]]:
    """The bus's state from its screens' faults: fault when no screen answers (or the bus is
    ``silent``, :meth:`BusHealth.silent`), warning when some do not, ok otherwise; the faults
    listed are the distinct reasons."""
    faults = sorted({f for f in screen_faults if f is not None})
    if silent:
        return DeviceState.FAULT, sorted({*faults, DeviceFault.NOT_RESPONDING})
    if not faults:
        return DeviceState.OK, []
    if all(f is not None for f in screen_faults):
        return DeviceState.FAULT, faults
    return DeviceState.WARNING, faults
