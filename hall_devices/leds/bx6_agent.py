"""The BX-6 agent: a group of network LED controllers (an ``led_bus`` with protocol ``bx6``) driven
from the same window states and calls as the serial screens.

Each screen is its own TCP connection (``socket://HOST:5005`` through ``serial_for_url``, reopened
with backoff when the controller goes away) served by its own I/O thread, so a dead controller
never delays the others. The control worker (:class:`~hall_devices.agent.Worker`, woken by a
message) renders each screen's text to a bitmap (:mod:`hall_devices.leds.render`) and publishes
the group's status on change; an I/O thread writes its screen's dynamic area (A7 00), waits for the
ACK and feeds the outcome to the same supervision rules as the serial buses
(:mod:`hall_devices.leds.supervision`). An I/O thread sleeps until its screen has something to
send or is due (backoff, ping): new content wakes it at once. An idle screen is pinged (A2 00)
every ``ping_s`` so a dead one is noticed before the next call. A screen with ``speaks``
says calls through its controller's voice queue (A7 07), an announcer output beside the WAV
announcer: a hall screen every call, a window screen the calls to its window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hall_devices.agent import StatusReporter, Worker
from hall_devices.announcer.speech import speech_text
from hall_devices.contract import (
    CALL,
    QUEUE_SUMMARY,
    WINDOW_STATE,
    Call,
    DeviceState,
    QueueSummary,
    WindowState,
)
from hall_devices.layout import HallScreenDevice, Layout, LedBusDevice, WindowScreenDevice
from hall_devices.leds import bx6
from hall_devices.leds.bx6_area import Area, dynamic_area_data
from hall_devices.leds.frames import Region, hall_regions, safe_text, window_regions
from hall_devices.leds.render import ensure_qt, render_text
from hall_devices.leds.screens import hall_calls_text, hall_waiting_text, no_state_text, window_text
from hall_devices.leds.supervision import Outcome, ScreenHealth, bus_state
from hall_devices.link import LinkLostError, SerialLink
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.layout_follow import LayoutFollower
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
Item = Inbound[WindowState] | Inbound[Call] | Inbound[QueueSummary] | Layout


def reply_outcome(items: list[bx6.Packet | bx6.BadPacket], address: int) -> Outcome | None:
    """The outcome of a BX-6 reply from the controller at ``address`` (None: no reply yet)."""
    for item in items:
        if isinstance(item, bx6.BadPacket):
            return Outcome.GARBLED
        if item.header.source not in (address, bx6.ANY_ADDRESS) or item.command[0] != 0xA0:
            continue
        try:
            response = bx6.parse_response(item.data)
        except bx6.Bx6Error:
            return Outcome.GARBLED
        if response.ok:
            return Outcome.ACK
        return Outcome.BUSY if response.error == bx6.Error.BUSY else Outcome.NACK
    return None


def _is_hall_screen(device: WindowScreenDevice | HallScreenDevice) -> bool:
    return isinstance(device, HallScreenDevice)


@dataclass
class _NetScreen:
    device: WindowScreenDevice | HallScreenDevice
    link: SerialLink
    health: ScreenHealth
    wanted: bytes | None = None  # the A7 00 request data to show
    shown: bytes | None = None
    speech: deque[str] = field(default_factory=deque)
    wake: threading.Event = field(default_factory=threading.Event)
    last_io: float = 0.0
    brightness_set: bool = False  # on this connection


class Bx6Agent:
    def __init__(self, settings: Settings, layout: Layout, bus_id: str, *, reply_timeout_s: float = 1.0,
                 retries: int = 3, refresh_s: float = 30.0, ping_s: float = 10.0,
                 urls: dict[str, str] | None = None) -> None:
        device = layout.device(bus_id)
        if not isinstance(device, LedBusDevice) or device.protocol != "bx6":
            raise ValueError(f"device {bus_id!r} is not an led_bus with protocol bx6")
        ensure_qt()  # fonts need a Qt application, made on this (the main) thread
        self.device, self.layout = device, layout
        self.reply_timeout_s, self.refresh_s, self.ping_s = reply_timeout_s, refresh_s, ping_s
        self.screens: dict[str, _NetScreen] = {}
        for member in layout.members(bus_id):
            if isinstance(member, WindowScreenDevice | HallScreenDevice):
                url = (urls or {}).get(member.id) or member.url or ""
                self.screens[member.id] = _NetScreen(member, SerialLink(url, 115200, "N"),
                                                     ScreenHealth(retries, device.unreachable_after_s))
        self.states: dict[int, WindowState] = {}
        self.calls: deque[Call] = deque(maxlen=20)
        self.summary: QueueSummary | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.worker: Worker[Item] = Worker(f"bx6 {bus_id}", self._on_batch, self._on_tick)
        self._next_refresh = time.monotonic() + refresh_s
        self._threads = [threading.Thread(target=self._serve, args=(s,), name=f"bx6 {s.device.id}",
                                          daemon=True) for s in self.screens.values()]
        self.bus = Bus(settings, BusOptions(client_id=bus_id, hall_id=layout.hall.id, device_id=bus_id,
                                            device_kind="led_bus"))
        self.status = StatusReporter(self.bus.set_status)
        windows = {s.device.window for s in self.screens.values() if isinstance(s.device, WindowScreenDevice)}
        for window in windows:
            self.bus.subscribe(WINDOW_STATE, self.worker.post, window=window)
        self.bus.subscribe(CALL, self.worker.post)
        self.bus.subscribe(QUEUE_SUMMARY, self.worker.post)
        LayoutFollower(layout, bus_id, lambda new, _version: self.worker.post(new)).subscribe(self.bus)

    def start(self, wait_s: float | None = 10.0) -> None:
        self._render_all()
        self.worker.start()
        for thread in self._threads:
            thread.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        self._stop.set()
        self.worker.stop()
        for screen in self.screens.values():
            screen.wake.set()
        for thread in self._threads:
            thread.join(timeout=5)  # each screen's thread closes its own connection
        self.bus.stop()

    # --- the control worker: what each screen should show ---------------------------------------

    def _on_batch(self, items: list[Item]) -> None:
        for item in items:
            self._message(item)

    def _on_tick(self, now: float) -> float | None:
        """The periodic rewrite when due, the status; woken again at the next rewrite or at the
        moment a failing screen turns faulted (the I/O threads wake it after every outcome)."""
        if now >= self._next_refresh:
            self._render_all(force=True)
            self._next_refresh = now + self.refresh_s
        self._publish_status(now)
        with self._lock:
            verdicts = [t for s in self.screens.values()
                        if (t := s.health.faulted_at()) is not None and t > now]
        return min([self._next_refresh, *verdicts])

    def _message(self, inbound: Item) -> None:
        if isinstance(inbound, Layout):  # a new notice text and service names, same screens
            self.layout = inbound
            for screen in self.screens.values():
                member = inbound.device(screen.device.id)
                assert isinstance(member, WindowScreenDevice | HallScreenDevice)
                screen.device = member
            self._render_all(_is_hall_screen)
            return
        payload = inbound.payload
        if isinstance(payload, WindowState):
            self.states[payload.window] = payload
            self._render_all(lambda d: getattr(d, "window", None) == payload.window)
        elif isinstance(payload, Call):
            self.calls.append(payload)
            for screen in self.screens.values():
                # A hall screen speaks every call; a window screen the calls to its window.
                device = screen.device
                if device.speaks and getattr(device, "window", payload.window) == payload.window:
                    with self._lock:
                        screen.speech.append(speech_text(payload))
                    screen.wake.set()
            self._render_all(_is_hall_screen)
        elif isinstance(payload, QueueSummary):
            self.summary = payload
            self._render_all(_is_hall_screen)

    def _regions(self, device: WindowScreenDevice | HallScreenDevice) -> list[Region]:
        if isinstance(device, WindowScreenDevice):
            state = self.states.get(device.window)
            text = window_text(state) if state else no_state_text()
            return window_regions(text, device.width, device.height)
        calls = hall_calls_text(list(self.calls)[-device.latest_calls:][::-1])
        return hall_regions(calls, hall_waiting_text(self.layout, self.summary), device.notice.zh,
                            device.width, device.height)

    def _render_all(self, which: Callable[[WindowScreenDevice | HallScreenDevice], bool] = lambda _d: True,
                    force: bool = False) -> None:
        """Render the screens ``which`` selects (only those a message concerns: rendering costs)."""
        for screen in self.screens.values():
            if not which(screen.device):
                continue
            areas = [Area(r.area_id, r.x, r.y, render_text(
                "\n".join(safe_text("bx", line) for line in r.text.split("\n")), r.width, r.height))
                for r in self._regions(screen.device)]
            data = dynamic_area_data(areas)
            with self._lock:
                if data != screen.wanted or force:
                    screen.wanted = data
                    if force:
                        screen.shown = None
                    screen.health.news()
                    screen.wake.set()

    def _publish_status(self, now: float) -> None:
        with self._lock:
            faults = {s.device.id: s.health.fault(now) for s in self.screens.values()}
        members = {screen_id: DeviceState.OK if fault is None else DeviceState.FAULT
                   for screen_id, fault in sorted(faults.items())}
        state, listed = bus_state(list(faults.values()))
        self.status.report(state, listed, members=members)

    # --- one I/O thread per screen ----------------------------------------------------------------

    def _serve(self, screen: _NetScreen) -> None:
        was_open = False
        while not self._stop.is_set():
            try:
                trying = screen.link.backoff.ready(time.monotonic())
                is_open = screen.link.ensure_open()
                if trying and not is_open:  # refused or unreachable: as silent as a dead controller
                    with self._lock:
                        screen.health.record(Outcome.SILENT, time.monotonic())
                    self.worker.wake()  # its status may change
                if is_open and not was_open:
                    screen.shown = None  # a new connection: the controller may have rebooted
                    screen.brightness_set = False
                was_open = is_open
                if not is_open:
                    self._stop.wait(0.2)
                    continue
                if not self._serve_once(screen):
                    screen.wake.wait(self._idle_s(screen))  # set by new content, speech, stop
                    screen.wake.clear()
            except Exception:
                log.exception("BX-6 screen %s: unexpected error; carrying on", screen.device.id)
                self._stop.wait(0.2)
        # pyserial's socket close sleeps 0.3 s: every screen closes in parallel, on its own thread.
        screen.link.close()

    def _idle_s(self, screen: _NetScreen) -> float:
        """How long the screen's thread may sleep: until its backoff ends if it has something to
        send, else until its ping is due."""
        now = time.monotonic()
        with self._lock:
            pending = (screen.wanted != screen.shown or bool(screen.speech)
                       or (self.device.brightness is not None and not screen.brightness_set))
            due = screen.health.not_before if pending else screen.last_io + self.ping_s
        return max(0.0, due - now)

    def _serve_once(self, screen: _NetScreen) -> bool:
        """Send one request (the bus's brightness on a new connection, speech, a changed area, a ping
        when idle); False when there was nothing to send."""
        now = time.monotonic()
        if not screen.health.may_write(now):
            return False
        brightness = self.device.brightness if not screen.brightness_set else None
        with self._lock:  # first the brightness of a new connection, then speech, then pixels
            text = screen.speech.popleft() if screen.speech and brightness is None else None
            wanted = screen.wanted if screen.wanted != screen.shown else None
        if brightness is not None:
            data = bx6.brightness_data(brightness)
        elif text is not None:
            data = bx6.voice_insert_data(bx6.Voice(text))
        elif wanted is not None:
            data = wanted
        elif now - screen.last_io >= self.ping_s:
            data = bx6.ping_data()
        else:
            return False
        outcome = self._exchange(screen, data)
        if outcome is None:
            return True
        with self._lock:
            screen.health.record(outcome, time.monotonic())
            if outcome is Outcome.ACK and brightness is not None:
                screen.brightness_set = True
            elif outcome is Outcome.ACK and data is wanted:
                screen.shown = wanted
            elif outcome is not Outcome.ACK and text is not None:
                screen.speech.appendleft(text)  # said again when the controller answers
        self.worker.wake()  # the status may change
        if outcome is not Outcome.ACK:
            log.info("BX-6 screen %s: %s", screen.device.id, outcome.value)
        return True

    def _exchange(self, screen: _NetScreen, data: bytes) -> Outcome | None:
        """Write one packet and wait for its reply; None when the connection broke."""
        address = screen.device.address
        packet = bx6.Packet(bx6.Header(address), data).encode()
        decoder = bx6.Bx6Decoder()
        try:
            screen.link.read_waiting()  # a late reply to an earlier request must not confirm this one
            screen.link.write(packet)
            screen.last_io = time.monotonic()
            deadline = screen.last_io + self.reply_timeout_s
            while time.monotonic() < deadline:
                outcome = reply_outcome(decoder.feed(screen.link.read()), address)
                if outcome is not None:
                    return outcome
        except LinkLostError:
            return None
        return Outcome.SILENT
