"""The printer's logic, without MQTT: keep the port open, know the printer's state, print each job once."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

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
# How long a DLE EOT 1 answer clears a job, counted from when its query was written (the printer
# answers as the query arrives). A heads-up comes before the coordinator's commit, so its job
# follows within milliseconds, tens at worst; an answer older than this tells less than the check
# is for (cover opened, the printer switched off since), so the job asks again. Kept short because
# a printer taken offline in between keeps what it is sent and prints it when it is back: a ticket
# the agent answered as failed, printed later beside its reprint. Before the heads-up that window
# was the render and one fsync (~1 ms); 0.1 s bounds it while a loaded coordinator's commit fits.
FRESH_ANSWER_S = 0.1


@dataclass(frozen=True)
class _Asked:
    """A DLE EOT 1 written on a heads-up (at clock seconds ``at``, with ``setup`` behind it), whose
    reply is not read yet: the next use of the port reads it first."""

    at: float
    setup: bytes


@dataclass(frozen=True)
class _Answered:
    """An online reply to the heads-up's DLE EOT 1 asked at ``at``; it holds while the port's write
    count is still ``writes`` (nothing written since). ``setup``: the bytes that went behind it."""

    at: float
    setup: bytes
    writes: int


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
        self._asked: _Asked | None = None  # at most one heads-up query outstanding
        self._answered: _Answered | None = None

    def _lost(self, exc: LinkLostError) -> PrinterStatus:
        log.warning("printer %s: %s", self.printer.id, exc)  # the link reopens it with backoff
        self._asked = self._answered = None  # the port they were on is closed
        return PORT_MISSING

    def expect(self) -> bool:
        """A job is likely to follow (the coordinator's heads-up): write DLE EOT 1, with the ticket's
        setup bytes behind it unless the printer was last seen faulted, and return without waiting
        for the reply; the job (or any other use of the port) reads it. True when it was written.

        Nothing is written while the port is closed, while a query is outstanding (heads-ups
        coalesce), or while a fresh online answer is known. The status is left as it is: what a
        heads-up with no job after it leaves is what the next poll finds."""
        if self._asked is not None or self._fresh() is not None or not self.port.is_open:
            return False
        setup = SETUP if can_work(self.status.state) else b""
        at = self.clock()
        try:
            self.port.ask(ONLINE_QUERY, then=setup)
        except LinkLostError as exc:  # the next poll or job finds the port missing, as without it
            self._lost(exc)
            return False
        self._asked = _Asked(at, setup)
        return True

    def _settle(self) -> None:
        """Read the outstanding heads-up query's reply (the normal reply timeout), so no late reply
        can be taken for a later query's; an online one is kept with its time. Raises
        :class:`LinkLostError` (the caller's handling)."""
        asked, self._asked = self._asked, None
        if asked is None or not self.port.is_open:
            return
        reply = self.port.reply()
        self._answered = _Answered(asked.at, asked.setup, self.port.writes) if online(reply) else None

    def _fresh(self) -> _Answered | None:
        """The known online answer, if it may still clear a job: nothing written since, and asked
        within :data:`FRESH_ANSWER_S`."""
        answered = self._answered
        if (answered is None or answered.writes != self.port.writes
                or self.clock() - answered.at > FRESH_ANSWER_S):
            return None
        return answered

    def poll(self, first_reply_within_s: float | None = None) -> PrinterStatus:
        """Ask DLE EOT 1..4 and keep the answer as :attr:`status`."""
        status = self._poll(first_reply_within_s, _never)
        return self.status if status is None else status  # never None: nothing makes it give way

    def poll_unless(self, job_waiting: Callable[[], bool]) -> PrinterStatus | None:
        """:meth:`poll`, but stop before a query (the one before it answered, so no late reply can be
        taken for a later query's) once ``job_waiting()`` is true: None then, and :attr:`status`
        stays as it was. The job's own DLE EOT 1 and the full poll after its ticket take the poll's
        place, so a job waits for one query's round trip (~4 ms at 9600 baud), not for four.
        A heads-up's outstanding reply is read first either way; an online one then clears the
        job that made the poll give way, as nothing is written after it."""
        return self._poll(None, job_waiting)

    def _poll(self, first_reply_within_s: float | None,
              give_way: Callable[[], bool]) -> PrinterStatus | None:
        if not self.port.ensure_open():
            self._asked = self._answered = None
            self.status = PORT_MISSING
            self.polled_at = self.clock()
            return self.status
        poll = StatusPoll()
        request = poll.start()
        wait = first_reply_within_s
        try:
            self._settle()  # a heads-up's reply first: it must not be taken for DLE EOT 1's below
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
            self._asked = self._answered = None
            self.status = PORT_MISSING
            self.ledger.finished(job.job_id, PrintFailure.PORT_MISSING)
            return self._result(job, PrintFailure.PORT_MISSING)
        try:
            asked, fresh = self._clearing()
            if asked is not None:  # the heads-up's query is the job's: its reply is read below
                setup, answer_known = asked.setup, False
            elif fresh is not None:  # answered online just now, nothing written since: at once
                setup, answer_known = fresh.setup, True
            else:
                # DLE EOT 1 travels while the ticket renders and "started" commits (an fsync): the
                # job waits for one round trip, not for the poll of all four. Behind the query go
                # the ticket's setup bytes, which print nothing: the line stays busy with the ticket
                # while the reply comes back. Not to a printer last seen faulted (it gets nothing of
                # the job before it says it is online).
                setup, answer_known = SETUP if can_work(self.status.state) else b"", False
                self.port.ask(ONLINE_QUERY, then=setup)
            self._answered = None  # the reply is this job's; the ticket's bytes follow it
            data = render(job, self.printer, self.hall)
            self.ledger.started(job.job_id)  # durable before any byte that prints can go
            if not answer_known and not online(self.port.reply()):  # a full poll names the fault
                before = self.poll()
                if not can_work(before.state):  # the contract's one rule; failure says which fault
                    self.ledger.finished(job.job_id, before.failure)
                    return self._result(job, before.failure)
            self.port.send(data[len(setup):] if setup and data.startswith(setup) else data)
        except LinkLostError as exc:
            self.status = self._lost(exc)
            self.ledger.finished(job.job_id, PrintFailure.PORT_MISSING)
            return self._result(job, PrintFailure.PORT_MISSING)
        # Paper can run out mid-ticket. The first query queues behind the ticket on the wire.
        wire_s = len(data) * 10 / self.printer.baudrate
        after = self.poll(first_reply_within_s=self.port.reply_timeout_s + wire_s)
        self.ledger.finished(job.job_id, after.failure)
        return self._result(job, after.failure)

    def _clearing(self) -> tuple[_Asked | None, _Answered | None]:
        """What a heads-up left for the job: its outstanding query, when asked within
        :data:`FRESH_ANSWER_S` (the job reads the reply), or a fresh online answer; neither: the
        job asks as without a heads-up. An older outstanding query's reply is read away first (a
        stale answer, and a late reply must not be taken for the job's own query's). Raises
        :class:`LinkLostError`."""
        asked = self._asked
        if asked is not None and self.clock() - asked.at <= FRESH_ANSWER_S:
            self._asked = None
            return asked, None
        self._settle()
        return None, self._fresh()

    @staticmethod
    def _result(job: PrintJob, failure: PrintFailure | None) -> PrintResult:
        return PrintResult(command_id=job.job_id, ok=failure is None, reason=failure)

    def close(self) -> None:
        with contextlib.suppress(LinkLostError):
            self._settle()  # the printer's reply is read, not left to whoever opens the port next
        self._answered = None
        self.port.close()
        self.ledger.close()
