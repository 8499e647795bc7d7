"""The pad agent: one per pad bus — keys to window commands, ratings that are never lost.

A thin adapter around :class:`PadSession` (the bus protocol, sans-IO): a :class:`PortReader` posts
what the port does, paho's thread posts what the coordinator says, and one :class:`Worker` thread
hands both to the session, writes the frames it returns, publishes window commands and ratings, and
reports the bus status on change. Nothing polls: a byte, a message or the session's next deadline
(an echo due, a prompt closing) wakes it. Ratings are written to the outbox before they are
published and leave it only when the coordinator acknowledges them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar, assert_never

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
    RATING,
    RATING_ACK,
    RATING_PROMPT,
    WINDOW_COMMAND,
    WINDOW_RESULT,
    WINDOW_STATE,
    Channel,
    Payload,
    Rating,
    RatingAck,
    RatingLevel,
    RatingPrompt,
    Route,
    WindowCommand,
    WindowCommandResult,
    WindowState,
)
from hall_devices.layout import Layout, PadBusDevice, PadDevice
from hall_devices.link import MONOTONIC, Clock, LinkLostError, SerialLink
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.pads.codec import IgnoredCounter
from hall_devices.pads.outbox import RatingOutbox
from hall_devices.pads.session import (
    EchoConfirmed,
    FrameIgnored,
    KeyRefused,
    Noise,
    Output,
    PadAnswering,
    PadSession,
    PadSilent,
    PromptExpired,
    RatingGiven,
    RatingIgnored,
    WindowIntent,
    Write,
    prompt_seconds,
)
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
RESEND_S = 10.0  # unacknowledged ratings are sent again this often
READ_TIMEOUT_S = 0.5  # bounds only how long stop() waits for the reader: a byte ends a read at once
P = TypeVar("P", bound=Payload)
Job = Callable[[float], None]  # a coordinator message, bound to its handler; run with ``now``
Message = PortEvent | Job


class PadAgent:
    def __init__(self, settings: Settings, layout: Layout, bus_id: str, data_dir: Path, *,
                 url: str | None = None, clock: Clock = MONOTONIC) -> None:
        device = layout.device(bus_id)
        if not isinstance(device, PadBusDevice):
            raise ValueError(f"device {bus_id!r} is a {device.kind}, not a pad_bus")
        self.device = device
        self.session = PadSession([p for p in layout.members(bus_id) if isinstance(p, PadDevice)],
                                  pads_echo=device.pads_echo)
        self.link = SerialLink(url or device.serial, device.baudrate, device.parity.value,
                               read_timeout_s=READ_TIMEOUT_S)
        self.outbox = RatingOutbox(data_dir / f"pads-{bus_id}.sqlite3")
        self._clock = clock
        self.worker: Worker[Message] = Worker(f"pads {bus_id}", self._on_batch, self._on_tick, clock=clock)
        self.reader = PortReader(self.link, self.worker.post, f"pads {bus_id} port")
        self._pending: dict[str, int] = {}  # command id → window, to beep at a refusal
        self._resend_at: float | None = None
        self.bus = Bus(settings, BusOptions(
            client_id=bus_id, hall_id=layout.hall.id, device_id=bus_id, device_kind="pad_bus",
            on_connection=lambda up: self.worker.post(self._connected) if up else None))
        self.status = StatusReporter(self.bus.set_status)
        self.run = PortAgentRun(self.worker, self.reader, self.bus)
        for window in self.session.windows:
            self._subscribe(WINDOW_STATE, self._state, window)
            self._subscribe(WINDOW_RESULT, self._result, window)
            self._subscribe(RATING_PROMPT, self._prompt, window)
            self._subscribe(RATING_ACK, self._ack, window)

    @property
    def ignored(self) -> IgnoredCounter:
        """Frames that meant nothing, counted per kind (logged the first time of each)."""
        return self.session.ignored

    def start(self, wait_s: float | None = 10.0) -> None:
        self.run.start(wait_s)

    def stop(self) -> None:
        self.run.stop()
        self.outbox.close()

    def _subscribe(self, route_: Route[P], handle: Callable[[int, P, float], None], window: int) -> None:
        def deliver(inbound: Inbound[P]) -> None:  # paho's thread: only hand it over
            self.worker.post(partial(handle, window, inbound.payload))
        self.bus.subscribe(route_, deliver, window=window)

    # --- the worker thread --------------------------------------------------------------------

    def _on_batch(self, batch: list[Message]) -> None:
        now = self._clock()
        for item in batch:
            if isinstance(item, PortData):
                self._apply(self.session.receive(item.data, now), now)
            elif isinstance(item, PortOpened):
                self._apply(self.session.port_opened(now), now)
            elif isinstance(item, PortLost):
                self._apply(self.session.port_lost(now), now)
            else:
                item(now)

    def _on_tick(self, now: float) -> float | None:
        self._apply(self.session.tick(now), now)
        if self._resend_at is not None and now >= self._resend_at:
            self._resend(now)
        status = self.session.status()
        self.status.report(status.state, status.faults, detail=self.link.last_error, members=status.members)
        due = [t for t in (self.session.next_deadline(), self._resend_at) if t is not None]
        return min(due, default=None)

    def _apply(self, outputs: list[Output], now: float) -> None:
        for out in outputs:
            match out:
                case Write():
                    self._write(out.data, now)
                case WindowIntent():
                    self._command(out)
                case RatingGiven():
                    self._rating(out, now)
                case Noise(garbage):
                    log.warning("pad bus %s: skipped %d bytes (%s): %s", self.device.id,
                                len(garbage.data), garbage.reason, garbage.data.hex(" "))
                case FrameIgnored(ignored, first):
                    if first:  # echoes are harmless (pads that echo on a bus not set to expect it)
                        level = logging.INFO if ignored.kind.startswith("echo") else logging.WARNING
                        log.log(level, "pad bus %s: ignoring frames: %s (counted; logged once per "
                                "kind)", self.device.id, ignored.kind)
                case KeyRefused(address, reason):
                    log.info("pad bus %s, pad %d: %s", self.device.id, address, reason)
                case RatingIgnored(address, level):
                    log.info("pad bus %s, pad %d: rating key %d with no rating asked: ignored",
                             self.device.id, address, level)
                case PadSilent(address):
                    log.warning("pad bus %s: the pad at address %d does not answer", self.device.id,
                                address)
                case PadAnswering(address):
                    log.info("pad bus %s: the pad at address %d answers again", self.device.id, address)
                case EchoConfirmed() | PromptExpired():
                    pass
                case _:
                    assert_never(out)

    def _write(self, data: bytes, now: float) -> None:
        try:
            self.link.write(data)
        except LinkLostError:  # the reader reports it too; the session takes the first
            self._apply(self.session.port_lost(now), now)

    def _command(self, wanted: WindowIntent) -> None:
        intent = wanted.intent
        if intent.action is None:  # the session beeps a refusal itself and never sends one here
            return
        command = WindowCommand(command_id=uuid.uuid4().hex, action=intent.action,
                                clerk_id=intent.clerk_id, ticket_number=intent.ticket_number,
                                target_window=intent.target_window, source=Channel.PAD)
        self._pending[command.command_id] = wanted.window
        self.bus.publish(WINDOW_COMMAND, command, window=wanted.window)

    def _rating(self, given: RatingGiven, now: float) -> None:
        rating = Rating(rating_id=uuid.uuid4().hex, prompt_id=given.prompt.prompt_id,
                        window=given.prompt.window, level=RatingLevel(given.level), channel=Channel.PAD,
                        rated_at=datetime.now(UTC), answered_after_s=given.answered_after_s)
        self.outbox.put(rating)  # durable before it is sent
        self.bus.publish(RATING, rating, window=rating.window)
        if self._resend_at is None:
            self._resend_at = now + RESEND_S

    def _resend(self, now: float) -> None:
        pending = self.outbox.pending()
        for rating in pending:
            self.bus.publish(RATING, rating, window=rating.window)
        self._resend_at = now + RESEND_S if pending else None

    # --- from the coordinator (run on the worker thread) ---------------------------------------

    def _connected(self, now: float) -> None:
        self._resend(now)

    def _state(self, window: int, state: WindowState, now: float) -> None:
        self._apply(self.session.window_state(window, state, now), now)

    def _prompt(self, window: int, prompt: RatingPrompt, now: float) -> None:
        seconds = prompt_seconds(prompt, datetime.now(UTC))
        self._apply(self.session.ask_rating(window, prompt, seconds, now), now)

    def _ack(self, window: int, ack: RatingAck, now: float) -> None:
        if ack.command_id and self.outbox.acknowledged(ack.command_id):
            if ack.ok:
                self._apply(self.session.rating_acknowledged(window, now), now)
            else:
                log.warning("rating %s refused: %s", ack.command_id, ack.error)

    def _result(self, window: int, result: WindowCommandResult, now: float) -> None:
        sent_from = self._pending.pop(result.command_id or "", None)
        if sent_from is not None and not result.ok:
            log.info("window %d: %s", sent_from, result.error.message if result.error else "refused")
            self._apply(self.session.command_refused(window, now), now)
