"""Issue 20 (5): a layout pushed by the region reaches every running process of the hall at once.

Over a real Mosquitto: the coordinator applies a push (as the hall's bridge delivers it) while
tickets wait and a clerk is signed in; the running kiosk (offscreen Qt), the LED agent on a
simulated bus, the TV hall screen and the web's state (the body of /state.json) follow it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from hall_devices.contract import (
    HALL_LAYOUT,
    REGION_CONFIG,
    REGION_CONFIG_RESULT,
    ConfigPush,
    HallLayout,
    TicketStatus,
)
from hall_devices.coordinator.service import CoordinatorService
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.layout import HallScreenDevice, Layout, parse_layout
from hall_devices.leds.agent import LedAgent
from hall_devices.mqtt.bus import Bus, BusOptions
from hall_devices.mqtt.layout_follow import LayoutRefusedError, adopt, published
from hall_devices.tv.hall_window import HallScreenWindow, bind
from tests.conftest import EXAMPLE
from tests.coordinator.harness import Clock, Hall
from tests.kiosk.test_kiosk import open_kiosk
from tests.support import HallBroker, probe, start_hall_broker, wait_until
from tests.web.conftest import SecureHall, request, sign_in_cookie
from tests.web.test_web import Web

HALL = "demo"
TEXT = EXAMPLE.read_text(encoding="utf-8")
NOTICE = "即日起社保窗口延时服务至十八点"
WINDOW_3 = 'name = { zh = "市场监管", en = "Market regulation" }'
RENAMED_3 = 'name = { zh = "市场监管综合", en = "Market regulation" }'
PRIMARY_3 = 'primary = ["company_change", "company_cancel", "food_licence"]'
NEW_SERVICE = ('\n[[services]]\nid = "social_relief"\nname = { zh = "临时救助", en = "Temporary relief" }\n'
               'department = "rs"\nprefix = "Q"\npromised_minutes = 20\nkind = "instant"\n')
HS1 = 'id = "HS1"\nbus = "L1"\naddress = 200\nwidth = 256\nheight = 96\nlatest_calls = 5\n'
HS_TV = 'id = "HS-TV"\nwidth = 1920\nheight = 1080\nlatest_calls = 8\n'
PUSHER = "region-bridge-test"  # plays the bridge, which delivers the region's push on the hall's broker


def notice(zh: str) -> str:
    return f'notice = {{ zh = "{zh}", en = "Social security windows open until 18:00" }}\n'


def pushed_text() -> str:
    """The example hall with a new service (served at window 3, renamed) and a new notice."""
    for part in (WINDOW_3, PRIMARY_3, HS1, HS_TV):
        assert TEXT.count(part) == 1, part
    return (TEXT.replace(WINDOW_3, RENAMED_3).replace(PRIMARY_3, PRIMARY_3[:-1] + ', "social_relief"]')
            .replace(HS1, HS1 + notice(NOTICE)).replace(HS_TV, HS_TV + notice(NOTICE)) + NEW_SERVICE)


# --- adopt: what a process refuses, keeping its layout -----------------------------------------


def test_a_process_adopts_a_new_notice_and_service(layout: Layout) -> None:
    new = adopt(layout, published(1, pushed_text()), "L1")
    assert "social_relief" in {s.id for s in new.services}
    hall_screen = new.device("HS1")
    assert isinstance(hall_screen, HallScreenDevice) and hall_screen.notice.zh == NOTICE


@pytest.mark.parametrize(("message", "device", "named"), [
    (published(2, TEXT.replace("[[services]]", "[[services]\n", 1)), None, "does not parse"),
    (published(2, TEXT.replace('id = "demo"', 'id = "other"', 1)), None, "'other'"),
    (HallLayout(version=2, digest="0" * 64, layout_toml=TEXT), None, "digest"),
    # The LED bus's screen moved to another address: that needs a restart, the agent keeps its own.
    (published(2, TEXT.replace(HS1, HS1.replace("address = 200", "address = 201"))), "L1", "'L1'"),
])
def test_a_layout_a_process_cannot_run_is_refused_naming_why(
        layout: Layout, message: HallLayout, device: str | None, named: str) -> None:
    with pytest.raises(LayoutRefusedError, match=named):
        adopt(layout, message, device)
    # Another device's change is not this one's concern: the web and the kiosk take that layout.
    if device == "L1":
        assert adopt(layout, message, "K1").device("HS1").address == 201  # type: ignore[union-attr]


# --- end to end ------------------------------------------------------------------------------


class RegionHall(Hall):
    """The test harness's hall, its coordinator taking the region's pushes and publishing its layout."""

    def start_coordinator(self) -> CoordinatorService:
        service = CoordinatorService(self.broker.settings("coordinator", region_forward=True), self.layout,
                                     self.store, clock=self.clock, layout_text=TEXT)
        service.start(wait_s=10)
        return service


@pytest.fixture
def pushable(tmp_path: Path, layout: Layout) -> Iterator[HallBroker]:
    broker = start_hall_broker(layout, tmp_path / "broker", superuser=PUSHER)
    yield broker
    broker.process.stop()


def web_state(web: SecureHall, cookie: str) -> dict[str, object]:
    answer = request(web, "/state.json", cookie=cookie)
    assert answer.status == 200, answer.body
    state = json.loads(answer.body)
    assert isinstance(state, dict)
    return state


def test_a_push_reaches_the_kiosk_the_screens_and_the_web_with_tickets_and_clerks_kept(
        qtbot: QtBot, pushable: HallBroker, layout: Layout, tmp_path: Path) -> None:
    hall = RegionHall(pushable, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    leds = LedBusSimulator(tmp_path / "dev" / "led-bus-1", "bx",
                           [d.address for d in layout.members("L1")]).start()  # type: ignore[union-attr]
    agent = LedAgent(pushable.settings("L1"), layout, "L1", url=str(leds.path), refresh_s=60)
    tv_device = layout.device("HS-TV")
    assert isinstance(tv_device, HallScreenDevice)
    tv = HallScreenWindow(layout, tv_device)
    qtbot.addWidget(tv)
    tv_bus = Bus(pushable.settings("HS-TV"), BusOptions(client_id="HS-TV", hall_id=HALL, device_id="HS-TV",
                                                        device_kind="hall_screen"))
    bind(tv, tv_bus)
    web = SecureHall(pushable, hall, Web(pushable, tmp_path), 0)  # `hall-devices web`, HTTPS
    pusher = probe(pushable.port, PUSHER, pushable.credentials[PUSHER],
                   subscribe=[REGION_CONFIG_RESULT.topic(hall=HALL)])
    try:
        agent.start()
        tv_bus.start()
        cookie = sign_in_cookie(web, "mgr")
        window, link = open_kiosk(qtbot, pushable, layout, "K1", idle_s=600, result_s=600)
        try:
            # A hall at work: tickets waiting, a clerk signed in at window 3, the kiosk on 人社's page.
            hall.ok(3, "login", clerk_id="c03")
            waiting = [hall.take("company_change").ticket, hall.take("hukou_in").ticket]
            assert all(t is not None for t in waiting)
            window.show_department("rs")
            assert window.findChild(QPushButton, "service-social_relief") is None
            assert leds.wait(lambda: leds.text(200, 2) != "", 15)
            assert NOTICE not in leds.text(200, 2)

            push = ConfigPush(command_id="push-1", version=1, layout_toml=pushed_text())
            pusher.client.publish(REGION_CONFIG.topic(hall=HALL), push.model_dump_json(), qos=1)
            result = json.loads(pusher.expect(lambda m: True, 10).payload)
            assert result["ok"] is True and result["running_version"] == 1, result

            # The kiosk shows the new service at once, on the page the applicant is on.
            qtbot.waitUntil(lambda: window.findChild(QPushButton, "service-social_relief") is not None,
                            timeout=10000)
            # The LED hall screen and the TV show the new notice.
            assert leds.wait(lambda: NOTICE in leds.text(200, 2), 10), leds.text(200, 2)
            qtbot.waitUntil(lambda: NOTICE in tv.notice.text() * 2, timeout=10000)
            # The web follows: /state.json names the version and the window's new name, and the
            # console lists the new service.
            wait_until(lambda: web_state(web, cookie)["layout_version"] == 1, 10, "the web on version 1")
            windows = web_state(web, cookie)["windows"]
            assert isinstance(windows, list)
            # issue 19: the snapshot names a window in plain text from the layout the web follows
            assert {w["number"]: w["name"] for w in windows}[3] == "市场监管综合"
            console = request(web, "/console?window=3", cookie=cookie)
            assert console.status == 200 and "临时救助" in console.body, console.status
            # Nothing the hall stood on was lost: the tickets wait, the clerk is signed in.
            state = hall.service.engine.state
            assert state.windows[3].clerk_id == "c03"
            for ticket in waiting:
                assert ticket is not None
                assert state.tickets[ticket.ticket_id].status is TicketStatus.WAITING
            assert hall.take("social_relief").ok  # and the new service issues at once
        finally:
            link.stop()
    finally:
        pusher.stop()
        web.web.stop()
        tv_bus.stop()
        agent.stop()
        leds.stop()
        hall.stop()


def test_the_layout_is_published_at_start_and_a_restart_runs_the_pushed_one(
        pushable: HallBroker, layout: Layout, tmp_path: Path) -> None:
    hall = RegionHall(pushable, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    watcher = probe(pushable.port, PUSHER, pushable.credentials[PUSHER],
                    subscribe=[HALL_LAYOUT.topic(hall=HALL),
                               REGION_CONFIG_RESULT.topic(hall=HALL)])
    try:
        first = HallLayout.model_validate_json(watcher.expect(
            lambda m: m.topic == HALL_LAYOUT.topic(hall=HALL), 10).payload)
        assert (first.version, first.layout_toml) == (0, TEXT)
        push = ConfigPush(command_id="push-2", version=3, layout_toml=pushed_text())
        watcher.client.publish(REGION_CONFIG.topic(hall=HALL), push.model_dump_json(), qos=1)
        watcher.expect(lambda m: m.topic.endswith("/config/result"), 10)
        hall.restart_coordinator()
        again = HallLayout.model_validate_json(watcher.expect(
            lambda m: m.topic == HALL_LAYOUT.topic(hall=HALL)
            and HallLayout.model_validate_json(m.payload).version == 3, 10).payload)
        assert parse_layout(again.layout_toml).device("HS1").notice.zh == NOTICE  # type: ignore[union-attr]
    finally:
        watcher.stop()
        hall.stop()


def test_a_layout_too_large_to_publish_is_logged_and_the_hall_works_on(
        pushable: HallBroker, layout: Layout, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    huge = TEXT + "# " + "填" * 400_000 + "\n"  # a comment: a valid layout over the bus's 1 MiB

    class HugeHall(RegionHall):
        def start_coordinator(self) -> CoordinatorService:
            service = CoordinatorService(self.broker.settings("coordinator", region_forward=True),
                                         self.layout, self.store, clock=self.clock, layout_text=huge)
            service.start(wait_s=10)
            return service

    hall = HugeHall(pushable, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    try:
        assert hall.ok(3, "login", clerk_id="c03").ok  # window states and answers still go out
        wait_until(lambda: "too large to publish" in caplog.text, 10, "the layout's problem logged")
    finally:
        hall.stop()
