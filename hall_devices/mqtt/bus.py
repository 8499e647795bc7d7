"""A thin adapter over paho-mqtt 2.x (MQTT v5) speaking only the types of :mod:`contract`.

- Last Will = the retained ``offline`` status of this client's device; the online status is
  published on every (re)connect and ``offline`` is published by :meth:`Bus.stop` itself.
- paho's network thread reconnects with bounded exponential backoff; every subscription is renewed
  in ``on_connect`` so it survives reconnects and broker restarts.
- Inbound payloads are decoded into contract models here. A payload that cannot be read in any way
  (over :data:`~hall_devices.contract.MAX_PAYLOAD_BYTES`, not UTF-8, anything the JSON parser
  raises, not of the route's schema, a topic level its parameter does not allow) is logged,
  answered on the route's answer topic with ``ok: false`` and a problem naming it, reported on the
  error route, acknowledged, and never raised into paho's thread.
- A payload that names another sender than its topic (``wrong_sender``, see
  :meth:`Route.misattributed`) is refused the same way.
- With a username, the client id is the username: the broker binds the two
  (``use_username_as_clientid``), so one account is one session.
- Handlers run on paho's network thread: they must be quick and hand work to their own thread,
  asyncio loop (``call_soon_threadsafe``) or Qt (queued signal). They never touch widgets. A handler
  that raises is logged with the message's topic and id, the message is acknowledged, and the
  network thread carries on; no other callback can raise into paho either.
- A broker that cannot be reached is said within :data:`UNREACHABLE_WARN_S` in one line naming host
  and port; paho keeps retrying with backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import paho.mqtt
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from hall_devices.contract import (
    DEVICE_STATUS,
    ERROR,
    MAX_PAYLOAD_BYTES,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    ErrorReport,
    Payload,
    Problem,
    Reply,
    RequestRoute,
    Route,
    request_id_field,
)
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Payload)
P_co = TypeVar("P_co", bound=Payload, covariant=True)
UNREACHABLE_WARN_S = 2.0  # no connection after this long: say so, with host and port
# paho's own log, kept only for what its backstop caught in a callback: its other errors ("Client
# is not connected" on every retry) repeat what this module says once, in one line.
_PAHO_LOG = logging.getLogger("hall_devices.mqtt.bus.paho")
_PAHO_LOG.setLevel(logging.ERROR)
_PAHO_LOG.addFilter(lambda record: str(record.msg).startswith("Caught exception"))


class BusError(Exception):
    """Base of the errors this layer raises."""


class NotConnectedError(BusError):
    pass


class PayloadTooLargeError(BusError):
    """A payload of ours over :data:`~hall_devices.contract.MAX_PAYLOAD_BYTES`: never sent."""


class BadPayloadError(BusError):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True)
class Inbound(Generic[P_co]):
    """A decoded message: our own type, not paho's. Read-only, so an ``Inbound[TicketRequest]`` is an
    ``Inbound[Payload]`` (a handler of several routes takes their union or the base)."""

    route: Route[P_co]
    topic: str
    params: dict[str, str]
    payload: P_co
    duplicate: bool
    retained: bool
    mid: int
    qos: int
    connection: int = 0  # which connection brought it: a PUBACK is only valid on that one


@dataclass(frozen=True)
class Sent:
    """A publish handed to the MQTT client; :meth:`Bus.confirmed` says when the broker has it."""

    info: mqtt.MQTTMessageInfo

    @property
    def failed(self) -> bool:
        """The client could not send it now (not connected, queue full): it will not be confirmed
        on this connection, though paho may still deliver it after a reconnect."""
        return self.info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_AGAIN)

    @property
    def done(self) -> bool:
        """The broker has it (QoS 1: PUBACK received; QoS 0: written to the socket)."""
        return not self.failed and self.info.is_published()


def now() -> datetime:
    return datetime.now(UTC)


def decode(route_: Route[P], raw: bytes) -> P:
    """Decode a payload of a route, or raise :class:`BadPayloadError` naming the problem.

    Nothing else escapes: ``bad_json`` for a payload over ``MAX_PAYLOAD_BYTES``, invalid UTF-8 or
    anything the parser raises (a 5,000-digit integer is a ``ValueError``, 100,000 nested brackets
    a ``RecursionError``); ``bad_schema`` for anything validation raises.
    """
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise BadPayloadError(Problem(code="bad_json", message=f"payload is {len(raw)} bytes, over the "
                                                               f"limit of {MAX_PAYLOAD_BYTES}"))
    # The common case in one pass of pydantic's own parser, without the dict in between (less than
    # half the work). It takes no JSON the long way below refuses (checked: a 5,000-digit integer,
    # lone surrogates, a BOM, control characters, trailing data, NaN for a text); whatever it
    # refuses takes the long way, which names the problem. It does take an escaped NUL, which
    # the long way refuses: such a payload goes the long way too.
    if _NUL_ESCAPE not in raw:
        with contextlib.suppress(Exception):
            return route_.model.model_validate_json(raw)
    try:
        data = json.loads(raw.decode("utf-8"))
    except Exception as exc:  # the parser's own errors, ValueError (int digits) and RecursionError
        raise BadPayloadError(Problem(code="bad_json",
                                      message=f"payload is not UTF-8 JSON: {_short(exc)}")) from exc
    not_text = _not_text(data)
    if not_text is not None:
        raise BadPayloadError(Problem(code="bad_json", message=f"payload holds a string with {not_text}: "
                                      "not text, and no store downstream can keep it"))
    try:
        return route_.model.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(payload)'}: {e['msg']}"
                          for e in exc.errors()[:5])
        raise BadPayloadError(Problem(code="bad_schema",
                                 message=f"not a {route_.model.__name__}: {where}"[:500])) from exc
    except Exception as exc:  # e.g. RecursionError from a validator: still the payload's fault
        raise BadPayloadError(Problem(code="bad_schema", message=f"not a {route_.model.__name__}: "
                                                                 f"{_short(exc)}")) from exc


_NUL_ESCAPE = b"\\u0000"


def _not_text(value: object) -> str | None:
    """What makes a decoded JSON value's strings (keys too) not text, or None: a NUL (JSON lets
    ``\\u0000`` through; PostgreSQL, where the region keeps every event, refuses it in text and
    jsonb, so one such event would stall a hall's stream to the region for good) or a lone UTF-16
    surrogate (``\\ud800`` alone: no UTF-8 for it)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "a lone UTF-16 surrogate"
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def encode(payload: Payload) -> bytes:
    return payload.model_dump_json().encode("utf-8")


