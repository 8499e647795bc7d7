"""What every device agent shares: reopening a vanished port with backoff, and CLI start-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Backoff:
    """Exponential delays between attempts: 1, 2, 4 ... up to ``maximum`` seconds."""

    minimum: float = 1.0
    maximum: float = 10.0
    _next: float = 0.0
    _delay: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self._next

    def failed(self, now: float) -> float:
        self._delay = min(self.maximum, self._delay * 2 if self._delay else self.minimum)
        self._next = now + self._delay
        return self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._next = 0.0


Clock = Callable[[], float]
MONOTONIC: Clock = time.monotonic
