"""What the web knows of the hall, live: the coordinator's retained states and the calls, over MQTT.

The web talks to the coordinator only through its commands, queries and published state. paho's
thread hands every change to the asyncio loop (``call_soon_threadsafe``); browsers get a snapshot on
each change through Server-Sent Events. Commands and queries are awaited on the loop
(``Requester.call_async``: a future per request id, resolved from paho's thread), so a waiting
request holds no thread and never stalls the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from hall_devices.contract import (
    ACTIVE_ALERTS,
    CALL,
    DEVICE_STATUS,
    HELP_REQUEST,
    QUERY,
    QUEUE_SUMMARY,
    STAFF_COMMAND,
    WINDOW_COMMAND,
    WINDOW_STATE,
    ActiveAlerts,
    Call,
    DeviceStatus,
    HelpRequest,
    Payload,
    Problem,
    QueryKind,
    QueryReply,
    QueryRequest,
    QueueSummary,
    StaffAction,
    StaffCommand,
    StaffResult,
    WindowAction,
    WindowCommand,
    WindowCommandResult,
    WindowState,
)
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.mqtt.layout_follow import LayoutFollower
from hall_devices.mqtt.requests import NoReplyError, Requester
from hall_devices.ops.provision import WEB
from hall_devices.settings import Settings
from hall_devices.web.alert_log import AlertLog

COORDINATOR = "coordinator"  # the coordinator's device id: its retained status says whether it runs


class CoordinatorOfflineError(NoReplyError):
    """The coordinator's retained status says offline (its Last Will, or its own clean stop): a
    request is not sent, so a page need not wait out the reply timeout. ``since``: when the web
    heard it (UTC)."""

    def __init__(self, since: datetime.datetime) -> None:
        super().__init__(f"the coordinator is offline since {since.isoformat()}")
        self.since = since


P = TypeVar("P", bound=Payload)


def _plain(payload: Payload) -> dict[str, Any]:
    """A payload as the browsers get it: JSON types only."""
    return dict(json.loads(payload.model_dump_json()))


class Hub:
    def __init__(self, settings: Settings, layout: Layout, alert_log: AlertLog | None = None) -> None:
        """``alert_log``: where alert history and acknowledgements are kept (web/alert_log.py);
        None keeps them in memory only."""
        self.layout = layout
        self.clerk_names = {member.id: member.name for member in layout.staff}  # clerk id → name
        self.windows: dict[int, dict[str, Any]] = {}
        self.devices: dict[str, dict[str, Any]] = {}
        self.queue: dict[str, Any] | None = None
        self.alerts: list[dict[str, Any]] = []
        self.calls: deque[dict[str, Any]] = deque(maxlen=10)
        self.help: dict[str, HelpRequest] = {}  # 呼叫帮办 by kiosk, the latest state of each
        # Alert history and acknowledgements are durable (SQLite); the active alerts' acks are
        # mirrored here so that a snapshot never reads the file on the event loop.
        self.alert_log = alert_log or AlertLog(None)
        self.acks: dict[tuple[str, str], dict[str, str]] = self.alert_log.acks()
        self.version = 0
        self._listeners: set[asyncio.Queue[str]] = set()
        self.closing = False  # the server is stopping: live pages' streams end
        self._loop: asyncio.AbstractEventLoop | None = None
        self.bus = Bus(settings, BusOptions(client_id=f"web-{uuid.uuid4().hex[:6]}", hall_id=layout.hall.id,
                                            device_id=WEB, device_kind="web"))
        self.requests = Requester(self.bus)
        self.requests.listen(QUERY, client=WEB)
        self.requests.listen(STAFF_COMMAND, staff=WEB)
        self.requests.listen(WINDOW_COMMAND)
        self.bus.subscribe(WINDOW_STATE, self._on_loop(self._window))
        self.bus.subscribe(DEVICE_STATUS, self._on_loop(self._device))
        self.bus.subscribe(QUEUE_SUMMARY, self._on_loop(self._queue))
        self.bus.subscribe(ACTIVE_ALERTS, self._on_loop(self._alerts))
        self.bus.subscribe(CALL, self._on_loop(self._call))
        self.bus.subscribe(HELP_REQUEST, self._on_loop(self._help))
        self.layout_version: int | None = None  # the region's version the coordinator runs, if known
        LayoutFollower(layout, None, self._on_layout).subscribe(self.bus)

    # --- life cycle (on the asyncio loop) ---------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.bus.start(None)

    def stop(self) -> None:
        self.bus.stop()
        self.alert_log.close()

    # --- from paho's thread ----------------------------------------------------------------------

    def _on_loop(self, apply: Callable[[P], None]) -> Callable[[Inbound[P]], None]:
        """A bus handler that hands the payload to ``apply`` on the asyncio loop, then tells the
        browsers (the state is only touched on the loop)."""
        def handler(inbound: Inbound[P]) -> None:
            acks = None
            if isinstance(inbound.payload, ActiveAlerts):  # written here, on paho's thread, not the loop
                acks = self.alert_log.seen(_plain(inbound.payload)["alerts"],
                                           datetime.datetime.now(datetime.UTC))
            if self._loop is not None:
                if acks is not None:  # before the alerts themselves: the loop runs them in order
                    self._loop.call_soon_threadsafe(self._acks_seen, acks)
                self._loop.call_soon_threadsafe(self._changed, apply, inbound.payload)

        return handler

    def _on_layout(self, layout: Layout, version: int) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._apply_layout, layout, version)

    def _apply_layout(self, layout: Layout, version: int) -> None:
        """Window and service names follow the layout the coordinator runs (mqtt/layout_follow.py)."""
        self.layout, self.layout_version = layout, version
        self._broadcast()

    # --- on the asyncio loop: one per route ------------------------------------------------------

    def _changed(self, apply: Callable[[P], None], payload: P) -> None:
        apply(payload)
        self._broadcast()

    def _window(self, state: WindowState) -> None:
        self.windows[state.window] = _plain(state)

    def _device(self, status: DeviceStatus) -> None:
        self.devices[status.device_id] = {**_plain(status), "seen": time.time()}

    def _queue(self, summary: QueueSummary) -> None:
        self.queue = _plain(summary)

    def _acks_seen(self, acks: dict[tuple[str, str], dict[str, str]]) -> None:
        self.acks = acks

    def _alerts(self, active: ActiveAlerts) -> None:
        alerts = _plain(active)["alerts"]
        current = {(a["alert_id"], a["raised_at"]) for a in alerts}
        self.acks = {key: ack for key, ack in self.acks.items() if key in current}
        self.alerts = alerts

    def _call(self, call: Call) -> None:
        self.calls.appendleft(_plain(call))

    def _help(self, request: HelpRequest) -> None:
        self.help[request.kiosk_id] = request

    # --- for the pages ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        windows = []
        for window in self.layout.windows:
            state = self.windows.get(window.number, {"status": "closed", "waiting": 0})
            # The layout's plain names win over the state's Text ``name`` ([object Object] otherwise).
            clerk = state.get("clerk_id")
            named = self.clerk_names.get(clerk or "", clerk)
            windows.append({**state, "number": window.number, "name": window.name.zh,
                            "name_en": window.name.en, "clerk_name": named})
        devices = [{"device_id": d.id, "kind": d.kind, **self.devices.get(d.id, {"state": "unknown"})}
                   for d in self.layout.devices if d.id in self.devices or d.kind in (
                       "printer", "led_bus", "pad_bus", "announcer", "kiosk")]
        devices += [v for k, v in self.devices.items() if k not in {d["device_id"] for d in devices}]
        queue = self.queue and {**self.queue, "services": [
            {**q, "service_name": self._service_name(q["service_id"])} for q in self.queue["services"]]}
        help_requests = [json.loads(h.model_dump_json()) for h in self.help.values() if h.state != "closed"]
        alerts = [{**a, "ack": self.acks.get((a["alert_id"], a["raised_at"]))} for a in self.alerts]
        return {"windows": windows, "devices": devices, "queue": queue, "alerts": alerts,
                "help": sorted(help_requests, key=lambda h: str(h["raised_at"])),
                "calls": list(self.calls), "version": self.version, "layout_version": self.layout_version}

    def _service_name(self, service_id: str) -> str:
        found = [s.name.zh for s in self.layout.services if s.id == service_id]
        return found[0] if found else service_id

    def listen(self) -> asyncio.Queue[str]:
        listener: asyncio.Queue[str] = asyncio.Queue(maxsize=50)
        self._listeners.add(listener)
        return listener

    def forget(self, listener: asyncio.Queue[str]) -> None:
        self._listeners.discard(listener)

    def end_streams(self) -> None:
        """The server is stopping: every live page's event stream ends now (its browser reconnects
        by itself), so the graceful shutdown has nothing of theirs to wait for or cancel."""
        self.closing = True
        for listener in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):  # a full queue's stream sees it next
                listener.put_nowait("")

    async def history(self, page: int, size: int) -> tuple[list[dict[str, Any]], int]:
        """One page of every alert recorded (kept across restarts), newest first, with its
        acknowledgement if any, and the number of rows (:meth:`AlertLog.page`)."""
        return await asyncio.to_thread(self.alert_log.page, page, size)

    async def acknowledge(self, alert_id: str, raised_at: str, by: str, at: datetime.datetime) -> bool:
        """Staff saw the alert (who, when), kept in the alert log; False for an alert not recorded
        or already acknowledged. The alert stays until its cause is gone (the coordinator clears it)."""
        key = (alert_id, raised_at)
        if not await asyncio.to_thread(self.alert_log.acknowledge, key, by, at):
            return False
        if any((a["alert_id"], a["raised_at"]) == key for a in self.alerts):
            self.acks[key] = {"by": by, "at": at.astimezone(datetime.UTC).isoformat(timespec="seconds")}
        self._broadcast()
        return True

    def _broadcast(self) -> None:
        self.version += 1
        snapshot = json.dumps(self.snapshot(), ensure_ascii=False)
        for listener in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                listener.put_nowait(snapshot)

    def update_help(self, kiosk_id: str, state: str, by: str, at: datetime.datetime) -> HelpRequest | None:
        """Staff answer (``answered``) or close (``closed``) a kiosk's help request; None when that
        kiosk has none open. Publishing never blocks (paho queues it)."""
        current = self.help.get(kiosk_id)
        if current is None or current.state in ("closed", state):
            return None
        who = {"answered_by": by, "answered_at": at} if state == "answered" else {
            "closed_by": by, "closed_at": at}
        updated = current.model_copy(update={"state": state, **who})
        self.bus.publish(HELP_REQUEST, updated, kiosk=kiosk_id)
        self.help[kiosk_id] = updated
        return updated

    def _check_coordinator(self) -> None:
        """Raise :class:`CoordinatorOfflineError` while the coordinator's status says offline; an
        unknown status (nothing retained yet) is given the benefit of the doubt, and a coordinator
        that hangs while "ok" still meets the reply timeout."""
        status = self.devices.get(COORDINATOR)
        if status is not None and status.get("state") == "offline":
            raise CoordinatorOfflineError(datetime.datetime.fromtimestamp(status["seen"], datetime.UTC))

    async def query(self, kind: QueryKind, **fields: Any) -> QueryReply:
        try:
            request = QueryRequest(command_id=uuid.uuid4().hex, kind=kind, **fields)
        except ValidationError as exc:  # e.g. a typed-in day that is not one: the page says so
            problem = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()[:3])
            return QueryReply(command_id=None, ok=False, error=Problem(
                code="bad_query", message=f"查询条件有误 / bad query: {problem}"))
        self._check_coordinator()
        return await self.requests.call_async(QUERY, request, 10.0, client=WEB)


    async def window_command(self, window: int, action: WindowAction, **fields: Any) -> WindowCommandResult:
        command = WindowCommand(command_id=uuid.uuid4().hex, action=action, source="web", **fields)
        self._check_coordinator()
        return await self.requests.call_async(WINDOW_COMMAND, command, 10.0, window=window)

    async def staff(self, action: StaffAction, staff_id: str, **fields: Any) -> StaffResult:
        command = StaffCommand(command_id=uuid.uuid4().hex, action=action, staff_id=staff_id, **fields)
        self._check_coordinator()
        return await self.requests.call_async(STAFF_COMMAND, command, 10.0, staff=WEB)
