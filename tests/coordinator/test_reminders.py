"""SMS reminders through the outbox to a local HTTP gateway that fails on purpose: once at the Nth
place, once at the call, retried across failures, never more; the phone number kept apart and dropped
when the day ends."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hall_devices.contract import TICKET_REQUEST, TicketReply, TicketRequest
from hall_devices.coordinator.reminders import Reminders
from hall_devices.coordinator.service import CoordinatorService
from hall_devices.layout import Layout
from hall_devices.settings import Settings
from tests.coordinator.harness import T0, Clock, Hall
from tests.coordinator.test_time import Clocks, hall_time
from tests.coordinator.test_time import Hall as StepHall
from tests.support import HallBroker, wait_until

PHONE = "13800138000"


class Gateway:
    """Answers 500 to the first ``failures`` requests, then 200; records every request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["header_key"] = self.headers["Idempotency-Key"]
                with gateway.lock:
                    gateway.requests.append(body)
                    ok = len(gateway.requests) > gateway.failures
                    if ok:
                        gateway.accepted.append(body)
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys(self) -> list[str]:
        with self.lock:
            return [r["idempotency_key"] for r in self.accepted]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RemindingHall(Hall):
    gateway_url = ""

    def start_coordinator(self) -> CoordinatorService:
        settings = self.broker.settings("coordinator", sms_gateway_url=self.gateway_url, sms_retry_s=0.2,
                                        reminder_place=2)
        service = CoordinatorService(settings, self.layout, self.store, clock=self.clock)
        service.start(wait_s=10)
        return service


@pytest.fixture
def hall(own_broker: HallBroker, layout: Layout, tmp_path: Path) -> Iterator[tuple[RemindingHall, Gateway]]:
    gateway = Gateway(failures=2)
    RemindingHall.gateway_url = gateway.url
    running = RemindingHall(own_broker, layout, tmp_path / "store.sqlite3", Clock(T0))
    yield running, gateway
    running.stop()
    gateway.stop()


def test_reminded_once_at_the_nth_place_and_once_at_the_call_across_gateway_failures(
        hall: tuple[RemindingHall, Gateway], tmp_path: Path) -> None:
    hall_, gateway = hall
    window = hall_.layout.windows_serving("passport")[0]
    # Booked for the afternoon, here at 09:00: outside the slot's tolerance, so a normal ticket.
    assert hall_.staff("book_appointment", appointment_code="RM1", service_id="passport",
                       slot_start=T0 + timedelta(hours=4), slot_end=T0 + timedelta(hours=4, minutes=30),
                       phone=PHONE).ok
    for _ in range(3):
        assert hall_.take("passport").ok
    mine = hall_.take(None, "appointment", code="RM1")
    assert mine.ticket is not None and mine.ticket.ticket_class == "normal" and mine.ticket.people_ahead == 3
    ticket_id = mine.ticket.ticket_id
    hall_.ok(window, "login", clerk_id="c1")
    hall_.ok(window, "next")  # 2 ahead: 3rd place, not yet
    hall_.ok(window, "finish")
    hall_.ok(window, "next")  # 1 ahead: 2nd place, reminded
    wait_until(lambda: gateway.keys() == [f"{ticket_id}:place"], 10, "the place reminder")
    assert len(gateway.requests) == 3  # two refused by the gateway, the third accepted
    assert all(r["idempotency_key"] == r["header_key"] == f"{ticket_id}:place" for r in gateway.requests)
    assert gateway.accepted[0]["to"] == PHONE and "前面还有1人" in gateway.accepted[0]["text"]
    hall_.ok(window, "finish")
    hall_.ok(window, "next")  # 1st place: no second place reminder
    hall_.ok(window, "finish")
    assert hall_.next_number(window) == mine.ticket.number
    wait_until(lambda: len(gateway.keys()) == 2, 10, "the call reminder")
    assert gateway.keys()[1] == f"{ticket_id}:call" and f"{window}号窗口" in gateway.accepted[1]["text"]
    hall_.ok(window, "recall")
    hall_.ok(window, "finish")
    hall_.take("passport")
    threading.Event().wait(1.0)
    assert gateway.keys() == [f"{ticket_id}:place", f"{ticket_id}:call"]  # never more than two
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("store.sqlite3*"))
    assert PHONE.encode() not in stored  # the event store never has it

    reminders = hall_.service.reminders
    assert reminders is not None and reminders.phones_kept() == 2  # the booking's and the ticket's
    hall_.clock.advance(days=1)
    assert hall_.take("passport").ok  # the next day's first event
    wait_until(lambda: reminders.phones_kept() == 0, 5, "the day's phone numbers deleted")
    kept = b"".join(p.read_bytes() for p in tmp_path.glob("reminders.sqlite3*"))  # with its WAL
    assert PHONE.encode() not in kept  # secure_delete, VACUUM, the WAL checkpointed and truncated


