"""The coordinator process: MQTT in, engine, event store, MQTT out.

paho's thread only posts decoded messages to a :class:`~hall_devices.agent.Worker`. Its thread takes
them in batches: turns each into a typed command (the topic's parameters become its fields) and has
the engine decide it (deduplicating by command key), commits the batch's events and command keys in
one transaction, maps the engine's effects to routes (outbound.py) and publishes them with the
replies, and only once the broker has confirmed all of them (QoS 1 PUBACKs; the last one the oldest
waiting batch needs wakes the worker: nothing polls) acknowledges the messages in the order
received (manual acks on a persistent session).
Queries over stored days run on a read connection on their own thread (reads.py); their answers
come back to this worker, and the acknowledgements still go in order. A crash before
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
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from hall_devices.agent import Worker
from hall_devices.contract import (
    DEVICE_STATUS,
    HALL_LAYOUT,
    PRINT_EXPECTED,
    PRINT_RESULT,
    QUERY,
    QUEUE_SUMMARY,
    RATING,
    REGION_CONFIG,
    REGION_EVENTS,
    REGION_HEAD,
    REGION_RESEND,
    STAFF_COMMAND,
    TICKET_REQUEST,
    WINDOW_COMMAND,
    WINDOW_STATE,
    ConfigPush,
    ConfigResult,
    DeviceStatus,
    ErrorReport,
    Payload,
    PrintExpected,
    PrintResult,
    Problem,
    QueryKind,
    QueryReply,
    QueryRequest,
    Rating,
    Reply,
    Request,
    RequestRoute,
    ResendRequest,
    StaffCommand,
    TicketRequest,
    WindowCommand,
    WindowState,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.backup import HighWater, high_water_path
from hall_devices.coordinator.calendar import business_day
from hall_devices.coordinator.clock import Reading, boot_id, boottime
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.model import STATE_ADAPTER
from hall_devices.coordinator.outbound import Outbound
from hall_devices.coordinator.outbound import excerpt as _excerpt
from hall_devices.coordinator.outcome import (
    ActAsStaff,
    ActAtWindow,
    Announce,
    AskRating,
    Command,
    Outcome,
    Rate,
    ReportError,
    ReportPrint,
    SendPrintJob,
    TakeTicket,
)
from hall_devices.coordinator.queries import StoredDays, prepare
from hall_devices.coordinator.reads import QueryReader, Read, Work, answered, dead_letters, refused
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
    events_of_days,
)
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound, PayloadTooLargeError, Sent
from hall_devices.mqtt.layout_follow import published
from hall_devices.region import config as region_config
from hall_devices.region.forward import Forwarder
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
# What the coordinator takes, typed by its route: the commands and queries, device statuses and
# the region's resend requests and layout pushes.
Received = (Inbound[TicketRequest] | Inbound[WindowCommand] | Inbound[Rating] | Inbound[StaffCommand]
            | Inbound[PrintResult] | Inbound[QueryRequest] | Inbound[DeviceStatus] | Inbound[ResendRequest]
            | Inbound[ConfigPush])
BATCH = 256
TICK_S = 0.5
STOP_SETTLE_S = 2.0  # a clean stop waits this long at most for answers in flight to be confirmed
CONFIRM_S = 5.0  # how long a batch's answers may take to reach the broker before we stop waiting
SNAPSHOT_EVERY = 10_000
SUMMARY_AT_LEAST_S = 30.0  # the queue summary is republished at least this often


@dataclass(frozen=True)
class _Marker:
    name: str  # "reconnected": republish every retained state


@dataclass
class _Unconfirmed:
    """A batch's acknowledgements, waiting for its answers to be confirmed (and, first, for the
    answers of its queries still running on the read connection: ``reads``)."""

    since: float
    sent: list[Sent]
    acks: list[Received]
    reads: int = 0


@dataclass(frozen=True)
class _Answered:
    """A query answered on the read connection, back on the worker to be published."""

    batch: _Unconfirmed
    inbound: Received
    reply: QueryReply


Item = Received | _Marker | _Answered


@dataclass
class _Batch:
    """What a batch has decided: rows, commands and dead letters not yet committed; the answers,
    outcomes and acknowledgements it will publish; the command keys it has seen."""

    rows: list[EventRow] = field(default_factory=list)
    commands: list[CommandRow] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    replies: list[tuple[Received, Reply]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    seen: dict[str, bytes | None] = field(default_factory=dict)
    acks: list[Received] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)  # forwarded to the region: acks wait for these too
    reads: list[tuple[Received, QueryRequest, Work]] = field(default_factory=list)  # read off thread

    def committed(self) -> None:
        self.rows, self.commands, self.dead = [], [], []


def _failure(item: Received, problem: Problem) -> Reply | None:
    """The ``ok: false`` answer to a message, or None when its route has no answer."""
    if not isinstance(item.route, RequestRoute):
        return None
    model = item.route.answer.model
    reply = model.model_validate({"command_id": command_id(item.payload), "ok": False, "error": problem})
    assert isinstance(reply, Reply)
    return reply


def command_id(payload: Payload) -> str | None:
    """A request's id, whatever its field is called (``Request.request_key``), or the id a reply
    answers (a printer's ``PrintResult`` is a command to the coordinator); None for others."""
    if isinstance(payload, Request):
        return payload.request_key
    return payload.command_id if isinstance(payload, Reply) else None


def command_key(route_name: str, payload: Payload) -> str | None:
    found = command_id(payload)
    return None if found is None else f"{route_name}:{found}"


def command_of(item: Received) -> Command | None:
    """The engine's command for a request: its payload and what its topic told, typed (a window
    number that is not one raises ValueError: a poison message). None: not a command."""
    payload, params = item.payload, item.params
    if isinstance(payload, TicketRequest):
        return TakeTicket(params.get("kiosk", ""), payload)
    if isinstance(payload, WindowCommand):
        return ActAtWindow(int(params.get("window", "")), payload)
    if isinstance(payload, Rating):
        return Rate(int(params.get("window", "")), payload)
    if isinstance(payload, StaffCommand):
        return ActAsStaff(params.get("staff", ""), payload)
    if isinstance(payload, PrintResult):
        return ReportPrint(params.get("printer", ""), payload)
    return None


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


def _numbers_failed(write: Future[None]) -> None:
    """A background write of the high-water file that failed: said (a ticket it should have
    covered waits for the next one, which is planned again)."""
    error = write.exception()
    if error is not None:
        log.error("the high-water file could not be written (%s): the next ticket waits for it", error)


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
        self._numbers = ThreadPoolExecutor(1, thread_name_prefix="coordinator numbers")
        self._numbers_pending: Future[None] | None = None  # the newest high-water write asked for
        started = time.perf_counter()
        self.engine = rebuild(layout, self.store, self.boot)
        self.rebuild_s = time.perf_counter() - started
        self.worker: Worker[Item] = Worker("coordinator", self._process, self._on_tick,
                                           on_error=self._recover, batch_max=BATCH)
        self.reader = QueryReader(store_path)
        self._stopped = False
        self._next_tick = time.monotonic()
        # Message ids the broker confirmed (paho's thread appends, the worker takes): paho calls
        # back just before it marks the publish done, so the id is what tells it in between.
        self._published: deque[int] = deque()
        # The ids whose PUBACKs the oldest waiting batch still needs (the worker sets them, paho's
        # thread takes them out); the lock keeps the two from missing each other's change.
        self._awaited: set[int] = set()
        self._awaited_lock = threading.Lock()
        self._confirmed: set[int] = set()
        self._since_snapshot = 0
        self._queue_pending = True
        self._queue_published_at = 0.0
        # Batches whose answers are not yet confirmed by the broker, oldest first (acks go in order).
        self._unconfirmed: deque[_Unconfirmed] = deque()
        self.bus = Bus(settings, BusOptions(
            client_id="coordinator", hall_id=layout.hall.id, device_id="coordinator",
            device_kind="coordinator", persistent_session=True, manual_ack=True,
            max_inflight=1000, receive_maximum=1000, on_connection=self._connection_changed,
            on_published=self._on_published))
        self.out = Outbound(self.bus, clock)
        post = self.worker.post  # one subscription a route, so each is checked against Received
        self.bus.subscribe(TICKET_REQUEST, post)
        self.bus.subscribe(WINDOW_COMMAND, post)
        self.bus.subscribe(RATING, post)
        self.bus.subscribe(STAFF_COMMAND, post)
        self.bus.subscribe(PRINT_RESULT, post)
        self.bus.subscribe(QUERY, post)
        self.bus.subscribe(DEVICE_STATUS, post)
        self.reminders = (Reminders(settings, store_path.with_name("reminders.sqlite3"))
                          if settings.sms_gateway_url else None)
        # Region (issue 20): committed events out after each commit, resend requests answered.
        self.forwarder = Forwarder(layout.hall.id, self.store) if settings.region_forward else None
        self._resent: list[Sent] = []
        if self.forwarder is not None:
            self.bus.subscribe(REGION_RESEND, self.worker.post)
            self.bus.subscribe(REGION_CONFIG, self.worker.post)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, wait_s: float | None = None) -> None:
        log.info("state rebuilt from %s in %.3f s (%d events)", self.store.path, self.rebuild_s,
                 self.store.last_seq)
        self.reader.start()
        self.worker.start()
        if self.reminders is not None:
            self.reminders.start()
        self.bus.start(wait_s)

    def _publish_layout(self) -> Sent | None:
        """The layout this hall runs, for every process to follow (mqtt/layout_follow.py)."""
        if self.layout_text is None:
            return None
        try:
            return self.bus.publish(HALL_LAYOUT, published(self.layout_version, self.layout_text))
        except PayloadTooLargeError:  # never stops the republishing beside it; processes keep theirs
            log.exception("the layout is too large to publish: processes keep the layout they run")
            return None

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.worker.stop(timeout_s=10)
        self._numbers.shutdown()
        self.reader.stop()
        if not self.worker.is_alive:
            self._settle(STOP_SETTLE_S)
        self.bus.stop()
        self.store.close()
        if self.reminders is not None:
            self.reminders.stop()
        self.lock.release()

    def _settle(self, timeout_s: float) -> None:
        """On a clean stop (the worker has ended, so this thread owns its state): wait up to
        ``timeout_s`` for the broker to confirm the answers already sent, and acknowledge their
        commands, so a restart is not handed them again (they would be answered twice, from the
        store). What is still unconfirmed then stays unacknowledged and comes back."""
        deadline = time.monotonic() + timeout_s
        while self._unconfirmed and not self._unconfirmed[0].reads:
            left = deadline - time.monotonic()
            if left <= 0 or not self.bus.confirmed(self._unconfirmed[0].sent, left):
                break
            self._ack_confirmed()

    def _connection_changed(self, up: bool) -> None:
        if up:
            self.worker.post(_Marker("reconnected"))

    def _on_published(self, mid: int) -> None:
        """paho's thread: the broker has a publish of ours. The worker is woken only by the last
        PUBACK the oldest waiting batch needs (:meth:`_ack_confirmed` names them): one wake a batch,
        not one for each of a call's ~5 publishes, while the screens' agents are busy with its news."""
        with self._awaited_lock:
            self._published.append(mid)
            if mid not in self._awaited:
                return
            self._awaited.discard(mid)
            if self._awaited:
                return
        self.worker.wake()

    # --- the worker -----------------------------------------------------------------------------

    def _on_tick(self, _mono: float) -> float | None:
        """After each batch and on each wake (a batch's last PUBACK, a query answered): acknowledge
        what is confirmed, tick when due; wake again at the next tick or confirmation deadline."""
        self._ack_confirmed()
        if time.monotonic() >= self._next_tick:
            self._tick()
            self._next_tick = time.monotonic() + TICK_S
        deadline = self._next_tick
        if self._unconfirmed and not self._unconfirmed[0].reads:
            deadline = min(deadline, self._unconfirmed[0].since + CONFIRM_S)
        return deadline

    def _recover(self, _exc: Exception) -> None:
        """Never a silent coordinator: unacknowledged work comes back redelivered, and what was
        decided but not committed is dropped with the state rebuilt from the store."""
        log.error("coordinator worker: unexpected error; state rebuilt from the store")
        with contextlib.suppress(Exception):
            self.engine = rebuild(self.layout, self.store, self.boot)
        self._next_tick = time.monotonic()

    def _process(self, batch: list[Item]) -> None:
        self._heads_up(batch)
        done = _Batch()
        for item in batch:
            if isinstance(item, _Answered):
                self._answered(item)
                continue
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
        sent = done.sent + self._publish(done.outcomes, done.replies)
        if done.acks:
            waiting = _Unconfirmed(time.monotonic(), sent, done.acks, reads=len(done.reads))
            self._unconfirmed.append(waiting)
            for inbound, query, work in done.reads:
                self.reader.ask(Read(query, work, self._answer_later(waiting, inbound)))
        if self._since_snapshot >= SNAPSHOT_EVERY:
            self.snapshot()

    def _heads_up(self, batch: list[Item]) -> None:
        """Tell the printer of each paper ticket request's kiosk that a job is likely, before
        anything of the batch is decided or committed: its agent asks the printer's online status
        while the commit's fsync runs, and the job finds the answer there (docs/printer.md). A read
        of the engine and a QoS 0 message, nothing else: a request then refused or a duplicate costs
        the printer one status query; a heads-up lost or failed costs the job that query, as before."""
        for item in batch:
            if not isinstance(item, Inbound) or not isinstance(item.payload, TicketRequest):
                continue
            command = command_of(item)
            printer = None if command is None else self.engine.printer_expecting(command)
            if printer is None:
                continue
            try:
                self.out.send(PRINT_EXPECTED, PrintExpected(
                    printer_id=printer, request_id=item.payload.command_id), printer=printer)
            except Exception:  # never the batch's concern: the job asks the printer itself
                log.exception("heads-up to printer %s not sent", printer)

    def _decide(self, item: Received, now: datetime, done: _Batch) -> None:
        """Decide one message; appends to the lists only once nothing more can raise."""
        if item.route is DEVICE_STATUS:
            if isinstance(item.payload, DeviceStatus):
                outcome = self.engine.device_status(item.payload, now)
                if outcome.refused is not None:
                    outcome.effects.append(self._error_report(item, outcome.refused, now))
                done.outcomes.append(outcome)
            return
        if isinstance(item.payload, ResendRequest | ConfigPush):
            self._read(item, now, done.replies)  # the region's: nothing for the engine to decide
            return
        if isinstance(item.payload, QueryRequest):
            reply = self._query(item, item.payload, now, done)  # a read: nothing to commit
            if reply is not None:
                done.replies.append((item, reply))
                if reply.error is not None:
                    done.outcomes.append(Outcome(effects=[self._error_report(item, reply.error, now)]))
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
        command = command_of(item)
        if command is None:
            return
        clock = self.engine.observe(now, self._mono())  # a step or a new day, before the command
        done.rows += [self._row(e, None) for e in clock.events]
        done.outcomes.append(clock)
        conflict = phone_conflict(self.reminders, self.engine, item.payload) if self.reminders else None
        outcome = conflict or self.engine.handle(command, now, token=secrets.token_urlsafe(12))
        if outcome.refused is not None and outcome.reply is None:
            # Nobody to answer, so say it on the error route; and not remembered as applied: the
            # id may be another sender's (a job id is predictable), whose own message must count.
            done.outcomes.append(Outcome(effects=[self._error_report(item, outcome.refused, now)]))
            return
        reply_bytes = outcome.reply.model_dump_json().encode() if outcome.reply else None
        new_rows = [self._row(e, key) for e in outcome.events]
        if outcome.reply is not None and outcome.reply.error is not None:
            outcome.effects.append(self._error_report(item, outcome.reply.error, now))
        done.seen[key] = reply_bytes
        done.commands.append(CommandRow(key, now.isoformat(), reply_bytes))
        done.rows += new_rows
        if outcome.reply is not None:
            done.replies.append((item, outcome.reply))
        done.outcomes.append(self._remember(item.payload, outcome))

    def _poisoned(self, item: Received, exc: Exception, now: datetime, done: _Batch) -> None:
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
        done.outcomes.append(Outcome(effects=[self._error_report(item, problem, now)]))

    def _commit(self, done: _Batch) -> None:
        committed: list[EventRow] = []
        if done.commands or done.rows or done.dead:
            # Before any reply, a restore from an older backup must see these numbers: the file
            # names numbers ahead and is rewritten in the background, so a ticket waits only for a
            # write that covers it (while SQLite's commit fsyncs: one disk wait, not two). Written
            # first, the file can only name a number not yet committed (a restore skips it).
            issued = [e for o in done.outcomes for e in o.events if isinstance(e, ev.TicketIssued)]
            numbers = self._numbers_written(issued) if issued else None
            try:
                self.engine.state.last_seq = self.store.commit(done.rows, done.commands, done.dead,
                                                               self._clock_row())
            finally:
                if numbers is not None:
                    numbers.result()  # its error, if any, is the batch's: nothing is acked
            self._since_snapshot += len(done.rows)
            committed = done.rows
        done.sent += self._forward(committed)  # the region's copy, and this batch's resends
        done.committed()

    def _numbers_written(self, issued: list[ev.TicketIssued]) -> Future[None] | None:
        """Start the high-water file's next version when a counter nears its floor; the write the
        batch must wait for before any reply, or None when the file on disk covers ``issued``."""
        pending = self._numbers_pending
        if pending is not None and pending.done() and pending.exception() is not None:
            self.high_water.replan()  # that version never reached the disk: plan it again
            self._numbers_pending = pending = None
        floors = self.high_water.plan(issued, self._range_end)
        if floors is not None:
            pending = self._numbers_pending = self._numbers.submit(self.high_water.write, floors)
            pending.add_done_callback(_numbers_failed)
        if self.high_water.covered(issued):
            return None
        return pending or self._numbers.submit(self.high_water.write, self.high_water.planned())

    def _range_end(self, ticket: ev.TicketIssued) -> int | None:
        try:
            found = self.layout.service(ticket.service_id).number_range
        except KeyError:  # a layout from the region dropped the service since
            return None
        return found[1] if found else None

    def _error_report(self, item: Received, problem: Problem, now: datetime) -> ReportError:
        return ReportError(ErrorReport(topic=item.topic, problem=problem,
                                       excerpt=_excerpt(item.payload, 200),
                                       reported_by=self.bus.options.device_id, at=now))

    def _ack_confirmed(self) -> None:
        """Acknowledge, in the order received, the messages whose answers the broker has confirmed.

        Not waiting in place keeps the worker deciding the next command while PUBACKs travel;
        the PUBACK that completes the oldest batch's wakes it (:meth:`_on_published`).
        """
        while not self._ack_pass():
            pass  # a PUBACK came between the two looks of that pass: look again (a loop, not recursion)
        # Keep only the ids that still tell something: of publishes waited for and not yet done.
        self._confirmed &= {one.info.mid for u in self._unconfirmed for one in u.sent if not one.done}

    def _ack_pass(self) -> bool:
        """One look of :meth:`_ack_confirmed`: True when it is done for now (every confirmed batch
        acknowledged, the rest awaited), False when it must look again."""
        with self._awaited_lock:
            self._awaited.clear()
            while self._published:
                self._confirmed.add(self._published.popleft())
        while self._unconfirmed:
            head = self._unconfirmed[0]
            if head.reads:  # a query of this batch still runs: its answer is not even sent
                break
            if any(one.failed for one in head.sent):  # sent while disconnected: redelivered later
                log.info("answers to %d messages were not sent; the broker redelivers them", len(head.acks))
            elif all(one.done or one.info.mid in self._confirmed for one in head.sent):
                for inbound in head.acks:
                    self.bus.ack(inbound)
            elif time.monotonic() - head.since < CONFIRM_S:
                missing = {one.info.mid for one in head.sent
                           if not one.done and one.info.mid not in self._confirmed}
                with self._awaited_lock:
                    arrived = missing.intersection(self._published)  # since the look above
                    self._awaited = missing - arrived
                # Some came meanwhile, or the last was marked done since the look above (its PUBACK
                # then woke nobody): look again, at most once more for each. Else the PUBACK of the
                # last of ``missing`` wakes the worker.
                return bool(missing) and not arrived
            else:  # not acknowledged: the broker redelivers them and the store answers them again
                log.warning("the broker did not confirm the answers to %d messages within %.0f s; "
                            "they stay unacknowledged", len(head.acks), CONFIRM_S)
            self._unconfirmed.popleft()
        return True

    def _query(self, item: Received, query: QueryRequest, now: datetime, done: _Batch
               ) -> QueryReply | None:
        """A query over the live state is answered here; one over stored days (or the dead
        letters) is queued for the read connection: None."""
        if query.kind is QueryKind.DEAD_LETTERS:
            layout = self.layout
            done.reads.append((item, query, lambda db: dead_letters(db, layout)))
            return None
        found = refused(query, lambda: prepare(self.engine, query, now))
        if isinstance(found, QueryReply):
            return found
        if isinstance(found, StoredDays):
            days = found
            done.reads.append((item, query, lambda db: days.run(partial(events_of_days, db))))
            return None
        return answered(query, found)

    def _answer_later(self, batch: _Unconfirmed, inbound: Received) -> Callable[[QueryReply], None]:
        """What the read connection's thread calls with the reply: hands it back to this worker."""
        return lambda reply: self.worker.post(_Answered(batch, inbound, reply))

    def _answered(self, answered: _Answered) -> None:
        """A query answered on the read connection: published now, with its error report; its
        batch's acknowledgements may go once these are confirmed."""
        batch, inbound, reply = answered.batch, answered.inbound, answered.reply
        sent = self._answer(inbound, reply)
        batch.sent += [sent] if sent is not None else []
        if reply.error is not None:
            batch.sent += self.out.effect(self._error_report(inbound, reply.error, self.clock()))
        batch.reads -= 1
        if not batch.reads:
            batch.since = time.monotonic()  # the confirmation deadline counts from the last answer

    def _queue_duplicate(self, item: Received, stored: bytes | None,
                         replies: list[tuple[Received, Reply]]) -> None:
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
            self.bus.publish(REGION_HEAD, head)
        self._publish([outcome])

    def _remember(self, payload: Payload, outcome: Outcome) -> Outcome:
        if self.reminders is not None:  # a booking's phone number, kept apart from the event store
            remember_phone(self.reminders, self.layout, payload, outcome)
        return outcome

    def _read(self, item: Received, now: datetime, replies: list[tuple[Received, Reply]]) -> None:
        if isinstance(item.payload, ResendRequest) and self.forwarder is not None:
            self._resent += [self.bus.publish(REGION_EVENTS, m) for m in self.forwarder.resend(item.payload)]
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
            self.worker.post(_Marker("reconnected"))  # every window's state and the queue, republished
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
        return sent + [self.bus.publish(REGION_EVENTS, m)
                       for m in self.forwarder.committed(self.store.last_seq, rows)]

    def _publish(self, outcomes: list[Outcome],
                 replies: list[tuple[Received, Reply]] | None = None) -> list[Sent]:
        """Called after the commit of ``outcomes``' events (so a reminder is only for what is
        recorded). What a person waits for at a device goes first, each publish written to the
        socket as it is made: the print jobs (the ticket's bytes), the states of the windows
        commands acted at (their screens and pads), the calls and rating prompts; then the
        ``replies``; then the other windows' states (their waiting counts), alerts and error
        reports, and the queue summary when due."""
        sent: list[Sent] = []
        dirty: set[int] = set()
        built: dict[int, WindowState] = {}  # states the engine built after the batch's last change
        acted: list[int] = []
        for outcome in outcomes:
            dirty |= outcome.dirty_windows
            self._queue_pending |= outcome.queue_changed
            if outcome.events:
                built = {}
            built.update(outcome.window_states)
            acted += [w for w in outcome.window_states if w not in acted]
        effects = [effect for outcome in outcomes for effect in outcome.effects]
        for effect in effects:
            if isinstance(effect, SendPrintJob):
                sent += self.out.effect(effect)
        # Window states before the calls: an LED bus agent then starts the window's own frame
        # before the hall screen's longer one, instead of the call waiting behind it on the wire.
        for number in acted:
            sent += self._window_state(number, built.get(number))
        for effect in effects:
            if isinstance(effect, Announce | AskRating):
                sent += self.out.effect(effect)
        sent += [one for inbound, reply in replies or [] if (one := self._answer(inbound, reply))]
        for number in sorted(dirty - set(acted)):
            sent += self._window_state(number, None)
        for effect in effects:
            if not isinstance(effect, SendPrintJob | Announce | AskRating):
                sent += self.out.effect(effect)
        happened = [e for o in outcomes for e in o.events]
        if self.reminders is not None and happened:
            self.reminders.observe(happened, self.engine, self.clock())
        return sent + self._summary()

    def _window_state(self, number: int, built: WindowState | None) -> list[Sent]:
        state = built or self.engine.views.window(self.engine.state, number, self.clock())
        return self.out.send(WINDOW_STATE, state, window=number)

    def _summary(self) -> list[Sent]:
        """The queue summary when it changed: a sweep over all waiting tickets, at most twice a second."""
        if not (self._queue_pending and time.monotonic() - self._queue_published_at >= TICK_S):
            return []
        sent = self.out.send(QUEUE_SUMMARY, self.engine.views.queue(self.engine.state, self.clock()))
        self._queue_pending = False
        self._queue_published_at = time.monotonic()
        return sent

    def _answer(self, inbound: Received, reply: Reply) -> Sent | None:
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
