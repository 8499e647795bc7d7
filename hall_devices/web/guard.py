"""Sign-in throttling and server-side sessions, sans-IO: time (seconds, monotonic) is passed in.

:class:`Throttle` keeps a backoff per key (a user name, an address). :class:`Sessions` keeps every
session on the server, keyed by the SHA-256 of its cookie value (the table never holds a usable
cookie), each bound to its user's :attr:`~hall_devices.web.users.User.stamp`, so that logout,
password change, role change and user removal end it at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

MAX_KEYS = 20_000  # a flood of made-up user names must not grow the table without end


@dataclass
class _Tries:
    failures: int = 0
    locked_until: float = 0.0
    last: float = 0.0


@dataclass(frozen=True)
class ThrottleRules:
    free: int = 5  # failed sign-ins allowed before the first wait
    backoff_s: float = 2.0  # the first wait; it doubles with each further failure
    max_backoff_s: float = 300.0
    forget_after_s: float = 900.0  # a key with no attempt for this long starts afresh


class Throttle:
    """Backoff per key. An attempt counts as failed when it starts (so a burst of simultaneous
    attempts is throttled too) and :meth:`succeeded` forgets the key."""

    def __init__(self, rules: ThrottleRules) -> None:
        self.rules = rules
        self._keys: dict[str, _Tries] = {}

    def wait_s(self, keys: list[str], now: float) -> float:
        """Seconds until every key may try again (0: now)."""
        waits = [self._keys[k].locked_until - now for k in keys if k in self._keys]
        return max([0.0, *waits])

    def attempt(self, keys: list[str], now: float) -> float:
        """Start an attempt: 0 if allowed (and counted), else the seconds to wait (nothing counted)."""
        wait = self.wait_s(keys, now)
        if wait > 0:
            return wait
        if len(self._keys) > MAX_KEYS:
            self._forget_old(now)
        for key in keys:
            tries = self._keys.get(key)
            if tries is None or now - tries.last > self.rules.forget_after_s:
                tries = self._keys[key] = _Tries()
            tries.failures += 1
            tries.last = now
            beyond = tries.failures - self.rules.free
            if beyond >= 0:
                tries.locked_until = now + min(self.rules.backoff_s * 2 ** min(beyond, 30),
                                               self.rules.max_backoff_s)
        return 0.0

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)

    def _forget_old(self, now: float) -> None:
        for key in [k for k, t in self._keys.items() if now - t.last > self.rules.forget_after_s
                    or t.locked_until < now]:
            del self._keys[key]


@dataclass
class Session:
    user: str
    stamp: str  # the user's stamp at sign-in; a different stamp now ends the session
    started: float
    seen: float
    window: int | None = None
    data: dict[str, str] = field(default_factory=dict)


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    """Every live session; a cookie value is 32 random bytes, the table holds only its hash."""

    def __init__(self, idle_s: float, absolute_s: float) -> None:
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._by_key: dict[str, Session] = {}

    def begin(self, user: str, stamp: str, now: float, window: int | None = None) -> str:
        """A new session; returns the cookie value (shown once, never stored)."""
        cookie = secrets.token_urlsafe(32)
        self._by_key[_key(cookie)] = Session(user, stamp, now, now, window)
        return cookie

    def find(self, cookie: str | None, stamp_of: dict[str, str], now: float,
             renew: bool = True) -> Session | None:
        """The live session of ``cookie``, its idle time renewed (unless ``renew`` is false: a live
        feed is no sign of a person); None (and the session ended) if it is unknown, idle or too
        old, or its user's stamp (``stamp_of[user]``) changed or is gone."""
        if not cookie:
            return None
        key = _key(cookie)
        session = self._by_key.get(key)
        if session is None:
            return None
        if (now - session.seen > self.idle_s or now - session.started > self.absolute_s
                or stamp_of.get(session.user) != session.stamp):
            del self._by_key[key]
            return None
        if renew:
            session.seen = now
        return session

    def holder(self, window: int, stamp_of: dict[str, str], now: float) -> Session | None:
        """The live session signed in to ``window`` (at most one: see ``Access.login``), if any;
        sessions that have ended by time or stamp are dropped first."""
        self.prune(stamp_of, now)
        return next((s for s in self._by_key.values() if s.window == window), None)

    def end_window(self, window: int) -> int:
        """End every session signed in to ``window``; returns how many there were."""
        keys = [k for k, s in self._by_key.items() if s.window == window]
        for key in keys:
            del self._by_key[key]
        return len(keys)

    def end(self, cookie: str | None) -> None:
        if cookie:
            self._by_key.pop(_key(cookie), None)

    def end_user(self, user: str) -> int:
        """End every session of ``user``; returns how many there were."""
        keys = [k for k, s in self._by_key.items() if s.user == user]
        for key in keys:
            del self._by_key[key]
        return len(keys)

    def prune(self, stamp_of: dict[str, str], now: float) -> None:
        """Drop every session that :meth:`find` would refuse."""
        for key in [k for k, s in self._by_key.items() if now - s.seen > self.idle_s
                    or now - s.started > self.absolute_s or stamp_of.get(s.user) != s.stamp]:
            del self._by_key[key]

    def __len__(self) -> int:
        return len(self._by_key)
