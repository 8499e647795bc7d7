"""The LED agent: one per RS-485 bus of screens — window states and calls to screen frames.

paho's thread only queues messages. The agent's I/O thread keeps, per screen address, the frame it
should show; it writes one frame at a time and waits for the BX reply. What a reply means and when
to try again is decided by :mod:`hall_devices.display.supervision` (silent, NACK, busy and garbled
told apart; busy answered with backoff); a screen unreachable for the bus's ``unreachable_after_s``
is marked faulted (retained bus status, per screen; the coordinator raises an alert naming the
screen and its window) until a later frame gets through, and a bus with no screen answering is
``fault``. A screen whose frame cannot be built (``ScreenEncodingError``) is marked
faulted (``unencodable``) at once and the others are written. Every screen is written again every
``refresh_s`` (time rules such as the long pause notice, a controller that rebooted) and whenever
the port comes back. A BX screen whose text does not change is probed (one area written again, the
one it shows) about every ``unreachable_after_s``, the probes spread over that period and never
before a pending write, so a silent screen is faulted within about that time of its last ACK.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hall_devices.bus import Bus, BusOptions, Inbound
from hall_devices.contract import (
    CALL,
    QUEUE_SUMMARY,
    WINDOW_STATE,
    Call,
    DeviceFault,
    DeviceState,
    QueueSummary,
    WindowState,
)
from hall_devices.display import bx
from hall_devices.display.frames import (
    Region,
    ScreenEncodingError,
    hall_regions,
    screen_bytes,
    window_regions,
)
from hall_devices.display.screens import hall_calls_text, hall_waiting_text, window_text
from hall_devices.display.supervision import BusHealth, Outcome, ScreenHealth, bus_state, reply_outcome
from hall_devices.layout import HallScreenDevice, Layout, LedBusDevice, WindowScreenDevice
from hall_devices.layout_follow import LayoutFollower
from hall_devices.link import LinkLostError, SerialLink
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class _Screen:
    device: WindowScreenDevice | HallScreenDevice
    wanted: tuple[Region, ...] = ()
    shown: dict[int, Region] | None = None  # by area id; None: unknown, write every area
    health: ScreenHealth = field(default_factory=ScreenHealth)
    unencodable: bool = False  # its frame cannot be built in its protocol
    tried_at: float = 0.0  # monotonic time of its last write (a probe included)

    def changed(self, protocol: str) -> list[Region]:
        """The areas to write. BX updates areas by id and keeps the rest, so a new waiting count
        does not resend the hall screen's calls: shorter frames, less time a call waits on the bus."""
        if self.shown is None or protocol != "bx":
            return [] if self.shown == {r.area_id: r for r in self.wanted} else list(self.wanted)
        return [r for r in self.wanted if self.shown.get(r.area_id) != r]

    def mark_shown(self) -> None:
        self.shown = {r.area_id: r for r in self.wanted}