def _readable_id(route_: Route[Payload], raw: bytes) -> str | None:
    """The request id of a payload of ``route_`` that failed validation, if one can be read, for
    the answer (the id field is the one its model names: :func:`contract.request_id_field`)."""
    key = request_id_field(route_.model)
    if key is None or len(raw) > MAX_PAYLOAD_BYTES:
        return None
    try:
        data = json.loads(raw)
    except Exception:  # whatever made it unreadable the first time
        return None
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


class _Client(mqtt.Client):
    """paho's client, writing a packet to the socket on the thread that makes it.

    With ``loop_start`` paho 2.x only queues a packet (``_packet_queue``) and wakes its network
    thread through a socket pair; that thread writes it once it gets the GIL, often only when the
    publisher's batch is done. Here a publish made on another thread is written at once and paho's
    thread is not woken, unless the socket did not take it all. paho 2.2 has no lock over its
    out-queue (``_packet_write`` pops a packet, sends what the socket takes and puts the rest back),
    so the writers take turns: paho's ``loop_write`` and ``reconnect`` (which empties the queue and
    swaps the socket before queueing CONNECT) hold ``_writing``; a publishing thread only tries it,
    and when it is taken queues the packet paho's way. Never on a TLS socket: OpenSSL does not allow
    a connection read on one thread to be written on another at the same time.
    """

    def __init__(self, client_id: str, *, manual_ack: bool, direct: bool) -> None:
        super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                         manual_ack=manual_ack)
        # Re-entrant: paho without its own thread writes CONNECT from within reconnect().
        self._writing = threading.RLock()
        # Written against paho 2.2's internals (``_packet_queue``, ``_out_packet``, ``_thread``,
        # ``_out_messages``): another minor version keeps paho's own way until its source is read again.
        self._read_internals = paho.mqtt.__version__.startswith("2.2.")
        self._direct = direct and self._read_internals

    def loop_write(self) -> MQTTErrorCode:
        with self._writing:
            return super().loop_write()

    def drop_resends(self, topic: str) -> None:
        """Forget the QoS 1 publishes on ``topic`` that paho sends again once this connect is
        acknowledged (unacknowledged when the connection was lost), after what ``on_connect``
        published: an older retained value would undo the current one there."""
        if not self._read_internals:  # TLS or not: only the out-queue is touched, not the socket
            return
        with self._out_message_mutex:
            for mid in [mid for mid, m in self._out_messages.items()
                        if m.state == mqtt.mqtt_ms_publish and m.topic == topic]:
                del self._out_messages[mid]

    def reconnect(self) -> MQTTErrorCode:
        with self._writing:
            return super().reconnect()

    def _packet_queue(self, command: int, packet: bytes | bytearray, mid: int, qos: int,
                      info: mqtt.MQTTMessageInfo | None = None) -> MQTTErrorCode:
        # Publishes only: nobody waits on an ack, and a DISCONNECT written closes the socket.
        if (not self._direct or command & 0xF0 != mqtt.PUBLISH
                or threading.current_thread() is self._thread or not self._writing.acquire(blocking=False)):
            return super()._packet_queue(command, packet, mid, qos, info)
        try:
            self._out_packet.append({"command": command, "mid": mid, "qos": qos, "pos": 0,
                                     "to_process": len(packet), "packet": packet, "info": info})
            # A socket error leaves the packet queued: paho's thread finds the connection broken
            # itself, and resends QoS 1 publishes after the reconnect.
            self._packet_write()
            left = bool(self._out_packet)
        finally:
            self._writing.release()
        if left and self._sockpairW is not None:  # the rest is paho's thread's to write
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(mqtt.sockpair_data)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


