"""Booking import benchmark: rows per second of an import, and the web's answers while a workbook is read.

Run: .venv/bin/python benchmarks/booking_import.py [--rows 1000] [--singles 200]

A provisioned Mosquitto, `hall-devices coordinator` and `hall-devices web` (HTTPS) in their own
processes. It measures:
- one booking per ``POST /api/v1/bookings`` (baseline: a request, a staff command and the listing of
  the booking's day), against one CSV import of ``--rows`` rows (a staff command per row, no listing);
- ``GET /api/v1/openapi.json`` alone (baseline) and while a 5,000-row .xlsx import is in flight (the
  workbook is parsed in a worker thread: the event loop keeps answering). Its rows end at 25:00, so
  the web refuses each itself: the figure is about reading the workbook, not the coordinator.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import io
import json
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openpyxl import Workbook

from benchmarks.support import broker, pct, role, wait_port
from hall_devices.ops.broker import free_port
from hall_devices.web.api_clients import add_client


class Api:
    def __init__(self, port: int, ca: Path, token: str) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca))
        self.token = token

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=300)
        connection.request(method, path, body=body, headers={"Authorization": f"Bearer {self.token}",
                                                             "Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response.status, data, (time.perf_counter() - started) * 1000


def csv_rows(prefix: str, day: str, count: int) -> bytes:
    lines = ["booking_id,service_id,date,start,end"]
    lines += [f"{prefix}{n:05d},fund_withdraw,{day},15:00,15:30" for n in range(count)]
    return "\n".join(lines).encode()


def workbook(day: str, count: int) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["booking_id", "service_id", "date", "start", "end"])
    for n in range(count):
        sheet.append([f"X{n:05d}", "fund_withdraw", day, "15:00", "25:00"])  # refused here: parsing counts
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=200)
    args = parser.parse_args()
    day = dt.date.today() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp)) as hall:
        token = add_client(Path(tmp) / "data" / "api-clients.json", "bench")
        tls = hall.directory / "broker" / "tls"
        port = free_port()
        users = Path(tmp) / "users.toml"
        users.write_text("")
        env = hall.env("web", HALL_WEB_PORT=str(port), HALL_WEB_USERS=str(users),
                       HALL_WEB_TLS_CERT_FILE=str(tls / "web.crt"),
                       HALL_WEB_TLS_KEY_FILE=str(tls / "web.key"),
                       HALL_ID_SECRET="bench-key")
        store = f"sqlite:///{Path(tmp) / 'store.sqlite3'}"
        with role(["coordinator"], hall.env("coordinator", HALL_DATABASE_URL=store)), role(["web"], env):
            wait_port(port)
            api = Api(port, tls / "ca.crt", token)
            while api.call("GET", f"/api/v1/bookings?day={day}")[0] == 503:
                time.sleep(0.2)
            singles = []
            for n in range(args.singles):
                body = {"booking_id": f"S{n:05d}", "service_id": "fund_withdraw",
                        "slot_start": f"{day}T15:00:00+08:00", "slot_end": f"{day}T15:30:00+08:00"}
                status, answer, ms = api.call("POST", "/api/v1/bookings", json.dumps(body).encode())
                assert status == 200, answer
                singles.append(ms)
            status, answer, import_ms = api.call("POST", "/api/v1/bookings/import?filename=d.csv",
                                                 csv_rows("I", day.isoformat(), args.rows))
            assert status == 200 and json.loads(answer)["accepted"] == args.rows, answer[:300]
            alone = [api.call("GET", "/api/v1/openapi.json")[2] for _ in range(30)]
            big = workbook(day.isoformat(), 5000)
            done = threading.Event()

            def importing() -> None:
                api.call("POST", "/api/v1/bookings/import?filename=big.xlsx", big)
                done.set()

            threading.Thread(target=importing).start()
            during: list[float] = []
            while not done.is_set():
                during.append(api.call("GET", "/api/v1/openapi.json")[2])
    per_single = statistics.mean(singles)
    print(f"baseline  one booking per POST: {per_single:.1f} ms a booking ({args.singles} bookings)")
    print(f"import    {args.rows} rows in one CSV: {import_ms / 1000:.1f} s, "
          f"{import_ms / args.rows:.1f} ms a row")
    print(f"baseline  GET openapi.json alone: p50 {statistics.median(alone):.1f} ms, "
          f"p99 {pct(alone, 99):.1f} ms")
    if during:
        print(f"import    the same GET while a 5,000-row .xlsx is imported: p50 "
              f"{statistics.median(during):.1f} ms, p99 {pct(during, 99):.1f} ms ({len(during)} requests)")


if __name__ == "__main__":
    main()
