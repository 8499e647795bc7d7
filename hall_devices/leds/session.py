"""The LED bus's link session, sans-IO: what each screen should show and the bytes from the bus in,
the frames to write, acknowledgements and the bus status out. No I/O and no clock inside: every
call takes ``now`` (monotonic seconds, the caller's clock).

The link is a table-driven state machine (:data:`TRANSITIONS`): ``closed`` (no port) → ``idle`` →
``writing`` (a frame, or a piece of one, handed out by :meth:`LedSession.next_write`) → ``awaiting``
(a BX frame on the wire, its reply due by a deadline) → ``idle``. An EQ frame goes straight back to
``idle`` once written: EQ2023 controllers never reply (protocols.md §3), so written is shown. An
event the table does not allow in the current state raises :class:`SessionError` and changes nothing.

Preemption (BX only). protocols.md §2: "A receiver treats any run of A5 as the frame head", and the
escapes keep A5 out of every body; so a host may stop writing a frame part-way and start another
with its A5 run: the controller drops the unfinished one (it saw no tail, so it shows and answers
nothing) and takes the new one. A frame that is not news for a window screen (a probe, a routine
rewrite, any hall-screen frame) is therefore handed out in pieces of ``piece_bytes`` (``writing`` →
``sending`` once a piece is written → ``writing`` for the next piece, due when the bytes before it
have left the wire, so about one piece sits in the UART buffer). Between pieces, a window screen's
news (for a probe, any news) ``preempted`` it: the link is ``idle`` again, the abandoned screen keeps
what it showed (nothing changed) and the news is handed out at once, whole. A screen's frame
preempted ``max_preemptions`` times is next written whole, so a busy hall cannot keep the hall
screen stale forever; a probe carries nothing new and stays preemptible (tried again later).

What a reply means and when to try again is :mod:`hall_devices.leds.supervision`'s (protocols.md
§2: ACK A0 00, NACK A0 01 with an error code, busy = error 3). The session adds the bus's order:
the call at the window first (answering screens before failing ones, news before screens only
written again, window screens before hall screens); a BX screen gets only the areas that changed
(controllers keep the others); bytes that are not a reply to the frame in flight, or arrived
before it was written, are dropped, because BX replies carry no sequence number; a screen whose
frame cannot be built is faulted ``unencodable`` and the others are written; an idle BX screen is
probed (its smallest area written again) about every ``unreachable_after_s``, the probes spread
over that period, never before a pending write, and not within ``probe_holdoff_s`` of a news frame's
outcome (in a hall a clerk's Next often follows a Finish at once; a probe then would hold the bus
for its ACK), unless the screen was last tried two periods ago (a bus with news every second still
probes). A call that arrives while a probe's reply is due waits for it; ``probes=False`` (the
layout's ``probe_idle = false``) trades finding a dead idle screen for calls that never do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from hall_devices.contract import DeviceFault, DeviceState
from hall_devices.layout import HallScreenDevice, WindowScreenDevice
from hall_devices.leds import bx
from hall_devices.leds.frames import Region, ScreenEncodingError, screen_bytes
from hall_devices.leds.supervision import BusHealth, Outcome, ScreenHealth, bus_state, reply_outcome

log = logging.getLogger(__name__)
ScreenDevice = WindowScreenDevice | HallScreenDevice
# A preemptible frame's piece, in wire time: what a call may wait for in the UART buffer once the
# rest of the frame is dropped (the ~10 ms budget over the call's own wire time also holds MQTT).
PIECE_S = 0.002


class LinkState(StrEnum):
    CLOSED = "closed"  # no port: nothing can be written
    IDLE = "idle"
    WRITING = "writing"  # a frame or a piece handed out, not yet reported written
    SENDING = "sending"  # a BX frame partly written (pieces): its next piece due, or preempted
    AWAITING = "awaiting"  # a BX frame written, its reply due


class LinkEvent(StrEnum):
    OPENED = "opened"
    LOST = "lost"
    FRAME = "frame"  # next_write handed out a frame
    PART = "part"  # a piece of it is on the wire, more to come (BX)
    PIECE = "piece"  # next_write handed out its next piece
    PREEMPTED = "preempted"  # its rest dropped between pieces: news goes first
    WRITTEN = "written"  # it is on the wire and a reply is due (BX)
    SHOWN = "shown"  # it is on the wire and no reply comes (EQ)
    REPLY = "reply"
    TIMEOUT = "timeout"


S, E = LinkState, LinkEvent
TRANSITIONS: dict[tuple[LinkState, LinkEvent], LinkState] = {
    (S.CLOSED, E.OPENED): S.IDLE,
    (S.IDLE, E.OPENED): S.IDLE,  # reopened between two frames
    (S.AWAITING, E.OPENED): S.IDLE,  # reopened under a frame: its reply is lost with the old port
    (S.SENDING, E.OPENED): S.IDLE,  # reopened under a partial frame: the new port never saw it
    (S.CLOSED, E.LOST): S.CLOSED,  # the writer and the reader may both notice
    (S.IDLE, E.LOST): S.CLOSED,
    (S.WRITING, E.LOST): S.CLOSED,
    (S.SENDING, E.LOST): S.CLOSED,
    (S.AWAITING, E.LOST): S.CLOSED,
    (S.IDLE, E.FRAME): S.WRITING,
    (S.WRITING, E.PART): S.SENDING,
    (S.SENDING, E.PIECE): S.WRITING,
    (S.SENDING, E.PREEMPTED): S.IDLE,
    (S.WRITING, E.WRITTEN): S.AWAITING,
    (S.WRITING, E.SHOWN): S.IDLE,
    (S.AWAITING, E.REPLY): S.IDLE,
    (S.AWAITING, E.TIMEOUT): S.IDLE,
}


class SessionError(Exception):
    """An event the link's state does not allow (a programming error); nothing was changed."""


