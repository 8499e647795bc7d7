"""Reminders by SMS: at the Nth place in the queue and at the call, at most two per ticket.

Phone numbers never enter the event store: they live in this outbox's own SQLite file
(``reminders.sqlite3`` beside the store, opened by :func:`hall_devices.durable.open_private`: mode
0600, an existing file made 0600 on open, WAL, a commit durable when it returns) and are deleted
when their day ends. A reminder is queued
once under its idempotency key (``<ticket id>:place`` or ``:call``; the primary key makes a second
one impossible) and sent by a thread of its own to the hall's SMS gateway: HTTP POST of JSON
``{"to", "text", "idempotency_key"}`` with the same key in the ``Idempotency-Key`` header, basic
auth when configured; retried with backoff (2, 4 ... 60 s) until a 2xx or ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

from hall_devices.agent import Worker
from hall_devices.contract import (
    Payload,
    Problem,
    StaffAction,
    StaffCommand,
    StaffResult,
    TicketReply,
    TicketRequest,
    TicketStatus,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.calendar import business_day
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import Outcome
from hall_devices.durable import open_private
from hall_devices.layout import Layout
from hall_devices.settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
SCHEMA = """
CREATE TABLE IF NOT EXISTS phones (owner TEXT PRIMARY KEY, day TEXT NOT NULL, phone TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, day TEXT NOT NULL, phone TEXT NOT NULL,
    text TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL DEFAULT 0,
    sent INTEGER NOT NULL DEFAULT 0);
