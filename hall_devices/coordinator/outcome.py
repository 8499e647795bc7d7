"""What deciding one command yields: events, a reply and messages to publish."""

from __future__ import annotations

from dataclasses import dataclass, field

from hall_devices.contract import Payload, Reply
from hall_devices.coordinator.events import Event


class EngineError(Exception):
    """A refused command: ``code`` for programs, ``message`` (naming the state) for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Publish:
    route: str
    params: dict[str, object]
    payload: Payload


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    reply: Reply | None = None
    publish: list[Publish] = field(default_factory=list)
    dirty_windows: set[int] = field(default_factory=set)
    queue_changed: bool = False
