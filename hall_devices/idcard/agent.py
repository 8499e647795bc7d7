"""The ID card reader agent: the module on a serial port, each card read published to its kiosk.

Its own thread does the serial work (pyserial blocks) through :class:`ReaderSession`; paho's thread is
not involved except to publish. What leaves this process is :class:`CardRead`: the keyed hash of the
number and masked name and number. The clear number and name are dropped as soon as they are hashed
and masked; log lines never carry them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from hall_devices.bus import Bus, BusOptions
from hall_devices.contract import CARD_READ, CardRead, DeviceFault, DeviceState
from hall_devices.idcard.identity import IdNumberError, id_hash, mask_id, mask_name, normalise
from hall_devices.idcard.session import CardPresented, CardUnreadable, Event, ModuleChanged, ReaderSession
from hall_devices.layout import IdCardReaderDevice, Layout
from hall_devices.link import LinkLostError, SerialLink
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


def card_read(event: CardPresented | CardUnreadable, key: bytes, at: datetime) -> CardRead:
    """What a kiosk may learn of one read (pure)."""
    read_id = f"card-{uuid.uuid4().hex[:20]}"
    if isinstance(event, CardUnreadable):
        return CardRead(read_id=read_id, ok=False, problem="unreadable", read_at=at)
    try:
        number = normalise(event.text.id_number)
    except IdNumberError:
        return CardRead(read_id=read_id, ok=False, problem="not_valid", read_at=at)
    return CardRead(read_id=read_id, ok=True, id_hash=id_hash(key, number), masked_id=mask_id(number),
                    masked_name=mask_name(event.text.name)[:15], read_at=at)


class IdCardReaderAgent:
    def __init__(self, settings: Settings, layout: Layout, reader_id: str, key: bytes, *,
                 url: str | None = None, poll_s: float = 0.3,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        reader = layout.device(reader_id)
        if not isinstance(reader, IdCardReaderDevice):
            raise ValueError(f"device {reader_id!r} is a {reader.kind}, not an idcard_reader")
        self.reader = reader
        self.key = key
        self.clock = clock
        self.session = ReaderSession(poll_s=poll_s)
        self.link = SerialLink(url or reader.serial, reader.baudrate, reader.parity.value)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"idcard {reader_id}", daemon=True)
        self._state: tuple[DeviceState, tuple[DeviceFault, ...]] | None = None
        self.bus = Bus(settings, BusOptions(client_id=reader_id, hall_id=layout.hall.id, device_id=reader_id,
                                            device_kind="idcard_reader"))

    def start(self, wait_s: float | None = 10.0) -> None:
        self._status(DeviceState.FAULT, DeviceFault.NOT_RESPONDING)  # until the SAM answers
        self._thread.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.bus.stop()
        self.link.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except LinkLostError:
                self._port_missing()
            except Exception:  # a bug must not stop the reader
                log.exception("ID card reader %s: unexpected error", self.reader.id)
                self._stop.wait(1.0)

    def _step(self) -> None:
        if not self.link.ensure_open():
            self._port_missing()
            self._stop.wait(0.5)
            return
        now = time.monotonic()
        command = self.session.next_command(now)
        if command is not None:
            self.link.write(command)
        events, follow = self.session.receive(self.link.read(), time.monotonic())
        if follow is not None:
            self.link.write(follow)
        for event in events + self.session.check_timeout(time.monotonic()):
            self._handle(event)

    def _port_missing(self) -> None:
        # A module plugged back may be another one, or powered anew: check its SAM from the start.
        self.session = ReaderSession(poll_s=self.session.poll_s)
        self._status(DeviceState.FAULT, DeviceFault.PORT_MISSING)

    def _handle(self, event: Event) -> None:
        if isinstance(event, ModuleChanged):
            if event.ok:
                self._status(DeviceState.OK)
            else:
                log.warning("ID card reader %s: %s", self.reader.id, event.reason)
                self._status(DeviceState.FAULT, DeviceFault.NOT_RESPONDING)
            return
        read = card_read(event, self.key, self.clock())
        if isinstance(event, CardUnreadable):
            log.info("ID card reader %s: card not read (%s)", self.reader.id, event.reason)
        else:
            log.info("ID card reader %s: card read %s", self.reader.id, "ok" if read.ok else read.problem)
        self.bus.publish(CARD_READ, read, kiosk=self.reader.kiosk)

    def _status(self, state: DeviceState, *faults: DeviceFault) -> None:
        if self._state == (state, faults):
            return
        self._state = (state, faults)
        self.bus.set_status(state, list(faults), detail=f"ID card reader of kiosk {self.reader.kiosk}")
