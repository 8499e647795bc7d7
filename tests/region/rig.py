"""Three halls and a region on this machine, all real: each hall's Mosquitto with its bridge to the
regional Mosquitto (TLS) through a relay the test can cut, each hall's coordinator, the regional
service as a child process (so a test can kill it), PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from pydantic import SecretStr

from hall_devices.contract import DEVICE_STATUS, TICKET_REQUEST, TicketRequest
from hall_devices.coordinator.service import CoordinatorService
from hall_devices.layout import Layout, parse_layout
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
from hall_devices.ops.provision import provision
from hall_devices.region.bridge import HallEntry, add_bridge, bridge_section, provision_region
from hall_devices.settings import Settings
from tests.conftest import EXAMPLE
from tests.region.proxy import Relay
from tests.support import WATCHERS, HallBroker, Probe, _free_watchers, probe, wait_until

DISTRICT = "420704"  # 鄂城区
_ids = itertools.count(1)


def hall_layout(hall_id: str) -> Layout:
    text = EXAMPLE.read_text(encoding="utf-8").replace('id = "demo"', f'id = "{hall_id}"', 1)
    return parse_layout(text, f"{EXAMPLE} as {hall_id}")


@dataclass
class RegionBroker:
    directory: Path
    port: int
    tls_port: int
    credentials: dict[str, str]
    process: BrokerProcess

    def settings(self, user: str) -> Settings:
        return Settings(hall_id="region", broker_port=self.port, broker_username=user,
                        broker_password=SecretStr(self.credentials[user]))


def start_region_broker(directory: Path, hall_ids: tuple[str, ...], watchers: tuple[str, ...]
                        ) -> RegionBroker:
    """A regional Mosquitto whose hall accounts the test signs in with itself, as their bridges would
    (its TLS listener unused)."""
    credentials = provision_region(directory, [HallEntry(h, DISTRICT) for h in hall_ids], watchers=watchers)
    port = free_port()
    process = BrokerProcess(render_config(directory, Listeners(port=port, tls_port=free_port(),
                                                               tls_bind="127.0.0.1")), port)
    process.start()
    return RegionBroker(directory, port, 0, credentials, process)


@dataclass
class Hall:
    entry: HallEntry
    layout: Layout
    broker: HallBroker
    relay: Relay
    store: Path
    coordinator: CoordinatorService | None = None
    kiosk: Probe | None = None

    def start_coordinator(self) -> None:
        settings = self.broker.settings("coordinator", region_forward=True)
        self.coordinator = CoordinatorService(settings, self.layout, self.store)
        self.coordinator.start(wait_s=10)

    def issue(self, count: int) -> None:
        """``count`` ticket requests from kiosk K1 (QoS 1; the coordinator issues each once)."""
        if self.kiosk is None:
            self.kiosk = probe(self.broker.port, "traffic", self.broker.credentials["traffic"])
        services = [s.id for s in self.layout.services]
        topic = TICKET_REQUEST.topic(hall=self.entry.hall_id, kiosk="K1")
        for n in range(count):
            request = TicketRequest(command_id=f"t{next(_ids)}", service_id=services[n % len(services)],
                                    paper=False)
            self.kiosk.client.publish(topic, request.model_dump_json(), qos=1)

    @property
    def head(self) -> int:
        assert self.coordinator is not None
        return self.coordinator.store.last_seq

    def stop(self) -> None:
        if self.kiosk is not None:
            self.kiosk.stop()
        if self.coordinator is not None:
            self.coordinator.stop()
        self.relay.cut()
        self.broker.process.stop()


@dataclass
class RegionRig:
    root: Path
    db_url: str
    broker: RegionBroker
    halls: list[Hall] = field(default_factory=list)
    service: subprocess.Popen[bytes] | None = None
    heads: dict[str, int] = field(default_factory=dict)  # each hall's head when last caught up

    @classmethod
    def build(cls, root: Path, db_url: str, hall_ids: list[str]) -> RegionRig:
        entries = [HallEntry(h, DISTRICT) for h in hall_ids]
        directory = root / "region-broker"
        credentials = provision_region(directory, entries, watchers=WATCHERS[:4])
        port, tls_port = free_port(), free_port()
        config = render_config(directory, Listeners(port=port, tls_port=tls_port, tls_bind="127.0.0.1"))
        process = BrokerProcess(config, port)
        process.start()
        _free_watchers[port] = [(w, credentials[w]) for w in WATCHERS[:4]]
        rig = cls(root, db_url, RegionBroker(directory, port, tls_port, credentials, process))
        for entry in entries:
            rig.halls.append(rig._hall(entry))
        return rig

    def _hall(self, entry: HallEntry) -> Hall:
        layout = hall_layout(entry.hall_id)
        directory = self.root / entry.hall_id
        done = provision(layout, directory / "broker", demo=True, watchers=WATCHERS)
        port, tls_port = free_port(), free_port()
        config = render_config(directory / "broker",
                               Listeners(port=port, tls_port=tls_port, tls_bind="127.0.0.1"))
        relay = Relay(self.broker.tls_port)
        add_bridge(config, bridge_section(entry, "127.0.0.1", relay.port,
                                          self.broker.credentials[entry.account],
                                          self.broker.directory / "tls" / "ca.crt"))
        # Nothing saved to disk before a clean stop: a hall broker killed loses its whole queue for
        # the bridge, and the region must get those events again by resends from the hall's store.
        text = config.read_text(encoding="utf-8")
        assert "autosave_interval 10\n" in text
        config.write_text(text.replace("autosave_interval 10\n", "autosave_interval 3600\n"),
                          encoding="utf-8")
        config.chmod(0o600)  # it holds the bridge's password
        process = BrokerProcess(config, port)
        process.start()
        _free_watchers[port] = _free_watchers[tls_port] = [(w, done.credentials[w]) for w in WATCHERS]
        broker = HallBroker(directory / "broker", port, tls_port, done.credentials, process, entry.hall_id)
        hall = Hall(entry, layout, broker, relay, directory / "coordinator.sqlite3")
        hall.start_coordinator()
        return hall

    def start_service(self) -> None:
        env = {**os.environ, "HALL_BROKER_PORT": str(self.broker.port), "HALL_BROKER_USERNAME": "region",
               "HALL_BROKER_PASSWORD": self.broker.credentials["region"], "HALL_LOG_LEVEL": "INFO"}
        status = probe(self.broker.port, "monitor", None,
                       subscribe=[DEVICE_STATUS.topic(hall="region", device="region")])
        try:
            with (self.root / "region.log").open("ab") as out:
                self.service = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "region",
                                                 "--db", self.db_url], env=env, stdout=out, stderr=out)
            status.expect(lambda m: json.loads(m.payload)["state"] == "ok", timeout_s=20)
        finally:
            status.stop()

    def kill_broker(self, process: BrokerProcess) -> None:
        """SIGKILL: what it had not saved (autosave every 10 s) is lost, as in a power cut."""
        child = process._process
        assert child is not None
        child.send_signal(signal.SIGKILL)
        child.wait()

    def kill_service(self) -> None:
        assert self.service is not None
        self.service.send_signal(signal.SIGKILL)
        self.service.wait()

    def stop(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.send_signal(signal.SIGTERM)
            self.service.wait(15)
        for hall in self.halls:
            hall.stop()
        self.broker.process.stop()

    # --- what the region has -----------------------------------------------------------------------

    def applied(self) -> dict[str, int]:
        with psycopg.connect(self.db_url) as conn:
            return {str(h): int(a) for h, a in conn.execute("SELECT hall_id, applied FROM halls")}

    def caught_up(self) -> bool:
        heads = {h.entry.hall_id: h.head for h in self.halls}
        applied = self.applied()
        if all(applied.get(hall) == head for hall, head in heads.items()):
            self.heads = heads  # what the check compares: a hall may commit more afterwards
            return True
        return False

    def wait_caught_up(self, timeout_s: float = 60) -> None:
        log = self.root / "region.log"
        wait_until(self.caught_up, timeout_s, f"region caught up with every hall (see {log})")

    def check_exactly_once_in_order(self) -> int:
        """Every hall's events are in the region once, stored in the hall's order, with the hall's
        bodies; returns how many events were compared: up to each hall's head when the region last
        caught up (a hall may commit more afterwards)."""
        compared = 0
        with psycopg.connect(self.db_url) as conn:
            for hall in self.halls:
                assert hall.coordinator is not None
                head = self.heads.get(hall.entry.hall_id, 0)
                rows = conn.execute("SELECT seq, kind, body FROM events WHERE hall_id = %s "
                                    "ORDER BY ingest_id", (hall.entry.hall_id,)).fetchall()
                seqs = [int(r[0]) for r in rows]
                expected = list(range(1, len(seqs) + 1))
                wrong = next((i for i, (a, b) in enumerate(zip(seqs, expected, strict=True)) if a != b), None)
                assert wrong is None, (f"{hall.entry.hall_id}: stored out of order or twice at #{wrong}: "
                                       f"{seqs[max(0, (wrong or 0) - 3):(wrong or 0) + 3]}")
                assert len(seqs) >= head, f"{hall.entry.hall_id}: {len(seqs)} stored, head {head}"
                ours = hall.coordinator.store.event_range(1, head)
                for (seq, kind, body), (their_seq, _at, _day, their_kind, their_body) in zip(
                        rows[:head], ours, strict=True):
                    assert (seq, kind, body) == (their_seq, their_kind, json.loads(their_body))
                compared += head
        return compared
