"""Fuzz every process from the contract's route table (issue 14).

Real Mosquitto, real processes (coordinator, printer agent, pad agent, LED agent, announcer, web)
on simulated devices behind ptys. For every route one of them subscribes to, hypothesis sends
malformed and schema-valid-but-nonsensical payloads, including the issue's cases (a 5,000-digit
integer, 100,000 nested brackets, invalid UTF-8, over the size limit, naive datetimes, ``²`` as a
window). After each one, every process subscribing to that route answers a valid request within
2 s; then each process is SIGKILLed and restarted (the broker hands it the retained and queued junk
again) and answers again.

The kiosk and the hall-screen window (Qt, offscreen) answer no request anyone else can make: for
them "answers" means the process is alive and, after the restart, online again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hall_devices.contract import (
    CALL,
    DEVICE_STATUS,
    MAX_PAYLOAD_BYTES,
    PRINT_JOB,
    PRINT_RESULT,
    RATING_PROMPT,
    ROUTES,
    TICKET_REPLY,
    TICKET_REQUEST,
    WINDOW_STATE,
    Call,
    Payload,
    PrintJob,
    RatingPrompt,
    Route,
    Text,
    TicketClass,
    TicketInfo,
    TicketRequest,
    TicketStatus,
    WindowState,
    WindowStatus,
    route,
)
from hall_devices.coordinator import texts
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from hall_devices.web.users import add_user
from tests.conftest import EXAMPLE
from tests.support import HallBroker, Probe, probe, start_hall_broker, wait_until

HALL = "demo"
ANSWER_S = 2.0
# Which processes take a route, read from the contract's subscriber column.
KEYWORDS = {"coordinator": ("coordinator",), "printer": ("printer",), "pads": ("pad agent",),
            "leds": ("displays", "hall screens"), "announcer": ("announcer",), "web": ("web",),
            "kiosk": ("kiosk",), "hall-screen": ("displays", "hall screens")}


def subscribers(r: Route[Payload]) -> list[str]:
    return [name for name, words in KEYWORDS.items() if any(w in r.subscriber for w in words)]


FUZZED = sorted(name for name, r in ROUTES.items() if subscribers(r))


@dataclass
class Role:
    name: str
    args: list[str]
    user: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "hall_devices.cli", *self.args],
                                            env=self.env, stdout=out, stderr=out)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _id(message: Any) -> object:
    """The command id of a message, or None: the fuzzer's own junk arrives on these topics too."""
    try:
        body = json.loads(message.payload)
    except ValueError:
        return None
    return body.get("command_id") if isinstance(body, dict) else None


def _ticket(number: str) -> TicketInfo:
    return TicketInfo(ticket_id=f"2026-11-23-{number}", number=number, service_id="passport",
                      service_name=Text(zh="普通护照申领", en="Passport"),
                      department_name=Text(zh="公安局", en="Police"), ticket_class=TicketClass.NORMAL,
                      status=TicketStatus.WAITING, issued_at=datetime.now(UTC), people_ahead=0,
                      estimated_minutes=0, windows=[2])


