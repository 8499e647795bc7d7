"""The coordinator process: MQTT in, engine, event store, MQTT out.

paho's thread only puts decoded messages on a queue. One worker thread takes them in batches:
decides each (deduplicating by command key), commits the batch's events and command keys in one
transaction, publishes replies and effects, and only once the broker has confirmed all of them
(QoS 1 PUBACKs) acknowledges the messages (manual acks on a persistent session). A crash before
the commit loses nothing: the broker redelivers; a crash after it applies nothing twice: the
command key is in the store and the redelivered command gets its original reply.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hall_devices.bus import Bus, BusOptions, Inbound, Sent, encode
from hall_devices.contract import (
    ConfigPush,
    ConfigResult,
    DeviceStatus,
    Payload,
    Problem,
    QueryReply,
    QueryRequest,
    Reply,
    ResendRequest,
    route,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.calendar import business_day
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.model import STATE_ADAPTER
from hall_devices.coordinator.outcome import EngineError, Outcome, Publish
from hall_devices.coordinator.queries import answer
from hall_devices.coordinator.store import CommandRow, EventRow, EventStore
from hall_devices.layout import Layout
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


@dataclass(frozen=True)
class _Marker:
    name: str  # "reconnected": republish every retained state


Item = Inbound[Any] | _Marker


@dataclass(frozen=True)
class _Unconfirmed:
    since: float
    sent: list[Sent]
    acks: list[Inbound[Any]]


def command_key(route_name: str, payload: Payload) -> str | None:
    for name in ("command_id", "job_id", "rating_id"):
        value = getattr(payload, name, None)
        if isinstance(value, str):
            return f"{route_name}:{value}"
    return None


def rebuild(layout: Layout, store: EventStore) -> Engine:
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
    return engine


class CoordinatorService:
    def __init__(self, settings: Settings, layout: Layout, store_path: Path,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.layout = layout
        self.clock = clock
        self.store = EventStore(store_path)
        pushed = region_config.load(store_path) if settings.region_forward else None
        if pushed is not None:  # the region's last pushed layout outlives a restart
            self.layout = layout = pushed.layout
        self.layout_version = pushed.version if pushed else 0
        started = time.perf_counter()
        self.engine = rebuild(layout, self.store)
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
        # Region (issue 20): committed events out after each commit, resend requests answered.
        self.forwarder = Forwarder(layout.hall.id, self.store) if settings.region_forward else None
        self._resent: list[Sent] = []
        if self.forwarder is not None:
            self.bus.subscribe(route("region_resend"), self._inbox.put)
            self.bus.subscribe(route("region_config"), self._inbox.put)

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, wait_s: float | None = None) -> None:
        log.info("state rebuilt from %s in %.3f s (%d events)", self.store.path, self.rebuild_s,
                 self.store.last_seq)
        self._worker.start()
        self.bus.start(wait_s)

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=10)
        self.bus.stop()
        self.store.close()

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
                    self.engine = rebuild(self.layout, self.store)
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
        rows: list[EventRow] = []
        commands: list[CommandRow] = []
        replies: list[tuple[Inbound[Any], Reply]] = []
        outcomes: list[Outcome] = []
        seen: dict[str, bytes | None] = {}
        acks: list[Inbound[Any]] = []
        for item in batch:
            if isinstance(item, _Marker):
                outcomes.append(Outcome(dirty_windows={w.number for w in self.layout.windows},
                                        queue_changed=True))
                continue
            acks.append(item)
            now = self.clock()
            if item.route.name == "device_status":
                if isinstance(item.payload, DeviceStatus):
                    outcomes.append(self.engine.device_status(item.payload, now))
                continue
            if isinstance(item.payload, QueryRequest | ResendRequest | ConfigPush):
                self._read(item, now, replies)  # a read: nothing to commit
                continue
            key = command_key(item.route.name, item.payload)
            if key is None:
                continue
            if key in seen:
                self._queue_duplicate(item, seen[key], replies)
                continue
            known, stored = self.store.reply_for(key)
            if known:
                log.info("command %s seen before: answered with its original reply", key)
                self._queue_duplicate(item, stored, replies)
                continue
            outcome = self.engine.handle(item.route.name, item.payload, item.params, now,
                                         token=secrets.token_urlsafe(12))
            if outcome.refused is not None and outcome.reply is None:
                # Nobody to answer, so say it on the error route; and not remembered as applied: the
                # id may be another sender's (a job id is predictable), whose own message must count.
                self.bus.report(item.topic, outcome.refused, encode(item.payload))
                continue
            reply_bytes = outcome.reply.model_dump_json().encode() if outcome.reply else None
            seen[key] = reply_bytes
            stamp = now.isoformat()
            commands.append(CommandRow(key, stamp, reply_bytes))
            rows += [self._row(e, key) for e in outcome.events]
            if outcome.reply is not None:
                replies.append((item, outcome.reply))
            outcomes.append(outcome)
        if commands or rows:
            self.engine.state.last_seq = self.store.commit(rows, commands)
            self._since_snapshot += len(rows)
        sent = [self.bus.answer(inbound, reply) for inbound, reply in replies] + self._forward(rows)
        sent += self._publish(outcomes)
        if acks:
            self._unconfirmed.append(_Unconfirmed(time.monotonic(), sent, acks))
        if self._since_snapshot >= SNAPSHOT_EVERY:
            self.snapshot()

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
            data = answer(self.engine, self.store.events_of_days, query, now)
        except EngineError as refused:
            return QueryReply(command_id=query.command_id, ok=False,
                              error=Problem(code=refused.code, message=refused.message))
        except ValueError as exc:
            return QueryReply(command_id=query.command_id, ok=False,
                              error=Problem(code="bad_query", message=str(exc)))
        return QueryReply(command_id=query.command_id, ok=True, data=data)

    def _queue_duplicate(self, item: Inbound[Any], stored: bytes | None,
                         replies: list[tuple[Inbound[Any], Reply]]) -> None:
        answer = item.route.answer
        if answer is None or stored is None:
            return
        model = route(answer).model
        reply = model.model_validate_json(stored)
        assert isinstance(reply, Reply)
        replies.append((item, reply))

    def _row(self, event: ev.Event, key: str | None) -> EventRow:
        return EventRow(event.kind, event.at.isoformat(), business_day(self.layout.hall, event.at), key,
                        ev.event_json(event))

    def _tick(self) -> None:
        now = self.clock()
        outcome = self.engine.tick(now)
        if outcome.events:
            rows = [self._row(e, None) for e in outcome.events]
            self.engine.state.last_seq = self.store.commit(rows, [])
            self._since_snapshot += len(rows)
            self._forward(rows)
        if self.forwarder is not None and (head := self.forwarder.head(now, time.monotonic(),
                                                                      self.layout_version)):
            self._send(Publish("region_head", {}, head))
        self._publish([outcome])

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
                                           push.layout_toml, self.engine.state)
        if new is None:
            result = ConfigResult(command_id=push.command_id, ok=False, version=push.version,
                                  running_version=self.layout_version or None, reasons=reasons,
                                  error=Problem(code="config_refused", message="; ".join(reasons)[:2000]))
        else:
            region_config.save(self.store.path, push.version, push.layout_toml)
            self.layout, self.layout_version = new, push.version
            self.engine = Engine(new, self.engine.state)
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
        sent: list[Sent] = []
        dirty: set[int] = set()
        for outcome in outcomes:
            dirty |= outcome.dirty_windows
            self._queue_pending |= outcome.queue_changed
        state = self.engine.state
        # Window states before the calls: an LED bus agent then starts the window's own frame
        # before the hall screen's longer one, instead of the call waiting behind it on the wire.
        for number in sorted(dirty):
            sent.append(self._send(Publish("window_state", {"window": number},
                                           self.engine.views.window(state, number))))
        for outcome in outcomes:
            for message in outcome.publish:
                sent.append(self._send(message))
        # The queue summary is a sweep over all waiting tickets: at most twice a second.
        if self._queue_pending and time.monotonic() - self._queue_published_at >= TICK_S:
            summary = self.engine.views.queue(state, self.clock())
            sent.append(self._send(Publish("queue_summary", {}, summary)))
            self._queue_pending = False
            self._queue_published_at = time.monotonic()
        return sent

    def _send(self, message: Publish) -> Sent:
        return self.bus.publish(route(message.route), message.payload, **message.params)

    def snapshot(self) -> None:
        body = STATE_ADAPTER.dump_json(self.engine.state)
        self.store.save_snapshot(self.engine.state.last_seq, self.clock().isoformat(), body)
        self._since_snapshot = 0
