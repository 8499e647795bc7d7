"""Web sign-in benchmark: a login flood must not slow other pages; unknown users cost the same.

Run: .venv/bin/python benchmarks/web.py [--flood 60] [--samples 40]

`hall-devices web` runs in production mode (HTTPS, provisioning's certificate) against a provisioned
Mosquitto. With the throttle opened wide (so every flooded sign-in really is hashed), it measures:
- a signed-in page (`/state.json`) alone (baseline) and while ``--flood`` sign-ins with wrong
  passwords are in flight at once;
- a wrong password for a known user against one for an unknown user (the baseline is the known
  user: the unknown one should cost the same, so the answer time does not tell which names exist).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.support import broker, pct, role, wait_port
from hall_devices.ops.broker import free_port
from hall_devices.web.users import add_user

PASSWORD = "Bench-Mark-2031"


class Client:
    def __init__(self, port: int, ca: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca))
        self.origin = f"https://127.0.0.1:{port}"

    def call(self, path: str, form: dict[str, str] | None = None, cookie: str = "") -> tuple[int, str, float]:
        started = time.perf_counter()
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=60)
        headers = {"Origin": self.origin, "Cookie": cookie}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request("POST" if form is not None else "GET", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        cookie_set = (response.headers.get("Set-Cookie") or "").split(";", 1)[0]
        connection.close()
        return response.status, cookie_set, (time.perf_counter() - started) * 1000


def flood(port: int, ca: Path, threads: int, stop: Any) -> None:
    """Wrong passwords for made-up names from ``threads`` threads until ``stop`` is set."""
    client = Client(port, ca)

    def one(i: int) -> None:
        while not stop.is_set():
            client.call("/login", {"username": f"guess{i}", "password": "wrong-guess-1"})

    running = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()


def page_times(client: Client, cookie: str, count: int) -> list[float]:
    return [client.call("/state.json", cookie=cookie)[2] for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=60, help="sign-ins in flight at once")
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp)) as hall:
        users = Path(tmp) / "users.toml"
        add_user(users, "boss", "manager", PASSWORD)
        tls = hall.directory / "broker" / "tls"
        port = free_port()
        env = hall.env("web", HALL_WEB_PORT=str(port), HALL_WEB_USERS=str(users),
                       HALL_WEB_TLS_CERT_FILE=str(tls / "web.crt"),
                       HALL_WEB_TLS_KEY_FILE=str(tls / "web.key"),
                       HALL_WEB_LOGIN_FREE_ATTEMPTS="100", HALL_WEB_LOGIN_BACKOFF_S="0.01",
                       HALL_WEB_LOGIN_MAX_BACKOFF_S="0.01")
        with role(["web"], env):
            wait_port(port)
            client = Client(port, tls / "ca.crt")
            status, cookie, _ = client.call("/login", {"username": "boss", "password": PASSWORD})
            assert status == 303, status
            alone = page_times(client, cookie, args.samples)
            # The flood comes from another process (as from other PCs), so that its threads do not
            # compete with the measuring thread for this interpreter.
            spawn = multiprocessing.get_context("spawn")
            stop = spawn.Event()
            flooder = spawn.Process(target=flood, args=(port, tls / "ca.crt", args.flood, stop))
            flooder.start()
            time.sleep(2.0)  # let the flood fill the hashing pool
            during = page_times(client, cookie, args.samples)
            stop.set()
            flooder.join()
            time.sleep(1.0)
            known: list[float] = []
            unknown: list[float] = []
            for _ in range(args.samples // 2):  # interleaved, so that load elsewhere hits both alike
                known.append(client.call("/login", {"username": "boss", "password": "wrong-guess-1"})[2])
                unknown.append(client.call("/login", {"username": "nobody", "password": "wrong-guess-1"})[2])
    print(f"baseline  signed-in page alone: p50 {statistics.median(alone):.1f} ms, "
          f"p99 {pct(alone, 99):.1f} ms ({len(alone)} requests, HTTPS, a new connection each)")
    print(f"web       the same page during a flood of {args.flood} sign-ins in flight: "
          f"p50 {statistics.median(during):.1f} ms, p99 {pct(during, 99):.1f} ms")
    print(f"baseline  wrong password, known user: p50 {statistics.median(known):.1f} ms")
    print(f"web       wrong password, unknown user: p50 {statistics.median(unknown):.1f} ms "
          f"(the same work: the name does not show in the time)")


if __name__ == "__main__":
    main()
