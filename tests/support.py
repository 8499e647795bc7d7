"""Helpers for tests that talk to a real Mosquitto: provisioning, clients, waiting."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from hall_devices.contract import DEVICE_STATUS
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import Bus
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
from hall_devices.ops.provision import MONITOR, password_hash, provision
from hall_devices.settings import Settings


@dataclass
class HallBroker:
    directory: Path
    port: int
    tls_port: int
    credentials: dict[str, str]
    process: BrokerProcess
    hall_id: str

    def settings(self, user: str, **extra: Any) -> Settings:
        return Settings(hall_id=self.hall_id, broker_port=self.port, broker_username=user,
                        broker_password=SecretStr(self.credentials[user]), **extra)

    def tls_settings(self, user: str) -> Settings:
        return Settings(hall_id=self.hall_id, broker_host="localhost", broker_port=self.tls_port,
                        broker_username=user, broker_password=SecretStr(self.credentials[user]),
                        broker_tls=True, broker_ca_file=self.directory / "tls" / "ca.crt")


# Read-only accounts for probes. The broker binds a client id to its username, so two probes
# signed in as `monitor` would throw each other off; a probe asked to sign in as `monitor` takes a
# free watcher account of that broker instead, and gives it back when it stops.
WATCHERS = tuple(f"watch{n}" for n in range(1, 25))
_free_watchers: dict[int, list[tuple[str, str]]] = {}
_pool_monitor: dict[int, str] = {}  # port -> the monitor password of the broker whose pool it is


def start_hall_broker(layout: Layout, directory: Path, superuser: str | None = None) -> HallBroker:
    """A hall's Mosquitto on free ports; ``superuser`` adds a test-only account that may read and
    write every topic (a fuzzer standing in for every publisher at once, without taking anyone's
    session: client ids are bound to usernames)."""
    done = provision(layout, directory, demo=True, watchers=WATCHERS)
    if superuser is not None:
        password = secrets.token_urlsafe(18)
        with (directory / "passwd").open("a", encoding="utf-8") as passwd:
            passwd.write(f"{superuser}:{password_hash(password)}\n")
        with (directory / "acl").open("a", encoding="utf-8") as acl:
            acl.write(f"\nuser {superuser}\ntopic readwrite #\n")
        done.credentials[superuser] = password
    port, tls_port = free_port(), free_port()
    config = render_config(directory, Listeners(port=port, tls_port=tls_port, tls_bind="127.0.0.1"))
    process = BrokerProcess(config, port)
    process.start()
    pool = [(w, done.credentials[w]) for w in WATCHERS]  # one pool: an id is one session on any listener
    _free_watchers[port] = _free_watchers[tls_port] = pool
    _pool_monitor[port] = _pool_monitor[tls_port] = done.credentials[MONITOR]
    return HallBroker(directory, port, tls_port, done.credentials, process, layout.hall.id)


@dataclass
class Probe:
    """A raw paho client for tests: records every message it receives, in order."""

    client: mqtt.Client
    messages: queue.Queue[mqtt.MQTTMessage] = field(default_factory=queue.Queue)
    connect_result: queue.Queue[Any] = field(default_factory=queue.Queue)
    watcher: tuple[int, tuple[str, str]] | None = None  # the watcher account it borrowed

    def expect(self, predicate: Callable[[mqtt.MQTTMessage], bool], timeout_s: float = 5.0
               ) -> mqtt.MQTTMessage:
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if predicate(message):
                return message
            seen.append(message.topic)
        raise AssertionError(f"no matching message within {timeout_s} s; saw {seen}")

    def nothing(self, predicate: Callable[[mqtt.MQTTMessage], bool], wait_s: float = 1.0) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                message = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return
            assert not predicate(message), f"unexpected message on {message.topic}: {message.payload!r}"

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        if self.watcher is not None:
            port, account = self.watcher
            _free_watchers[port].append(account)
            self.watcher = None


def probe(port: int, username: str | None, password: str | None, subscribe: list[str] | None = None,
          client_id: str = "", tls_ca: Path | None = None, wait: bool = True) -> Probe:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    result = Probe(client)
    # Only the broker that made the pool: a later broker (e.g. `up`'s own) may get the same port.
    if username == MONITOR and _free_watchers.get(port) and password in (None, _pool_monitor.get(port)):
        result.watcher = (port, _free_watchers[port].pop(0))
        username, password = result.watcher[1]
    if username is not None:
        client.username_pw_set(username, password)
    if tls_ca is not None:
        client.tls_set(ca_certs=str(tls_ca))
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.connect_result.put(reason)
        if not reason.is_failure:
            if subscribe:
                c.subscribe([(topic, 1) for topic in subscribe])
            else:
                subscribed.set()

    def on_subscribe(*_args: Any) -> None:
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, m: result.messages.put(m)
    client.connect_async("localhost" if tls_ca else "127.0.0.1", port)
    client.loop_start()
    if wait:
        reason = result.connect_result.get(timeout=5)
        assert not reason.is_failure, f"connection refused: {reason}"
        result.connect_result.put(reason)
        assert subscribed.wait(5), "subscription not confirmed"
    return result


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


class Coordinator:
    """The real coordinator command in a child process."""

    def __init__(self, broker: HallBroker, store: Path, log: Path) -> None:
        from tests.conftest import EXAMPLE

        self.env = {**os.environ, "HALL_BROKER_PORT": str(broker.port),
                    "HALL_BROKER_USERNAME": "coordinator",
                    "HALL_BROKER_PASSWORD": broker.credentials["coordinator"],
                    "HALL_DATABASE_URL": f"sqlite:///{store}", "HALL_LAYOUT": str(EXAMPLE),
                    "HALL_LOG_LEVEL": "WARNING"}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "coordinator"],
                                            env=self.env, stdout=out, stderr=out)

    def start_ready(self, broker: HallBroker, timeout_s: float = 15) -> None:
        """Start it and wait for its retained status to say ok (its session then exists)."""
        status = probe(broker.port, "monitor", broker.credentials["monitor"],
                       subscribe=[DEVICE_STATUS.topic(hall=broker.hall_id, device="coordinator")])
        try:
            self.start()
            status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=timeout_s)
        finally:
            status.stop()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(15)


class HeldBroker:
    """A relay to the real broker that passes the client's bytes at once and, while held, keeps
    the broker's (a CONNACK, a PUBACK) back until :meth:`release`; :meth:`cut` ends the connection
    as a network fault would, and the client's next one is relayed the same way. Not ``listening``,
    its port refuses connections (a broker not up yet) until :meth:`listen`."""

    def __init__(self, broker_port: int, listening: bool = True) -> None:
        self._broker_port = broker_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.client_spoke = threading.Event()
        self._released = threading.Event()
        self._sockets: list[socket.socket] = []
        if listening:
            self.listen()

    def listen(self) -> None:
        self._listener.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self._broker_port))
                self._sockets = [client, upstream]
                threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
                threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: Any, sink: Any, held: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if held:
                    self._released.wait()
                sink.sendall(data)
                if not held:
                    self.client_spoke.set()

    def hold(self) -> None:
        self._released.clear()
        self.client_spoke.clear()

    def release(self) -> None:
        self._released.set()

    def cut(self) -> None:
        for one in self._sockets:
            with contextlib.suppress(OSError):
                one.shutdown(socket.SHUT_RDWR)
            one.close()

    def close(self) -> None:
        self._released.set()
        self.cut()
        self._listener.close()


def r1_status_kept(bus: Bus, broker: HallBroker) -> tuple[str, list[str]]:
    """The state and faults the broker keeps (retained) for R1 once all R1's bus sent is in: a card
    read is sent after whatever its connect sent again, and the broker confirms it in order."""
    from hall_devices.contract import CARD_READ, CardRead

    marker = bus.publish(CARD_READ, CardRead(read_id="card-marker", ok=False, problem="unreadable",
                                             read_at=datetime.now(UTC)), kiosk="K1")
    assert bus.confirmed([marker], timeout_s=10)
    newcomer = probe(broker.port, "monitor", broker.credentials["monitor"],
                     subscribe=[DEVICE_STATUS.topic(hall=broker.hall_id, device="R1")])
    try:
        status = json.loads(newcomer.expect(lambda m: m.retain).payload)
        return status["state"], status["faults"]
    finally:
        newcomer.stop()