class LedAgent:
    def __init__(self, settings: Settings, layout: Layout, bus_id: str, *, url: str | None = None,
                 reply_timeout_s: float = 0.3, retries: int = 3, refresh_s: float = 30.0) -> None:
        device = layout.device(bus_id)
        if not isinstance(device, LedBusDevice):
            raise ValueError(f"device {bus_id!r} is a {device.kind}, not an led_bus")
        if device.protocol == "bx6":
            raise ValueError(f"led_bus {bus_id!r} has network screens (bx6): the BX-6 agent drives it")
        self.device = device
        self.layout = layout
        self.reply_timeout_s = reply_timeout_s
        self.retries = retries
        self.refresh_s = refresh_s
        probe_s = device.unreachable_after_s  # each idle screen probed about this often
        self.screens = {d.address: _Screen(d, health=ScreenHealth(retries, device.unreachable_after_s,
                                                                  probe_s=probe_s))
                        for d in layout.members(bus_id)
                        if isinstance(d, WindowScreenDevice | HallScreenDevice)}
        self.bus_health = BusHealth(device.unreachable_after_s, needed=min(2, len(self.screens)))
        self._probe_every = probe_s / max(1, len(self.screens))  # spread over the period
        self._next_probe = 0.0
        self.window_screen = {s.device.window: s for s in self.screens.values()
                              if isinstance(s.device, WindowScreenDevice)}
        self.hall_screens = [s for s in self.screens.values() if isinstance(s.device, HallScreenDevice)]
        self.states: dict[int, WindowState] = {}
        latest = max((s.device.latest_calls for s in self.hall_screens  # type: ignore[union-attr]
                      ), default=5)
        self.calls: deque[Call] = deque(maxlen=latest)
        self.summary: QueueSummary | None = None
        self.link = SerialLink(url or device.serial, device.baudrate, device.parity.value)
        self.decoder = bx.BxDecoder()
        self._inbox: queue.Queue[Inbound[Any]] = queue.Queue()
        self._wake = threading.Event()  # set by paho's thread when a message waits
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"leds {bus_id}", daemon=True)
        self._status: tuple[object, ...] | None = None
        self.bus = Bus(settings, BusOptions(client_id=bus_id, hall_id=layout.hall.id, device_id=bus_id,
                                            device_kind="led_bus"))
        for window in self.window_screen:
            self.bus.subscribe(WINDOW_STATE, self._received, window=window)
        if self.hall_screens:
            self.bus.subscribe(CALL, self._received)
            self.bus.subscribe(QUEUE_SUMMARY, self._received)
        self._layouts: queue.Queue[Layout] = queue.Queue()  # from paho's thread, for the I/O thread
        LayoutFollower(layout, bus_id, self._new_layout).subscribe(self.bus)

    def _received(self, inbound: Inbound[Any]) -> None:
        self._inbox.put(inbound)
        self._wake.set()

    def _new_layout(self, layout: Layout, _version: int) -> None:
        self._layouts.put(layout)
        self._wake.set()

    def _apply_layout(self, layout: Layout) -> None:
        """A new notice text and service names on the hall screens at once; the screens themselves
        are the same (LayoutFollower refuses a layout that changes them)."""
        self.layout = layout
        for screen in self.hall_screens:
            device = layout.device(screen.device.id)
            assert isinstance(device, HallScreenDevice)
            screen.device = device
            self._render_hall(screen)

    def start(self, wait_s: float | None = 10.0) -> None:
        self._render_all()
        self._thread.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.bus.stop()
        self.link.close()

    # --- what each screen should show -------------------------------------------------------------

    def _render_window(self, screen: _Screen) -> None:
        device = screen.device
        assert isinstance(device, WindowScreenDevice)
        state = self.states.get(device.window)
        text = window_text(state) if state else "暂停服务"
        wanted = tuple(window_regions(text, device.width, device.height))
        if wanted != screen.wanted:
            screen.health.news()
        screen.wanted = wanted

    def _render_hall(self, screen: _Screen) -> None:
        device = screen.device
        assert isinstance(device, HallScreenDevice)
        calls = hall_calls_text(list(self.calls)[-device.latest_calls:][::-1])
        regions = tuple(hall_regions(calls, hall_waiting_text(self.layout, self.summary),
                                     device.notice.zh, device.width, device.height))
        if regions != screen.wanted:
            screen.health.news()
        screen.wanted = regions

    def _render_all(self) -> None:
        for screen in self.screens.values():
            if isinstance(screen.device, WindowScreenDevice):
                self._render_window(screen)
            else:
                self._render_hall(screen)
            screen.shown = None  # write it again

    # --- the I/O thread -------------------------------------------------------------------------

    def _run(self) -> None:
        next_refresh = time.monotonic() + self.refresh_s
        was_open = False
        while not self._stop.is_set():
            try:
                self._drain()
                if time.monotonic() >= next_refresh:
                    self._render_all()
                    next_refresh = time.monotonic() + self.refresh_s
                is_open = self.link.ensure_open()
                if is_open and not was_open:
                    for screen in self.screens.values():
                        screen.shown = None  # the port is back: write every screen again
                was_open = is_open
                if not is_open:
                    self._stop.wait(0.2)
                elif not self._write_next():
                    self._idle_read()
                self._publish_status()
            except Exception:  # keep the screens going whatever happened this time
                log.exception("LED agent %s: unexpected error; carrying on", self.device.id)
                self._stop.wait(0.2)

    def _drain(self) -> None:
        while not self._layouts.empty():
            self._apply_layout(self._layouts.get_nowait())
        while True:
            try:
                inbound = self._inbox.get_nowait()
            except queue.Empty:
                return
            payload = inbound.payload
            if isinstance(payload, WindowState):
                self.states[payload.window] = payload
                screen = self.window_screen.get(payload.window)
                if screen is not None:
                    self._render_window(screen)
            elif isinstance(payload, Call):
                self.calls.append(payload)
                for screen in self.hall_screens:
                    self._render_hall(screen)
            elif isinstance(payload, QueueSummary):
                self.summary = payload
                for screen in self.hall_screens:
                    self._render_hall(screen)

    def _write_next(self) -> bool:
        """Write one screen whose wanted areas differ from what it shows; False when none does."""
        protocol = self.device.protocol
        now = time.monotonic()
        pending = [s for s in self.screens.values() if s.changed(protocol) and s.health.may_write(now)]
        if not pending:
            return self._probe(now)
        # The call at the window first: a hall screen's long frame can wait its turn, and a failing
        # screen waits behind the ones that answer.
        screen = min(pending, key=lambda s: (s.health.tries, isinstance(s.device, HallScreenDevice)))
        return self._write(screen, screen.changed(protocol))

    def _probe(self, now: float) -> bool:
        """Nothing pending: write the idle screen tried longest ago again (its smallest area, as
        shown), one screen per ``_probe_every``; False when none is due. BX only: EQ never replies.
        No cheaper BX-5K "are you there" command is documented (protocols.md §2)."""
        if self.device.protocol != "bx" or now < self._next_probe:
            return False
        idle = [s for s in self.screens.values() if s.wanted and s.shown is not None
                and not s.unencodable and s.health.may_write(now)]
        if not idle:
            return False
        screen = min(idle, key=lambda s: s.tried_at)
        if now - screen.tried_at < screen.health.probe_s / 2:  # just written: it answered or not
            return False
        self._next_probe = now + self._probe_every
        return self._write(screen, [min(screen.wanted, key=lambda r: len(r.text))])

    def _write(self, screen: _Screen, regions: list[Region]) -> bool:
        """Write ``regions`` of ``screen`` and record the outcome; False when the link was lost."""
        protocol = self.device.protocol
        try:
            frame = screen_bytes(protocol, screen.device.address, regions)
        except ScreenEncodingError as exc:
            # Texts are made safe before encoding; what still fails is this screen's alone (an
            # address or a length its protocol cannot carry): fault it and write the others.
            if not screen.unencodable:
                log.warning("screen %s cannot be written: %s; marked faulted", screen.device.id, exc)
            screen.unencodable = True
            screen.mark_shown()  # tried again on its next change or refresh
            return True
        try:
            # BX replies carry no sequence number: a late reply to an earlier frame must not confirm
            # this one, so whatever is waiting is dropped before writing.
            stale = self.link.read_waiting()
            if stale:
                log.debug("LED bus %s: dropped %d stale bytes", self.device.id, len(stale))
            self.decoder = bx.BxDecoder()
            self.link.write(frame)
            outcome = self._confirmed(screen.device.address, len(frame))
        except LinkLostError:
            return False
        now = time.monotonic()
        was_faulted = screen.health.fault(now) is not None
        self.bus_health.record(screen.device.address, outcome, now, answering=screen.health.tries == 0)
        screen.health.record(outcome, now)
        screen.tried_at = now
        if outcome is Outcome.ACK:
            screen.mark_shown()
            if was_faulted or screen.unencodable:
                log.info("screen %s answers again", screen.device.id)
            screen.unencodable = False
        else:
            screen.shown = None  # unknown now; written again, all areas, when the backoff allows
        if outcome is not Outcome.ACK and screen.health.tries == self.retries:
            log.warning("screen %s at address %d: %s %d times; trying again with backoff",
                        screen.device.id, screen.device.address, outcome.value, screen.health.tries)
        return True

    def _idle_read(self) -> None:
        """Nothing to write: drain the line (how a pulled cable shows up) and wait for news."""
        try:
            stray = self.link.read_waiting()
        except LinkLostError:
            return
        if stray:
            log.debug("LED bus %s: %d stray bytes while idle", self.device.id, len(stray))
        self._wake.wait(0.05)  # woken at once by a new window state or call
        self._wake.clear()

    def _confirmed(self, address: int, size: int) -> Outcome:
        """Wait for the controller's reply (EQ controllers never answer: written is shown)."""
        if self.device.protocol != "bx":
            return Outcome.ACK
        deadline = time.monotonic() + self.reply_timeout_s + size * 10 / self.device.baudrate
        while time.monotonic() < deadline:
            outcome = reply_outcome(self.decoder.feed(self.link.read()), address)
            if outcome is not None:
                if outcome is not Outcome.ACK:
                    log.info("screen %d: %s", address, outcome.value)
                return outcome
        log.info("screen %d: no reply within %.2f s", address, self.reply_timeout_s)
        return Outcome.SILENT

    def _publish_status(self) -> None:
        now = time.monotonic()
        screen_faults = {s.device.id: DeviceFault.UNENCODABLE if s.unencodable else s.health.fault(now)
                         for s in self.screens.values()}
        # A bus on a missing port reaches none of its screens: none is reported ok.
        members = tuple(sorted((screen_id, DeviceState.OK if fault is None and self.link.is_open
                                else DeviceState.FAULT) for screen_id, fault in screen_faults.items()))
        faults: list[DeviceFault]
        if not self.link.is_open:
            state, faults = DeviceState.FAULT, [DeviceFault.PORT_MISSING]
        else:
            state, faults = bus_state(list(screen_faults.values()), self.bus_health.silent(now))
        # Each screen's own reason, so its alert names it (not the whole bus's).
        own = {screen_id: [fault] for screen_id, fault in screen_faults.items() if fault is not None}
        key = (state, tuple(faults), members, tuple(sorted(own.items())))
        if key != self._status:
            self._status = key
            self.bus.set_status(state, faults, detail=self.link.last_error, members=dict(members),
                                member_faults=own)
