"""The pad agent: one per keypad bus — keys to window commands, ratings that are never lost.

One I/O thread owns the serial port: it reads frames, echoes each valid one back as its
acknowledgement (the facts say the host echoes; whether pads echo the host's frames is the bus's
``pads_echo`` profile setting, off by default, so a pad that does not echo stays ``ok``), turns
keys into window commands and rating keys into ratings, and writes what each pad shows.
paho's thread only queues MQTT messages for it. Ratings are written to the outbox before
they are published and leave it only when the coordinator acknowledges them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hall_devices.bus import Bus, BusOptions, Inbound
from hall_devices.contract import (
    RATING,
    WINDOW_COMMAND,
    Channel,
    DeviceFault,
    DeviceState,
    Rating,
    RatingAck,
    RatingLevel,
    RatingPrompt,
    WindowCommand,
    WindowCommandResult,
    WindowState,
    route,
)
from hall_devices.evaluator.keypad import (
    Control,
    Frame,
    Garbage,
    Ignored,
    IgnoredCounter,
    Key,
    KeypadDecoder,
    ask_rating_frame,
    beep_frames,
    key_presses,
    rating_level,
    show_frame,
)
from hall_devices.evaluator.keys import PadKeys
from hall_devices.evaluator.outbox import RatingOutbox
from hall_devices.layout import KeypadBusDevice, Layout, PadDevice
from hall_devices.link import LinkLostError, SerialLink
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
ECHO_WAIT_S = 0.5
SILENT_AFTER = 3  # frames a pad failed to echo in a row before it is marked not responding
RESEND_S = 10.0


@dataclass
class _Pad:
    device: PadDevice
    keys: PadKeys
    state: WindowState | None = None
    prompt: RatingPrompt | None = None
    prompt_open: tuple[float, float] = (0.0, 0.0)  # (monotonic arrival, seconds open): not our wall clock
    shown: str | None = None
    missed_echoes: int = 0
    awaiting: tuple[bytes, float] | None = None


class PadAgent:
    def __init__(self, settings: Settings, layout: Layout, bus_id: str, data_dir: Path, *,
                 url: str | None = None) -> None:
        device = layout.device(bus_id)
        if not isinstance(device, KeypadBusDevice):
            raise ValueError(f"device {bus_id!r} is a {device.kind}, not a keypad_bus")
        self.device = device
        self.pads = {p.address: _Pad(p, PadKeys()) for p in layout.members(bus_id)
                     if isinstance(p, PadDevice)}
        self.by_window = {pad.device.window: pad for pad in self.pads.values()}
        self.link = SerialLink(url or device.serial, device.baudrate, device.parity.value)
        self.outbox = RatingOutbox(data_dir / f"pads-{bus_id}.sqlite3")
        self.decoder = KeypadDecoder()
        self.ignored = IgnoredCounter()  # frames that meant nothing, per kind: logged the first time
        self._inbox: queue.Queue[Inbound[Any] | str] = queue.Queue()
        self._pending: dict[str, int] = {}  # command id → window, to signal refusals
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pads {bus_id}", daemon=True)
        self._status: tuple[DeviceState, tuple[DeviceFault, ...], tuple[tuple[str, DeviceState], ...]] | None
        self._status = None
        self.bus = Bus(settings, BusOptions(
            client_id=bus_id, hall_id=layout.hall.id, device_id=bus_id, device_kind="keypad_bus",
            on_connection=lambda up: self._inbox.put("connected") if up else None))
        for window in self.by_window:
            for name in ("window_state", "window_result", "rating_prompt", "rating_ack"):
                self.bus.subscribe(route(name), self._inbox.put, window=window)

    def start(self, wait_s: float | None = 10.0) -> None:
        self._thread.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.bus.stop()
        self.link.close()
        self.outbox.close()

    # --- the I/O thread ----------------------------------------------------------------------

    def _run(self) -> None:
        next_resend = time.monotonic() + RESEND_S
        while not self._stop.is_set():
            try:
                self._serve_port()
                self._drain_inbox()
                self._check_echoes()
                if time.monotonic() >= next_resend:
                    self._resend()
                    next_resend = time.monotonic() + RESEND_S
                self._publish_status()
            except Exception:  # one bad moment must not stop the window's keypads
                log.exception("pad agent %s: unexpected error; carrying on", self.device.id)
                self._stop.wait(0.2)

    def _serve_port(self) -> None:
        was_open = self.link.is_open
        if not self.link.ensure_open():
            self._stop.wait(0.2)
            return
        if not was_open:
            self._restore_displays()
        try:
            data = self.link.read()
        except LinkLostError:
            return
        for item in self.decoder.feed(data):
            if isinstance(item, Garbage):
                log.warning("keypad bus %s: skipped %d bytes (%s): %s", self.device.id, len(item.data),
                            item.reason, item.data.hex(" "))
            else:
                self._frame(item)

    def _write(self, frame: Frame, expect_echo: bool = True) -> None:
        try:
            self.link.write(frame.encode())
        except LinkLostError:
            return
        pad = self.pads.get(frame.address)
        if expect_echo and self.device.pads_echo and pad is not None:
            pad.awaiting = (frame.encode(), time.monotonic() + ECHO_WAIT_S)

    def _frame(self, frame: Frame) -> None:
        pad = self.pads.get(frame.address)
        if pad is None:
            self._ignore(Ignored(f"frame from unknown address {frame.address}"))
            return
        if pad.awaiting is not None and frame.encode() == pad.awaiting[0]:
            pad.awaiting, pad.missed_echoes = None, 0  # the pad acknowledged our frame
            return
        level = rating_level(frame)
        if level is None and frame.control in (Control.SHOW, Control.BEEP, Control.RATING):
            # An echo of a frame of ours (pads that echo on a bus whose profile says they need not);
            # echoing it back would ping-pong.
            self._ignore(Ignored(f"echo of a host frame (control {frame.control:#04x})"))
            return
        self._write(frame, expect_echo=False)  # acknowledge by echoing it back
        if level is not None:
            self._rate(pad, level)
            return
        keys = key_presses(frame)
        if isinstance(keys, Ignored):
            self._ignore(keys)
            return
        for key in keys:
            self._key(pad, key)

    def _ignore(self, ignored: Ignored) -> None:
        if self.ignored.note(ignored.kind):
            # Echoes are harmless (pads that echo on a bus not set to expect it); the rest is a fault.
            level = logging.INFO if ignored.kind.startswith("echo") else logging.WARNING
            log.log(level, "keypad bus %s: ignoring frames: %s (counted; logged once per kind)",
                    self.device.id, ignored.kind)

    def _beep(self, pad: _Pad, times: int) -> None:
        for frame in beep_frames(pad.device.address, times):
            self._write(frame)

    def _key(self, pad: _Pad, key: Key) -> None:
        intent = pad.keys.press(key, pad.state)
        if intent is None:
            return
        if intent.action is None:
            log.info("pad %s: %s", pad.device.id, intent.refused)
            self._beep(pad, 2)
            return
        command = WindowCommand(command_id=uuid.uuid4().hex, action=intent.action,
                                clerk_id=intent.clerk_id, ticket_number=intent.ticket_number,
                                target_window=intent.target_window, source=Channel.PAD)
        self._pending[command.command_id] = pad.device.window
        self.bus.publish(WINDOW_COMMAND, command, window=pad.device.window)

    def _rate(self, pad: _Pad, level: int) -> None:
        prompt, now = pad.prompt, datetime.now(UTC)
        elapsed = time.monotonic() - pad.prompt_open[0]
        if prompt is None or elapsed > pad.prompt_open[1]:
            log.info("pad %s: rating key %d with no rating asked: ignored", pad.device.id, level)
            return
        pad.prompt = None  # one rating per service: later presses are ignored
        rating = Rating(rating_id=uuid.uuid4().hex, prompt_id=prompt.prompt_id, window=prompt.window,
                        level=RatingLevel(level), channel=Channel.PAD, rated_at=now,
                        answered_after_s=round(elapsed, 3))
        self.outbox.put(rating)  # durable before it is sent
        self.bus.publish(RATING, rating, window=rating.window)

    # --- from MQTT --------------------------------------------------------------------------------

    def _drain_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item == "connected":
                self._resend()
            elif isinstance(item, Inbound):
                self._message(item)

    def _message(self, inbound: Inbound[Any]) -> None:
        payload = inbound.payload
        pad = self.by_window.get(int(inbound.params.get("window", "0")))
        if pad is None:
            return
        if isinstance(payload, WindowState):
            pad.state = payload
            self._show(pad)
        elif isinstance(payload, RatingPrompt):
            pad.prompt = payload
            seconds = payload.timeout_s  # the coordinator's; older ones only sent expires_at
            if seconds is None:
                seconds = int((payload.expires_at - datetime.now(UTC)).total_seconds())
            pad.prompt_open = (time.monotonic(), float(seconds))
            self._beep(pad, 1)  # 请评价
            self._write(ask_rating_frame(pad.device.address, seconds))
        elif isinstance(payload, RatingAck):
            if payload.command_id and self.outbox.acknowledged(payload.command_id):
                if payload.ok:
                    self._beep(pad, 1)  # 谢谢评价
                else:
                    log.warning("rating %s refused: %s", payload.command_id, payload.error)
        elif isinstance(payload, WindowCommandResult):
            window = self._pending.pop(payload.command_id or "", None)
            if window is not None and not payload.ok:
                log.info("window %d: %s", window, payload.error.message if payload.error else "refused")
                self._beep(pad, 2)

    def _show(self, pad: _Pad) -> None:
        # What the display shows is the coordinator's (WindowState.pad_text); letters cannot show:
        # the digits do.
        text = pad.state.pad_text if pad.state is not None else ""
        if text != pad.shown:
            pad.shown = text
            self._write(show_frame(pad.device.address, text))

    def _restore_displays(self) -> None:
        """The port is (back) open: pads may have lost power with it, so rewrite every display now."""
        for pad in self.pads.values():
            pad.shown = None
            self._show(pad)

    def _resend(self) -> None:
        for rating in self.outbox.pending():
            self.bus.publish(RATING, rating, window=rating.window)

    # --- supervision ----------------------------------------------------------------------------

    def _check_echoes(self) -> None:
        now = time.monotonic()
        for pad in self.pads.values():
            if pad.awaiting is not None and now > pad.awaiting[1]:
                pad.awaiting = None
                pad.missed_echoes += 1
                if pad.missed_echoes == SILENT_AFTER:
                    log.warning("pad %s at address %d does not answer", pad.device.id, pad.device.address)

    def _publish_status(self) -> None:
        # A bus on a missing port reaches none of its pads: none is reported ok.
        members = tuple((p.device.id, DeviceState.FAULT if p.missed_echoes >= SILENT_AFTER
                         or not self.link.is_open else DeviceState.OK) for p in self.pads.values())
        faults: tuple[DeviceFault, ...] = ()
        if not self.link.is_open:
            state, faults = DeviceState.FAULT, (DeviceFault.PORT_MISSING,)
        elif any(s is DeviceState.FAULT for _, s in members):
            state, faults = DeviceState.WARNING, (DeviceFault.NOT_RESPONDING,)
        else:
            state = DeviceState.OK
        if (state, faults, members) != self._status:
            self._status = (state, faults, members)
            self.bus.set_status(state, list(faults), detail=self.link.last_error, members=dict(members))
            if not self.link.is_open:
                for pad in self.pads.values():
                    pad.shown = None  # show everything again once the port is back