@dataclass
class FuzzHall:
    broker: HallBroker
    roles: dict[str, Role]
    leds: LedBusSimulator
    pads: PadBusSimulator
    printer: PrinterSimulator
    voice: Path
    web_url: str
    sender: Probe  # a test-only account that may write every topic
    kiosk: Probe
    answers: Probe
    token: str = ""
    counter: int = 0

    def send(self, topic: str, raw: bytes, retained: bool) -> None:
        self.sender.client.publish(topic, raw, qos=0 if len(raw) > MAX_PAYLOAD_BYTES else 1, retain=retained)

    def unique(self) -> str:
        self.counter += 1
        return f"{self.counter % 1000:03d}"

    # --- a valid request per process, answered within ANSWER_S ------------------------------------

    def coordinator_answers(self) -> None:
        request = TicketRequest(command_id=f"live-{uuid.uuid4().hex[:12]}", service_id="passport",
                                paper=False)
        self.kiosk.client.publish(TICKET_REQUEST.topic(hall=HALL, kiosk="K1"), encode(request),
                                  qos=1)
        reply = json.loads(self.kiosk.expect(lambda m: _id(m) == request.command_id, ANSWER_S).payload)
        assert reply["ok"] is True, reply
        self.token = reply["ticket"]["status_url"].rstrip("/").rsplit("/", 1)[-1]

    def printer_answers(self, timeout_s: float = ANSWER_S) -> None:
        # The same job each time: printed once (the fixture waits for that: a ticket takes ~1.5 s on
        # the wire at 9600 baud), then answered from the agent's ledger. The answer still needs the
        # agent's bus and worker, which is what is checked; how fast paper moves is not.
        job = PrintJob(job_id="live-job", kiosk_id="K1", hall_name=Text(zh="示例大厅", en="Demo hall"),
                       ticket=_ticket("Z001"), print_materials=False)
        self.sender.client.publish(PRINT_JOB.topic(hall=HALL, printer="P1"), encode(job), qos=1)
        answer = self.answers.expect(lambda m: m.topic.endswith("/printer/P1/result")
                                     and _id(m) == job.job_id, timeout_s)
        assert json.loads(answer.payload)["ok"] is True

    def _window_state(self, number: str) -> None:
        state = WindowState(window=2, name=Text(zh="2号窗口", en="Window 2"), status=WindowStatus.CALLING,
                            ticket_number=number, ticket_id=f"t-{number}", since=datetime.now(UTC),
                            screen=texts.call_text(number, 2), pad_text=number,
                            window_label=texts.window_label(2, Text(zh="2号窗口", en="Window 2")))
        self.sender.client.publish(WINDOW_STATE.topic(hall=HALL, window=2), encode(state),
                                   qos=1, retain=True)

    def leds_answer(self) -> None:
        number = "Z" + self.unique()
        self._window_state(number)
        assert self.leds.wait(lambda: number in self.leds.text(2), ANSWER_S), self.leds.text(2)

    def pads_answer(self) -> None:
        asks = self.pads.pads[2].rating_asks
        prompt = RatingPrompt(prompt_id=f"live-{uuid.uuid4().hex[:8]}", window=2, ticket_id="t-1",
                              ticket_number="Z001", clerk_id=None, service_id="passport",
                              expires_at=datetime.now(UTC) + timedelta(minutes=1))
        self.sender.client.publish(RATING_PROMPT.topic(hall=HALL, window=2), encode(prompt), qos=1)
        assert self.pads.wait(lambda: self.pads.pads[2].rating_asks > asks, ANSWER_S)

    def announcer_answers(self) -> None:
        number = "Z" + self.unique()
        call = Call(call_id=f"live-{number}", ticket_id=f"t-{number}", ticket_number=number, window=2,
                    window_name=Text(zh="2号窗口", en="Window 2"), service_id="passport",
                    called_at=datetime.now(UTC), text=texts.call_text(number, 2),
                    speech=texts.speech(number, 2),
                    window_label=texts.window_label(2, Text(zh="2号窗口", en="Window 2")))
        self.sender.client.publish(CALL.topic(hall=HALL), encode(call), qos=1)
        wait_until(lambda: any(self.voice.glob(f"*-{number}-w2.wav")), ANSWER_S, f"call {number} spoken")

    def web_answers(self) -> None:
        # The ticket page asks the coordinator over the web's own bus: its answer is an inbound message.
        with urllib.request.urlopen(f"{self.web_url}/t/{self.token}/state.json", timeout=ANSWER_S) as page:
            assert json.loads(page.read())["number"]

    def alive(self, name: str) -> None:
        assert self.roles[name].alive()

    def answer(self, name: str) -> None:
        checks: dict[str, Callable[[], None]] = {
            "coordinator": self.coordinator_answers, "printer": self.printer_answers,
            "leds": self.leds_answer, "pads": self.pads_answer, "announcer": self.announcer_answers,
            "web": self.web_answers}
        if name in checks:
            checks[name]()
        else:  # the Qt windows
            self.alive(name)


