"""Password checks off the event loop, for every sign-in page (the hall's web, the regional dashboard).

Checks run in worker processes of their own that run at a lower CPU priority (nice 10): never on
the event loop, never in the thread pool other requests use, and never ahead of the web's own
process for the CPU. An unknown user name costs the same PBKDF2 check as a known one (against a
throw-away hash), so the answer time does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import secrets
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from hall_devices.web.users import check_password, hash_password

log = logging.getLogger(__name__)
T = TypeVar("T")


def _lower_priority() -> None:
    """In each hashing process: yield the CPU to the web's event loop when both want it."""
    os.nice(10)


class PasswordChecks:
    """``workers`` hashing processes (started on first use); at most ``max_pending`` checks waiting."""

    def __init__(self, workers: int, max_pending: int) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self._pool = self._new_pool()
        self._pending = 0
        self._decoy = hash_password(secrets.token_urlsafe(16))  # checked for unknown user names

    def _new_pool(self) -> ProcessPoolExecutor:
        # "spawn": a fresh interpreter, not a fork of this threaded process.
        return ProcessPoolExecutor(self.workers, initializer=_lower_priority,
                                   mp_context=multiprocessing.get_context("spawn"))

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in a hashing process; a pool whose process died is replaced once."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, function, *args)
        except BrokenProcessPool:
            log.error("a password-checking process died; starting new ones")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return await loop.run_in_executor(self._pool, function, *args)

    async def check(self, password: str, stored: str | None) -> bool | None:
        """Whether ``password`` matches the ``stored`` hash (None: an unknown user, same cost, False);
        None when ``max_pending`` checks are already waiting (answer 503)."""
        if self._pending >= self.max_pending:
            return None
        self._pending += 1
        try:
            right = await self.run(check_password, password, self._decoy if stored is None else stored)
            return right and stored is not None
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)  # at most the checks under way
