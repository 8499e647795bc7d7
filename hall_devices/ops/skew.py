"""How far this PC's clock is from the coordinator's, read from the queue summary the coordinator
publishes (``updated_at``: its clock when it published).

Only a live summary counts: a retained copy may be minutes old. The coordinator republishes at
least every ``SUMMARY_AT_LEAST_S`` (coordinator/service.py), so the wait is that plus a margin.
The coordinator refuses a kiosk's ticket request whose deadline is more than ``CLOCK_SKEW_MAX_S``
(contract.py) ahead of its own clock, so a kiosk PC a few seconds off gets every ticket refused
although its NTP status may say "synchronised" (another time server, or none yet reached).
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from hall_devices.contract import QUEUE_SUMMARY
from hall_devices.mqtt.bus import BadPayloadError, decode
from hall_devices.ops.reach import doctor_client
from hall_devices.settings import Settings

SUMMARY_AT_LEAST_S = 30.0  # coordinator/service.py's period (not imported: that pulls the engine in)
WAIT_S = SUMMARY_AT_LEAST_S + 5.0


@dataclass(frozen=True)
class Offset:
    """``seconds``: the coordinator's clock minus this PC's (positive: this PC is behind), or None
    with ``why`` when it could not be read (``silent``: no live summary within the wait, as for an
    account the broker's ACL does not let read it; ``broker: ...``: no connection)."""

    seconds: float | None
    why: str = ""


def coordinator_offset(settings: Settings, wait_s: float = WAIT_S, timeout_s: float = 5.0) -> Offset:
    """Sign in with this PC's account (as :func:`~hall_devices.ops.reach.doctor_client`), subscribe
    to the hall's queue summary and compare the first live one with this PC's clock on arrival
    (the network's delay makes this PC look at most that much ahead)."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    client = doctor_client(settings)
    topic = QUEUE_SUMMARY.topic(hall=settings.hall_id)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            events.put(("refused", reason))
        else:
            c.subscribe(topic, qos=QUEUE_SUMMARY.qos)

    def on_subscribe(_c: mqtt.Client, _u: Any, _m: Any, reasons: list[Any], _p: Any) -> None:
        events.put(("subscribed", reasons[0]))

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if not message.retain:
            events.put(("summary", (datetime.now(UTC), bytes(message.payload))))

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect(settings.broker_host, settings.broker_port, keepalive=10, clean_start=True)
    except (OSError, ValueError) as exc:
        return Offset(None, f"broker: {exc}")
    client.loop_start()
    try:
        deadline, subscribed = time.monotonic() + timeout_s, False
        while True:
            try:
                kind, value = events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return Offset(None, "silent" if subscribed else "broker: no answer")
            if kind == "refused":
                return Offset(None, f"broker: {value}")
            if kind == "subscribed":
                if value.is_failure:
                    return Offset(None, f"broker: subscription refused ({value})")
                deadline, subscribed = time.monotonic() + wait_s, True
                continue
            arrived, raw = value
            try:
                summary = decode(QUEUE_SUMMARY, raw)
            except BadPayloadError:
                continue  # not the coordinator's (it cannot publish a bad one): wait for the next
            return Offset((summary.updated_at - arrived).total_seconds())
    finally:
        client.disconnect()
        client.loop_stop()
