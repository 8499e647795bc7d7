"""The booking platform's API against `hall-devices web` (a real process), a real coordinator and
Mosquitto: tokens, idempotent create/change/cancel, capacity, 400s naming the field, CSV/Excel import."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from hall_devices.demo.sim.idcard import DEMO_CARDS
from hall_devices.layout import Layout
from hall_devices.ops.broker import free_port
from hall_devices.web.api_clients import add_client
from hall_devices.web.booking_openapi import with_openapi
from tests.conftest import EXAMPLE, ROOT
from tests.coordinator.harness import Clock, Hall
from tests.support import HallBroker


def latest_monday() -> datetime:
    """09:00 hall time (UTC+8) on the latest Monday up to the hall's today by real time: a working
    day, and one the web finds a booking on when a change names no slot (it looks from a week
    before its today, which is real time, to two weeks after). A fixed date fell out of that week."""
    today = (datetime.now(UTC) + timedelta(hours=8)).date()
    monday = today - timedelta(days=today.weekday())
    return datetime(monday.year, monday.month, monday.day, 1, 0, tzinfo=UTC)


T0 = latest_monday()
DAY = T0.date().isoformat()  # T0's day: the coordinator's clock stands at 09:00 hall time


def at(hhmm: str) -> str:
    return f"{DAY}T{hhmm}:00+08:00"


@dataclass
class Api:
    url: str
    token: str
    store: Path
    tls: ssl.SSLContext  # the platform trusts the hall CA's certificate, as a real client must

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token if token is None else token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=15, context=self.tls) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    def book(self, booking_id: str, start: str = "10:00", end: str = "10:30",
             service: str = "estate_transfer", **extra: Any) -> tuple[int, dict[str, Any]]:
        return self.call("POST", "/api/v1/bookings", {"booking_id": booking_id, "service_id": service,
                                                       "slot_start": at(start), "slot_end": at(end), **extra})


@pytest.fixture
def api(own_broker: HallBroker, layout: Layout, tmp_path: Path) -> Iterator[Api]:
    store = tmp_path / "store.sqlite3"
    hall = Hall(own_broker, layout, store, Clock(T0))
    token = add_client(tmp_path / "web" / "api-clients.json", "platform")
    port = free_port()
    env = {**os.environ, "HALL_BROKER_PORT": str(own_broker.port), "HALL_BROKER_USERNAME": "web",
           "HALL_BROKER_PASSWORD": own_broker.credentials["web"], "HALL_LAYOUT": str(EXAMPLE),
           "HALL_WEB_PORT": str(port), "HALL_WEB_USERS": str(tmp_path / "users.toml"),
           "HALL_WEB_TLS_CERT_FILE": str(own_broker.directory / "tls" / "web.crt"),
           "HALL_WEB_TLS_KEY_FILE": str(own_broker.directory / "tls" / "web.key"),
           "HALL_DATA_DIR": str(tmp_path / "web"), "HALL_ID_SECRET": "api-test-key",
           "HALL_LOG_LEVEL": "WARNING"}
    (tmp_path / "users.toml").write_text("")
    log = (tmp_path / "web.log").open("ab")
    process = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", "web"], env=env, stdout=log,
                               stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        client = Api(f"https://127.0.0.1:{port}", token, store,
                     ssl.create_default_context(cafile=str(own_broker.directory / "tls" / "ca.crt")))
        deadline = time.monotonic() + 15
        while client.call("GET", f"/api/v1/bookings?day={DAY}")[0] == 503 and time.monotonic() < deadline:
            time.sleep(0.2)  # the web's MQTT session is still coming up
        yield client
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
            hall.stop()


def test_tokens_are_required_and_unknown_ones_refused(api: Api) -> None:
    for token in ("", "not-a-token", api.token + "x"):
        status, body = api.call("GET", f"/api/v1/bookings?day={DAY}", token=token)
        assert (status, body["error"]["code"]) == (401, "bad_token")
    status, spec = api.call("GET", "/api/v1/openapi.json", token="")
    assert status == 200 and "/api/v1/bookings/{booking_id}" in spec["paths"]
    stored = json.loads((Path(api.store).parent / "web" / "api-clients.json").read_text())
    assert api.token not in json.dumps(stored)  # kept hashed


def test_create_change_cancel_are_idempotent_and_bad_input_names_the_field(api: Api) -> None:
    card = DEMO_CARDS[0]
    status, booked = api.book("WX1001", id_number=card.id_number)
    assert status == 200, booked
    assert (booked["state"], booked["slot"], booked["by_id_card"]) == ("booked", "10:00-10:30", True)
    assert api.book("WX1001", id_number=card.id_number) == (200, booked)  # the platform retried
    status, body = api.book("WX1001", start="11:00", end="11:30")
    assert (status, body["error"]["code"]) == (409, "appointment_exists")

    for extra, field in (({"slot_start": "tomorrow"}, "slot_start"),
                         ({"service_id": "no_such"}, "service_id"),
                         ({"id_number": "420702198001010010"}, "id_number"),  # check digit wrong
                         ({"booking_id": "a b"}, "booking_id"),
                         ({"slot_start": at("11:00"), "slot_end": at("10:00")}, "slot_end"),
                         ({"slot_start": at("07:00"), "slot_end": at("07:30")}, "slot_end"),  # past
                         ({"slot_start": at("18:00"), "slot_end": at("18:30")}, "slot_start"),  # no band
                         ({"colour": "red"}, "colour")):
        body = {"booking_id": "WX2000", "service_id": "estate_transfer", "slot_start": at("10:00"),
                "slot_end": at("10:30"), **extra}
        status, answer = api.call("POST", "/api/v1/bookings", body)
        got = (status, answer["error"]["code"], answer["error"]["field"])
        assert got == (400, "bad_field", field), answer
        assert "420702198001010010" not in json.dumps(answer)

    move = {"slot_start": at("10:30"), "slot_end": at("11:00")}
    status, moved = api.call("PUT", "/api/v1/bookings/WX1001", move)
    assert (status, moved["slot"]) == (200, "10:30-11:00")
    assert api.call("PUT", "/api/v1/bookings/WX1001", move) == (200, moved)
    status, moved = api.call("PUT", "/api/v1/bookings/WX1001", {"service_id": "passport"})
    assert (status, moved["service_id"], moved["slot"]) == (200, "passport", "10:30-11:00")
    status, answer = api.call("PUT", "/api/v1/bookings/NOPE", move)
    assert (status, answer["error"]["code"]) == (404, "unknown_appointment")
    for _ in range(2):
        status, answer = api.call("DELETE", "/api/v1/bookings/WX1001")
        assert (status, answer["state"]) == (200, "cancelled")
    status, listing = api.call("GET", f"/api/v1/bookings?day={DAY}")
    assert status == 200 and [(b["booking_id"], b["state"]) for b in listing["bookings"]] == [
        ("WX1001", "cancelled")]
    status, answer = api.call("GET", "/api/v1/bookings?day=23/11")
    assert (status, answer["error"]["field"]) == (400, "day")
    stored = b"".join(p.read_bytes() for p in api.store.parent.glob("store.sqlite3*"))
    assert card.id_number.encode() not in stored


def test_bookings_beyond_a_bands_capacity_are_refused(api: Api) -> None:
    for n in range(12):  # examples/hall.toml: estate_transfer 09:00-12:00 takes 12 a day
        assert api.book(f"CAP{n:02d}", start="09:30", end="10:00")[0] == 200
    status, answer = api.book("CAP12", start="11:00", end="11:30")
    assert (status, answer["error"]["code"]) == (409, "slot_full")
    assert api.book("CAP12", start="14:00", end="14:30")[0] == 200  # the afternoon band has room
    assert api.call("DELETE", "/api/v1/bookings/CAP00")[0] == 200
    assert api.book("CAP13", start="11:00", end="11:30")[0] == 200  # a cancelled booking frees its place


def test_import_a_csv_and_an_excel_file_with_a_report_per_row(api: Api) -> None:
    csv_text = ("预约号,事项编码,日期,开始,结束,身份证号\n"
                f"IM001,estate_transfer,{DAY},10:00,10:30,{DEMO_CARDS[1].id_number}\n"
                f"IM002,no_such_service,{DAY},10:00,10:30,\n"
                f"IM003,estate_transfer,{DAY},25:00,10:30,\n"
                f"IM004,fund_withdraw,{DAY},15:00,15:30,\n")
    status, report = api.call("POST", "/api/v1/bookings/import?filename=day.csv",
                              raw=csv_text.encode("utf-8-sig"))
    assert status == 200, report
    assert (report["accepted"], report["refused"]) == (2, 2)
    rows = {r["row"]: r for r in report["rows"]}
    assert rows[2]["ok"] and rows[5]["ok"]
    assert (rows[3]["error"]["code"], rows[3]["error"]["field"]) == ("bad_field", "service_id")
    assert rows[4]["error"]["field"] == "start"

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["booking_id", "service_id", "date", "start", "end"])
    sheet.append(["XL001", "estate_transfer", DAY, "14:00", "14:30"])
    sheet.append(["IM001", "estate_transfer", DAY, "10:00", "10:30"])  # exists with other content
    out = io.BytesIO()
    book.save(out)
    status, report = api.call("POST", "/api/v1/bookings/import?filename=day.xlsx", raw=out.getvalue())
    assert status == 200, report
    assert [(r["booking_id"], r["ok"]) for r in report["rows"]] == [("XL001", True), ("IM001", False)]
    assert report["rows"][1]["error"]["code"] == "appointment_exists"

    status, answer = api.call("POST", "/api/v1/bookings/import?filename=x.csv", raw=b"name,when\nx,y\n")
    assert (status, answer["error"]["code"]) == (400, "bad_file")
    assert "booking_id" in answer["error"]["message"]


def test_the_openapi_in_the_docs_is_the_codes() -> None:
    doc = (ROOT / "docs" / "appointments.md").read_text(encoding="utf-8")
    assert with_openapi(doc) == doc, "run: hall-devices booking-client openapi"
    assert '"/api/v1/bookings/import"' in doc


def test_bodies_over_the_limit_are_refused_and_ids_never_cut(api: Api) -> None:
    host, port = api.url.removeprefix("https://").split(":")
    # Refused from the header alone, so none of the body is sent: a client still writing it when
    # the server closes could meet a reset instead of the answer.
    for path, size, cap in (("/api/v1/bookings", 64 * 1024 + 1, "65536"),
                            ("/api/v1/bookings/import?filename=x.csv", 300 * 2**20, "5242880")):
        connection = http.client.HTTPSConnection(host, int(port), context=api.tls, timeout=15)
        connection.putrequest("POST", path)
        connection.putheader("Authorization", f"Bearer {api.token}")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        declared = connection.getresponse()
        answer = json.loads(declared.read())
        assert (declared.status, answer["error"]["code"]) == (413, "too_large")
        assert cap in answer["error"]["message"]
        connection.close()
    # No Content-Length (chunked): the cap holds while the body streams in.
    connection = http.client.HTTPSConnection(host, int(port), context=api.tls, timeout=15)
    connection.putrequest("POST", "/api/v1/bookings")
    connection.putheader("Authorization", f"Bearer {api.token}")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for _ in range(5):  # the fifth piece crosses the cap; nothing more is sent
        connection.send(b"4000\r\n" + b" " * 0x4000 + b"\r\n")
    chunked = connection.getresponse()
    assert (chunked.status, json.loads(chunked.read())["error"]["code"]) == (413, "too_large")
    connection.close()

    assert api.book("B" * 32)[0] == 200
    move = {"slot_start": at("10:30"), "slot_end": at("11:00")}
    for method, body in (("DELETE", None), ("PUT", move)):
        status, answer = api.call(method, "/api/v1/bookings/" + "B" * 32 + "-OTHER", body)
        assert (status, answer["error"]["field"]) == (400, "booking_id"), answer
    status, listing = api.call("GET", f"/api/v1/bookings?day={DAY}")
    assert [(b["booking_id"], b["state"], b["slot"]) for b in listing["bookings"]] == [
        ("B" * 32, "booked", "10:00-10:30")]  # the 32-B booking neither cancelled nor moved