@pytest.fixture(scope="module")
def fuzz_hall(tmp_path_factory: pytest.TempPathFactory, layout: Layout) -> Iterator[FuzzHall]:
    base = tmp_path_factory.mktemp("fuzz")
    broker = start_hall_broker(layout, base / "broker", superuser="fuzzer")
    dev = base / "dev"
    leds = LedBusSimulator(dev / "leds", "bx", [d.address for d in layout.members("L1")
                                                if hasattr(d, "address")]).start()
    pads = PadBusSimulator(dev / "pads", [p.address for p in layout.members("KB1")
                                             if hasattr(p, "address")]).start()
    printer = PrinterSimulator(dev / "printer", encoding="gb18030").start()
    voice = base / "voice"
    users = base / "users.toml"
    add_user(users, "manager", "manager", "manager-password")
    web_port = _free_port()

    def env(user: str, **extra: str) -> dict[str, str]:
        return {**os.environ, "HALL_HALL_ID": HALL, "HALL_BROKER_PORT": str(broker.port),
                "HALL_BROKER_USERNAME": user, "HALL_BROKER_PASSWORD": broker.credentials[user],
                "HALL_DATABASE_URL": f"sqlite:///{base / 'coordinator.sqlite3'}", "HALL_LAYOUT": str(EXAMPLE),
                "HALL_DATA_DIR": str(base / "data"), "HALL_LOG_LEVEL": "WARNING", **extra}

    roles = {r.name: r for r in (
        Role("coordinator", ["coordinator"], "coordinator", env("coordinator"), base / "coordinator.log"),
        Role("printer", ["printer", "--id", "P1", "--serial", str(printer.path)], "P1", env("P1"),
             base / "printer.log"),
        Role("pads", ["pads", "--bus", "KB1", "--serial", str(pads.path)], "KB1", env("KB1"),
             base / "pads.log"),
        Role("leds", ["leds", "--bus", "L1", "--serial", str(leds.path)], "L1", env("L1"), base / "leds.log"),
        Role("announcer", ["announcer", "--id", "VOICE1", "--output", f"wav:{voice}"], "VOICE1",
             env("VOICE1"), base / "announcer.log"),
        Role("web", ["web"], "web", env("web", HALL_WEB_PORT=str(web_port), HALL_WEB_HOST="127.0.0.1",
                                       HALL_WEB_USERS=str(users), HALL_WEB_DEMO="1"), base / "web.log"),
        Role("kiosk", ["kiosk", "--id", "K2", "--windowed"], "K2", env("K2", QT_QPA_PLATFORM="offscreen"),
             base / "kiosk.log"),
        Role("hall-screen", ["hall-screen", "--id", "HS-TV", "--windowed"], "HS-TV",
             env("HS-TV", QT_QPA_PLATFORM="offscreen"), base / "hall-screen.log"),
    )}
    status = probe(broker.port, "monitor", broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.filter(hall=HALL)])
    for role in roles.values():
        role.start()
    online: set[str] = set()
    users_of = {role.user for role in roles.values()}

    def all_online() -> bool:
        while not status.messages.empty():
            message = status.messages.get()
            if b'"offline"' not in message.payload:
                online.add(message.topic.split("/")[3])
        return users_of <= online

    wait_until(all_online, 30, "every process online")
    status.stop()
    hall = FuzzHall(
        broker, roles, leds, pads, printer, voice, f"http://127.0.0.1:{web_port}",
        sender=probe(broker.port, "fuzzer", broker.credentials["fuzzer"], client_id="fuzzer"),
        kiosk=probe(broker.port, "K1", broker.credentials["K1"],
                    subscribe=[TICKET_REPLY.topic(hall=HALL, kiosk="K1")], client_id="fuzz-k1"),
        answers=probe(broker.port, "monitor", broker.credentials["monitor"],
                      subscribe=[PRINT_RESULT.filter(hall=HALL)]))
    wait_until(_web_up(hall.web_url), 30, "the web listening")
    hall.coordinator_answers()
    hall.printer_answers(timeout_s=30)  # printed, once
    yield hall
    for one in (hall.sender, hall.kiosk, hall.answers):
        one.stop()
    for role in roles.values():
        if role.alive():
            role.kill()
    for sim in (leds, pads, printer):
        sim.stop()
    broker.process.stop()


def _free_port() -> int:
    from hall_devices.ops.broker import free_port

    return free_port()


def _web_up(url: str) -> Callable[[], bool]:
    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=1):
                return True
        except OSError:
            return False

    return up


# --- payloads ----------------------------------------------------------------------------------

NOW = "2026-11-23T09:00:00+08:00"
# Sent at QoS 0: paho 2.x cannot parse Mosquitto's PUBACK for a refused oversize publish (reason
# 0x95) and would reconnect and resend it for ever (the bus never publishes one: it refuses first).
OVERSIZE = b'{"x": "' + b"y" * (MAX_PAYLOAD_BYTES + 1) + b'"}'
ISSUE_CASES: list[bytes] = [
    b'{"command_id": "f-1", "window": ' + b"9" * 5000 + b"}",  # 5,000-digit integer
    b"[" * 100_000 + b"]" * 100_000,  # 100,000 nested brackets
    b'{"command_id": "f-2", "text": "\xff\xfe\xfd"}',  # invalid UTF-8
    OVERSIZE,  # the broker drops it
    b"",
    b"null",
    b'{"schema_version": 2}',
]
# Valid-looking fields with nonsense values, mixed into payloads of every route.
NONSENSE: st.SearchStrategy[Any] = st.sampled_from([
    -1, 0, 10**30, 1e308, "", "²", "$$", "\x00\x1b\x02\x03", "请" * 300, "A" * 70, [], {}, None, True,
    "2026-11-23T09:00:00",  # naive datetime
    "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00", "not-a-date", "2026-02-30",
])
FIELDS = st.sampled_from([
    "command_id", "rating_id", "job_id", "prompt_id", "window", "level", "action", "service_id", "kind",
    "ticket_number", "ticket_class", "status", "since", "rated_at", "called_at", "expires_at", "updated_at",
    "issued_at", "state", "reason", "pause_reason", "first_day", "last_day", "text", "ticket", "faults",
    "members", "alerts", "services", "data", "ok", "error", "attempt", "reasons", "slot_start",
])
BASE: dict[str, Any] = {"schema_version": 1, "command_id": "f-base", "ok": True, "window": 2,
                        "updated_at": NOW, "since": NOW}


