"""The pad bus link, sans-IO: bytes, window facts and ``now`` in; frames to write and events out.

In the shape of h11 and the printer runner: no port, no clock, no MQTT. Every call takes ``now``
(monotonic seconds, the agent's clock) and returns a list of :data:`Output` in the order it
happened; the agent writes each :class:`Write` to the port in that order and acts on the rest.

What it owns (protocols.md §4; the project's choices in docs/pads.md):

- acknowledgement: each valid frame from a pad is echoed back at once (the host echoes);
- the bus's ``pads_echo`` profile: only on such a bus does a host frame wait ``echo_wait_s`` for the
  pad's echo; ``silent_after`` misses in a row mark the pad not responding, and its next echo makes
  it answer again (table :data:`LINK`). An echo of a host frame is never echoed back (no ping-pong);
- key presses to window intents (:class:`PadKeys`); a refused one beeps twice;
- the rating prompt: open from the ``now`` it arrived for its seconds (table :data:`PROMPT`); the
  first rating key inside it is a :class:`RatingGiven`, the rest are :class:`RatingIgnored`;
- what each pad shows (the coordinator's ``WindowState.pad_text``: the called ticket, the waiting
  count while idle, nothing while closed or paused), written again for every pad when the port (re)opens.

Errors: :class:`IllegalTransitionError` when a table has no row for (state, event); nothing changes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from hall_devices.contract import DeviceFault, DeviceState, RatingPrompt, WindowState
from hall_devices.layout import PadDevice
from hall_devices.pads.codec import (
    Control,
    Frame,
    Garbage,
    Ignored,
    IgnoredCounter,
    Key,
    PadDecoder,
    ask_rating_frame,
    beep_frames,
    key_presses,
    rating_level,
    show_frame,
)
from hall_devices.pads.keys import Intent, PadKeys

ECHO_WAIT_S = 0.5  # how long a host frame waits for its echo on a pads_echo bus
SILENT_AFTER = 3  # frames a pad failed to echo in a row before it is marked not responding

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class IllegalTransitionError(Exception):
    """An event the state machine has no row for in its current state; nothing was changed."""


@dataclass(frozen=True)
class Table(Generic[S, E]):
    """A state machine as data: (state, event) → next state; a missing row is illegal."""

    name: str
    rows: Mapping[tuple[S, E], S]

    def next(self, state: S, event: E) -> S:
        try:
            return self.rows[(state, event)]
        except KeyError:
            raise IllegalTransitionError(f"{self.name}: {event} is illegal in state {state}") from None


class Link(StrEnum):
    """A pad's link, as the host sees it."""

    UNREACHABLE = "unreachable"  # the bus's port is not open
    ANSWERING = "answering"
    NOT_RESPONDING = "not_responding"  # missed silent_after echoes in a row (pads_echo buses only)


class LinkEvent(StrEnum):
    PORT_OPENED = "port_opened"
    PORT_LOST = "port_lost"
    ECHO = "echo"  # the pad echoed a host frame we waited for
    SILENT = "silent"  # the silent_after-th echo in a row did not come


LINK: Table[Link, LinkEvent] = Table("pad link", {
    (Link.UNREACHABLE, LinkEvent.PORT_OPENED): Link.ANSWERING,
    (Link.ANSWERING, LinkEvent.PORT_LOST): Link.UNREACHABLE,
    (Link.NOT_RESPONDING, LinkEvent.PORT_LOST): Link.UNREACHABLE,
    (Link.ANSWERING, LinkEvent.ECHO): Link.ANSWERING,
    (Link.NOT_RESPONDING, LinkEvent.ECHO): Link.ANSWERING,
    (Link.ANSWERING, LinkEvent.SILENT): Link.NOT_RESPONDING,
})