def test_a_phone_number_left_at_the_kiosk_gets_its_reminders(hall: tuple[RemindingHall, Gateway]) -> None:
    hall_, gateway = hall
    gateway.failures = 0
    request = TicketRequest(command_id="kiosk-phone-1", service_id="passport", phone="13900139000")
    reply = hall_.kiosk.requests.call(TICKET_REQUEST, request, kiosk="K1")
    assert isinstance(reply, TicketReply) and reply.ticket is not None
    ticket_id = reply.ticket.ticket_id
    wait_until(lambda: gateway.keys() == [f"{ticket_id}:place"], 10, "the place reminder")
    window = hall_.layout.windows_serving("passport")[0]
    hall_.ok(window, "login", clerk_id="c1")
    hall_.ok(window, "next")
    wait_until(lambda: len(gateway.keys()) == 2, 10, "the call reminder")
    assert {r["to"] for r in gateway.accepted} == {"13900139000"}


def test_a_bookings_phone_is_its_content_follows_a_move_and_goes_with_a_cancel(
        hall: tuple[RemindingHall, Gateway]) -> None:
    hall_, _ = hall
    reminders = hall_.service.reminders
    assert reminders is not None
    slot = {"service_id": "passport", "slot_start": T0 + timedelta(hours=4),
            "slot_end": T0 + timedelta(hours=4, minutes=30)}
    assert hall_.staff("book_appointment", appointment_code="PH1", phone=PHONE, **slot).ok
    assert hall_.staff("book_appointment", appointment_code="PH1", phone=PHONE, **slot).ok  # a retry
    for other in ("13800138001", None):
        refused = hall_.staff("book_appointment", appointment_code="PH1", phone=other, **slot)
        assert refused.error is not None and refused.error.code == "appointment_exists"
    assert reminders.phone_of("appointment:PH1") == PHONE  # never silently replaced
    assert hall_.staff("book_appointment", appointment_code="PH2", phone="13800138002", **slot).ok

    tomorrow = T0 + timedelta(days=1, hours=1)
    assert hall_.staff("change_appointment", appointment_code="PH1", slot_start=tomorrow,
                       slot_end=tomorrow + timedelta(minutes=30)).ok
    hall_.clock.advance(days=1)
    assert hall_.take("passport").ok  # the next day's first event purges the old day's numbers
    wait_until(lambda: reminders.phone_of("appointment:PH2") is None, 5, "yesterday's numbers purged")
    assert reminders.phone_of("appointment:PH1") == PHONE  # it moved with its booking
    assert hall_.staff("cancel_appointment", appointment_code="PH1").ok
    assert reminders.phone_of("appointment:PH1") is None and reminders.phones_kept() == 0


def test_the_phone_file_is_private_even_when_it_was_not_and_a_forgotten_number_leaves_no_trace(
        tmp_path: Path) -> None:
    path = tmp_path / "reminders.sqlite3"
    path.touch()
    path.chmod(0o644)  # left readable by an earlier version or another tool
    reminders = Reminders(Settings(sms_gateway_url="http://127.0.0.1:9/sms"), path)  # sender not started
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        reminders.remember("appointment:PV1", PHONE, "2026-11-23")
        wal = path.with_name(path.name + "-wal")
        assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
        assert reminders.phone_of("appointment:PV1") == PHONE
        reminders.forget("appointment:PV1")  # a cancelled booking's number
        assert PHONE.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("reminders.sqlite3*"))
    finally:
        reminders.stop()


def test_a_clock_step_into_tomorrow_keeps_todays_numbers_until_the_day_moves(layout: Layout,
                                                                           tmp_path: Path) -> None:
    """The numbers' day is the engine's business day, not the clock's: NTP stepping the clock past
    midnight while the engine holds today (settling) deletes none of today's phone numbers."""
    hall = StepHall(layout, Clocks(hall_time("2026-11-23 23:59:50")))
    hall.take()
    reminders = Reminders(Settings(sms_gateway_url="http://127.0.0.1:9/sms"), tmp_path / "r.sqlite3")
    try:
        reminders.remember("appointment:ST1", PHONE, "2026-11-23")  # booked for today, 14:00
        hall.clocks.advance(seconds=1)
        hall.clocks.step(seconds=30)  # 00:00:21 by the clock; the engine keeps 2026-11-23
        hall.tick()
        assert hall.engine.state.day == "2026-11-23"
        reminders.observe([], hall.engine, hall.clocks.wall)
        assert reminders.phone_of("appointment:ST1") == PHONE
        for _ in range(130):  # the later day settled: now the day has ended
            hall.clocks.advance(seconds=1)
            hall.tick()
        assert hall.engine.state.day == "2026-11-24"
        reminders.observe([], hall.engine, hall.clocks.wall)
        assert reminders.phone_of("appointment:ST1") is None
    finally:
        reminders.stop()