@dataclass(frozen=True)
class Write:
    """Bytes to put on the bus now, then report with :meth:`LedSession.written`: a whole frame, or
    (``part``: its offset and the whole frame's size in bytes) a piece of a preemptible one."""

    address: int
    frame: bytes
    probe: bool  # an idle screen written again to see that it still answers
    part: tuple[int, int] | None = None


@dataclass(frozen=True)
class Confirmed:
    """The outcome of the frame to the screen at ``address`` (EQ: always ACK once written)."""

    address: int
    outcome: Outcome


@dataclass(frozen=True)
class BusReport:
    """The bus's status: its state and distinct faults, each screen's state by device id and the
    faults of each faulted screen (for its own alert)."""

    state: DeviceState
    faults: tuple[DeviceFault, ...]
    members: dict[str, DeviceState]
    member_faults: dict[str, list[DeviceFault]]


@dataclass
class LedScreen:
    """One screen of the bus: what it should show, what it shows (as far as known), its health."""

    device: ScreenDevice
    wanted: tuple[Region, ...] = ()
    shown: dict[int, Region] | None = None  # by area id; None: unknown, write every area
    health: ScreenHealth = field(default_factory=ScreenHealth)
    unencodable: bool = False  # its frame cannot be built in its protocol
    tried_at: float = float("-inf")  # time of its last write's outcome (a probe included)
    routine: bool = False  # written again only because what it shows is unknown: after news
    whole_at: float = float("-inf")  # when a write of all its wanted areas was last confirmed
    preempted: int = 0  # its frames preempted since one was last written whole

    def changed(self, protocol: str) -> list[Region]:
        """The areas to write. BX updates areas by id and keeps the rest, so a new waiting count
        does not resend the hall screen's calls: shorter frames, less time a call waits on the bus."""
        if self.shown is None or protocol != "bx":
            return [] if self.shown == {r.area_id: r for r in self.wanted} else list(self.wanted)
        # ``is`` first: the bus's order asks every screen this before each write, and a screen
        # whose areas did not change holds the very objects it showed (see :meth:`LedSession.want`).
        return [r for r in self.wanted if (shown := self.shown.get(r.area_id)) is not r and shown != r]

    def mark_shown(self) -> None:
        self.shown = {r.area_id: r for r in self.wanted}


@dataclass
class _InFlight:
    screen: LedScreen
    regions: tuple[Region, ...]
    frame: bytes
    probe: bool
    news: bool  # not a probe, not a routine rewrite
    piece: int  # bytes per piece; 0: written whole, not preemptible
    sent: int = 0  # bytes handed out so far
    last: int = 0  # bytes of the write handed out last
    written_at: float = 0.0
    deadline: float = 0.0


