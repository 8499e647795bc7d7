"""The printer's logic, without MQTT: keep the port open, know the printer's state, print each job once."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hall_devices.contract import DeviceFault, PrintFailure, PrintJob, PrintResult, can_work
from hall_devices.layout import Hall, PrinterDevice
from hall_devices.link import MONOTONIC, Clock, LinkLostError
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.status import (
    ONLINE_QUERY,
    PORT_MISSING,
    PrinterStatus,
    StatusError,
    StatusPoll,
    online,
)
from hall_devices.printer.ticket import SETUP, render
from hall_devices.printer.transport import PrinterPort

log = logging.getLogger(__name__)
GARBLED = PrinterStatus(frozenset({DeviceFault.GARBLED, DeviceFault.NOT_RESPONDING}))


def _never() -> bool:
    return False


class PrinterRunner:
    """Prints jobs and polls status on one printer's port. Blocking: the agent's worker thread only."""

    def __init__(self, printer: PrinterDevice, hall: Hall, ledger: JobLedger, url: str | None = None,
                 clock: Clock = MONOTONIC) -> None:
        self.printer = printer
        self.hall = hall
        self.ledger = ledger
        self.port = PrinterPort(printer, url, clock=clock)
        self.clock = clock
        self.status = PORT_MISSING
        self.polled_at: float | None = None  # when :attr:`status` was last read (clock seconds)

    def _lost(self, exc: LinkLostError) -> PrinterStatus:
        log.warning("printer %s: %s", self.printer.id, exc)  # the link reopens it with backoff
        return PORT_MISSING

    def poll(self, first_reply_within_s: float | None = None) -> PrinterStatus:
        """Ask DLE EOT 1..4 and keep the answer as :attr:`status`."""
        status = self._poll(first_reply_within_s, _never)
        return self.status if status is None else status  # never None: nothing makes it give way

    def poll_unless(self, job_waiting: Callable[[], bool]) -> PrinterStatus | None:
        """:meth:`poll`, but stop before a query (the one before it answered, so no late reply can be
        taken for a later query's) once ``job_waiting()`` is true: None then, and :attr:`status`
        stays as it was. The job's own DLE EOT 1 and the full poll after its ticket take the poll's
        place, so a job waits for one query's round trip (~4 ms at 9600 baud), not for four."""
        return self._poll(None, job_waiting)

    def _poll(self, first_reply_within_s: float | None,
              give_way: Callable[[], bool]) -> PrinterStatus | None:
        if not self.port.ensure_open():
            self.status = PORT_MISSING
            self.polled_at = self.clock()
            return self.status
        poll = StatusPoll()
        request = poll.start()
        wait = first_reply_within_s
        try:
            while True:
                if give_way():
                    return None
                byte = self.port.status_byte(request[2], wait)
                wait = None
                if byte is None:
                    status = poll.no_reply()
                    break
                answer = poll.receive(byte)
                if isinstance(answer, PrinterStatus):
                    status = answer
                    break
                request = answer
        except StatusError as exc:
            log.warning("printer %s: %s", self.printer.id, exc)
            status = GARBLED
        except LinkLostError as exc:
            status = self._lost(exc)
        self.status = status
        self.polled_at = self.clock()
        return status

    def print_job(self, job: PrintJob) -> PrintResult:
        """Print a job once (ledger), or answer again what it came to; never raises for the port."""
        known = self.ledger.state(job.job_id)
        if known is not None:
            state, reason = known
            if state == "started":  # this agent died mid-job: maybe half printed, never twice
                reason = PrintFailure.INTERRUPTED
                self.ledger.finished(job.job_id, reason)
            log.info("job %s seen before (%s): answered again, not printed", job.job_id, state)
            return self._result(job, reason if state != "done" else None)
        if not self.port.ensure_open():
            self.status = PORT_MISSING
            self.ledger.finished(job.job_id, PrintFailure.PORT_MISSING)
            return self._result(job, PrintFailure.PORT_MISSING)
        try:
            # DLE EOT 1 travels while the ticket renders and "started" commits (an fsync): the job
            # waits for one round trip, not for the poll of all four. Behind the query go the
            # ticket's setup bytes, which print nothing: the line stays busy with the ticket while
            # the reply comes back. Not to a printer last seen faulted (it gets nothing of the job
            # before it says it is online).
            setup = SETUP if can_work(self.status.state) else b""
            self.port.ask(ONLINE_QUERY, then=setup)
            data = render(job, self.printer, self.hall)
            self.ledger.started(job.job_id)  # durable before any byte that prints can go
            if not online(self.port.reply()):  # a full poll names the fault (or finds it gone)
                before = self.poll()
                if not can_work(before.state):  # the contract's one rule; failure says which fault
                    self.ledger.finished(job.job_id, before.failure)
                    return self._result(job, before.failure)
            self.port.send(data[len(setup):] if data.startswith(setup) else data)
        except LinkLostError as exc:
            self.status = self._lost(exc)
            self.ledger.finished(job.job_id, PrintFailure.PORT_MISSING)
            return self._result(job, PrintFailure.PORT_MISSING)
        # Paper can run out mid-ticket. The first query queues behind the ticket on the wire.
        wire_s = len(data) * 10 / self.printer.baudrate
        after = self.poll(first_reply_within_s=self.port.reply_timeout_s + wire_s)
        self.ledger.finished(job.job_id, after.failure)
        return self._result(job, after.failure)

    @staticmethod
    def _result(job: PrintJob, failure: PrintFailure | None) -> PrintResult:
        return PrintResult(command_id=job.job_id, ok=failure is None, reason=failure)

    def close(self) -> None:
        self.port.close()
        self.ledger.close()
