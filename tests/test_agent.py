"""The agent skeleton: a worker woken by posts and deadlines, a port reader on a real pty."""

from __future__ import annotations

import os
import threading
import time
import tty

import pytest

from hall_devices.agent import PortData, PortEvent, PortLost, PortOpened, PortReader, StatusReporter, Worker
from hall_devices.contract import DeviceFault, DeviceState
from hall_devices.link import SerialLink


def wait_for(check: object, timeout_s: float = 3.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_posted_items_arrive_in_order_in_batches_on_the_worker_thread() -> None:
    seen: list[int] = []
    threads: set[str] = set()

    def on_batch(items: list[int]) -> None:
        threads.add(threading.current_thread().name)
        seen.extend(items)

    worker: Worker[int] = Worker("w", on_batch, batch_max=7)
    worker.start()
    for n in range(100):
        worker.post(n)
    wait_for(lambda: len(seen) == 100)
    worker.stop()
    assert seen == list(range(100))
    assert threads == {"w"}
    assert not worker.is_alive


def test_a_deadline_wakes_the_worker_and_none_means_only_when_posted() -> None:
    ticks: list[float] = []
    start = time.monotonic()

    def on_tick(now: float) -> float | None:
        ticks.append(now)
        return now + 0.05 if len(ticks) < 4 else None

    worker: Worker[int] = Worker("t", lambda items: None, on_tick)
    worker.start()
    wait_for(lambda: len(ticks) == 4)
    time.sleep(0.2)
    assert len(ticks) == 4  # no deadline: it sleeps until something comes
    assert ticks[3] - start >= 0.15
    worker.wake()
    wait_for(lambda: len(ticks) == 5)
    worker.stop()


def test_a_raising_handler_is_logged_and_the_worker_carries_on(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    errors: list[Exception] = []

    def on_batch(items: list[str]) -> None:
        for item in items:
            if item == "poison":
                raise ValueError("bad item")
            seen.append(item)

    worker: Worker[str] = Worker("e", on_batch, on_error=errors.append, error_pause_s=0.01)
    worker.start()
    worker.post("poison")
    wait_for(lambda: errors)
    worker.post("good")
    wait_for(lambda: seen == ["good"])
    worker.stop()
    assert isinstance(errors[0], ValueError)
    assert "e: unexpected error; carrying on" in caplog.text


def test_the_port_reader_posts_opened_bytes_as_they_come_and_lost_when_the_pty_goes() -> None:
    controller, device = os.openpty()
    tty.setraw(device)
    events: list[PortEvent] = []
    link = SerialLink(os.ttyname(device), 9600, "N", read_timeout_s=0.2)
    reader = PortReader(link, events.append, "reader")
    reader.start()
    try:
        wait_for(lambda: events == [PortOpened()])
        os.write(controller, b"\x01\x02")
        wait_for(lambda: b"".join(e.data for e in events if isinstance(e, PortData)) == b"\x01\x02")
        link.write(b"hi")
        assert os.read(controller, 2) == b"hi"
        os.close(controller)  # the other end hangs up: reads fail
        wait_for(lambda: any(isinstance(e, PortLost) for e in events))
    finally:
        reader.stop()
        os.close(device)
    assert not link.is_open


def test_a_port_opened_before_the_reader_runs_is_posted_once_and_first() -> None:
    controller, device = os.openpty()
    tty.setraw(device)
    events: list[PortEvent] = []
    link = SerialLink(os.ttyname(device), 9600, "N", read_timeout_s=0.2)
    reader = PortReader(link, events.append, "reader")
    try:
        assert reader.open_now()
        assert events == [PortOpened()]  # on the caller's thread, before any reading thread runs
        reader.start()
        os.write(controller, b"\x05")
        wait_for(lambda: any(isinstance(e, PortData) for e in events))
        assert [e for e in events if isinstance(e, PortOpened)] == [PortOpened()]  # not again
    finally:
        reader.stop()
        os.close(controller)
        os.close(device)


def test_a_missing_port_is_not_posted_as_opened() -> None:
    events: list[PortEvent] = []
    reader = PortReader(SerialLink("/dev/hall-no-such-port", 9600, "N"), events.append, "reader")
    assert not reader.open_now()
    assert events == []


def test_status_is_published_only_when_it_changes() -> None:
    published: list[tuple[DeviceState, list[DeviceFault] | None]] = []

    def sink(state: DeviceState, faults: list[DeviceFault] | None = None, detail: str | None = None,
             members: dict[str, DeviceState] | None = None,
             member_faults: dict[str, list[DeviceFault]] | None = None) -> None:
        published.append((state, faults))

    status = StatusReporter(sink)
    assert status.report(DeviceState.OK)
    assert not status.report(DeviceState.OK)
    assert status.report(DeviceState.FAULT, [DeviceFault.PORT_MISSING])
    assert not status.report(DeviceState.FAULT, [DeviceFault.PORT_MISSING])
    status.forget()
    assert status.report(DeviceState.FAULT, [DeviceFault.PORT_MISSING])
    assert published == [(DeviceState.OK, []), (DeviceState.FAULT, [DeviceFault.PORT_MISSING]),
                         (DeviceState.FAULT, [DeviceFault.PORT_MISSING])]


def test_waiting_says_whether_something_is_posted_and_not_yet_taken() -> None:
    taken = threading.Event()
    release = threading.Event()

    def on_batch(items: list[int]) -> None:
        taken.set()
        release.wait(5)

    worker: Worker[int] = Worker("w", on_batch)
    assert not worker.waiting
    worker.post(1)
    assert worker.waiting  # not started: nothing takes it
    worker.start()
    assert taken.wait(5)
    assert not worker.waiting  # taken, while its batch runs
    worker.post(2)
    assert worker.waiting
    release.set()
    worker.stop()