class Prompt(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class PromptEvent(StrEnum):
    ASKED = "asked"
    RATED = "rated"
    EXPIRED = "expired"


PROMPT: Table[Prompt, PromptEvent] = Table("rating prompt", {
    (Prompt.CLOSED, PromptEvent.ASKED): Prompt.OPEN,
    (Prompt.OPEN, PromptEvent.ASKED): Prompt.OPEN,  # the next service's prompt replaces the last
    (Prompt.OPEN, PromptEvent.RATED): Prompt.CLOSED,  # one rating per service
    (Prompt.OPEN, PromptEvent.EXPIRED): Prompt.CLOSED,
})


# --- what comes out ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    """A frame to put on the bus now."""

    frame: Frame

    @property
    def data(self) -> bytes:
        return self.frame.encode()


@dataclass(frozen=True)
class WindowIntent:
    """The clerk's keys at ``window`` mean a window command (``intent.action`` is never None)."""

    window: int
    address: int
    intent: Intent


@dataclass(frozen=True)
class RatingGiven:
    """The first rating key inside the prompt: ``level`` 1..5, ``answered_after_s`` seconds."""

    window: int
    address: int
    prompt: RatingPrompt
    level: int
    answered_after_s: float


@dataclass(frozen=True)
class RatingIgnored:
    """A rating key with no prompt open (none asked, already rated, or too late)."""

    address: int
    level: int


@dataclass(frozen=True)
class KeyRefused:
    """Keys that mean nothing here; the session has beeped twice."""

    address: int
    reason: str


@dataclass(frozen=True)
class EchoConfirmed:
    address: int


@dataclass(frozen=True)
class PadSilent:
    """The pad missed ``silent_after`` echoes in a row: not responding."""

    address: int


@dataclass(frozen=True)
class PadAnswering:
    """A pad that was not responding echoed again."""

    address: int


@dataclass(frozen=True)
class PromptExpired:
    window: int


@dataclass(frozen=True)
class Noise:
    """Bytes the decoder skipped (garbage, a bad checksum), with its reason."""

    garbage: Garbage


@dataclass(frozen=True)
class FrameIgnored:
    """A well-formed frame that means nothing; ``first`` the first time of its kind on this bus."""

    ignored: Ignored
    first: bool


Output = (Write | WindowIntent | RatingGiven | RatingIgnored | KeyRefused | EchoConfirmed | PadSilent
          | PadAnswering | PromptExpired | Noise | FrameIgnored)


@dataclass(frozen=True)
class BusStatus:
    """The bus's device status: members maps each pad's device id to its state."""

    state: DeviceState
    faults: tuple[DeviceFault, ...]
    members: Mapping[str, DeviceState]


def prompt_seconds(prompt: RatingPrompt, wall_now: datetime) -> int:
    """How long a prompt stays open: its ``timeout_s``; an older coordinator sent only
    ``expires_at``, which is then read against ``wall_now`` (this machine's wall clock)."""
    if prompt.timeout_s is not None:
        return prompt.timeout_s
    return int((prompt.expires_at - wall_now).total_seconds())


@dataclass
class _Pad:
    device: PadDevice
    keys: PadKeys = field(default_factory=PadKeys)
    state: WindowState | None = None
    shown: str | None = None  # None: unknown, write it whatever it is
    link: Link = Link.UNREACHABLE
    missed: int = 0
    awaiting: deque[tuple[bytes, float]] = field(default_factory=deque)  # (host frame, echo due by)
    prompt: Prompt = Prompt.CLOSED
    asked: RatingPrompt | None = None
    opened_at: float = 0.0
    closes_at: float = 0.0


def _text(state: WindowState | None) -> str:
    # The coordinator composes it (WindowState.pad_text); letters cannot show: show_frame keeps the
    # digits.
    return state.pad_text if state is not None else ""


class PadSession:
    """One pad bus. ``pads``: the bus's members; ``pads_echo``: the bus's profile (layout)."""

    def __init__(self, pads: Sequence[PadDevice], *, pads_echo: bool, echo_wait_s: float = ECHO_WAIT_S,
                 silent_after: int = SILENT_AFTER) -> None:
        self.pads_echo = pads_echo
        self.echo_wait_s = echo_wait_s
        self.silent_after = silent_after
        self._pads = {p.address: _Pad(p) for p in pads}
        self._by_window = {p.window: self._pads[p.address] for p in pads}
        self.decoder = PadDecoder()
        self.ignored = IgnoredCounter()  # frames that meant nothing, per kind
        self.port_open = False

    @property
    def windows(self) -> list[int]:
        return list(self._by_window)

    def link(self, address: int) -> Link:
        return self._pads[address].link

    # --- the port -------------------------------------------------------------------------------

    def port_opened(self, now: float) -> list[Output]:
        """The port is (again) open: pads may have lost power with it, so every display is written.

        Raises :class:`IllegalTransitionError` while it is open already (a loss always comes first)."""
        links = {a: LINK.next(p.link, LinkEvent.PORT_OPENED) for a, p in self._pads.items()}
        out: list[Output] = []
        self.port_open = True
        self.decoder = PadDecoder()  # a part frame from before belongs to nothing now
        for address, pad in self._pads.items():
            pad.link, pad.shown = links[address], None
            out += self._show(pad, now)
            if pad.prompt is Prompt.OPEN and now < pad.closes_at:
                # Asked while the port was away (or a pad that lost power with it): light its
                # rating keys again for the seconds left, so the applicant can still rate.
                left = max(1, math.ceil(pad.closes_at - now))
                out += self._send(pad, ask_rating_frame(pad.device.address, left), now)
        return out

    def port_lost(self, now: float) -> list[Output]:
        """The port failed or vanished. Said again (the reader and a failed write both see it): no-op."""
        if not self.port_open:
            return []
        links = {a: LINK.next(p.link, LinkEvent.PORT_LOST) for a, p in self._pads.items()}
        self.port_open = False
        for address, pad in self._pads.items():
            pad.link, pad.missed, pad.shown = links[address], 0, None
            pad.awaiting.clear()  # no echo can come through a closed port
        return []

    def receive(self, data: bytes, now: float) -> list[Output]:
        """Bytes read from the port, as they came (a frame may span several calls)."""
        out: list[Output] = []
        for item in self.decoder.feed(data):
            if isinstance(item, Garbage):
                out.append(Noise(item))
            else:
                out += self._frame(item, now)
        return out

    # --- from the coordinator ----------------------------------------------------------------

    def window_state(self, window: int, state: WindowState, now: float) -> list[Output]:
        pad = self._by_window.get(window)
        if pad is None:
            return []
        pad.state = state
        return self._show(pad, now)

    def ask_rating(self, window: int, prompt: RatingPrompt, seconds: int, now: float) -> list[Output]:
        """Open the rating prompt from ``now`` for ``seconds``; the pad beeps (请评价) and lights its keys."""
        pad = self._by_window.get(window)
        if pad is None:
            return []
        pad.prompt = PROMPT.next(pad.prompt, PromptEvent.ASKED)
        pad.asked, pad.opened_at, pad.closes_at = prompt, now, now + seconds
        ask = ask_rating_frame(pad.device.address, seconds)
        return [*self._beep(pad, 1, now), *self._send(pad, ask, now)]

    def rating_acknowledged(self, window: int, now: float) -> list[Output]:
        """The coordinator recorded the rating: one beep (谢谢评价)."""
        pad = self._by_window.get(window)
        return [] if pad is None else self._beep(pad, 1, now)

    def command_refused(self, window: int, now: float) -> list[Output]:
        """The coordinator refused a command from this pad (e.g. next while paused): two beeps."""
        pad = self._by_window.get(window)
        return [] if pad is None else self._beep(pad, 2, now)

    # --- time -----------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Output]:
        """Echoes overdue at ``now`` count as missed; prompts past their seconds close."""
        out: list[Output] = []
        for pad in self._pads.values():
            while pad.awaiting and pad.awaiting[0][1] <= now:
                silent = pad.missed + 1 == self.silent_after
                link = LINK.next(pad.link, LinkEvent.SILENT) if silent else pad.link
                pad.awaiting.popleft()
                pad.missed, pad.link = pad.missed + 1, link
                if silent:
                    out.append(PadSilent(pad.device.address))
            if pad.prompt is Prompt.OPEN and now >= pad.closes_at:
                out += self._expire(pad)
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`tick` next has something to do (monotonic seconds), or None."""
        due = [p.awaiting[0][1] for p in self._pads.values() if p.awaiting]
        due += [p.closes_at for p in self._pads.values() if p.prompt is Prompt.OPEN]
        return min(due, default=None)

    def status(self) -> BusStatus:
        """A bus on a closed port reaches none of its pads: none is reported ok."""
        members = {p.device.id: DeviceState.OK if p.link is Link.ANSWERING else DeviceState.FAULT
                   for p in self._pads.values()}
        if not self.port_open:
            return BusStatus(DeviceState.FAULT, (DeviceFault.PORT_MISSING,), members)
        if DeviceState.FAULT in members.values():
            return BusStatus(DeviceState.WARNING, (DeviceFault.NOT_RESPONDING,), members)
        return BusStatus(DeviceState.OK, (), members)

    # --- inside ---------------------------------------------------------------------------------

    def _frame(self, frame: Frame, now: float) -> list[Output]:
        pad = self._pads.get(frame.address)
        if pad is None:
            return self._ignore(Ignored(f"frame from unknown address {frame.address}"))
        raw = frame.encode()
        waited = next((i for i, (sent, _) in enumerate(pad.awaiting) if sent == raw), None)
        if waited is not None:  # the pad acknowledged a frame of ours
            return self._echoed(pad, waited)
        level = rating_level(frame)
        if level is None and frame.control in (Control.SHOW, Control.BEEP, Control.RATING):
            # An echo of a host frame we did not wait for (late, or pads that echo on a bus whose
            # profile says they need not); echoing it back would ping-pong.
            return self._ignore(Ignored(f"echo of a host frame (control {frame.control:#04x})"))
        out: list[Output] = [*self._send(pad, frame, now, expect_echo=False)]  # acknowledge: echo it
        if level is not None:
            return out + self._rate(pad, level, now)
        keys = key_presses(frame)
        if isinstance(keys, Ignored):
            return out + self._ignore(keys)
        for key in keys:
            out += self._key(pad, key, now)
        return out

    def _echoed(self, pad: _Pad, index: int) -> list[Output]:
        link = LINK.next(pad.link, LinkEvent.ECHO)
        out: list[Output] = [EchoConfirmed(pad.device.address)]
        if pad.link is Link.NOT_RESPONDING:
            out.append(PadAnswering(pad.device.address))
        del pad.awaiting[index]
        pad.link, pad.missed = link, 0
        return out

    def _ignore(self, ignored: Ignored) -> list[Output]:
        return [FrameIgnored(ignored, self.ignored.note(ignored.kind))]

    def _key(self, pad: _Pad, key: Key, now: float) -> list[Output]:
        intent = pad.keys.press(key, pad.state)
        if intent is None:
            return []
        if intent.action is None:
            return [KeyRefused(pad.device.address, intent.refused or "refused"), *self._beep(pad, 2, now)]
        return [WindowIntent(pad.device.window, pad.device.address, intent)]

    def _rate(self, pad: _Pad, level: int, now: float) -> list[Output]:
        out: list[Output] = []
        if pad.prompt is Prompt.OPEN and now >= pad.closes_at:
            out += self._expire(pad)  # its deadline passed before this tick came
        if pad.prompt is Prompt.CLOSED or pad.asked is None:
            return [*out, RatingIgnored(pad.device.address, level)]
        prompt, answered = pad.asked, round(now - pad.opened_at, 3)
        pad.prompt, pad.asked = PROMPT.next(pad.prompt, PromptEvent.RATED), None
        return [*out, RatingGiven(pad.device.window, pad.device.address, prompt, level, answered)]

    def _expire(self, pad: _Pad) -> list[Output]:
        pad.prompt, pad.asked = PROMPT.next(pad.prompt, PromptEvent.EXPIRED), None
        return [PromptExpired(pad.device.window)]

    def _show(self, pad: _Pad, now: float) -> list[Output]:
        text = _text(pad.state)
        if not self.port_open or text == pad.shown:
            return []  # a closed port: every display is written when it opens
        pad.shown = text
        return self._send(pad, show_frame(pad.device.address, text), now)

    def _beep(self, pad: _Pad, times: int, now: float) -> list[Output]:
        out: list[Output] = []
        for frame in beep_frames(pad.device.address, times):
            out += self._send(pad, frame, now)
        return out

    def _send(self, pad: _Pad, frame: Frame, now: float, expect_echo: bool = True) -> list[Output]:
        if not self.port_open:
            return []  # lost with the port, as on the wire
        if expect_echo and self.pads_echo:
            pad.awaiting.append((frame.encode(), now + self.echo_wait_s))
        return [Write(frame)]
