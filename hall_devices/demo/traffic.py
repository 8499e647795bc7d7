"""A traffic generator for the demo: applicants arrive, clerks call and finish, applicants rate.

It acts over MQTT only, as the kiosks and pads would (demo user ``traffic``): Poisson arrivals per
hour, exponential service times around each service's promised minutes, a share of no-shows and a
mix of ratings. ``speed`` compresses time (60: a demo minute per second) by shortening the waits;
the coordinator still sees real time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hall_devices.contract import (
    CARD_READ,
    RATING,
    RATING_PROMPT,
    STAFF_COMMAND,
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_STATE,
    CardRead,
    Rating,
    RatingLevel,
    RatingPrompt,
    StaffAction,
    StaffCommand,
    TicketClass,
    TicketRequest,
    WindowAction,
    WindowCommand,
    WindowCommandResult,
    WindowState,
    WindowStatus,
)
from hall_devices.demo.sim.idcard import DEMO_CARDS, IdCardReaderSimulator
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.idcard.identity import id_hash
from hall_devices.layout import Hall, KioskDevice, Layout, PadDevice
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.requests import NoReplyError, Requester
from hall_devices.pads.codec import Key
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardTraffic:
    """Booked applicants with ID cards at one kiosk's simulated reader (the demo's key)."""

    kiosk: str
    reader: IdCardReaderSimulator
    key: bytes
    service_id: str
    checks_in: bool = True  # False: a kiosk window checks the card in (hall up counts them)


@dataclass(frozen=True)
class TrafficMix:
    arrivals_per_hour: float = 150.0
    speed: float = 60.0
    priority_share: float = 0.08
    no_show_share: float = 0.05
    rating_share: float = 0.85  # the rest let the prompt time out (未评价)
    rating_weights: tuple[float, ...] = (0.70, 0.18, 0.07, 0.03, 0.02)  # levels 5, 4, 3, 2, 1
    windows_open: int = 22


def clerk_id(window: int) -> str:
    """The simulated clerk of ``window`` (``0007`` for window 7): digits only, so a pad can type it;
    examples/hall.toml names each one, so the dashboard shows a name, not an id."""
    return f"{window:04d}"


def _id() -> str:
    return uuid.uuid4().hex[:16]


def booked_slot(hall: Hall, now: datetime) -> tuple[datetime, datetime]:
    """A 30-minute slot (start, end; aware) that a card check-in at ``now`` finds: it began 5 minutes
    ago, or at the start of ``now``'s business day when that is later; the engine checks in only a
    booking whose slot starts on today's business day (just past hall midnight, 5 minutes back was
    yesterday)."""
    zone = timezone(timedelta(hours=hall.utc_offset_hours))
    day = date.fromisoformat(hall.business_day(now))
    day_start = datetime(day.year, day.month, day.day, hall.day_starts_at_hour, tzinfo=zone)
    start = max(now - timedelta(minutes=5), day_start)
    return start, start + timedelta(minutes=30)


class TrafficGenerator:
    def __init__(self, settings: Settings, layout: Layout, mix: TrafficMix | None = None,
                 seed: int | None = None, pad_bus: PadBusSimulator | None = None, *,
                 cards: CardTraffic | None = None) -> None:
        self.layout = layout
        self.cards = cards
        # Windows with a simulated pad are driven by its keys, as a clerk would.
        self.pad_bus = pad_bus
        self.pad_of = {d.window: d.address for d in layout.devices
                       if isinstance(d, PadDevice) and pad_bus is not None and d.address in pad_bus.pads}
        self.states: dict[int, WindowState] = {}
        self.mix = mix or TrafficMix()
        self.random = random.Random(seed)
        self.bus = Bus(settings, BusOptions(client_id="traffic", hall_id=layout.hall.id,
                                            device_id="traffic", device_kind="traffic"))
        self.requests = Requester(self.bus)
        self.requests.listen(TICKET_REQUEST)
        self.requests.listen(WINDOW_COMMAND)
        self.requests.listen(RATING)
        if cards is not None:
            self.requests.listen(STAFF_COMMAND, staff="traffic")
            if cards.checks_in:
                self.bus.subscribe(CARD_READ, self._on_card, kiosk=cards.kiosk)
        self.bus.subscribe(RATING_PROMPT, self._on_prompt)
        self.bus.subscribe(WINDOW_STATE, self._on_state)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.kiosks = [d.id for d in layout.devices if isinstance(d, KioskDevice)] or ["K1"]
        self.issued = 0
        self.served = 0
        self.rated = 0
        self.acknowledged: list[str] = []  # ticket ids the coordinator answered for: none may be lost
        self.card_check_ins = 0

    def start(self, wait_s: float | None = 10.0) -> None:
        self.bus.start(wait_s)
        windows = [w.number for w in self.layout.windows][: self.mix.windows_open]
        self._spawn(self._arrivals, "arrivals")
        if self.cards is not None:
            self._spawn(self._card_applicants, "card applicants")
        for number in windows:
            clerk = self._pad_clerk if number in self.pad_of else self._clerk
            self._spawn(clerk, f"window-{number}", number)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.bus.stop()

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=self._guard, args=(target, *args), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guard(self, target: Any, *args: Any) -> None:
        while not self._stop.is_set():
            try:
                target(*args)
                return
            except NoReplyError as exc:  # the coordinator is restarting: carry on when it is back
                log.warning("traffic: %s; carrying on", exc)
                self._stop.wait(1.0)

    def _sleep_minutes(self, minutes: float) -> bool:
        return self._stop.wait(minutes * 60 / self.mix.speed)

    def _arrivals(self) -> None:
        services = [s.id for s in self.layout.services]
        while not self._sleep_minutes(self.random.expovariate(self.mix.arrivals_per_hour / 60)):
            kind = (TicketClass.PRIORITY if self.random.random() < self.mix.priority_share
                    else TicketClass.NORMAL)
            request = TicketRequest(command_id=_id(), service_id=self.random.choice(services),
                                    ticket_class=kind, paper=True)
            reply = self.requests.call(TICKET_REQUEST, request,
                                       kiosk=self.random.choice(self.kiosks))
            self.issued += reply.ok
            if reply.ticket is not None:
                self.acknowledged.append(reply.ticket.ticket_id)

    def _card_applicants(self) -> None:
        """Now and then a booked applicant puts an ID card on the simulated reader of a kiosk."""
        cards = self.cards
        assert cards is not None
        while not self._stop.wait(max(3.0, 20 * 60 / self.mix.speed)):
            card = self.random.choice(DEMO_CARDS)
            start, end = booked_slot(self.layout.hall, datetime.now(UTC))
            book = StaffCommand(command_id=_id(), action=StaffAction.BOOK_APPOINTMENT, staff_id="traffic",
                                appointment_code=f"YY{_id()[:10]}", service_id=cards.service_id,
                                slot_start=start, slot_end=end,
                                id_hash=id_hash(cards.key, card.id_number))
            if not self.requests.call(STAFF_COMMAND, book, staff="traffic").ok:
                continue
            cards.reader.place(card)
            self._stop.wait(2.0)
            cards.reader.remove()

    def _on_card(self, inbound: Inbound[CardRead]) -> None:
        """Acting as the kiosk (no kiosk window in the demo): check the card's holder in."""
        read = inbound.payload
        if read.ok and read.id_hash:
            threading.Thread(target=self._check_in_by_card, args=(read.id_hash,), daemon=True).start()

    def _check_in_by_card(self, hashed: str) -> None:
        assert self.cards is not None
        request = TicketRequest(command_id=_id(), ticket_class=TicketClass.APPOINTMENT, id_hash=hashed)
        try:
            reply = self.requests.call(TICKET_REQUEST, request, kiosk=self.cards.kiosk)
        except NoReplyError as exc:
            log.warning("traffic: %s", exc)
            return
        if reply.ticket is not None:
            self.card_check_ins += 1
            self.issued += 1
            self.acknowledged.append(reply.ticket.ticket_id)

    def _command(self, window: int, action: WindowAction, **fields: Any) -> WindowCommandResult:
        command = WindowCommand(command_id=_id(), action=action, **fields)
        return self.requests.call(WINDOW_COMMAND, command, window=window)

    def _clerk(self, window: int) -> None:
        state = self._command(window, WindowAction.LOGIN, clerk_id=clerk_id(window)).state
        if state is not None and state.ticket_id:  # left calling by an earlier run: finish it
            self._command(window, WindowAction.FINISH)
        while not self._stop.is_set():
            called = self._command(window, WindowAction.NEXT)
            if not called.ok or called.ticket is None:
                if self._stop.wait(1.0):
                    break
                continue
            if self.random.random() < self.mix.no_show_share:
                self._sleep_minutes(1)
                self._command(window, WindowAction.NO_SHOW)
                continue
            # Most services end well inside their promised time; a few run over.
            promised = self.layout.service(called.ticket.service_id).promised_minutes
            if self._sleep_minutes(self.random.expovariate(1 / (0.6 * promised))):
                break
            if self._command(window, WindowAction.FINISH).ok:
                self.served += 1

    def _on_state(self, inbound: Inbound[WindowState]) -> None:
        self.states[inbound.payload.window] = inbound.payload

    def _status(self, window: int) -> WindowStatus:
        state = self.states.get(window)
        return state.status if state else WindowStatus.CLOSED

    def _wait_status(self, window: int, wanted: set[WindowStatus], timeout_s: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            if self._status(window) in wanted:
                return True
            self._stop.wait(0.05)
        return False

    def _pad_clerk(self, window: int) -> None:
        """A clerk at a window with a pad: every action is a key press on the simulated bus."""
        assert self.pad_bus is not None
        pads, address = self.pad_bus, self.pad_of[window]
        self._wait_status(window, set(WindowStatus), 5.0)  # the retained state, if any
        while self._status(window) is WindowStatus.CLOSED and not self._stop.is_set():
            pads.type(address, clerk_id(window))  # clerk id + confirm: sign in (again, if it got lost)
            self._wait_status(window, {WindowStatus.IDLE}, 5.0)
        if self._status(window) in (WindowStatus.CALLING, WindowStatus.SERVING):
            pads.press(address, Key.RATE)  # left calling by an earlier run: finish it
        while not self._stop.is_set():
            pads.press(address, Key.NEXT)
            if not self._wait_status(window, {WindowStatus.CALLING}):
                self._stop.wait(1.0)
                continue
            if self.random.random() < self.mix.no_show_share:
                self._sleep_minutes(1)
                pads.type(address, "6")  # 弃号
                continue
            state = self.states.get(window)
            promised = self.layout.service(state.service_id).promised_minutes if state and \
                state.service_id else 10
            if self._sleep_minutes(self.random.expovariate(1 / (0.6 * promised))):
                break
            pads.press(address, Key.RATE)  # finish and ask for a rating
            if self._wait_status(window, {WindowStatus.IDLE}):
                self.served += 1

    def _on_prompt(self, inbound: Inbound[RatingPrompt]) -> None:
        prompt = inbound.payload
        if self.random.random() >= self.mix.rating_share:
            return
        level = self.random.choices([5, 4, 3, 2, 1], weights=self.mix.rating_weights)[0]
        if self.pad_bus is not None and prompt.window in self.pad_of:
            # The applicant presses a rating key on the window's pad.
            threading.Timer(0.3, self._press_rating, args=(prompt.window, level)).start()
            return
        rating = Rating(rating_id=_id(), prompt_id=prompt.prompt_id, window=prompt.window,
                        level=RatingLevel(level), rated_at=datetime.now(UTC))
        # Answered on paho's thread would deadlock the requester: rate from a thread of our own.
        threading.Thread(target=self._rate, args=(rating,), daemon=True).start()

    def _press_rating(self, window: int, level: int) -> None:
        if self.pad_bus is not None and not self._stop.is_set():
            self.pad_bus.rate(self.pad_of[window], level)
            self.rated += 1

    def _rate(self, rating: Rating) -> None:
        try:
            if self.requests.call(RATING, rating, window=rating.window).ok:
                self.rated += 1
        except NoReplyError as exc:
            log.warning("traffic: %s", exc)
