"""The LED agent: one per RS-485 bus of screens — window states and calls to screen frames.

paho's thread only queues messages. The agent's I/O thread keeps, per screen address, the frame it
should show; it writes one frame at a time, waits for the BX reply, retries a NACK or silence
(``retries`` times), then marks that screen faulted (retained bus status, per screen) until a later
frame gets through. A screen whose frame cannot be built (``ScreenEncodingError``) is marked
faulted (``unencodable``) at once and the others are written. Every screen is written again every
``refresh_s`` (time rules such as the long pause notice, a controller that rebooted) and whenever
the port comes back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from hall_devices.agent import LinkLostError, SerialLink
from hall_devices.bus import Bus, BusOptions, Inbound
from hall_devices.contract import Call, DeviceFault, DeviceState, QueueSummary, WindowState, route
from hall_devices.display import bx
from hall_devices.display.frames import (
    Region,
    ScreenEncodingError,
    hall_regions,
    screen_bytes,
    window_regions,
)
from hall_devices.display.screens import hall_calls_text, hall_waiting_text, window_text
from hall_devices.layout import HallScreenDevice, Layout, LedBusDevice, WindowScreenDevice
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class _Screen:
    device: WindowScreenDevice | HallScreenDevice
    wanted: tuple[Region, ...] = ()
    shown: dict[int, Region] | None = None  # by area id; None: unknown, write every area
    failures: int = 0
    faulted: bool = False
    fault: DeviceFault = DeviceFault.NACK  # why, while faulted

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
        self.device = device
        self.layout = layout
        self.reply_timeout_s = reply_timeout_s
        self.retries = retries
        self.refresh_s = refresh_s
        self.screens = {d.address: _Screen(d) for d in layout.members(bus_id)
                        if isinstance(d, WindowScreenDevice | HallScreenDevice)}
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
            self.bus.subscribe(route("window_state"), self._received, window=window)
        if self.hall_screens:
            self.bus.subscribe(route("call"), self._received)
            self.bus.subscribe(route("queue_summary"), self._received)

    def _received(self, inbound: Inbound[Any]) -> None:
        self._inbox.put(inbound)
        self._wake.set()

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
        screen.wanted = tuple(window_regions(text, device.width, device.height))

    def _render_hall(self, screen: _Screen) -> None:
        device = screen.device
        assert isinstance(device, HallScreenDevice)
        calls = hall_calls_text(list(self.calls)[-device.latest_calls:][::-1])
        regions = hall_regions(calls, hall_waiting_text(self.layout, self.summary), device.notice.zh,
                               device.width, device.height)
        screen.wanted = tuple(regions)

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
        pending = [s for s in self.screens.values() if s.changed(protocol)]
        if not pending:
            return False
        # The call at the window first: a hall screen's long frame can wait its turn.
        screen = min(pending, key=lambda s: (s.failures, isinstance(s.device, HallScreenDevice)))
        try:
            frame = screen_bytes(protocol, screen.device.address, screen.changed(protocol))
        except ScreenEncodingError as exc:
            # Texts are made safe before encoding; what still fails is this screen's alone (an
            # address or a length its protocol cannot carry): fault it and write the others.
            if not (screen.faulted and screen.fault is DeviceFault.UNENCODABLE):
                log.warning("screen %s cannot be written: %s; marked faulted", screen.device.id, exc)
            screen.faulted, screen.fault = True, DeviceFault.UNENCODABLE
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
            ok = self._confirmed(screen.device.address, len(frame))
        except LinkLostError:
            return False
        if ok:
            screen.mark_shown()
            screen.failures = 0
            if screen.faulted:
                log.info("screen %s answers again", screen.device.id)
            screen.faulted = False
            return True
        screen.failures += 1
        # A faulted screen gets one try per change or refresh: no hammering a dead controller.
        if screen.failures >= self.retries:
            if not screen.faulted:
                log.warning("screen %s at address %d failed %d times: marked faulted",
                            screen.device.id, screen.device.address, screen.failures)
            screen.faulted, screen.fault = True, DeviceFault.NACK
            screen.mark_shown()  # stop hammering; the refresh tries again
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

    def _confirmed(self, address: int, size: int) -> bool:
        """Wait for the controller's ACK (EQ controllers never answer: written is shown)."""
        if self.device.protocol != "bx":
            return True
        deadline = time.monotonic() + self.reply_timeout_s + size * 10 / self.device.baudrate
        while time.monotonic() < deadline:
            for item in self.decoder.feed(self.link.read()):
                if isinstance(item, bx.BadFrame):
                    log.info("screen %d: garbled reply %s", address, item.reason)
                    return False
                if item.header.source != address or item.command[0] != 0xA0:
                    continue
                reply = bx.parse_reply(item)
                if not reply.ok:
                    log.info("screen %d: NACK (%s): retrying", address, reply.reason)
                return reply.ok
        log.info("screen %d: no reply within %.2f s", address, self.reply_timeout_s)
        return False

    def _publish_status(self) -> None:
        # A bus on a missing port reaches none of its screens: none is reported ok.
        members = tuple(sorted((s.device.id, DeviceState.FAULT if s.faulted or not self.link.is_open
                                else DeviceState.OK) for s in self.screens.values()))
        faults: list[DeviceFault] = []
        if not self.link.is_open:
            state, faults = DeviceState.FAULT, [DeviceFault.PORT_MISSING]
        elif any(s is DeviceState.FAULT for _, s in members):
            state = DeviceState.WARNING
            faults = sorted({s.fault for s in self.screens.values() if s.faulted})
        else:
            state = DeviceState.OK
        key = (state, tuple(faults), members)
        if key != self._status:
            self._status = key
            self.bus.set_status(state, faults, detail=self.link.last_error, members=dict(members))
