"""`hall-devices up --region N`: N simulated halls and their region on this machine (demo, tests).

Each hall: its own Mosquitto (bridged over TLS to the regional one), its coordinator forwarding its
events, and the traffic generator (applicants, clerks by window commands, ratings). The region: its
Mosquitto, a PostgreSQL cluster of its own in ``DATA/region/pg`` (run as ``nobody`` when started as
root: ``initdb`` refuses root), the regional service and the regional dashboard over TLS. Prints a
line per hall every few seconds (events stored / committed); Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from hall_devices.demo.traffic import TrafficGenerator, TrafficMix
from hall_devices.demo.up import Summary
from hall_devices.layout import Layout, parse_layout
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
from hall_devices.ops.children import dying_with_parent
from hall_devices.ops.provision import provision
from hall_devices.region.bridge import HallEntry, add_bridge, bridge_section, provision_region
from hall_devices.region.db import RegionDb
from hall_devices.region.pgcluster import PgCluster
from hall_devices.region.users import RegionRole, write_region_users
from hall_devices.registry import role_named
from hall_devices.role_spec import RoleArgs
from hall_devices.settings import Settings

DISTRICT = "420704"  # 鄂城区, for the demo
DEMO_USERS: dict[str, tuple[RegionRole, str]] = {"region": ("region_manager", "region-demo"),
                                                  "audit": ("auditor", "audit-demo")}


@dataclass
class RegionDemo:
    count: int
    layout_file: Path
    data_dir: Path
    speed: float = 60.0
    web_port: int = 8443
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    brokers: list[BrokerProcess] = field(default_factory=list)
    traffic: list[TrafficGenerator] = field(default_factory=list)
    watchers: list[Summary] = field(default_factory=list)
    cluster: PgCluster | None = None

    def say(self, text: str) -> None:
        print(text, flush=True)

    def _child(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        with log.open("ab") as out:
            # A session of its own, as `up`'s children: a terminal's Ctrl-C reaches `up` only, which
            # stops each child in order (SIGTERM), not every child at once mid-import with a traceback.
            self.children.append(subprocess.Popen(dying_with_parent(argv), env={**os.environ, **env},
                                                  stdout=out, stderr=out, start_new_session=True))

    def start(self) -> str:
        """Start everything; returns the region database URL."""
        root = self.data_dir / "region"
        root.mkdir(parents=True, exist_ok=True)
        self.cluster = PgCluster(root / "pg", free_port())
        self.cluster.init()
        self.cluster.start()
        db_url = self.cluster.url
        RegionDb(db_url).close()  # migrated before anyone writes
        halls = [HallEntry(f"hall{i}", DISTRICT) for i in range(1, self.count + 1)]
        credentials = provision_region(root / "broker", halls)
        rport, rtls = free_port(), free_port()
        region_broker = BrokerProcess(render_config(root / "broker", Listeners(
            port=rport, tls_port=rtls, tls_bind="127.0.0.1")), rport, die_with_parent=True)
        region_broker.start()
        self.brokers.append(region_broker)
        for entry in halls:
            self._hall(entry, rtls, credentials[entry.account], root / "broker" / "tls" / "ca.crt")
        broker_env = {"HALL_BROKER_PORT": str(rport), "HALL_BROKER_USERNAME": "region",
                      "HALL_BROKER_PASSWORD": credentials["region"]}
        self._child(role_named("region").command(RoleArgs(db=db_url)), broker_env, root / "region.log")
        write_region_users(root / "users.toml", DEMO_USERS)
        tls = root / "broker" / "tls"
        cli = [sys.executable, "-m", "hall_devices.cli"]
        self._child([*cli, "region-web", "--db", db_url, "--users", str(root / "users.toml"),
                     "--port", str(self.web_port), "--tls-cert", str(tls / "server.crt"),
                     "--tls-key", str(tls / "server.key")], {}, root / "region-web.log")
        self.say(f"region: PostgreSQL {db_url}, regional broker 127.0.0.1:{rport}")
        self.say(f"regional dashboard: https://localhost:{self.web_port}/ (CA {tls / 'ca.crt'}); "
                 + ", ".join(f"{n} / {p} ({r})" for n, (r, p) in DEMO_USERS.items()))
        return db_url

    def _hall(self, entry: HallEntry, region_tls_port: int, password: str, ca: Path) -> None:
        folder = self.data_dir / entry.hall_id
        layout = self._layout(entry.hall_id, folder)
        done = provision(layout, folder / "broker", demo=True)
        port, tls_port = free_port(), free_port()
        config = render_config(folder / "broker", Listeners(port=port, tls_port=tls_port,
                                                            tls_bind="127.0.0.1"))
        add_bridge(config, bridge_section(entry, "127.0.0.1", region_tls_port, password, ca))
        config.chmod(0o600)  # it holds the bridge's password
        broker = BrokerProcess(config, port, die_with_parent=True)
        broker.start()
        self.brokers.append(broker)
        self._child(role_named("coordinator").command(RoleArgs()), {
            "HALL_HALL_ID": entry.hall_id, "HALL_LAYOUT": str(folder / "layout.toml"),
            "HALL_DATABASE_URL": f"sqlite:///{folder / 'coordinator.sqlite3'}",
            "HALL_BROKER_PORT": str(port), "HALL_BROKER_USERNAME": "coordinator",
            "HALL_BROKER_PASSWORD": done.credentials["coordinator"], "HALL_REGION_FORWARD": "true",
            "HALL_LOG_LEVEL": "WARNING"}, folder / "coordinator.log")
        watch = Summary(self._settings(entry.hall_id, port, "up", done.credentials), layout)
        watch.bus.start(wait_s=30)
        self.watchers.append(watch)
        if not watch.wait_online("coordinator", 60):
            raise RuntimeError(f"{entry.hall_id}: the coordinator did not come online; see "
                               f"{folder / 'coordinator.log'}")
        settings = self._settings(entry.hall_id, port, "traffic", done.credentials)
        generator = TrafficGenerator(settings, layout, TrafficMix(speed=self.speed, windows_open=8))
        generator.start(wait_s=30)
        self.traffic.append(generator)
        self.say(f"{entry.hall_id}: broker 127.0.0.1:{port}, store {folder / 'coordinator.sqlite3'}")

    @staticmethod
    def _settings(hall_id: str, port: int, user: str, credentials: dict[str, str]) -> Settings:
        return Settings(hall_id=hall_id, broker_port=port, broker_username=user,
                        broker_password=SecretStr(credentials[user]))

    def _layout(self, hall_id: str, folder: Path) -> Layout:
        text = self.layout_file.read_text(encoding="utf-8")
        text = text.replace('id = "demo"', f'id = "{hall_id}"', 1)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "layout.toml").write_text(text, encoding="utf-8")
        return parse_layout(text, str(folder / "layout.toml"))

    def line(self, db_url: str) -> str:
        db = RegionDb(db_url)
        try:
            marks = db.marks()
        finally:
            db.close()
        line = "  ".join(f"{m.hall_id} 已汇聚 stored {m.applied}/{m.head}" for m in marks)
        return line or "waiting for halls"

    def stop(self) -> None:
        for generator in self.traffic:
            generator.stop()
        for watch in self.watchers:
            watch.bus.stop()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        for broker in reversed(self.brokers):
            broker.stop()
        if self.cluster is not None:
            self.cluster.stop()


def run_region(count: int, layout_file: Path, data_dir: Path, speed: float, duration: float | None, *,
               web_port: int) -> int:
    demo = RegionDemo(count, layout_file, data_dir, speed, web_port)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        db_url = demo.start()
        waited = 0.0
        while not stop.wait(2.0):
            waited += 2.0
            demo.say(demo.line(db_url))
            if duration is not None and waited >= duration:
                break
    finally:
        demo.say("stopping ...")
        demo.stop()
        demo.say("stopped.")
    return 0
