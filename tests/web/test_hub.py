"""The web's live view of the hall (Hub) over a real Mosquitto: a device cannot speak for another."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from hall_devices.contract import DEVICE_STATUS, ERROR, DeviceFault, DeviceState, DeviceStatus
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from hall_devices.web.hub import Hub
from tests.support import HallBroker, probe

HALL = "demo"


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s} s"
        await asyncio.sleep(0.02)


def status(device: str, kind: str, state: DeviceState, *faults: DeviceFault) -> bytes:
    return encode(DeviceStatus(device_id=device, kind=kind, state=state, faults=list(faults),
                               updated_at=datetime.now(UTC)))


def test_a_status_naming_another_device_leaves_the_dashboard_unchanged(
        own_broker: HallBroker, layout: Layout) -> None:
    errors = probe(own_broker.port, "monitor", own_broker.credentials["monitor"],
                   subscribe=[ERROR.topic(hall=HALL, reporter="web")])
    leds = probe(own_broker.port, "L1", own_broker.credentials["L1"])
    kiosk = probe(own_broker.port, "K1", own_broker.credentials["K1"])

    async def scenario() -> None:
        hub = Hub(own_broker.settings("web"), layout)
        hub.start()
        try:
            assert await asyncio.to_thread(hub.bus.wait_connected, 10)
            leds.client.publish(DEVICE_STATUS.topic(hall=HALL, device="L1"),
                                status("L1", "led_bus", DeviceState.FAULT, DeviceFault.PORT_MISSING),
                                qos=1, retain=True)
            await until(lambda: hub.devices.get("L1", {}).get("state") == "fault", "L1 shown faulted")
            shown = hub.snapshot()["devices"]
            # K1, on its own topic, says the dead LED bus is fine (retained, as the attack was).
            kiosk.client.publish(DEVICE_STATUS.topic(hall=HALL, device="K1"),
                                 status("L1", "led_bus", DeviceState.OK), qos=1, retain=True)
            report = json.loads((await asyncio.to_thread(errors.expect, lambda m: True)).payload)
            assert report["problem"]["code"] == "wrong_sender"
            assert "'K1'" in report["problem"]["message"] and "'L1'" in report["problem"]["message"]
            assert hub.devices["L1"]["state"] == "fault" and "K1" not in hub.devices
            assert hub.snapshot()["devices"] == shown
        finally:
            hub.stop()

    # Its own thread: Playwright's sync API (tests/web/conftest.py) may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
    for client in (errors, leds, kiosk):
        client.stop()
