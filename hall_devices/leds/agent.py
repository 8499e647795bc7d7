"""The LED agent: one per RS-485 bus of screens — window states and calls to screen frames.

A thin adapter around :class:`~hall_devices.leds.session.LedSession`, which decides what to
write, waits for BX replies, retries, probes and knows each screen's health (docs/display.md). The
agent renders what each screen should show, and moves bytes: it writes what the session hands out (a
whole frame, or a piece of a frame a call may preempt) and reports each write. Paho's thread and a
:class:`~hall_devices.agent.PortReader` only post to one :class:`~hall_devices.agent.Worker`; a
message or a byte wakes it at once, so news preempts a frame being sent without waiting for its next
piece. Its only timers are the session's deadlines: the next piece, reply timeout,
backoff, probe, and the rewrite of a screen whose whole content was not written for ``refresh_s``
(a controller that rebooted shows nothing until written again). What a screen shows is a function
of the messages alone (time rules such as the long pause notice come in the window state), so
nothing is rendered on a timer. The bus status is published on change
(:class:`~hall_devices.agent.StatusReporter`).
"""

from __future__ import annotations

from collections import deque

from hall_devices.agent import (
    PortAgentRun,
    PortData,
    PortEvent,
    PortLost,
    PortOpened,
    PortReader,
    StatusReporter,
    Worker,
)
from hall_devices.contract import (
    CALL,
    QUEUE_SUMMARY,
    WINDOW_STATE,
    Call,
    QueueSummary,
    WindowState,
)
from hall_devices.layout import HallScreenDevice, Layout, LedBusDevice, WindowScreenDevice
from hall_devices.leds.frames import hall_regions, window_regions
from hall_devices.leds.screens import hall_calls_text, hall_waiting_text, window_text
from hall_devices.leds.session import LedScreen, LedSession
from hall_devices.link import MONOTONIC, Clock, LinkLostError, SerialLink
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.layout_follow import LayoutFollower
from hall_devices.settings import Settings

READ_TIMEOUT_S = 0.2  # a read returns at the first byte; this only bounds how long stop takes

Item = Inbound[WindowState] | Inbound[Call] | Inbound[QueueSummary] | Layout | PortEvent


