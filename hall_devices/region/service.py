"""`hall-devices region`: every hall's events from the regional broker into PostgreSQL, once, in order.

paho's thread only queues decoded messages. One worker thread takes them in batches, lets each
hall's :class:`HallIngest` decide what to store, stores it (one transaction per hall per batch, see
:class:`RegionDb`), and only then acknowledges the messages (manual acks on a persistent session):
a region killed mid-ingest gets the unacknowledged messages again and the store's mark drops what
it already has. Gaps are asked for with resend requests on the hall's bridged topic.

An event PostgreSQL refuses for what it holds (a date that is none, text it cannot hold, a body
jsonb refuses, a body nested too deep: a stolen hall account, or an older or newer hall) is parked
(:mod:`hall_devices.region.parking`: which errors are the event's, and why), in the transaction that
stores the good events around it and moves the mark past it, with a warning; its hall's stream goes
on, and the dashboard shows it. A later copy of a parked seq (the hall's own event, when a stolen or
broken account's junk took its number first) is stored in its place, once (:meth:`_copies`). Any
other message the database or the region cannot take (a layout version beyond an int, what breaks a
constraint the region keeps itself, an error of the moment: a deadlock, a lock timeout) is refused
alone, logged, and its hall's ingest set back to the stored mark, so what it held is asked for
again; the rest of the batch goes on. Only the database itself failing (connection lost, restarted)
fails the batch.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import psycopg

from hall_devices.agent import Worker
from hall_devices.contract import (
    REGION_ALERTS_IN,
    REGION_CONFIG_OUT,
    REGION_CONFIG_RESULT_IN,
    REGION_EVENTS_IN,
    REGION_HEAD_IN,
    REGION_RESEND_OUT,
    ActiveAlerts,
    ConfigPush,
    ConfigResult,
    ForwardedEvent,
    Payload,
    RegionEvents,
    RegionHead,
    ResendRequest,
)
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.region.db import RATING_KINDS, RECORD_SOURCE_KINDS, RegionDb, RegionDbError
from hall_devices.region.ingest import HallIngest, IngestError
from hall_devices.region.outbox import Endpoint, Outbox
from hall_devices.region.parking import KIND_SAID
from hall_devices.region.profiles import load_profile
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Payload)
REGION_ID = "region"  # the service's account, client id and device id on the regional broker
BATCH = 500
TICK_S = 0.5
REPORT_EVERY_S = 1.0
PUSH_AGAIN_S = 60.0


@dataclass
class _Pass:
    """One pass of the worker over a batch: its clock reading and the latest head of each hall."""

    now_s: float
    heads: dict[str, RegionHead] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    """A message taken from the bus: its typed handler bound to it, and its acknowledgement."""

    site: str  # the hall it came from (its topic's, which the broker's ACL vouches for)
    run: Callable[[_Pass], None]
    ack: Callable[[], None]


class RegionService:
    def __init__(self, settings: Settings, db_url: str) -> None:
        self.db = RegionDb(db_url)
        self.halls: dict[str, HallIngest] = {}
        self.districts: dict[str, str] = {}
        # hall → its parked seqs not replaced: a later copy of one is tried in its place (_copies)
        self.parked: dict[str, set[int]] = self.db.parked_seqs()
        for mark in self.db.marks():
            ingest = HallIngest(mark.hall_id)
            ingest.restore(mark.applied, mark.head)
            self.halls[mark.hall_id] = ingest
            self.districts[mark.hall_id] = mark.district
        self._stopped = False
        # Unacknowledged messages come back after an error; the store's marks stay right.
        self.worker: Worker[_Job] = Worker("region", self._batch, self._tick, on_error=self._recover,
                                           batch_max=BATCH, error_pause_s=1.0)
        self.bus = Bus(settings, BusOptions(
            client_id=REGION_ID, hall_id=REGION_ID, device_id=REGION_ID, device_kind="region",
            persistent_session=True, manual_ack=True, max_inflight=1000, receive_maximum=1000))
        self.bus.subscribe(REGION_EVENTS_IN, self._queued(self._events))
        self.bus.subscribe(REGION_HEAD_IN, self._queued(self._head))
        self.bus.subscribe(REGION_CONFIG_RESULT_IN, self._queued(self._config_result))
        self.bus.subscribe(REGION_ALERTS_IN, self._queued(self._alerts))
        self._outbox: Outbox | None = None
        self._reporter: Worker[None] | None = None
        if settings.region_report_url:
            endpoint = Endpoint(settings.region_report_url, settings.region_report_username,
                                settings.region_report_password.get_secret_value()
                                if settings.region_report_password else None,
                                settings.region_report_token.get_secret_value()
                                if settings.region_report_token else None,
                                settings.region_report_ca_file)
            self._outbox = Outbox(db_url, endpoint, load_profile(settings.region_profile))
            # Its own thread: a slow province never holds up ingest.
            self._reporter = Worker("region-report", _nothing_posted, self._report,
                                    on_error=self._report_failed, error_pause_s=REPORT_EVERY_S)

    def start(self, wait_s: float | None = None) -> None:
        self.worker.start()
        if self._reporter is not None:
            self._reporter.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.worker.stop(timeout_s=10)
        if self._reporter is not None:
            self._reporter.stop(timeout_s=15)
            if self._outbox is not None and not self._reporter.is_alive:
                self._outbox.close()
        self.bus.stop()
        self.db.close()

    def _batch(self, batch: list[_Job]) -> None:
        try:
            self._process(batch)
        finally:
            # Stored, or (after a failure) a gap the hall is asked to fill from its store, which is
            # the truth: either way the broker may forget them. Unacknowledged messages would hold
            # the broker's in-flight window shut until a reconnect.
            for job in batch:
                job.ack()

    def _tick(self, now: float) -> float:
        """After each batch and at least every TICK_S: resend requests for gaps, layout pushes."""
        self._ask_for_gaps()
        self._send_pushes()
        return now + TICK_S

    def _recover(self, _exc: Exception) -> None:
        try:  # the database may have restarted: a new connection, the marks read again
            self.db.reconnect()
            self._reload_marks()
        except Exception as exc:
            log.warning("region database not reachable (%s); trying again", exc)

    def _report(self, now: float) -> float:
        """Deliver due 好差评 records to the province, every REPORT_EVERY_S."""
        assert self._outbox is not None
        self._outbox.deliver_due(datetime.now(UTC))
        return now + REPORT_EVERY_S

    def _report_failed(self, _exc: Exception) -> None:
        assert self._outbox is not None
        with contextlib.suppress(Exception):  # the database may have restarted
            self._outbox.reconnect()

    def _queued(self, handle: Callable[[Inbound[P], _Pass], None]) -> Callable[[Inbound[P]], None]:
        """A bus handler (paho's thread) that queues the message for ``handle`` on the worker."""
        def put(inbound: Inbound[P]) -> None:
            self.worker.post(_Job(inbound.params["site"], lambda batch: handle(inbound, batch),
                                  lambda: self.bus.ack(inbound)))

        return put

    def _hall(self, hall_id: str, district: str) -> HallIngest:
        ingest = self.halls.get(hall_id)
        if ingest is None:
            self.db.register(hall_id, district)
            ingest = self.halls[hall_id] = HallIngest(hall_id)
            self.districts[hall_id] = district
            log.info("new hall %s (行政区划 %s)", hall_id, district)
        return ingest

    def _process(self, batch: list[_Job]) -> None:
        done = _Pass(time.monotonic())
        for job in batch:
            self._alone(job.site, partial(job.run, done))
        for site, head in done.heads.items():
            self._alone(site, partial(self.db.heard, site, head.head, head.at, head.layout_version))

    def _alone(self, site: str, step: Callable[[], None]) -> None:
        """One message's work; what fails of it refuses that message only (see the module's doc).
        Raises when the connection is lost, for the worker's recovery: not on every OperationalError,
        which is also PostgreSQL's "stack depth limit exceeded" for a body nested too deep."""
        try:
            step()
        except psycopg.Error as exc:
            if self.db.conn.closed or self.db.conn.broken:
                raise
            self._refused(site, exc)
        except (IngestError, RegionDbError, ValueError) as exc:  # what the message holds
            self._refused(site, exc)
        except Exception:  # a bug of the region's: said loudly, but still costs this message only
            log.exception("refused a message of hall %s: unexpected error", site)
            self._reload_marks(site)

    def _refused(self, site: str, exc: Exception) -> None:
        log.warning("refused a message of hall %s: %s: %s", site, type(exc).__name__, str(exc)[:300])
        self._reload_marks(site)  # what it held or took for the failed store is asked for again

    def _ingest_of(self, inbound: Inbound[P]) -> tuple[str, HallIngest]:
        """The hall a message came from (its topic's ``site``), registered on first sight."""
        site = inbound.params["site"]
        return site, self._hall(site, inbound.params["district"])

    def _alerts(self, inbound: Inbound[ActiveAlerts], _done: _Pass) -> None:
        site, _ingest = self._ingest_of(inbound)
        self.db.set_alerts(site, inbound.payload)

    def _config_result(self, inbound: Inbound[ConfigResult], _done: _Pass) -> None:
        site, _ingest = self._ingest_of(inbound)
        result = inbound.payload
        if result.version is None:  # the hall could not read the push at all
            log.warning("hall %s refused a push it could not read: %s", site, result.error)
            return
        self.db.push_answered(site, result.version, result.ok, result.reasons, result.running_version)
        log.info("hall %s: layout version %d %s %s", site, result.version,
                 "applied" if result.ok else "refused:", "; ".join(result.reasons))

    def _head(self, inbound: Inbound[RegionHead], done: _Pass) -> None:
        site, ingest = self._ingest_of(inbound)
        ingest.receive([], inbound.payload.head, done.now_s)
        done.heads[site] = inbound.payload  # the last of the batch is written once, after it

    def _events(self, inbound: Inbound[RegionEvents], done: _Pass) -> None:
        site, ingest = self._ingest_of(inbound)
        try:
            answers = inbound.payload.resend_of is not None
            ready = ingest.receive(inbound.payload.events, inbound.payload.head, done.now_s, answers)
        except IngestError as exc:
            log.warning("refused events of hall %s: %s", site, exc)
            return
        if answers:
            self.db.set_head(site, ingest.head)
        if self.parked.get(site):
            self._copies(site, ingest.applied, inbound.payload.events)
        if ready:
            for one in self.db.apply(site, ingest.applied, ready):  # committed: said once
                self.parked.setdefault(site, set()).add(one.seq)
                record = ("; a 好差评 record may be missing" if one.kind in RATING_KINDS else
                          "; its ticket's 好差评 record may be incomplete" if one.kind in RECORD_SOURCE_KINDS
                          else "")
                log.warning("hall %s event %d (%s) parked, its stream goes on past it%s: PostgreSQL "
                            "refused it: %s %s", site, one.seq, one.kind, record, one.sqlstate or "",
                            one.error[:300])
            ingest.applied_up_to(ready[-1].seq)

    def _copies(self, site: str, applied: int, events: list[ForwardedEvent]) -> None:
        """Events at parked seqs (below the mark, which drops them): each tried once in its place. A
        stolen or broken account's junk parked at the hall's next seq, the hall's own event there came
        after it and was lost. Nothing is asked of the hall: the mark stays where it is."""
        waiting = self.parked[site]
        for one in events:
            if one.seq > applied or one.seq not in waiting:
                continue
            copy = self.db.store_copy(site, one)
            if copy.outcome in ("stored", "gone"):
                waiting.discard(one.seq)
            if copy.outcome == "stored":
                log.warning("hall %s event %d (%s) stored from a later copy of that seq, in place of the "
                            "event parked there (kept, marked replaced)%s; which of the two is the hall's "
                            "own, its store says", site, one.seq, one.kind[:KIND_SAID],
                            "; its 好差评 record made" if one.kind in RATING_KINDS else "")
            elif copy.outcome == "refused":
                log.warning("hall %s event %d (%s): a later copy of that parked seq, PostgreSQL refused "
                            "it too, left parked: %s %s", site, one.seq, one.kind[:KIND_SAID],
                            copy.sqlstate or "", copy.error[:300])

    def _ask_for_gaps(self) -> None:
        now_s = time.monotonic()
        for hall_id, ingest in self.halls.items():
            due = ingest.due(now_s)
            if due is None:
                continue
            log.info("hall %s: asking for events %d..%d again", hall_id, due.first_seq, due.last_seq)
            request = ResendRequest(command_id=f"resend-{secrets.token_hex(6)}", first_seq=due.first_seq,
                                    last_seq=due.last_seq)
            self.bus.publish(REGION_RESEND_OUT, request, district=self.districts[hall_id],
                             site=hall_id)

    def _send_pushes(self) -> None:
        """Layout versions queued for halls (``hall-devices region push``); a hall that is offline
        gets it from its bridge's queue, or again after :data:`PUSH_AGAIN_S` without an answer."""
        for hall_id, district, version, text in self.db.pushes_to_send(PUSH_AGAIN_S):
            push = ConfigPush(command_id=f"layout-{hall_id}-{version}", version=version, layout_toml=text)
            self.bus.publish(REGION_CONFIG_OUT, push, district=district, site=hall_id)
            self.db.push_sent(hall_id, version)
            log.info("hall %s: layout version %d sent", hall_id, version)

    def _reload_marks(self, only: str | None = None) -> None:
        """Every hall's ingest (or ``only`` this hall's) from its stored mark."""
        for mark in self.db.marks():
            ingest = self.halls.get(mark.hall_id)
            if ingest is not None and only in (None, mark.hall_id):
                fresh = HallIngest(mark.hall_id)
                fresh.restore(mark.applied, max(mark.head, ingest.head))
                self.halls[mark.hall_id] = fresh
        found = self.db.parked_seqs(only)
        if only is None:
            self.parked = found
        else:
            self.parked[only] = found.get(only, set())

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """hall → (applied, head), for status lines and tests."""
        return {h: (i.applied, i.head) for h, i in self.halls.items()}


def _nothing_posted(_items: list[None]) -> None:
    """The reporter is woken by its deadline only."""