@dataclass
class _Subscription(Generic[P]):
    route: Route[P]
    filter: str
    handler: Callable[[Inbound[P]], None]


@dataclass
class BusOptions:
    client_id: str
    hall_id: str
    device_id: str
    device_kind: str
    persistent_session: bool = False
    session_expiry_s: int = 7 * 24 * 3600
    manual_ack: bool = False
    on_connection: Callable[[bool], None] | None = None
    # Called on paho's thread with a publish's message id once the broker has it (QoS 1: PUBACK).
    # paho calls it just before that publish's Sent.done turns true: keep the id, do not poll.
    on_published: Callable[[int], None] | None = None
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    max_inflight: int = 20  # our unacknowledged QoS 1 publishes in flight
    receive_maximum: int | None = None  # theirs to us (MQTT v5 Receive Maximum)


class Bus:
    def __init__(self, settings: Settings, options: BusOptions) -> None:
        self._settings = settings
        self.options = options
        self._subscriptions: list[_Subscription[Any]] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()  # connected and every subscription acknowledged
        self._pending_subscriptions: dict[int, str] = {}
        self._connection_number = 0  # counts connects; stamps each Inbound
        self._stopping = False
        self._unreachable_said = False  # one line per outage, not one per retry
        self._session_up = False  # connected since the last disconnect: a loss, not a failed attempt
        self._watchdog: threading.Timer | None = None
        self._status = DeviceStatus(device_id=options.device_id, kind=options.device_kind,
                                    state=DeviceState.OK, updated_at=now())
        self._client = self._make_client()
        if settings.broker_username and settings.broker_username != options.device_id:
            # The ACL lets an account write only its own status and errors: these would be dropped.
            log.warning("signed in as %r but speaking for %r: the broker drops its status and error "
                        "reports; give this process its own account", settings.broker_username,
                        options.device_id)

    # --- life cycle ---------------------------------------------------------------------------

    def _make_client(self) -> _Client:
        s, o = self._settings, self.options
        # The broker replaces the id by the username anyway; saying so keeps logs and sessions plain.
        client = _Client(s.broker_username or o.client_id, manual_ack=o.manual_ack,
                         direct=not s.broker_tls)
        if s.broker_username:
            password = s.broker_password.get_secret_value() if s.broker_password else None
            client.username_pw_set(s.broker_username, password)
        if s.broker_tls:
            client.tls_set(ca_certs=str(s.broker_ca_file) if s.broker_ca_file else None,
                           certfile=str(s.broker_cert_file) if s.broker_cert_file else None,
                           keyfile=str(s.broker_key_file) if s.broker_key_file else None)
        offline = self._status.model_copy(update={"state": DeviceState.OFFLINE, "faults": []})
        client.will_set(self._status_topic(), encode(offline), qos=1, retain=True)
        client.reconnect_delay_set(o.reconnect_min_s, o.reconnect_max_s)
        client.max_inflight_messages_set(o.max_inflight)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        if o.on_published is not None:
            client.on_publish = self._on_publish
        client.on_message = self._on_unrouted
        # A backstop: a callback that still raises is logged by paho, never kills its thread.
        client.suppress_exceptions = True
        client.enable_logger(_PAHO_LOG)
        return client

    def start(self, wait_s: float | None = 10.0) -> None:
        """Connect in the background (retrying until the broker answers); optionally wait."""
        s, o = self._settings, self.options
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if o.persistent_session:
            props.SessionExpiryInterval = o.session_expiry_s
        if o.receive_maximum is not None:
            props.ReceiveMaximum = o.receive_maximum
        self._client.connect_async(s.broker_host, s.broker_port, keepalive=s.broker_keepalive_s,
                                   clean_start=not o.persistent_session, properties=props)
        self._unreachable_said = False
        # Said on time whatever the failure: a host that drops packets keeps paho's TCP connect
        # waiting longer than UNREACHABLE_WARN_S before on_connect_fail could say anything.
        self._watchdog = threading.Timer(UNREACHABLE_WARN_S, self._still_unreachable)
        self._watchdog.daemon = True
        self._watchdog.start()
        self._client.loop_start()
        if wait_s is not None and not self._connected.wait(wait_s):
            self._client.loop_stop()
            raise NotConnectedError(f"no connection to the broker at {s.broker_host}:{s.broker_port} "
                               f"within {wait_s:.0f} s")

    def stop(self, timeout_s: float = 3.0) -> None:
        """Publish offline (retained), then disconnect cleanly and stop paho's thread."""
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._connected.is_set():
            offline = self._status.model_copy(update={"state": DeviceState.OFFLINE, "updated_at": now()})
            info = self._client.publish(self._status_topic(), encode(offline), qos=1, retain=True)
            # Short waits while still connected: a broker that went down with us sends no PUBACK,
            # and waiting out the whole timeout for it only delays the exit.
            deadline = time.monotonic() + timeout_s
            confirmed = False
            with contextlib.suppress(RuntimeError, ValueError):  # not connected or not queued
                while self._connected.is_set() and time.monotonic() < deadline:
                    info.wait_for_publish(0.1)
                    if confirmed := info.is_published():
                        break
            if not confirmed:
                log.warning("offline status not confirmed before exit")
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connections(self) -> int:
        """How many times this client has connected (1 when it never lost the broker)."""
        return self._connection_number

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    # --- publishing -----------------------------------------------------------------------------

    def publish(self, route_: Route[P], payload: P, **params: object) -> Sent:
        if not isinstance(payload, route_.model):
            raise TypeError(f"route {route_.name} carries {route_.model.__name__}, "
                            f"not {type(payload).__name__}")
        topic = route_.topic(hall=self.options.hall_id, **params)
        body = encode(payload)
        if len(body) > MAX_PAYLOAD_BYTES:
            # The broker would refuse it, and paho 2.x cannot parse that PUBACK (reason 0x95): it
            # reconnects and resends it for ever. Refused here instead, naming the route.
            raise PayloadTooLargeError(f"{route_.name}: {len(body)} bytes, over the contract's limit "
                                       f"of {MAX_PAYLOAD_BYTES}")
        return Sent(self._client.publish(topic, body, qos=route_.qos, retain=route_.retained))

    def answer(self, inbound: Inbound[P], reply: Reply) -> Sent:
        """Publish a reply on the answer route of the message, with the same topic parameters.

        Raises :class:`BusError` when the message's route has none, ``TypeError`` when ``reply``
        is not of the answer route's model."""
        if not isinstance(inbound.route, RequestRoute):
            raise BusError(f"route {inbound.route.name} has no answer route")
        params = {k: v for k, v in inbound.params.items() if k != "hall"}
        return self.publish(inbound.route.answer, reply, **params)

    def set_status(self, state: DeviceState, faults: list[DeviceFault] | None = None,
                   detail: str | None = None, members: dict[str, DeviceState] | None = None,
                   member_faults: dict[str, list[DeviceFault]] | None = None) -> None:
        """Record and publish (retained) this client's device status; republished on reconnect.
        ``faults``: the device's own faults (the contract's codes, as :class:`DeviceStatus` holds them);
        ``member_faults``: each faulted bus member's own faults (shown in its alert).

        Without a connection it is only recorded: paho would keep it and send it after the status
        ``on_connect`` publishes, and the broker would keep the older one. Recording and publishing
        under one lock with ``on_connect`` keeps the newest status the last one sent."""
        with self._lock:
            self._status = self._status.model_copy(update={
                "state": state, "faults": list(faults or []), "detail": detail,
                "members": dict(members or {}), "member_faults": dict(member_faults or {}),
                "updated_at": now()})
            if self._client.is_connected():
                self._client.publish(self._status_topic(), encode(self._status), qos=1, retain=True)

    @property
    def status(self) -> DeviceStatus:
        return self._status

    def ack(self, inbound: Inbound[P]) -> None:
        """Acknowledge a QoS 1 message in manual-ack mode (after its effect is durable).

        A message that came over an earlier connection is not acknowledged: the broker redelivers
        it with the same packet id, and acknowledging both would free that id twice, the second
        time perhaps for a newer message that was never handled.
        """
        if self.options.manual_ack and inbound.qos > 0 and inbound.connection == self._connection_number:
            self._client.ack(inbound.mid, inbound.qos)

    def confirmed(self, sent: list[Sent], timeout_s: float = 5.0) -> bool:
        """Wait until the broker has taken every one of ``sent`` (QoS 1 PUBACK); False if not.

        An inbound command is acknowledged only after its replies and effects are confirmed: paho
        holds QoS 1 publishes beyond its in-flight window in memory, so a PUBACK sent earlier could
        reach the broker while the reply is still only in a process that is about to die.
        """
        deadline = time.monotonic() + timeout_s
        for one in sent:
            # paho raises RuntimeError (not connected) or ValueError (not queued) from both calls:
            # either way the broker has not taken it, which is False here, not a failed command.
            try:
                one.info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                if not one.info.is_published():
                    return False
            except (RuntimeError, ValueError):
                return False
        return True

    def report(self, topic: str, problem: Problem, raw: bytes) -> None:
        log.warning("refused message on %s: %s [%s]", topic, problem.message, raw[:80].hex(" "))
        report = ErrorReport(topic=topic, problem=problem, excerpt=raw[:200].decode("utf-8", "replace"),
                             reported_by=self.options.device_id, at=now())
        self.publish(ERROR, report, reporter=self.options.device_id)

    # --- subscribing --------------------------------------------------------------------------

    def subscribe(self, route_: Route[P], handler: Callable[[Inbound[P]], None], **params: object) -> None:
        """Deliver decoded messages of a route (parameters not given match any) to ``handler``."""
        sub = _Subscription(route_, route_.filter(hall=self.options.hall_id, **params), handler)
        with self._lock:
            self._subscriptions.append(sub)
        self._client.message_callback_add(sub.filter, self._dispatcher(sub))
        if self._connected.is_set():
            self._client.subscribe(sub.filter, qos=route_.qos)  # renewed with the rest on reconnect

    def _dispatcher(self, sub: _Subscription[P]) -> Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None]:
        def dispatch(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            self._deliver(sub, message)

        return dispatch

    def _deliver(self, sub: _Subscription[P], message: mqtt.MQTTMessage) -> None:
        try:
            params = sub.route.match(message.topic)
            if params is None:
                self._refuse(sub.route, message, {}, Problem(
                    code="bad_topic", message=f"{message.topic[:120]!r} is not a topic of "
                                              f"{sub.route.name} (a level holds what its parameter "
                                              f"does not allow)"))
                return
            try:
                payload = decode(sub.route, bytes(message.payload))
            except BadPayloadError as bad:
                self._refuse(sub.route, message, params, bad.problem)
                return
            wrong_sender = sub.route.misattributed(params, payload)
            if wrong_sender is not None:
                self._refuse(sub.route, message, params, wrong_sender)
                return
            inbound = Inbound(sub.route, message.topic, params, payload, bool(message.dup),
                                            bool(message.retain), message.mid, message.qos,
                                            self._connection_number)
            sub.handler(inbound)
        except Exception:  # a handler bug must not kill paho's thread nor bring the message back
            log.exception("handler for %s failed on %s (message id %s); acknowledged and dropped",
                          sub.route.name, message.topic, message.mid)
            if self.options.manual_ack and message.qos > 0:
                with contextlib.suppress(Exception):
                    self._client.ack(message.mid, message.qos)

    def _refuse(self, route_: Route[Payload], message: mqtt.MQTTMessage, params: dict[str, str],
                problem: Problem) -> None:
        raw = bytes(message.payload)
        try:
            self.report(message.topic, problem, raw)
            if isinstance(route_, RequestRoute) and params:
                answer_route = route_.answer
                reply = answer_route.model.model_validate(
                    {"command_id": _readable_id(route_, raw), "ok": False, "error": problem})
                rest = {k: v for k, v in params.items() if k != "hall"}
                self.publish(answer_route, reply, **rest)
        except Exception:
            log.exception("could not answer a refused message on %s", message.topic)
        if self.options.manual_ack and message.qos > 0:
            self._client.ack(message.mid, message.qos)  # redelivering it cannot make it valid

    def _on_unrouted(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        log.debug("message on %s matches no subscription", message.topic)

    # --- connection callbacks (paho's thread) ---------------------------------------------------

    def _broker(self) -> str:
        return f"{self._settings.broker_host}:{self._settings.broker_port}"

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        if not self._unreachable_said and not self._stopping:
            self._unreachable_said = True
            log.error("cannot reach the broker at %s; retrying every %d-%d s", self._broker(),
                      self.options.reconnect_min_s, self.options.reconnect_max_s)

    def _still_unreachable(self) -> None:
        """The watchdog: no connection yet after UNREACHABLE_WARN_S, whatever the reason."""
        if not self._connected.is_set() and not self._unreachable_said and not self._stopping:
            self._unreachable_said = True
            log.error("cannot reach the broker at %s: no connection after %.0f s; still trying",
                      self._broker(), UNREACHABLE_WARN_S)

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any,
                    reason_code: Any, _properties: Any) -> None:
        if reason_code.is_failure:
            log.error("the broker at %s refused the connection: %s", self._broker(), reason_code)
            return
        self._unreachable_said = False
        self._session_up = True
        sock = client.socket()
        if isinstance(sock, socket.socket):  # also true of an SSL socket
            # Nagle + delayed ACK cost ~40 ms per request/reply hop (protocols.md §5).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._connection_number += 1
            subscriptions = list(self._subscriptions)
            status = self._status.model_copy(update={"updated_at": now()})
            self._pending_subscriptions.clear()
            for sub in subscriptions:
                _rc, mid = client.subscribe(sub.filter, qos=sub.route.qos)
                if mid is not None:
                    self._pending_subscriptions[mid] = sub.filter
            ready = not self._pending_subscriptions
            self._client.drop_resends(self._status_topic())
            client.publish(self._status_topic(), encode(status), qos=1, retain=True)
        log.info("connected to the broker as %s", self.options.client_id)
        if ready:
            self._ready()

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, mid: int, reason_codes: Any,
                      _properties: Any) -> None:
        with self._lock:
            topic = self._pending_subscriptions.pop(mid, None)
            ready = topic is not None and not self._pending_subscriptions
        for code in reason_codes or []:
            if getattr(code, "is_failure", False):
                log.error("the broker refused the subscription to %s: %s", topic, code)
        if ready:
            self._ready()

    def _ready(self) -> None:
        """Connected and subscribed: only now can nothing addressed to us be missed."""
        self._connected.set()
        self._notify(True)

    def _notify(self, up: bool) -> None:
        if self.options.on_connection:
            try:
                self.options.on_connection(up)
            except Exception:  # the owner's bug must not stop paho's thread from reconnecting
                log.exception("connection callback failed (connected=%s)", up)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any,
                       reason_code: Any, _properties: Any) -> None:
        self._connected.clear()
        was_up, self._session_up = self._session_up, False
        if self._stopping:
            pass
        elif was_up:
            log.warning("lost the broker at %s (%s); reconnecting with backoff", self._broker(), reason_code)
        elif not self._unreachable_said:  # an attempt that never connected: paho says "disconnect"
            self._unreachable_said = True
            log.error("cannot reach the broker at %s (%s); retrying every %d-%d s", self._broker(),
                      reason_code, self.options.reconnect_min_s, self.options.reconnect_max_s)
        else:
            log.debug("still cannot reach the broker at %s (%s)", self._broker(), reason_code)
        self._notify(False)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason_code: Any,
                    _properties: Any) -> None:
        if self.options.on_published is not None:
            try:
                self.options.on_published(mid)
            except Exception:  # the owner's bug must not stop paho's thread
                log.exception("publish callback failed (message id %s)", mid)

    def _status_topic(self) -> str:
        return DEVICE_STATUS.topic(hall=self.options.hall_id, device=self.options.device_id)
