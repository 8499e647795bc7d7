"""The printer agent: the MQTT side of one ticket printer, on the agent skeleton's :class:`Worker`.

paho's thread only posts jobs and heads-ups to the worker. The worker does all serial work: on the
coordinator's heads-up (``print_expected``, sent before its commit) it writes the printer's DLE EOT
1 so the answer is there when the job comes (runner.py: ``expect``); it prints each job as it
arrives (a message wakes it, nothing polls for jobs), asks the printer's status when its next poll
is due (counted from the last status read, a job's own poll included; a job that arrives meanwhile
goes first), and publishes the retained device status when it changes. A job message is
acknowledged to the broker only after its result is confirmed published, so a crash leaves it to be
redelivered, and the ledger then answers it without printing it again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from hall_devices.agent import StatusReporter, Worker
from hall_devices.contract import (
    PRINT_EXPECTED,
    PRINT_JOB,
    PrintExpected,
    PrintFailure,
    PrintJob,
    PrintResult,
    Problem,
)
from hall_devices.layout import Layout, PrinterDevice
from hall_devices.link import MONOTONIC, Clock
from hall_devices.mqtt.bus import Bus, BusOptions, Inbound
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.runner import PrinterRunner
from hall_devices.printer.status import PrinterStatus
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


class PollNow:
    """Posted by :meth:`PrinterAgent.request_poll`: ask the status at once."""


@dataclass(frozen=True)
class HeadsUp:
    """Posted for the coordinator's heads-up (``print_expected``): a job is likely to follow."""

    message: Inbound[PrintExpected]


Item = Inbound[PrintJob] | HeadsUp | PollNow