class LedSession:
    """One bus of BX or EQ screens. Feed it :meth:`want`, :meth:`opened`/:meth:`lost`,
    :meth:`receive`; ask :meth:`next_write`, report :meth:`written`, call :meth:`timeout` at
    :meth:`deadline`; read :meth:`report`. ``screens``: the bus's screen devices (addresses unique);
    ``refresh_s``: each screen's whole content written again this often (None: never); ``probes``:
    whether idle BX screens are probed; ``piece_bytes``: a preemptible BX frame's piece (None: about
    :data:`PIECE_S` of wire time at ``baudrate``, 2 bytes at 9600 baud; 0: every frame whole);
    ``max_preemptions``: a screen's frames preempted this often are next written whole;
    ``probe_holdoff_s``: no probe starts this soon after a news frame's outcome (seconds)."""

    def __init__(self, protocol: str, baudrate: int, screens: Iterable[ScreenDevice], *,
                 unreachable_after_s: float = 5.0, reply_timeout_s: float = 0.3, retries: int = 3,
                 refresh_s: float | None = None, probes: bool = True, piece_bytes: int | None = None,
                 max_preemptions: int = 2, probe_holdoff_s: float = 1.0) -> None:
        if protocol not in ("bx", "eq"):
            raise ValueError(f"protocol {protocol!r}: the serial LED session speaks bx or eq")
        self.protocol = protocol
        self.baudrate = baudrate
        self._byte_s = 10 / baudrate  # 8N1: 10 bit times a byte
        # EQ2023 (protocols.md §3) has no rule like BX's "any run of A5 is a frame head": a message
        # cut part-way could run into the next one, so EQ frames are always written whole.
        default_piece = max(1, round(PIECE_S / self._byte_s))
        self.piece_bytes = 0 if protocol == "eq" else default_piece if piece_bytes is None else piece_bytes
        self.max_preemptions = max_preemptions
        self.probe_holdoff_s = probe_holdoff_s
        self._news_at = float("-inf")  # a news frame's last outcome
        self._wire_free_at = float("-inf")  # when the bytes written so far have left the UART
        self.reply_timeout_s = reply_timeout_s
        self.retries = retries
        self.refresh_s = refresh_s
        self.probes = probes
        # Each idle screen probed about this often; 0: never (a silent screen is then found at its
        # next write, its faults counted from that failure).
        probe_s = unreachable_after_s if probes else 0.0
        self.screens = {d.address: LedScreen(d, health=ScreenHealth(retries, unreachable_after_s,
                                                                  probe_s=probe_s)) for d in screens}
        self.bus_health = BusHealth(unreachable_after_s, needed=min(2, len(self.screens)))
        self._probe_every = probe_s / max(1, len(self.screens))  # spread over the period
        self._next_probe = float("-inf")
        self._refresh_every = (refresh_s or 0.0) / max(1, len(self.screens))  # spread likewise
        self._next_refresh = float("-inf")
        self.state = LinkState.CLOSED
        self._in_flight: _InFlight | None = None
        self._decoder = bx.BxDecoder()

    def _move(self, event: LinkEvent) -> None:
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise SessionError(f"{event.value} while {self.state.value}")
        self.state = target

    # --- what the screens should show ----------------------------------------------------------

    def want(self, address: int, regions: Iterable[Region]) -> None:
        """The screen at ``address`` should show ``regions``; new content gets a failed (not busy)
        screen one try at once. Raises KeyError for an address not on this bus."""
        screen = self.screens[address]
        wanted = tuple(regions)
        if wanted != screen.wanted:
            screen.health.news()
            screen.routine = False
            screen.wanted = wanted  # equal areas keep their objects: changed() compares by identity first

    def rewrite_all(self) -> None:
        """Write every screen again (a controller that rebooted shows nothing)."""
        for screen in self.screens.values():
            screen.shown = None
            screen.routine = True

    # --- the port -----------------------------------------------------------------------------

    def opened(self) -> None:
        """The port is (again) open: what the screens show may have been lost with it."""
        self._move(LinkEvent.OPENED)
        self._in_flight = None
        self._wire_free_at = float("-inf")
        self.rewrite_all()

    def lost(self) -> None:
        """The port failed or vanished: the frame in flight, if any, is forgotten (not an outcome)."""
        self._move(LinkEvent.LOST)
        self._in_flight = None
        self._wire_free_at = float("-inf")

    # --- frames out, replies in ---------------------------------------------------------------

    def next_write(self, now: float) -> Write | None:
        """The frame to write now, or None (nothing due, or the link is not idle). The call at the
        window first: a hall screen's long frame waits its turn, a screen only rewritten (refresh,
        port back) waits behind news, a failing screen waits behind the ones that answer. A screen
        whose frame cannot be built is faulted and the next one tried. While a preemptible frame is
        being sent: its next piece once due, or, when news that goes before it is pending, that news
        (the rest of the frame dropped)."""
        if self.state is LinkState.SENDING:
            flight = self._in_flight
            assert flight is not None  # sending always has a frame in flight
            if self._preempts(flight, now):
                self._move(LinkEvent.PREEMPTED)
                self._in_flight = None
                if not flight.probe:
                    flight.screen.preempted += 1
                log.debug("screen %d: frame dropped after %d of %d bytes, news first",
                          flight.screen.device.address, flight.sent, len(flight.frame))
            elif now >= self._wire_free_at:
                self._move(LinkEvent.PIECE)
                return self._piece(flight)
            else:
                return None
        if self.state is not LinkState.IDLE:
            return None
        self._refresh(now)
        while True:
            screen = self._next_screen(now)
            if screen is None:
                return self._probe(now)
            write = self._frame(screen, screen.changed(self.protocol), probe=False)
            if write is not None:
                return write

    def _next_screen(self, now: float) -> LedScreen | None:
        pending = [s for s in self.screens.values() if s.changed(self.protocol) and s.health.may_write(now)]
        return min(pending, key=lambda s: (s.health.tries, s.routine, isinstance(s.device, HallScreenDevice)),
                   default=None)

    def _preempts(self, flight: _InFlight, now: float) -> bool:
        """Whether the screen to write next preempts ``flight``: news for a window screen, or for a
        probe any news (the first in the bus's order, so a failing screen's news does not)."""
        if not flight.piece:
            return False
        screen = self._next_screen(now)
        if screen is None or screen.routine:
            return False
        return flight.probe or isinstance(screen.device, WindowScreenDevice)

    def _piece(self, flight: _InFlight) -> Write:
        start = flight.sent
        flight.sent = min(len(flight.frame), start + flight.piece)
        flight.last = flight.sent - start
        return Write(flight.screen.device.address, flight.frame[start:flight.sent], flight.probe,
                     (start, len(flight.frame)))

    def _refresh(self, now: float) -> None:
        """The screen whose whole content was written longest ago, once that is ``refresh_s`` ago,
        is written again (a controller that rebooted shows nothing): one screen per
        ``refresh_s / screens``, so the bus never rewrites every screen at once, and a probe that
        rewrote a one-area screen counts."""
        due = self._refresh_due()
        if due is not None and now >= due:
            screen = min((s for s in self.screens.values() if s.shown is not None), key=lambda s: s.whole_at)
            screen.shown = None
            screen.routine = True
            self._next_refresh = now + self._refresh_every

    def _refresh_due(self) -> float | None:
        if self.refresh_s is None:
            return None
        whole = [s.whole_at for s in self.screens.values() if s.shown is not None]
        return max(self._next_refresh, min(whole) + self.refresh_s) if whole else None

    def _probe(self, now: float) -> Write | None:
        """Nothing pending: the idle screen tried longest ago, its smallest area as shown, one screen
        per ``_probe_every``. BX only: EQ never replies. No cheaper BX-5K "are you there" command
        is documented (protocols.md §2)."""
        screen = self._probe_candidate(now)
        if screen is None or now < self._probe_at(screen):
            return None
        self._next_probe = now + self._probe_every
        return self._frame(screen, [min(screen.wanted, key=lambda r: len(r.text))], probe=True)

    def _probe_at(self, screen: LedScreen) -> float:
        """When ``screen`` may be probed: after the previous probe's spacing, half a period after its
        last try (just written: it answered or not), and ``probe_holdoff_s`` after the last news
        frame's outcome, unless that holds it past two periods since its last try."""
        period = screen.health.probe_s
        held = min(self._news_at + self.probe_holdoff_s, screen.tried_at + 2 * period)
        return max(self._next_probe, screen.tried_at + period / 2, held)

    def _probe_candidate(self, now: float) -> LedScreen | None:
        if self.protocol != "bx" or not self.probes:
            return None
        idle = [s for s in self.screens.values() if s.wanted and s.shown is not None
                and not s.unencodable and s.health.may_write(now)]
        return min(idle, key=lambda s: s.tried_at) if idle else None

    def _frame(self, screen: LedScreen, regions: list[Region], probe: bool) -> Write | None:
        address = screen.device.address
        try:
            frame = screen_bytes(self.protocol, address, regions)
        except ScreenEncodingError as exc:
            # Texts are made safe before encoding; what still fails is this screen's alone (an
            # address or a length its protocol cannot carry): fault it and write the others.
            if not screen.unencodable:
                log.warning("screen %s cannot be written: %s; marked faulted", screen.device.id, exc)
            screen.unencodable = True
            screen.mark_shown()  # tried again on its next change or refresh
            return None
        # Not news for a window screen: sent in pieces, dropped for news (module docstring), unless
        # this screen's frames were preempted too often already.
        preemptible = self.piece_bytes > 0 and len(frame) > self.piece_bytes and (
            probe or ((screen.routine or isinstance(screen.device, HallScreenDevice))
                      and screen.preempted < self.max_preemptions))
        flight = _InFlight(screen, tuple(regions), frame, probe, news=not probe and not screen.routine,
                           piece=self.piece_bytes if preemptible else 0)
        self._move(LinkEvent.FRAME)
        self._in_flight = flight
        if preemptible:
            return self._piece(flight)
        flight.sent = flight.last = len(frame)
        return Write(address, frame, probe)

    def written(self, now: float) -> list[Confirmed]:
        """What :meth:`next_write` handed out is in the UART (``now``: when its write began, so that
        no reply can be read before it). A piece with more to come: the next is due when these bytes
        have left the wire. A BX frame's last bytes: its reply is due by the reply timeout after the
        wire is free (the bytes before it included). EQ: shown, confirmed."""
        flight = self._in_flight
        if self.protocol == "eq":
            self._move(LinkEvent.SHOWN)
            assert flight is not None  # writing always has a frame in flight
            self._in_flight = None
            return [self._record(flight, Outcome.ACK, now)]
        more = flight is not None and self.state is LinkState.WRITING and flight.sent < len(flight.frame)
        self._move(LinkEvent.PART if more else LinkEvent.WRITTEN)
        assert flight is not None
        self._wire_free_at = max(now, self._wire_free_at) + flight.last * self._byte_s
        if more:
            return []
        if not flight.probe:
            flight.screen.preempted = 0  # on the wire whole: preemptible again
        flight.written_at, flight.deadline = now, self._wire_free_at + self.reply_timeout_s
        self._decoder = bx.BxDecoder()
        return []

    def receive(self, data: bytes, now: float) -> list[Confirmed]:
        """Bytes from the bus (``now``: when they were read). Outside a frame's wait, or read before
        it was written, they are stale (a late reply to an earlier frame) and dropped."""
        flight = self._in_flight
        if self.state is not LinkState.AWAITING or flight is None or now < flight.written_at:
            if data:
                log.debug("LED bus: dropped %d stale bytes", len(data))
            return []
        address = flight.screen.device.address
        outcome = reply_outcome(self._decoder.feed(data), address)
        if outcome is None:
            return []
        self._move(LinkEvent.REPLY)
        self._in_flight = None
        if outcome is not Outcome.ACK:
            log.info("screen %d: %s", address, outcome.value)
        return [self._record(flight, outcome, now)]

    def timeout(self, now: float) -> list[Confirmed]:
        """The reply deadline passed with no reply: the screen was silent. Nothing before it."""
        flight = self._in_flight
        if self.state is not LinkState.AWAITING or flight is None or now < flight.deadline:
            return []
        self._move(LinkEvent.TIMEOUT)
        self._in_flight = None
        log.info("screen %d: no reply within %.2f s", flight.screen.device.address, self.reply_timeout_s)
        return [self._record(flight, Outcome.SILENT, now)]

    def _record(self, flight: _InFlight, outcome: Outcome, now: float) -> Confirmed:
        screen = flight.screen
        if flight.news:
            self._news_at = now  # probes keep away from news for a moment (probe_holdoff_s)
        was_faulted = screen.health.fault(now) is not None
        self.bus_health.record(screen.device.address, outcome, now, answering=screen.health.tries == 0)
        screen.health.record(outcome, now)
        screen.tried_at = now
        if outcome is Outcome.ACK:
            # What was written is shown; the wanted areas may have changed since (news while waiting).
            written = {r.area_id: r for r in flight.regions}
            if set(written) >= {r.area_id for r in screen.wanted}:
                screen.whole_at = now
            screen.shown = {**screen.shown, **written} if (
                self.protocol == "bx" and screen.shown is not None) else written
            if was_faulted or screen.unencodable:
                log.info("screen %s answers again", screen.device.id)
            screen.unencodable = False
        else:
            screen.shown = None  # unknown now; written again, all areas, when the backoff allows
        if outcome is not Outcome.ACK and screen.health.tries == self.retries:
            log.warning("screen %s at address %d: %s %d times; trying again with backoff",
                        screen.device.id, screen.device.address, outcome.value, screen.health.tries)
        return Confirmed(screen.device.address, outcome)

    # --- time ---------------------------------------------------------------------------------

    def deadline(self, now: float) -> float | None:
        """When to call again (:meth:`timeout`, :meth:`next_write`, :meth:`report`) if nothing
        arrives before: the reply deadline, a write or probe due (``now`` when one is due already),
        a backoff's end, or a moment a screen or the bus turns faulted. None: only when something
        arrives."""
        times: list[float] = []
        flight = self._in_flight
        if self.state is LinkState.AWAITING and flight is not None:
            times.append(flight.deadline)
        elif self.state is LinkState.SENDING and flight is not None:
            if self.next_write_due(now):
                return now
            times.append(self._wire_free_at)  # the next piece
        elif self.state is LinkState.IDLE:
            if self.next_write_due(now):
                return now
            if (refresh := self._refresh_due()) is not None:
                times.append(refresh)
            times += [s.health.not_before for s in self.screens.values() if s.changed(self.protocol)]
            candidate = self._probe_candidate(float("inf"))
            if candidate is not None:
                times.append(max(self._probe_at(candidate), candidate.health.not_before))
        times += [t for s in self.screens.values() if (t := s.health.faulted_at()) is not None]
        if (silent := self.bus_health.silent_at()) is not None:
            times.append(silent)
        future = [t for t in times if t > now]
        if flight is not None and self.state is LinkState.AWAITING and flight.deadline <= now:
            return now  # the reply is overdue: time it out now
        return min(future, default=None)

    def next_write_due(self, now: float) -> bool:
        """Whether :meth:`next_write` would hand out a frame or a piece now (without doing so)."""
        flight = self._in_flight
        if self.state is LinkState.SENDING and flight is not None:
            return now >= self._wire_free_at or self._preempts(flight, now)
        if self.state is not LinkState.IDLE:
            return False
        self._refresh(now)
        if any(s.changed(self.protocol) and s.health.may_write(now) for s in self.screens.values()):
            return True
        screen = self._probe_candidate(now)
        return screen is not None and now >= self._probe_at(screen)

    def report(self, now: float) -> BusReport:
        """The bus status now. A bus whose port is closed reaches none of its screens."""
        screen_faults = {s.device.id: DeviceFault.UNENCODABLE if s.unencodable else s.health.fault(now)
                         for s in self.screens.values()}
        is_open = self.state is not LinkState.CLOSED
        members = {screen_id: DeviceState.OK if fault is None and is_open else DeviceState.FAULT
                   for screen_id, fault in sorted(screen_faults.items())}
        if not is_open:
            state, faults = DeviceState.FAULT, [DeviceFault.PORT_MISSING]
        else:
            state, faults = bus_state(list(screen_faults.values()), self.bus_health.silent(now))
        # Each screen's own reason, so its alert names it (not the whole bus's).
        own = {screen_id: [fault] for screen_id, fault in screen_faults.items() if fault is not None}
        return BusReport(state, tuple(faults), members, own)