class LedAgent:
    """One serial bus of BX or EQ screens (``bus_id``: its ``led_bus`` in ``layout``); ``url``
    overrides the layout's port (a pty, ``socket://``), ``refresh_s`` the bus's ``refresh_s``
    (seconds; 0: never). :meth:`start`, :meth:`stop`."""

    def __init__(self, settings: Settings, layout: Layout, bus_id: str, *, url: str | None = None,
                 reply_timeout_s: float = 0.3, retries: int = 3, refresh_s: float | None = None,
                 clock: Clock = MONOTONIC) -> None:
        device = layout.device(bus_id)
        if not isinstance(device, LedBusDevice):
            raise ValueError(f"device {bus_id!r} is a {device.kind}, not an led_bus")
        if device.protocol == "bx6":
            raise ValueError(f"led_bus {bus_id!r} has network screens (bx6): the BX-6 agent drives it")
        self.device = device
        self.layout = layout
        self.clock = clock
        refresh = device.refresh_s if refresh_s is None else refresh_s  # the layout's unless given
        self.session = LedSession(device.protocol, device.baudrate,
                                  [d for d in layout.members(bus_id)
                                   if isinstance(d, WindowScreenDevice | HallScreenDevice)],
                                  unreachable_after_s=device.unreachable_after_s,
                                  reply_timeout_s=reply_timeout_s, retries=retries,
                                  refresh_s=refresh or None, probes=device.probe_idle)
        self.window_screen = {s.device.window: s for s in self.screens.values()
                              if isinstance(s.device, WindowScreenDevice)}
        self.hall_screens = [s for s in self.screens.values() if isinstance(s.device, HallScreenDevice)]
        self.states: dict[int, WindowState] = {}
        latest = max((s.device.latest_calls for s in self.hall_screens
                      if isinstance(s.device, HallScreenDevice)), default=5)
        self.calls: deque[Call] = deque(maxlen=latest)
        self.summary: QueueSummary | None = None
        self.link = SerialLink(url or device.serial, device.baudrate, device.parity.value,
                               read_timeout_s=READ_TIMEOUT_S, clock=clock)
        self.worker: Worker[Item] = Worker(f"leds {bus_id}", self._on_batch, self._on_tick, clock=clock)
        self.reader = PortReader(self.link, self.worker.post, f"leds {bus_id} reader")
        self.bus = Bus(settings, BusOptions(client_id=bus_id, hall_id=layout.hall.id, device_id=bus_id,
                                            device_kind="led_bus"))
        self.status = StatusReporter(self.bus.set_status)
        self.run = PortAgentRun(self.worker, self.reader, self.bus)
        for window in self.window_screen:
            self.bus.subscribe(WINDOW_STATE, self.worker.post, window=window)
        if self.hall_screens:
            self.bus.subscribe(CALL, self.worker.post)
            self.bus.subscribe(QUEUE_SUMMARY, self.worker.post)
        LayoutFollower(layout, bus_id, lambda new, _version: self.worker.post(new)).subscribe(self.bus)

    @property
    def screens(self) -> dict[int, LedScreen]:
        """Each screen by address: what it should show, what it shows, its health (the session's)."""
        return self.session.screens

    def start(self, wait_s: float | None = 10.0) -> None:
        self._render_all()
        self.run.start(wait_s)

    def stop(self) -> None:
        self.run.stop()

    # --- what each screen should show -------------------------------------------------------------

    def _render_window(self, screen: LedScreen) -> None:
        device = screen.device
        assert isinstance(device, WindowScreenDevice)
        state = self.states.get(device.window)
        text = window_text(state) if state else "暂停服务"
        self.session.want(device.address, window_regions(text, device.width, device.height))

    def _render_hall(self, screen: LedScreen) -> None:
        device = screen.device
        assert isinstance(device, HallScreenDevice)
        calls = hall_calls_text(list(self.calls)[-device.latest_calls:][::-1])
        self.session.want(device.address, hall_regions(calls, hall_waiting_text(self.layout, self.summary),
                                                       device.notice.zh, device.width, device.height))

    def _render_all(self) -> None:
        for screen in self.screens.values():
            if isinstance(screen.device, WindowScreenDevice):
                self._render_window(screen)
            else:
                self._render_hall(screen)

    def _apply_layout(self, layout: Layout) -> None:
        """A new notice text and service names on the hall screens at once; the screens themselves
        are the same (LayoutFollower refuses a layout that changes them)."""
        self.layout = layout
        for screen in self.hall_screens:
            device = layout.device(screen.device.id)
            assert isinstance(device, HallScreenDevice)
            screen.device = device
            self._render_hall(screen)

    # --- the worker ------------------------------------------------------------------------------

    def _on_batch(self, items: list[Item]) -> None:
        for item in items:
            if isinstance(item, PortData):
                self.session.receive(item.data, self.clock() if item.at is None else item.at)
            elif isinstance(item, PortOpened):
                self.session.opened()
            elif isinstance(item, PortLost):
                self.session.lost()
            elif isinstance(item, Layout):
                self._apply_layout(item)
            else:
                self._message(item.payload)

    def _message(self, payload: WindowState | Call | QueueSummary) -> None:
        if isinstance(payload, WindowState):
            self.states[payload.window] = payload
            screen = self.window_screen.get(payload.window)
            if screen is not None:
                self._render_window(screen)
            return
        if isinstance(payload, Call):
            self.calls.append(payload)
        else:
            self.summary = payload
        for screen in self.hall_screens:
            self._render_hall(screen)

    def _on_tick(self, now: float) -> float | None:
        self.session.timeout(now)
        # A frame, or the pieces due now; a piece's successor is due when it has left the wire, and
        # the worker wakes then (the session's deadline).
        while (write := self.session.next_write(now)) is not None:
            # Taken before writing: the reader may read (and time) the reply before write() returns.
            sent_at = self.clock()
            try:
                self.link.write(write.frame)
            except LinkLostError:
                self.session.lost()  # the reader reopens the port and posts PortOpened
                break
            self.session.written(sent_at)  # EQ: shown, and the next screen is written at once
            now = self.clock()
        report = self.session.report(now)
        self.status.report(report.state, report.faults, detail=self.link.last_error,
                           members=report.members, member_faults=report.member_faults)
        return self.session.deadline(now)