class PrinterAgent:
    def __init__(self, settings: Settings, layout: Layout, printer_id: str, data_dir: Path, *,
                 url: str | None = None, poll_interval_s: float = 5.0,
                 fault_poll_interval_s: float = 1.0, clock: Clock = MONOTONIC) -> None:
        printer = layout.device(printer_id)
        if not isinstance(printer, PrinterDevice):
            raise ValueError(f"device {printer_id!r} is a {printer.kind}, not a printer")
        self.printer = printer
        ledger = JobLedger(data_dir / f"printer-{printer_id}.sqlite3")
        self.runner = PrinterRunner(printer, layout.hall, ledger, url, clock=clock)
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        # A faulted printer is asked often, so its kiosk prints again soon after paper is loaded.
        self.fault_poll_interval_s = fault_poll_interval_s
        self._next_poll = 0.0  # monotonic seconds; 0: at once (the worker's first tick)
        self.worker: Worker[Item] = Worker(f"printer {printer_id}", self._on_batch, self._on_tick,
                                           clock=clock)
        self.bus = Bus(settings, BusOptions(
            client_id=printer_id, hall_id=layout.hall.id, device_id=printer_id, device_kind="printer",
            persistent_session=True, manual_ack=True))
        self._status = StatusReporter(self.bus.set_status)
        # Jobs posted and not yet taken (paho's thread adds, the worker takes away, under the lock):
        # the status poll gives way to a job only, not to heads-ups or a poll request, so a stream
        # of heads-ups with no job behind them cannot keep the printer's status from being read.
        self._jobs_waiting = 0
        self._jobs_lock = threading.Lock()
        self.bus.subscribe(PRINT_JOB, self._post_job, printer=printer_id)
        self.bus.subscribe(PRINT_EXPECTED, lambda m: self.worker.post(HeadsUp(m)), printer=printer_id)

    def _post_job(self, job: Inbound[PrintJob]) -> None:
        with self._jobs_lock:  # counted before the post: the worker never takes one not counted
            self._jobs_waiting += 1
        self.worker.post(job)

    def _job_waiting(self) -> bool:
        return self._jobs_waiting > 0

    def start(self, wait_s: float | None = 10.0) -> None:
        self.worker.start()  # its first tick polls the printer and publishes the status
        self.bus.start(wait_s)

    def request_poll(self) -> None:
        """Ask the printer's status at once instead of at the next interval (any thread)."""
        self.worker.post(PollNow())

    def stop(self) -> None:
        self.worker.stop(timeout_s=10)  # a ticket with an image QR takes seconds at 9600 baud
        self.bus.stop()
        self.runner.close()

    # --- on the worker thread -------------------------------------------------------------------

    def _on_batch(self, items: list[Item]) -> None:
        for item in items:
            if isinstance(item, PollNow):
                self._next_poll = 0.0
                continue
            if isinstance(item, HeadsUp):
                self._heads_up(item)
                continue
            with self._jobs_lock:  # floor 0: a job handed to _on_batch directly was never counted
                self._jobs_waiting = max(0, self._jobs_waiting - 1)
            try:
                self._print(item)
            except Exception:  # a bug must not leave the job unanswered
                log.exception("printing job %s on %s (message id %s) failed unexpectedly; answered "
                              "interrupted", item.payload.job_id, item.topic, item.mid)
                self._give_up(item)

    def _on_tick(self, now: float) -> float:
        if now >= self._next_poll:
            status = self.runner.poll_unless(self._job_waiting)
            if status is None:  # a job came: it goes first (its own poll refreshes the status)
                return now
            self._publish_status(status)
            self._next_poll = self._poll_after(now)
        return self._next_poll

    def _poll_after(self, now: float) -> float:
        faulted = self.runner.status.failure is not None
        return now + (self.fault_poll_interval_s if faulted else self.poll_interval_s)

    def _heads_up(self, item: HeadsUp) -> None:
        try:
            if self.runner.expect():
                log.debug("heads-up for request %s: DLE EOT 1 asked", item.message.payload.request_id)
        except Exception:  # a bug here costs the job its round trip, never the job itself
            log.exception("heads-up for request %s failed", item.message.payload.request_id)

    def _print(self, job: Inbound[PrintJob]) -> None:
        payload = job.payload
        started = self.clock()
        result = self.runner.print_job(payload)
        log.info("job %s (%s): %s", payload.job_id, payload.ticket.number,
                 "printed" if result.ok else f"failed: {result.reason}")
        self._publish_status(self.runner.status)
        polled = self.runner.polled_at
        if polled is not None and polled >= started:
            # The job's own full poll (after its ticket) is as fresh as the periodic one: counting
            # from it, no second poll follows the job, just when the kiosk's next job may come.
            self._next_poll = self._poll_after(polled)
        else:  # answered from the ledger or the port is gone: no status read (a fault polls sooner)
            self._next_poll = min(self._next_poll, self._poll_after(self.clock()))
        if self.bus.confirmed([self.bus.answer(job, result)]):
            self.bus.ack(job)  # else the broker redelivers it and the ledger answers again

    def _give_up(self, job: Inbound[PrintJob]) -> None:
        """Answer a job that hit a bug ``interrupted`` (maybe half printed: the manager may reprint,
        the agent never does), record that in the ledger so a redelivery gets the same, and ack."""
        job_id = job.payload.job_id
        result = PrintResult(command_id=job_id, ok=False, reason=PrintFailure.INTERRUPTED,
                             error=Problem(code="internal_error",
                                           message="the printer agent failed on this job"))
        try:
            known = self.runner.ledger.state(job_id)
            if known is not None and known[0] == "done" and known[1] is None:  # printed before the bug
                result = PrintResult(command_id=job_id, ok=True)
            else:
                self.runner.ledger.finished(job_id, PrintFailure.INTERRUPTED)
            if self.bus.confirmed([self.bus.answer(job, result)]):
                self.bus.ack(job)
        except Exception:  # not connected, or the ledger itself: the broker redelivers it later
            log.exception("could not answer job %s", job_id)

    def _publish_status(self, status: PrinterStatus) -> None:
        self._status.report(status.state, sorted(status.faults),
                            detail=f"{self.printer.paper_mm} mm, {self.printer.encoding}")
