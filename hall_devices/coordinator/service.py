"""The coordinator process: MQTT in, engine, event store, MQTT out.

paho's thread only puts decoded messages on a queue. One worker thread takes them in batches:
decides each (deduplicating by command key), commits the batch's events and command keys in one
transaction, publishes replies and effects, and only once the broker has confirmed all of them
(QoS 1 PUBACKs) acknowledges the messages (manual acks on a persistent session). A crash before
the commit loses nothing: the broker redelivers; a crash after it applies nothing twice: the
command key is in the store and the redelivered command gets its original reply.

A command that raises (a bug, not a refusal) is a poison command: it alone gets an
``internal_error`` reply, is kept as a dead letter with its command key (so a redelivery is answered
from the store and never re-run), and the rest of its batch goes on. When it may have half-changed
the engine's state, what the batch decided before it is committed and the engine is rebuilt from the
store. Every refusal (the engine's, a query's, an internal error) is also published on the error
route. One coordinator per store: :class:`StoreLock`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hall_devices.bus import Bus, BusOptions, Inbound, PayloadTooLargeError, Sent
from hall_devices.contract import (
    MAX_PAYLOAD_BYTES,
    REGION_CONFIG,
    REGION_RESEND,
    ConfigPush,
    ConfigResult,
    DeviceStatus,
    ErrorReport,
    Payload,
    Problem,
    QueryAnswer,
    QueryKind,
    QueryReply,
    QueryRequest,
    Reply,
    RequestRoute,
    ResendRequest,
    route,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.backup import HighWater, high_water_path
from hall_devices.coordinator.calendar import business_day
from hall_devices.coordinator.clock import Reading, boot_id, boottime
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.model import STATE_ADAPTER
from hall_devices.coordinator.outcome import EngineError, Outcome, Publish
from hall_devices.coordinator.queries import answer, dead_letters
from hall_devices.coordinator.reminders import Reminders, phone_conflict, remember_phone
from hall_devices.coordinator.store import (
    EXCERPT_CHARS,
    ClockRow,
    CommandRow,
    DeadLetter,
    EventRow,
    EventStore,
    StoreError,
    StoreLock,
)
from hall_devices.layout import Layout
from hall_devices.layout_follow import published
from hall_devices.region import config as region_config
from hall_devices.region.forward import Forwarder
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
COMMAND_ROUTES = ("ticket_request", "window_command", "rating", "staff_command", "print_result", "query")
BATCH = 256
TICK_S = 0.5
CONFIRM_S = 5.0  # how long a batch's answers may take to reach the broker before we stop waiting
CONFIRM_POLL_S = 0.005  # how often pending confirmations are looked at (polling faster costs CPU)
SNAPSHOT_EVERY = 10_000
SUMMARY_AT_LEAST_S = 30.0  # the queue summary is republished at least this often


@dataclass(frozen=True)
class _Marker:
    name: str  # "reconnected": republish every retained state


Item = Inbound[Any] | _Marker


@dataclass(frozen=True)
class _Unconfirmed:
    since: float
    sent: list[Sent]
    acks: list[Inbound[Any]]


@dataclass
class _Batch:
    """What a batch has decided: rows, commands and dead letters not yet committed; the answers,
    outcomes and acknowledgements it will publish; the command keys it has seen."""

    rows: list[EventRow] = field(default_factory=list)
    commands: list[CommandRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    replies: list[tuple[Inbound[Any], Reply]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seen: dict[str, bytes | None] = field(default_factory=dict)
    acks: list[Inbound[Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)  # forwarded to the region: acks wait for these too

    def committed(self) -> None:
        self.rows, self.commands, self.dead = [], [], []


def _failure(item: Inbound[Any], problem: Problem) -> Reply | None:
    """The ``ok: false`` answer to a message, or None when its route has no answer."""
    if not isinstance(item.route, RequestRoute):
        return None
    model = item.route.answer.model
    reply = model.model_validate({"command_id": command_id(item.payload), "ok": False, "error": problem})
    assert isinstance(reply, Reply)
    return reply


def _excerpt(payload: Payload, chars: int) -> str:
    """The payload as JSON, cut to ``chars``; a payload that cannot even be dumped is shown as repr:
    this runs for the messages that already broke something."""
    try:
        return payload.model_dump_json()[:chars]
    except Exception:
        return repr(payload)[:chars]


def command_id(payload: Payload) -> str | None:
    for name in ("command_id", "job_id", "rating_id"):
        value = getattr(payload, name, None)
        if isinstance(value, str):
            return value
    return None


def command_key(route_name: str, payload: Payload) -> str | None:
    found = command_id(payload)
    return None if found is None else f"{route_name}:{found}"


def rebuild(layout: Layout, store: EventStore, boot: str | None = None) -> Engine:
    """The engine as it was: the latest snapshot, then every event after it.

    A snapshot that no longer fits the state's shape (after an upgrade) is passed over: the events
    are the truth, and replaying all of them gives the same state.
    """
    snapshot = store.latest_snapshot()
    state = None
    if snapshot is not None:
        try:
            state = STATE_ADAPTER.validate_json(snapshot[1])
        except ValueError as exc:
            log.warning("snapshot at event %d does not fit this version (%s): replaying every event",
                        snapshot[0], str(exc).splitlines()[0])
            snapshot = None
    engine = Engine(layout, state)
    start = snapshot[0] if snapshot else 0
    for seq, body in store.events_after(start):
        engine.replay(ev.event_from_json(body))
        engine.state.last_seq = seq
    engine.reindex()
    engine.clock.boot = boot
    stored = store.clock_reading()
    if stored is not None:  # of this boot, it links the clock to the latest commit
        engine.clock.resume(Reading(datetime.fromisoformat(stored.wall), stored.boottime, stored.boot))
    return engine


def utc_now() -> datetime:
    return datetime.now(UTC)


class CoordinatorService:
    def __init__(self, settings: Settings, layout: Layout, store_path: Path,
                 clock: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] | None = None, *, boot: str | None = None,
                 layout_text: str | None = None) -> None:
        self.layout = layout
        self.clock = clock
        # Read with the wall clock so the engine tells a clock step from time passing; a test's
        # own wall clock without a monotonic one can show only steps back. Boottime counts a
        # suspended PC's night as time that passed; the boot id tells whether a stored one compares.
        self.monotonic = monotonic or (boottime if clock is utc_now else None)
        self.boot = boot if monotonic else (boot_id() if clock is utc_now else None)
        self.lock = StoreLock(store_path)  # raises StoreLockedError naming the other coordinator
        try:
            self.store = EventStore(store_path)
        except BaseException:
            self.lock.release()
            raise
        pushed = region_config.load(store_path) if settings.region_forward else None
        if pushed is not None:  # the region's last pushed layout outlives a restart
            self.layout = layout = pushed.layout
        self.layout_version = pushed.version if pushed else 0
        # The text every process follows (``hall_layout``, retained); None: nothing published.
        self.layout_text = pushed.text if pushed else layout_text
        self.high_water = HighWater(high_water_path(store_path))  # what a restore must not reissue
        started = time.perf_counter()
        self.engine = rebuild(layout, self.store, self.boot)
        self.rebuild_s = time.perf_counter() - started
        self._inbox: queue.Queue[Item] = queue.Queue()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="coordinator", daemon=True)
        self._since_snapshot = 0
        self._queue_pending = True
        self._queue_published_at = 0.0
        # Batches whose answers are not yet confirmed by the broker, oldest first (acks go in order).
        self._unconfirmed: deque[_Unconfirmed] = deque()
        self.bus = Bus(settings, BusOptions(
            client_id="coordinator", hall_id=layout.hall.id, device_id="coordinator",
            device_kind="coordinator", persistent_session=True, manual_ack=True,
            max_inflight=1000, receive_maximum=1000, on_connection=self._connection_changed))
        for name in (*COMMAND_ROUTES, "device_status"):
            self.bus.subscribe(route(name), self._inbox.put)
        self.reminders = (Reminders(settings, store_path.with_name("reminders.sqlite3"))
                          if settings.sms_gateway_url else None)
        # Region (issue 20): committed events out after each commit, resend requests answered.
        self.forwarder = Forwarder(layout.hall.id, self.store) if settings.region_forward else None
        self._resent: list[Sent] = []
        if self.forwarder is not None:
            self.bus.subscribe(REGION_RESEND, self._inbox.put)
            self.bus.subscribe(REGION_CONFIG, self._inbox.put)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, wait_s: float | None = None) -> None:
        log.info("state rebuilt from %s in %.3f s (%d events)", self.store.path, self.rebuild_s,
                 self.store.last_seq)
        self._worker.start()
        if self.reminders is not None:
            self.reminders.start()
        self.bus.start(wait_s)

    def _publish_layout(self) -> Sent | None:
        """The layout this hall runs, for every process to follow (layout_follow.py)."""
        if self.layout_text is None:
            return None
        try:
            return self._send(Publish("hall_layout", {}, published(self.layout_version, self.layout_text)))
        except PayloadTooLargeError:  # never stops the republishing beside it; processes keep theirs
            log.exception("the layout is too large to publish: processes keep the layout they run")
            return None

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=10)
        self.bus.stop()
        self.store.close()
        if self.reminders is not None:
            self.reminders.stop()
        self.lock.release()

    def _connection_changed(self, up: bool) -> None:
        if up:
            self._inbox.put(_Marker("reconnected"))

    # --- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                wait = max(0.0, next_tick - time.monotonic())
                batch = self._take(min(wait, CONFIRM_POLL_S) if self._unconfirmed else wait)
                if batch:
                    self._process(batch)
                self._ack_confirmed()
                if time.monotonic() >= next_tick:
                    self._tick()
                    next_tick = time.monotonic() + TICK_S
            except Exception:  # never a silent coordinator: unacknowledged work comes back redelivered
                log.exception("coordinator worker: unexpected error; state rebuilt from the store")
                self._stop.wait(0.2)
                with contextlib.suppress(Exception):  # what was decided but not committed is dropped
                    self.engine = rebuild(self.layout, self.store, self.boot)
                next_tick = time.monotonic()

    def _take(self, wait_s: float) -> list[Item]:
        try:
            batch = [self._inbox.get(timeout=wait_s)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[Item]) -> None:
        done = _Batch()
        for item in batch:
            if isinstance(item, _Marker):
                self._publish_layout()  # (again) after each connection: a broker may have lost it
                done.outcomes.append(Outcome(dirty_windows={w.number for w in self.layout.windows},
                                             queue_changed=True))
                continue
            done.acks.append(item)
            now = self.clock()
            applied = self.engine.applied
            try:
                self._decide(item, now, done)
            except (sqlite3.Error, StoreError):
                raise  # the store, not the command: nothing is committed or acked, all come back
            except Exception as exc:
                self._poisoned(item, exc, now, done)
                if self.engine.applied != applied:
                    # It may have half-changed the state: keep what came before it, start again
                    # from the store (which never saw its events).
                    self._commit(done)
                    self.engine = rebuild(self.layout, self.store, self.boot)
        self._commit(done)
        sent = done.sent + [one for inbound, reply in done.replies if (one := self._answer(inbound, reply))]
        sent += self._publish(done.outcomes)
        if done.acks:
            self._unconfirmed.append(_Unconfirmed(time.monotonic(), sent, done.acks))
        if self._since_snapshot >= SNAPSHOT_EVERY:
            self.snapshot()

    def _decide(self, item: Inbound[Any], now: datetime, done: _Batch) -> None:
        """Decide one message; appends to the lists only once nothing more can raise."""
        if item.route.name == "device_status":
            if isinstance(item.payload, DeviceStatus):
                outcome = self.engine.device_status(item.payload, now)
                if outcome.refused is not None:
                    outcome.publish.append(self._error_report(item, outcome.refused, now))
                done.outcomes.append(outcome)
            return
        if isinstance(item.payload, ResendRequest | ConfigPush):
            self._read(item, now, done.replies)  # the region's: nothing for the engine to decide
            return
        if isinstance(item.payload, QueryRequest):
            reply = self._query(item.payload, now)  # a read: nothing to commit
            done.replies.append((item, reply))
            if reply.error is not None:
                done.outcomes.append(Outcome(publish=[self._error_report(item, reply.error, now)]))
            return
        key = command_key(item.route.name, item.payload)
        if key is None:
            return
        if key in done.seen:
            self._queue_duplicate(item, done.seen[key], done.replies)
            return
        known, stored = self.store.reply_for(key)
        if known:
            log.info("command %s seen before: answered with its original reply", key)
            self._queue_duplicate(item, stored, done.replies)
            return
        clock = self.engine.observe(now, self._mono())  # a step or a new day, before the command
        done.rows += [self._row(e, None) for e in clock.events]
        done.outcomes.append(clock)
        conflict = phone_conflict(self.reminders, self.engine, item.payload) if self.reminders else None
        outcome = conflict or self.engine.handle(item.route.name, item.payload, item.params, now,
                                                 token=secrets.token_urlsafe(12))
        if outcome.refused is not None and outcome.reply is None:
            # Nobody to answer, so say it on the error route; and not remembered as applied: the
            # id may be another sender's (a job id is predictable), whose own message must count.
            done.outcomes.append(Outcome(publish=[self._error_report(item, outcome.refused, now)]))
            return
        reply_bytes = outcome.reply.model_dump_json().encode() if outcome.reply else None
        new_rows = [self._row(e, key) for e in outcome.events]
        if outcome.reply is not None and outcome.reply.error is not None:
            outcome.publish.append(self._error_report(item, outcome.reply.error, now))
        done.seen[key] = reply_bytes
        done.commands.append(CommandRow(key, now.isoformat(), reply_bytes))
        done.rows += new_rows
        if outcome.reply is not None:
            done.replies.append((item, outcome.reply))
        done.outcomes.append(self._remember(item.payload, outcome))

    def _poisoned(self, item: Inbound[Any], exc: Exception, now: datetime, done: _Batch) -> None:
        """A command that raised: its own internal_error reply, a dead letter, its key kept."""
        key = command_key(item.route.name, item.payload)
        log.error("command %s on %s (message id %s) failed; answered internal_error and kept as a "
                  "dead letter", key, item.topic, item.mid, exc_info=exc)
        # Chinese first: a kiosk or console may show this message as it is.
        problem = Problem(code="internal_error", message=f"系统内部错误，已记录，请联系工作人员 / the "
                          f"coordinator could not handle this message ({type(exc).__name__}); it is "
                          "kept for the hall manager")
        reply = _failure(item, problem)
        # Kept with its key (queries are not deduplicated): a redelivery gets this reply, not a re-run.
        if key is not None and not isinstance(item.payload, QueryRequest) and key not in done.seen:
            reply_bytes = reply.model_dump_json().encode() if reply is not None else None
            done.seen[key] = reply_bytes
            done.commands.append(CommandRow(key, now.isoformat(), reply_bytes))
        done.dead.append(DeadLetter(now.isoformat(), item.topic, key,
                                    _excerpt(item.payload, EXCERPT_CHARS),
                                    f"{type(exc).__name__}: {exc}"[:500]))
        if reply is not None:
            done.replies.append((item, reply))
        done.outcomes.append(Outcome(publish=[self._error_report(item, problem, now)]))

    def _commit(self, done: _Batch) -> None:
        committed: list[EventRow] = []
        if done.commands or done.rows or done.dead:
            self.engine.state.last_seq = self.store.commit(done.rows, done.commands, done.dead,
                                                           self._clock_row())
            self._since_snapshot += len(done.rows)
            committed = done.rows
            # Before any reply: a restore from an older backup must still see these numbers.
            self.high_water.record([e for o in done.outcomes for e in o.events
                                    if isinstance(e, ev.TicketIssued)])
        done.sent += self._forward(committed)  # the region's copy, and this batch's resends
        done.committed()

    def _error_report(self, item: Inbound[Any], problem: Problem, now: datetime) -> Publish:
        report = ErrorReport(topic=item.topic, problem=problem,
                             excerpt=_excerpt(item.payload, 200),
                             reported_by=self.bus.options.device_id, at=now)
        return Publish("error", {"reporter": self.bus.options.device_id}, report)

    def _ack_confirmed(self) -> None:
        """Acknowledge, in the order received, the messages whose answers the broker has confirmed.

        Not waiting in place keeps the worker deciding the next command while PUBACKs travel.
        """
        while self._unconfirmed:
            head = self._unconfirmed[0]
            if any(one.failed for one in head.sent):  # sent while disconnected: redelivered later
                log.info("answers to %d messages were not sent; the broker redelivers them", len(head.acks))
            elif all(one.done for one in head.sent):
                for inbound in head.acks:
                    self.bus.ack(inbound)
            elif time.monotonic() - head.since < CONFIRM_S:
                return
            else:  # not acknowledged: the broker redelivers them and the store answers them again
                log.warning("the broker did not confirm the answers to %d messages within %.0f s; "
                            "they stay unacknowledged", len(head.acks), CONFIRM_S)
            self._unconfirmed.popleft()

    def _query(self, query: QueryRequest, now: datetime) -> QueryReply:
        try:
            data: QueryAnswer
            if query.kind is QueryKind.DEAD_LETTERS:
                data = dead_letters(self.layout, self.store.dead_letters(), self.store.count("dead_letters"))
            else:
                data = answer(self.engine, self.store.events_of_days, query, now)
        except EngineError as refused:
            return QueryReply(command_id=query.command_id, ok=False,
                              error=Problem(code=refused.code, message=refused.message))
        except ValueError as exc:
            return QueryReply(command_id=query.command_id, ok=False,
                              error=Problem(code="bad_query", message=str(exc)))
        except Exception as exc:  # a read changed nothing: answer it, never fail the worker's batch
            log.exception("query %s (%s) failed", query.command_id, query.kind)
            return QueryReply(command_id=query.command_id, ok=False, error=Problem(
                code="internal_error", message=f"查询失败，已记录，请联系工作人员 / the query failed "
                                               f"({type(exc).__name__}); it is logged"))
        reply = QueryReply(command_id=query.command_id, ok=True, data=data)
        size = len(reply.model_dump_json())
        if size > MAX_PAYLOAD_BYTES:  # the broker would drop it and the asker wait in vain
            return QueryReply(command_id=query.command_id, ok=False, error=Problem(
                code="too_large", message=f"the answer is {size} bytes, over the limit of "
                                          f"{MAX_PAYLOAD_BYTES}: ask for fewer days"))
        return reply

    def _queue_duplicate(self, item: Inbound[Any], stored: bytes | None,
                         replies: list[tuple[Inbound[Any], Reply]]) -> None:
        if not isinstance(item.route, RequestRoute) or stored is None:
            return
        model = item.route.answer.model
        reply = model.model_validate_json(stored)
        assert isinstance(reply, Reply)
        replies.append((item, reply))

    def _row(self, event: ev.Event, key: str | None) -> EventRow:
        # The business day the engine was in, not the clock's: a clock stepped into tomorrow
        # does not file today's events under it.
        day = getattr(event, "day", None) or self.engine.state.day or business_day(self.layout.hall, event.at)
        return EventRow(event.kind, event.at.isoformat(), day, key, ev.event_json(event))

    def _clock_row(self) -> ClockRow | None:
        reading = self.engine.clock.reading
        if reading is None or reading.mono is None or self.boot is None:
            return None
        return ClockRow(self.boot, reading.mono, reading.wall.isoformat())

    def _mono(self) -> float | None:
        return self.monotonic() if self.monotonic else None

    def _tick(self) -> None:
        now = self.clock()
        outcome = self.engine.tick(now, self._mono())
        if time.monotonic() - self._queue_published_at >= SUMMARY_AT_LEAST_S:
            self._queue_pending = True  # its time is the clock pages count from (web/static/app.js)
        if outcome.events:
            rows = [self._row(e, None) for e in outcome.events]
            self.engine.state.last_seq = self.store.commit(rows, [], reading=self._clock_row())
            self._since_snapshot += len(rows)
            self._forward(rows)
        if self.forwarder is not None and (head := self.forwarder.head(now, time.monotonic(),
                                                                      self.layout_version)):
            self._send(Publish("region_head", {}, head))
        self._publish([outcome])

    def _remember(self, payload: Payload, outcome: Outcome) -> Outcome:
        if self.reminders is not None:  # a booking's phone number, kept apart from the event store
            remember_phone(self.reminders, self.layout, payload, outcome)
        return outcome

    def _read(self, item: Inbound[Any], now: datetime, replies: list[tuple[Inbound[Any], Reply]]) -> None:
        if isinstance(item.payload, QueryRequest):
            replies.append((item, self._query(item.payload, now)))
        elif isinstance(item.payload, ResendRequest) and self.forwarder is not None:
            self._resent += [self._send(Publish("region_events", {}, m))
                             for m in self.forwarder.resend(item.payload)]
        elif isinstance(item.payload, ConfigPush):
            replies.append((item, self._push(item.payload, now)))

    def _push(self, push: ConfigPush, now: datetime) -> ConfigResult:
        """Check a layout version from the region and apply it at once: a new engine over the same
        state, so queues, called tickets and signed-in clerks stay; answered once per command id."""
        key = f"region_config:{push.command_id}"
        known, stored = self.store.reply_for(key)
        if known and stored is not None:
            return ConfigResult.model_validate_json(stored)
        new, reasons = region_config.check(self.layout, self.layout_version, push.version,
                                           push.layout_toml, self.engine.state,
                                           today=business_day(self.layout.hall, now))
        if new is None:
            result = ConfigResult(command_id=push.command_id, ok=False, version=push.version,
                                  running_version=self.layout_version or None, reasons=reasons,
                                  error=Problem(code="config_refused", message="; ".join(reasons)[:2000]))
        else:
            region_config.save(self.store.path, push.version, push.layout_toml)
            self.layout, self.layout_version = new, push.version
            self.layout_text = push.layout_toml
            self.engine = Engine(new, self.engine.state)
            self._publish_layout()  # retained: every process swaps to it, one started later too
            self._inbox.put(_Marker("reconnected"))  # every window's state and the queue, republished
            log.info("layout version %d from the region applied", push.version)
            result = ConfigResult(command_id=push.command_id, ok=True, version=push.version,
                                  running_version=push.version)
        self.store.commit([], [CommandRow(key, now.isoformat(), result.model_dump_json().encode())])
        return result

    def _forward(self, rows: list[EventRow]) -> list[Sent]:
        """The region's copy of events just committed (a message to the local broker only), and
        the resends of this batch: the batch's acknowledgements wait for these too."""
        sent, self._resent = self._resent, []
        if self.forwarder is None or not rows:
            return sent
        return sent + [self._send(Publish("region_events", {}, m))
                       for m in self.forwarder.committed(self.store.last_seq, rows)]

    def _publish(self, outcomes: list[Outcome]) -> list[Sent]:
        """Called after the commit of ``outcomes``' events (so a reminder is only for what is recorded)."""
        happened = [e for o in outcomes for e in o.events]
        if self.reminders is not None and happened:
            self.reminders.observe(happened, self.engine, self.clock())
        sent: list[Sent] = []
        dirty: set[int] = set()
        for outcome in outcomes:
            dirty |= outcome.dirty_windows
            self._queue_pending |= outcome.queue_changed
        state = self.engine.state
        # Window states before the calls: an LED bus agent then starts the window's own frame
        # before the hall screen's longer one, instead of the call waiting behind it on the wire.
        for number in sorted(dirty):
            sent += self._send_alone(Publish("window_state", {"window": number},
                                             self.engine.views.window(state, number, self.clock())))
        for outcome in outcomes:
            for message in outcome.publish:
                sent += self._send_alone(message)
        # The queue summary is a sweep over all waiting tickets: at most twice a second.
        if self._queue_pending and time.monotonic() - self._queue_published_at >= TICK_S:
            summary = self.engine.views.queue(state, self.clock())
            sent += self._send_alone(Publish("queue_summary", {}, summary))
            self._queue_pending = False
            self._queue_published_at = time.monotonic()
        return sent

    def _send(self, message: Publish) -> Sent:
        return self.bus.publish(route(message.route), message.payload, **message.params)

    def _send_alone(self, message: Publish) -> list[Sent]:
        """Publish one outcome message; one too large for the bus fails on its own: logged and
        reported on the error route (``too_large``), never taking the batch's other messages, its
        answers or the worker with it. Returns what was handed to the client (none or one)."""
        try:
            return [self._send(message)]
        except PayloadTooLargeError as exc:
            log.error("%s not published: %s", message.route, exc)
            now = self.clock()
            report = ErrorReport(
                topic=route(message.route).pattern, excerpt=_excerpt(message.payload, 200),
                problem=Problem(code="too_large", message=f"协调器的 {message.route} 消息过大，未发布 / "
                                f"the coordinator's {message.route} message was not published: {exc}"),
                reported_by=self.bus.options.device_id, at=now)
            try:
                return [self._send(Publish("error", {"reporter": self.bus.options.device_id}, report))]
            except Exception:
                log.exception("could not report the unpublished %s", message.route)
                return []

    def _answer(self, inbound: Inbound[Any], reply: Reply) -> Sent | None:
        """Publish an answer; one that cannot be sent (its topic cannot be made) is logged and
        left out, and never stops the batch's other answers."""
        try:
            return self.bus.answer(inbound, reply)
        except Exception:
            log.exception("could not answer %s (message id %s)", inbound.topic, inbound.mid)
            return None

    def snapshot(self) -> None:
        body = STATE_ADAPTER.dump_json(self.engine.state)
        self.store.save_snapshot(self.engine.state.last_seq, self.clock().isoformat(), body)
        self._since_snapshot = 0
