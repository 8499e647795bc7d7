"""The printer agent: the MQTT side of one ticket printer.

paho's thread only queues jobs. The agent's own thread does all serial work: it prints jobs, polls
status between them, and publishes the retained device status when it changes. A job message is
acknowledged to the broker only after its result is published, so a crash leaves it to be
redelivered, and the ledger then answers it without printing it again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from hall_devices.bus import Bus, BusOptions, Inbound
from hall_devices.contract import PRINT_JOB, PrintFailure, PrintJob, PrintResult, Problem
from hall_devices.layout import Layout, PrinterDevice
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.runner import PrinterRunner
from hall_devices.printer.status import PrinterStatus
from hall_devices.settings import Settings

log = logging.getLogger(__name__)


class PrinterAgent:
    def __init__(self, settings: Settings, layout: Layout, printer_id: str, data_dir: Path, *,
                 url: str | None = None, poll_interval_s: float = 5.0,
                 fault_poll_interval_s: float = 1.0) -> None:
        printer = layout.device(printer_id)
        if not isinstance(printer, PrinterDevice):
            raise ValueError(f"device {printer_id!r} is a {printer.kind}, not a printer")
        self.printer = printer
        ledger = JobLedger(data_dir / f"printer-{printer_id}.sqlite3")
        self.runner = PrinterRunner(printer, layout.hall, ledger, url)
        self.poll_interval_s = poll_interval_s
        # A faulted printer is asked often, so its kiosk prints again soon after paper is loaded.
        self.fault_poll_interval_s = fault_poll_interval_s
        self._jobs: queue.Queue[Inbound[Any] | None] = queue.Queue()  # None: poll the status now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"printer {printer_id}", daemon=True)
        self._published: PrinterStatus | None = None
        self.bus = Bus(settings, BusOptions(
            client_id=printer_id, hall_id=layout.hall.id, device_id=printer_id, device_kind="printer",
            persistent_session=True, manual_ack=True))
        self.bus.subscribe(PRINT_JOB, self._jobs.put, printer=printer_id)

    def start(self, wait_s: float | None = 10.0) -> None:
        self._publish_status(self.runner.poll())
        self._thread.start()
        self.bus.start(wait_s)

    def request_poll(self) -> None:
        """Ask the printer's status at once instead of at the next interval."""
        self._jobs.put(None)

    def stop(self) -> None:
        self._stop.set()
        self._jobs.put(None)  # wake the worker from its wait
        self._thread.join(timeout=10)
        self.bus.stop()
        self.runner.close()

    def _run(self) -> None:
        next_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                job = None
            if self._stop.is_set():
                return
            if job is None:
                try:
                    self._publish_status(self.runner.poll())
                except Exception:  # keep polling whatever happened this time
                    log.exception("status poll of printer %s failed unexpectedly", self.printer.id)
                next_poll = self._next_poll()
                continue
            try:
                self._print(job)
            except Exception:  # a bug must not stop the printer, nor leave the job unanswered
                log.exception("printing job %s on %s (message id %s) failed unexpectedly; answered "
                              "interrupted", job.payload.job_id, job.topic, job.mid)
                self._give_up(job)
            next_poll = min(next_poll, self._next_poll())

    def _next_poll(self) -> float:
        faulted = self.runner.status.failure is not None
        return time.monotonic() + (self.fault_poll_interval_s if faulted else self.poll_interval_s)

    def _print(self, job: Inbound[Any]) -> None:
        payload: PrintJob = job.payload
        result = self.runner.print_job(payload)
        log.info("job %s (%s): %s", payload.job_id, payload.ticket.number,
                 "printed" if result.ok else f"failed: {result.reason}")
        self._publish_status(self.runner.status)
        if self.bus.confirmed([self.bus.answer(job, result)]):
            self.bus.ack(job)  # else the broker redelivers it and the ledger answers again

    def _give_up(self, job: Inbound[Any]) -> None:
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
            log.exception("could not answer job %s", job.payload.job_id)

    def _publish_status(self, status: PrinterStatus) -> None:
        if status == self._published:
            return
        self._published = status
        self.bus.set_status(status.state, sorted(status.faults),
                            detail=f"{self.printer.paper_mm} mm, {self.printer.encoding}")