"""


class Reminders:
    """Used by the coordinator's worker (queueing) and its own sender thread (sending).

    ``path``: the outbox's SQLite file, made (with its folder) mode 0600, WAL; an existing file is
    made 0600 on open (:func:`hall_devices.durable.open_private`). Raises OSError when it cannot be
    made, ``sqlite3.DatabaseError`` when it is not a database."""

    def __init__(self, settings: Settings, path: Path) -> None:
        assert settings.sms_gateway_url is not None
        self.settings = settings
        self.url = settings.sms_gateway_url
        self._db = open_private(path)
        self._db.execute("PRAGMA secure_delete = ON")  # a deleted phone number is overwritten on disk
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        # The sender: woken when a reminder is queued, or when a retry falls due.
        self._sender: Worker[None] = Worker("sms reminders", _nothing_posted, self._send_due)
        self._day = ""

    def start(self) -> None:
        self._sender.start()

    def stop(self) -> None:
        self._sender.stop(timeout_s=5)
        self._db.close()

    def _sql(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _erase_wal(self) -> None:
        """After a deletion (caller holds the lock): the WAL's frames still hold the numbers'
        earlier pages; checkpointed into the file (secure_delete zeroed them there) and truncated."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- from the coordinator's worker ----------------------------------------------------------

    def remember(self, owner: str, phone: str, day: str) -> None:
        """Keep ``phone`` for ``owner`` (``appointment:<code>`` or ``ticket:<id>``) until ``day`` ends."""
        self._sql("INSERT OR REPLACE INTO phones VALUES (?, ?, ?)", (owner, day, phone))

    def phone_of(self, owner: str) -> str | None:
        found = self._sql("SELECT phone FROM phones WHERE owner = ?", (owner,))
        return str(found[0][0]) if found else None

    def follow(self, owner: str, day: str) -> None:
        """The booking moved: its phone is kept until its new day ends."""
        self._sql("UPDATE phones SET day = ? WHERE owner = ?", (day, owner))

    def forget(self, owner: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM phones WHERE owner = ?", (owner,))
            self._erase_wal()

    def observe(self, events: list[ev.Event], engine: Engine, now: datetime) -> None:
        """After a commit: carry a booking's phone to its ticket; queue what is due; purge old days.
        A day ends when the engine's business day moves on, not the clock's: a clock stepped into
        tomorrow (the day not yet settled) deletes none of today's numbers."""
        day = engine.state.day or business_day(engine.layout.hall, now)
        if day != self._day:
            with self._lock:  # one step: nobody sees the numbers half deleted
                self._db.execute("DELETE FROM phones WHERE day < ?", (day,))
                self._db.execute("DELETE FROM outbox WHERE day < ?", (day,))
                self._db.execute("VACUUM")  # once a day: no free page keeps a deleted number
                self._erase_wal()
            self._day = day
        for event in events:
            if isinstance(event, ev.TicketIssued) and event.appointment_code:
                found = self._sql("SELECT phone FROM phones WHERE owner = ?",
                                  (f"appointment:{event.appointment_code}",))
                if found:
                    self.remember(f"ticket:{event.ticket_id}", str(found[0][0]), event.day)
        owners = self._sql("SELECT owner, phone FROM phones WHERE owner LIKE 'ticket:%' AND day = ?",
                           (day,))
        for owner, phone in owners:
            ticket = engine.state.tickets.get(str(owner).removeprefix("ticket:"))
            if ticket is None:
                continue
            info = engine.views.ticket(engine.state, ticket)
            values = {"hall": engine.layout.hall.name.zh, "number": ticket.number,
                      "ahead": info.people_ahead, "window": ticket.window, "service": info.service_name.zh}
            at_place = info.people_ahead + 1 <= self.settings.reminder_place
            if ticket.status is TicketStatus.WAITING and at_place:
                self._queue(f"{ticket.ticket_id}:place", day, str(phone),
                            self.settings.sms_place_template.format(**values))
            elif ticket.status is TicketStatus.CALLED:
                self._queue(f"{ticket.ticket_id}:call", day, str(phone),
                            self.settings.sms_call_template.format(**values))

    def _queue(self, key: str, day: str, phone: str, text: str) -> None:
        with self._lock:
            added = self._db.execute("INSERT OR IGNORE INTO outbox (key, day, phone, text) "
                                     "VALUES (?, ?, ?, ?)", (key, day, phone, text)).rowcount
        if added:
            self._sender.wake()

    # --- the sender thread ------------------------------------------------------------------------

    def _send_due(self, now: float) -> float | None:
        """Send up to 20 due reminders; the next wake: at once while more may be due, when the
        next retry falls due, or only when one is queued (None)."""
        due = self._sql("SELECT key, phone, text, attempts FROM outbox WHERE sent = 0 AND attempts < ? "
                        "AND next_at <= ? ORDER BY rowid LIMIT 20", (MAX_ATTEMPTS, time.time()))
        for key, phone, text, attempts in due:
            ok = self._send(str(key), str(phone), str(text))
            if ok:
                self._sql("UPDATE outbox SET sent = 1, attempts = attempts + 1 WHERE key = ?", (key,))
            else:
                delay = min(60.0, self.settings.sms_retry_s * 2.0 ** int(str(attempts)))
                self._sql("UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE key = ?",
                          (time.time() + delay, key))
                if int(str(attempts)) + 1 >= MAX_ATTEMPTS:
                    log.error("reminder %s: the SMS gateway refused it %d times; given up", key,
                              MAX_ATTEMPTS)
        if due:
            return now
        later = self._sql("SELECT MIN(next_at) FROM outbox WHERE sent = 0 AND attempts < ?", (MAX_ATTEMPTS,))
        if later[0][0] is None:
            return None
        return now + max(0.0, float(str(later[0][0])) - time.time())

    def _send(self, key: str, phone: str, text: str) -> bool:
        body = json.dumps({"to": phone, "text": text, "idempotency_key": key}, ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, data=body, method="POST")
        request.add_header("Content-Type", "application/json; charset=utf-8")
        request.add_header("Idempotency-Key", key)
        if self.settings.sms_username and self.settings.sms_password:
            pair = f"{self.settings.sms_username}:{self.settings.sms_password.get_secret_value()}"
            request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return bool(200 <= answer.status < 300)
        except (urllib.error.URLError, OSError) as exc:  # HTTPError is a URLError
            log.warning("reminder %s: SMS gateway failed (%s); retried later", key, exc)
            return False

    def phones_kept(self) -> int:
        return int(str(self._sql("SELECT count(*) FROM phones")[0][0]))


def phone_conflict(reminders: Reminders, engine: Engine, payload: Payload) -> Outcome | None:
    """A booking sent again under its code with another phone number: refused ``appointment_exists``
    (the phone is part of a booking's content; never silently replaced). None: no conflict."""
    if not (isinstance(payload, StaffCommand) and payload.action is StaffAction.BOOK_APPOINTMENT
            and payload.appointment_code):
        return None
    booking = engine.state.appointments.get(payload.appointment_code)
    if booking is None or booking.cancelled:
        return None  # a new booking, or the engine's own refusal
    if reminders.phone_of(f"appointment:{payload.appointment_code}") == payload.phone:
        return None
    problem = Problem(code="appointment_exists", message=f"appointment {booking.code} exists with other "
                      "content: another phone number (change it, or use another code)")
    return Outcome(reply=StaffResult(command_id=payload.command_id, ok=False, error=problem), refused=problem)


def remember_phone(reminders: Reminders, layout: Layout, payload: Payload, outcome: Outcome) -> None:
    """A booking accepted, or a ticket issued, with a phone number: keep the number until its day ends.
    A moved booking's number follows it to its new day; a cancelled booking's number is deleted."""
    if isinstance(payload, TicketRequest) and payload.phone and isinstance(outcome.reply, TicketReply) \
            and outcome.reply.ticket is not None:
        ticket = outcome.reply.ticket
        reminders.remember(f"ticket:{ticket.ticket_id}", payload.phone,
                           business_day(layout.hall, ticket.issued_at))
    if (isinstance(payload, StaffCommand) and payload.phone and payload.appointment_code
            and payload.slot_start and payload.action is StaffAction.BOOK_APPOINTMENT
            and outcome.reply is not None and outcome.reply.ok):
        reminders.remember(f"appointment:{payload.appointment_code}", payload.phone,
                           business_day(layout.hall, payload.slot_start))
    if (isinstance(payload, StaffCommand) and payload.appointment_code and outcome.reply is not None
            and outcome.reply.ok):
        owner = f"appointment:{payload.appointment_code}"
        if payload.action is StaffAction.CANCEL_APPOINTMENT:
            reminders.forget(owner)
        elif payload.action is StaffAction.CHANGE_APPOINTMENT and payload.slot_start:
            reminders.follow(owner, business_day(layout.hall, payload.slot_start))


def _nothing_posted(_items: list[None]) -> None:
    """The sender is woken (:meth:`Worker.wake`) or by its deadline; nothing is posted to it."""