def payloads() -> st.SearchStrategy[bytes]:
    nonsense_object = st.dictionaries(FIELDS, NONSENSE, min_size=1, max_size=8).map(
        lambda fields: json.dumps({**BASE, **fields}).encode())
    return st.one_of(st.sampled_from(ISSUE_CASES), nonsense_object, st.binary(max_size=200))


def topics(r: Route[Payload]) -> st.SearchStrategy[str]:
    """The route's topic with valid parameters, or with a level that is not one (``²``, ``３``)."""
    good = {p: ("2" if p == "window" else {"printer": "P1", "kiosk": "K2", "device": "fuzz-dev",
                                             "staff": "web", "client": "web", "reporter": "fuzz"}[p])
            for p in r.params if p != "hall"}
    bad_levels = [dict(good, **{p: level}) for p in good for level in ("²", "３", "0x1")]
    return st.sampled_from([good, *bad_levels]).map(lambda params: r.pattern.format(hall=HALL, **params))


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, str, bytes]:
    name = draw(st.sampled_from(FUZZED))
    return name, draw(topics(route(name))), draw(payloads())


# Routes only the regional side takes (the region service, a hall's bridge): not processes of a hall.
REGION_SIDE = {name for name, r in ROUTES.items() if "region" in r.subscriber or "bridge" in r.subscriber}


def test_the_route_table_is_covered() -> None:
    assert set(FUZZED) | REGION_SIDE == set(ROUTES), "a route no process of a hall subscribes to"
    assert not set(FUZZED) & REGION_SIDE


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large])
@given(message=messages())
def test_no_payload_stops_a_process(fuzz_hall: FuzzHall, message: tuple[str, str, bytes]) -> None:
    name, topic, raw = message
    retained = route(name).retained
    fuzz_hall.send(topic, raw, retained)
    for process in subscribers(route(name)):
        fuzz_hall.answer(process)
    assert all(role.alive() for role in fuzz_hall.roles.values())


def test_every_issue_case_on_every_route_then_sigkill_and_restart(fuzz_hall: FuzzHall) -> None:
    for name in FUZZED:
        r = route(name)
        topic = r.pattern.format(hall=HALL, **{p: {"window": "2", "kiosk": "K2"}.get(p, "fuzz")
                                               for p in r.params if p != "hall"})
        for raw in ISSUE_CASES:
            fuzz_hall.send(topic, raw, r.retained)
        for process in subscribers(r):
            fuzz_hall.answer(process)
    # SIGKILL and restart each process: the broker gives it the retained junk (and the coordinator
    # its persistent session's queue) again; it still answers.
    status = probe(fuzz_hall.broker.port, "monitor", fuzz_hall.broker.credentials["monitor"],
                   subscribe=[DEVICE_STATUS.filter(hall=HALL)])
    for role in fuzz_hall.roles.values():
        def offline(m: Any, user: str = role.user) -> bool:
            return m.topic.endswith(f"/{user}/status") and b'"offline"' in m.payload

        def online(m: Any, user: str = role.user) -> bool:
            return m.topic.endswith(f"/{user}/status") and b'"offline"' not in m.payload

        role.kill()
        # In order: its Last Will, then the restarted process's own online status (not the
        # retained one from before the kill).
        status.expect(offline, timeout_s=30)
        role.start()
        status.expect(online, timeout_s=30)
        if role.name == "web":
            wait_until(_web_up(fuzz_hall.web_url), 30, "the web listening again")
        fuzz_hall.answer(role.name)
    status.stop()
    assert all(role.alive() for role in fuzz_hall.roles.values())
