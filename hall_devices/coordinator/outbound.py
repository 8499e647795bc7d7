"""The coordinator's way out: the engine's effects mapped to routes and topics (the only place that
does), and each message published on its own, so one too large never takes the others with it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from hall_devices.contract import (
    ACTIVE_ALERTS,
    ALERT,
    CALL,
    ERROR,
    PRINT_JOB,
    RATING_PROMPT,
    ErrorReport,
    Payload,
    Problem,
    Route,
)
from hall_devices.coordinator.outcome import (
    Announce,
    AskRating,
    Effect,
    RaiseAlert,
    SendPrintJob,
    ShowAlerts,
)
from hall_devices.mqtt.bus import Bus, PayloadTooLargeError, Sent

log = logging.getLogger(__name__)
P = TypeVar("P", bound=Payload)


def excerpt(payload: Payload, chars: int) -> str:
    """The payload as JSON, cut to ``chars``; a payload that cannot even be dumped is shown as repr:
    this runs for the messages that already broke something."""
    try:
        return payload.model_dump_json()[:chars]
    except Exception:
        return repr(payload)[:chars]


class Outbound:
    """Publishes on ``bus``; ``clock`` dates the error reports it makes."""

    def __init__(self, bus: Bus, clock: Callable[[], datetime]) -> None:
        self.bus = bus
        self.clock = clock

    def effect(self, effect: Effect) -> list[Sent]:
        """The one place where the engine's effects become routes and topics."""
        if isinstance(effect, SendPrintJob):
            return self.send(PRINT_JOB, effect.job, printer=effect.printer)
        if isinstance(effect, Announce):
            return self.send(CALL, effect.call)
        if isinstance(effect, AskRating):
            return self.send(RATING_PROMPT, effect.prompt, window=effect.window)
        if isinstance(effect, RaiseAlert):
            return self.send(ALERT, effect.alert)
        if isinstance(effect, ShowAlerts):
            return self.send(ACTIVE_ALERTS, effect.alerts)
        return self.send(ERROR, effect.report, reporter=self.bus.options.device_id)

    def send(self, route_: Route[P], payload: P, **params: object) -> list[Sent]:
        """Publish one message; one too large for the bus fails on its own: logged and reported
        on the error route (``too_large``), never taking the batch's other messages, its answers
        or the worker with it. Returns what was handed to the client (none or one)."""
        try:
            return [self.bus.publish(route_, payload, **params)]
        except PayloadTooLargeError as exc:
            log.error("%s not published: %s", route_.name, exc)
            now = self.clock()
            report = ErrorReport(
                topic=route_.pattern, excerpt=excerpt(payload, 200),
                problem=Problem(code="too_large", message=f"协调器的 {route_.name} 消息过大，未发布 / "
                                f"the coordinator's {route_.name} message was not published: {exc}"),
                reported_by=self.bus.options.device_id, at=now)
            try:
                return [self.bus.publish(ERROR, report, reporter=self.bus.options.device_id)]
            except Exception:
                log.exception("could not report the unpublished %s", route_.name)
                return []
