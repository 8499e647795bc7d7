"""The ID card reader agent: the module on a serial port, each card read published to its kiosk.

A thin adapter around :class:`ReaderSession` (the reader link, sans-IO): a :class:`PortReader` posts
what the port does to one :class:`Worker`, which feeds the session, writes the commands it returns
and publishes reads; the session's next deadline (the next poll, a reply overdue) wakes it, a reply
wakes it at once. What leaves this process is :class:`CardRead`: the keyed hash of the number and
masked name and number. The clear number and name are dropped as soon as they are hashed and
masked; log lines never carry them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

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
from hall_devices.contract import CARD_READ, CardRead, DeviceFault, DeviceState
from hall_devices.idcard.identity import IdNumberError, id_hash, mask_id, mask_name, normalise
from hall_devices.idcard.session import CardPresented, CardUnreadable, Event, ModuleChanged, ReaderSession
from hall_devices.layout import IdCardReaderDevice, Layout
from hall_devices.link import MONOTONIC, Clock, LinkLostError, SerialLink
from hall_devices.mqtt.bus import Bus, BusOptions
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 0.5  # bounds only how long stop() waits for the reader: a byte ends a read at once


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
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Clock = MONOTONIC) -> None:
        reader = layout.device(reader_id)
        if not isinstance(reader, IdCardReaderDevice):
            raise ValueError(f"device {reader_id!r} is a {reader.kind}, not an idcard_reader")
        self.reader = reader
        self.key = key
        self.clock = clock
        self._monotonic = monotonic
        self.session = ReaderSession(poll_s=poll_s)
        self.port_open = False
        self.link = SerialLink(url or reader.serial, reader.baudrate, reader.parity.value,
                               read_timeout_s=READ_TIMEOUT_S)
        self.worker: Worker[PortEvent] = Worker(f"idcard {reader_id}", self._on_batch, self._on_tick,
                                                clock=monotonic)
        self.port = PortReader(self.link, self.worker.post, f"idcard {reader_id} port")
        self.bus = Bus(settings, BusOptions(client_id=reader_id, hall_id=layout.hall.id, device_id=reader_id,
                                            device_kind="idcard_reader"))
        self.status = StatusReporter(self.bus.set_status)
        self.run = PortAgentRun(self.worker, self.port, self.bus)

    def start(self, wait_s: float | None = 10.0) -> None:
        # The port opened first: the first status is the module's (not responding until its SAM
        # answers), not a port missing for the moment the reader thread takes to open it.
        self.run.start(wait_s)

    def stop(self) -> None:
        self.run.stop()

    # --- the worker thread --------------------------------------------------------------------

    def _on_batch(self, batch: list[PortEvent]) -> None:
        for item in batch:
            if isinstance(item, PortOpened):
                self.port_open = True
            elif isinstance(item, PortLost):
                self._port_missing()
            elif isinstance(item, PortData) and self.port_open:
                events, follow = self.session.receive(item.data, self._monotonic())
                if follow is not None:
                    self._write(follow)
                for event in events:
                    self._handle(event)

    def _on_tick(self, now: float) -> float | None:
        if self.port_open:
            for event in self.session.check_timeout(now):
                self._handle(event)
            command = self.session.next_command(now)
            if command is not None:
                self._write(command)
        self._report()
        return self.session.next_deadline() if self.port_open else None

    def _write(self, data: bytes) -> None:
        try:
            self.link.write(data)
        except LinkLostError:  # the reader reports it too
            self._port_missing()

    def _port_missing(self) -> None:
        # A module plugged back may be another one, or powered anew: check its SAM from the start.
        if self.port_open:
            self.session = ReaderSession(poll_s=self.session.poll_s)
        self.port_open = False

    def _handle(self, event: Event) -> None:
        if isinstance(event, ModuleChanged):
            if not event.ok:
                log.warning("ID card reader %s: %s", self.reader.id, event.reason)
            return
        read = card_read(event, self.key, self.clock())
        if isinstance(event, CardUnreadable):
            log.info("ID card reader %s: card not read (%s)", self.reader.id, event.reason)
        else:
            log.info("ID card reader %s: card read %s", self.reader.id, "ok" if read.ok else read.problem)
        self.bus.publish(CARD_READ, read, kiosk=self.reader.kiosk)

    def _report(self) -> None:
        if not self.port_open:
            faults: tuple[DeviceFault, ...] = (DeviceFault.PORT_MISSING,)
        elif self.session.module_ok:
            faults = ()
        else:
            faults = (DeviceFault.NOT_RESPONDING,)
        self.status.report(DeviceState.FAULT if faults else DeviceState.OK, faults,
                           detail=f"ID card reader of kiosk {self.reader.kiosk}")
