"""Shared by the benchmarks: a provisioned broker on free ports and child processes of our roles."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from hall_devices.layout import load_layout
from hall_devices.ops.broker import BrokerProcess, Listeners, free_port, render_config
from hall_devices.ops.children import stop_child
from hall_devices.ops.provision import provision
from hall_devices.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "examples" / "hall.toml"
HALL = "demo"


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile (0–100) of ``values`` (not empty) as one of them, no interpolation:
    the sorted value at index round(p / 100 × (n − 1)) (the nearest rank on the n − 1 scale, numpy's
    ``method="nearest"``). So p99 of 60 values is the second largest, of 100 the second largest,
    of 200 the third largest; p90 of 200 the 21st largest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Broker:
    port: int
    credentials: dict[str, str]
    directory: Path

    def settings(self, user: str) -> Settings:
        return Settings(hall_id=HALL, broker_port=self.port, broker_username=user,
                        broker_password=SecretStr(self.credentials[user]))

    def env(self, user: str, **extra: str) -> dict[str, str]:
        return {**os.environ, "HALL_BROKER_PORT": str(self.port), "HALL_BROKER_USERNAME": user,
                "HALL_BROKER_PASSWORD": self.credentials[user], "HALL_LAYOUT": str(LAYOUT),
                "HALL_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                "HALL_DATA_DIR": str(self.directory / "data"), **extra}


@contextmanager
def broker(directory: Path) -> Iterator[Broker]:
    credentials = provision(load_layout(LAYOUT), directory / "broker", demo=True).credentials
    port = free_port()
    config = render_config(directory / "broker", Listeners(port=port, tls_port=free_port(),
                                                            tls_bind="127.0.0.1"))
    process = BrokerProcess(config, port)
    process.start()
    try:
        yield Broker(port, credentials, directory)
    finally:
        process.stop()


@contextmanager
def role(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A `hall-devices` role in a child process, stopped with SIGTERM like systemd would."""
    child = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", *args], env=env)
    try:
        yield child
    finally:
        stop_child(child, 15)


def wait_port(port: int, within_s: float = 30) -> None:
    """Until a process listens on 127.0.0.1:``port``; OSError after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
