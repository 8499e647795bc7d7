"""Requests awaited on an asyncio loop (the web's): a future per request id, resolved from paho's
thread; no thread is held while a request waits, even for a coordinator that is down."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hall_devices.contract import QUERY, QueryKind, QueryReply, QueryRequest
from hall_devices.layout import Layout
from hall_devices.mqtt.requests import NoReplyError
from hall_devices.ops.provision import WEB
from tests.coordinator.harness import Clock, Device, Hall, cid
from tests.support import HallBroker


class NoThreads(ThreadPoolExecutor):
    """The loop's default executor: any use of it (``asyncio.to_thread``) fails the test."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise AssertionError(f"a request ran {fn!r} in an executor thread")


def query(window: int) -> QueryRequest:
    return QueryRequest(command_id=cid(), kind=QueryKind.WINDOW_QUEUE, window=window)


def test_many_requests_wait_on_the_loop_without_threads(own_broker: HallBroker, layout: Layout,
                                                        tmp_path: Path) -> None:
    hall = Hall(own_broker, layout, tmp_path / "store.sqlite3", Clock(datetime.now(UTC)))
    web = Device(own_broker, WEB, "web")
    web.requests.listen(QUERY, client=WEB)
    web.bus.start()
    hall.service.stop()  # the requests wait in the broker until the coordinator is back

    async def main() -> tuple[int, int, list[QueryReply], type[BaseException]]:
        asyncio.get_running_loop().set_default_executor(NoThreads())
        threads_before = threading.active_count()
        with pytest.raises(NoReplyError, match="no answer to query") as refused:
            await web.requests.call_async(QUERY, query(3), 0.3, client=WEB)
        requests = [query(window.number) for window in layout.windows for _ in range(4)]
        waiting = [asyncio.ensure_future(web.requests.call_async(QUERY, r, 30.0, client=WEB))
                   for r in requests]
        await asyncio.sleep(0.3)  # all published, all waiting
        assert not any(w.done() for w in waiting)
        threads_waiting = threading.active_count()
        back = threading.Thread(target=lambda: setattr(hall, "service", hall.start_coordinator()))
        back.start()
        replies = list(await asyncio.gather(*waiting))
        back.join()
        assert [r.command_id for r in replies] == [r.command_id for r in requests]  # each its own
        return threads_before, threads_waiting, replies, refused.type

    try:
        before, during, replies, refused = asyncio.run(main())
        assert refused is NoReplyError
        assert during == before  # every request waiting, not one thread more
        assert len(replies) == 4 * len(layout.windows)
        assert all(isinstance(r, QueryReply) and r.ok for r in replies)
        assert web.requests._futures == {}  # nothing left behind, answered or not
    finally:
        web.stop()
        hall.stop()
