"""Render the hall's mosquitto.conf and run a Mosquitto process from it (demo and tests)."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hall_devices.contract import MAX_PAYLOAD_BYTES
from hall_devices.ops.children import dying_with_parent

TEMPLATE = Path(__file__).resolve().parent / "broker_config" / "mosquitto.conf"


class BrokerError(Exception):
    pass


@dataclass(frozen=True)
class Listeners:
    port: int = 1883
    bind: str = "127.0.0.1"
    tls_port: int = 8883
    tls_bind: str = "0.0.0.0"
    dev_port: int | None = None
    run_as: str = field(default_factory=getpass.getuser)


# Every port free_port has given this process. The kernel picks a free port at random, so two
# calls before the first port is bound can get the same one (1 in ~14,000): a broker's two
# listeners on one port, and Mosquitto exits with "Address already in use".
_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now and that this process was never given."""
    with _handed_out_lock:
        for _ in range(1000):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = int(probe.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise BrokerError("no free TCP port left on 127.0.0.1 that this process was not given already")


def render_config(directory: Path, listeners: Listeners, template: Path = TEMPLATE) -> Path:
    """Write ``directory/mosquitto.conf`` from the template; returns its path."""
    if not template.is_file():
        raise BrokerError(f"broker template not found: {template} (the package is incomplete: reinstall it)")
    data_dir = directory / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    text = template.read_text(encoding="utf-8")
    dev = listeners.dev_port is not None
    lines = []
    for line in text.splitlines():
        if not line.startswith("# @DEV@ "):
            lines.append(line)
        elif dev:
            lines.append(line.removeprefix("# @DEV@ "))
    text = "\n".join(lines) + "\n"
    for name, value in {"@DATA_DIR@": data_dir.resolve(), "@DIR@": directory.resolve(),
                        "@PORT@": listeners.port, "@BIND@": listeners.bind,
                        "@TLS_PORT@": listeners.tls_port, "@TLS_BIND@": listeners.tls_bind,
                        "@DEV_PORT@": listeners.dev_port, "@USER@": listeners.run_as,
                        "@MAX_PAYLOAD@": MAX_PAYLOAD_BYTES}.items():
        text = text.replace(name, str(value))
    live = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    left = sorted(set(re.findall(r"@[A-Z_]+@", live)))
    if left:  # Mosquitto would refuse the file with a less helpful message, or worse, accept it
        raise BrokerError(f"{template}: placeholders without a value: {', '.join(left)}")
    config = directory / "mosquitto.conf"
    config.write_text(text, encoding="utf-8")
    return config


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class BrokerProcess:
    """A Mosquitto child process; ``start`` waits until its password listener accepts TCP."""

    def __init__(self, config: Path, port: int, log_file: Path | None = None,
                 die_with_parent: bool = False) -> None:
        self.config = config
        self.die_with_parent = die_with_parent  # start() must then be called from a long-lived thread
        self.port = port
        self.log_file = log_file or config.with_name("mosquitto.log")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        if _listening(self.port):  # else the wait below would take the other program for ours
            raise BrokerError(f"port {self.port} is already in use by another program "
                              f"(another broker?): choose another port")
        # 0600: the log names every account and address that connects.
        log = os.fdopen(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        written_before = log.tell()  # the log is appended to: only this run's lines count below
        argv = [binary, "-c", str(self.config)]
        if self.die_with_parent:
            argv = dying_with_parent(argv)
        # In a session of its own when it dies with us: then only we decide when it stops.
        self._process = subprocess.Popen(argv, stdout=log, stderr=log,
                                         start_new_session=self.die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                with self.log_file.open("rb") as lines:
                    lines.seek(written_before)
                    said = lines.read().decode(errors="replace")
                if "Address already in use" in said:
                    raise BrokerError(f"port {self.port} is already in use by another program "
                                      f"(another broker?): choose another port")
                raise BrokerError(f"mosquitto exited with {self._process.returncode}; see {self.log_file}:\n"
                                  + self.log_file.read_text(errors="replace")[-2000:])
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def reload(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGHUP)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None
