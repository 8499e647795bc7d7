"""The queue engine, sans-IO: a typed command and the time in; events, a reply and effects out.

Every handler checks everything before it produces an event, so an illegal command raises
:class:`EngineError` (a code and a message naming the current state) and changes nothing. Events are
applied with :func:`evolve`, the same function that rebuilds the state from the store on restart.
Ids that must be unguessable (a ticket's page token) are passed in, keeping the engine deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from hall_devices.contract import (
    CLOCK_SKEW_MAX_S,
    TICKET_REQUEST_TTL_S,
    CaseState,
    DeviceStatus,
    PrintJob,
    Problem,
    RatingAck,
    RatingPrompt,
    Reply,
    StaffAction,
    StaffCommand,
    StaffResult,
    TicketClass,
    TicketInfo,
    TicketReply,
    TicketRequest,
    TicketStatus,
    WindowAction,
    WindowCommand,
    WindowCommandResult,
    WindowStatus,
)
from hall_devices.coordinator import events as ev
from hall_devices.coordinator.alerts import Supervisor
from hall_devices.coordinator.bookings import check_capacity, same_booking
from hall_devices.coordinator.calendar import business_day, deadline
from hall_devices.coordinator.clock import ClockKeeper
from hall_devices.coordinator.evolve import evolve
from hall_devices.coordinator.model import CLASS_RANK, CaseRecord, JobState, PromptState, State, Ticket
from hall_devices.coordinator.outcome import (
    ActAsStaff,
    ActAtWindow,
    Announce,
    AskRating,
    Command,
    EngineError,
    Outcome,
    Rate,
    ReportPrint,
    SendPrintJob,
    TakeTicket,
)
from hall_devices.coordinator.policy import (
    QueueIndex,
    ServiceMap,
    pick_next,
    reentry_place,
    signed_in_windows,
)
from hall_devices.coordinator.tables import (
    CASE_STATE_ZH,
    CASE_TABLE,
    TICKET_STATUS_ZH,
    TICKET_TABLE,
    WINDOW_STATUS_ZH,
    WINDOW_TABLE,
)
from hall_devices.coordinator.views import Views, text
from hall_devices.layout import KioskDevice, Layout


class Engine:
    def __init__(self, layout: Layout, state: State | None = None) -> None:
        self.layout = layout
        self.policy = layout.policy
        self.state = state or State()
        self.services = ServiceMap.of(layout)
        self.index = QueueIndex(self.services)
        self.index.rebuild(self.state)
        self.views = Views(layout, self.services, self.index)
        self.supervisor = Supervisor(layout, self.index)
        self._printer_of = {d.id: d.printer for d in layout.devices
                            if isinstance(d, KioskDevice) and d.printer}
        self._kiosks = {d.id for d in layout.devices if isinstance(d, KioskDevice)}
        self._window_numbers = {w.number for w in layout.windows}
        self.clock = ClockKeeper(layout.hall, self.policy)  # this process's readings: see observe()
        self._long_paused: set[int] = set()
        self._auto_after = {w.number: (w.auto_call_after_s if w.auto_call_after_s is not None
                                       else self.policy.auto_call_after_s) for w in layout.windows}
        # Counts events applied to the state: a caller whose command raised can tell whether the
        # state may be half changed (then it rebuilds from the store) or is untouched.
        self.applied = 0
        # Built once; mypy checks each handler and refusal against its entry's command type.
        entries = (
            _Entry(TakeTicket, self._ticket_request, lambda c, p: TicketReply(
                command_id=c.request.command_id, ok=False, error=p)),
            _Entry(ActAtWindow, self._window_command, lambda c, p: WindowCommandResult(
                command_id=c.command.command_id, ok=False, error=p)),
            _Entry(Rate, self._rating, lambda c, p: RatingAck(
                command_id=c.rating.rating_id, ok=False, error=p)),
            _Entry(ActAsStaff, self._staff_command, lambda c, p: StaffResult(
                command_id=c.command.command_id, ok=False, error=p)),
            _Entry(ReportPrint, self._print_result, lambda c, p: None),  # a print result has no answer
        )
        self._table: dict[type[Command], _Dispatch] = {entry.kind: entry for entry in entries}

    # --- the one entry point --------------------------------------------------------------------

    def handle(self, command: Command, now: datetime, token: str = "") -> Outcome:
        """Decide and apply one command. A refused command yields a failure reply only (none when
        its request has no answer, e.g. a print result), with ``refused`` naming the problem.

        ``token``: the page token a new ticket gets (unguessable, so made by the caller). The caller
        shows the engine each clock reading first (:meth:`observe`): a step of the clock or a new
        business day is decided there, never by a command.
        """
        entry = self._table[type(command)]
        try:
            return entry.run(command, now, token)
        except EngineError as refused:
            problem = Problem(code=refused.code, message=refused.message)
            return Outcome(reply=entry.refuse(command, problem), refused=problem)

    def observe(self, now: datetime, mono: float | None = None) -> Outcome:
        """Take a clock reading (``mono``: seconds of CLOCK_BOOTTIME read with ``now``, counting from
        ``clock.boot``), before each command and tick: a clock step is committed (its alert follows),
        otherwise the day may move on, at once or after ``day_change_settle_s`` (``clock.settling``:
        tickets are refused ``clock_unsettled`` meanwhile). See :func:`clock_event`; a step moves
        the times held, so waits keep their length.
        """
        outcome = Outcome()
        event = self.clock.read(now, mono, self.state.day, self.state.clock_at)
        if event is not None:
            self.commit(outcome, event)
        if isinstance(event, ev.DayStarted):
            outcome.dirty_windows.update(self._window_numbers)
            outcome.queue_changed = True
        return outcome

    def replay(self, event: ev.Event) -> None:
        """Apply a stored event; call :meth:`reindex` once the replay is done."""
        evolve(self.state, event, self.policy.service_time_samples)

    def reindex(self) -> None:
        self.index.rebuild(self.state)

    def commit(self, outcome: Outcome, *events: ev.Event) -> None:
        for event in events:
            self.applied += 1
            evolve(self.state, event, self.policy.service_time_samples)
            outcome.events.append(event)
            ticket_id = getattr(event, "ticket_id", None)
            if isinstance(event, ev.DayStarted):
                self.index.rebuild(self.state)
            elif isinstance(ticket_id, str):
                self.index.sync(self.state.tickets.get(ticket_id), ticket_id)
            elif isinstance(event, ev.TicketsReturned):
                for returned in event.ticket_ids:
                    self.index.sync(self.state.tickets.get(returned), returned)

    # --- tickets --------------------------------------------------------------------------------

    def _ticket_request(self, command: TakeTicket, now: datetime, token: str) -> Outcome:
        req, kiosk = command.request, command.kiosk
        if kiosk not in self._kiosks:
            raise EngineError("unknown_kiosk", f"unknown kiosk {kiosk!r}")
        _check_deadline(req, now)
        ticket_class = TicketClass(req.ticket_class)
        service_id = req.service_id
        code = None
        if ticket_class is TicketClass.APPOINTMENT:
            ticket_class, service_id, code = self._check_in(req, now)
        if service_id is None:
            raise EngineError("missing_service", "a ticket needs a service")
        outcome = Outcome()
        ticket = self._issue(outcome, service_id, ticket_class, now=now, token=token, kiosk=kiosk,
                             appointment=code)
        # Built once for the print job and the reply: a job's event changes nothing the ticket shows.
        info = self.views.ticket(self.state, ticket)
        job_id = self._print(outcome, ticket, kiosk, now=now, info=info) if req.paper else None
        outcome.reply = TicketReply(command_id=req.command_id, ok=True, ticket=info, print_job_id=job_id)
        return outcome

    def _check_in(self, req: TicketRequest, now: datetime) -> tuple[TicketClass, str, str]:
        code = req.appointment_code
        if code is None and req.id_hash is not None:
            code = self._booking_of_card(req.id_hash, now)
        booking = self.state.appointments.get(code or "")
        if booking is None:
            raise EngineError("unknown_appointment", f"unknown appointment code {code!r}")
        if booking.used_by is not None:
            raise EngineError("appointment_used", f"appointment {code} was already checked in")
        if booking.cancelled:
            raise EngineError("appointment_cancelled", f"appointment {code} was cancelled")
        if req.service_id is not None and booking.service_id != req.service_id:
            raise EngineError("appointment_service", f"appointment {code} is for service "
                              f"{booking.service_id!r}, not {req.service_id!r}")
        early = booking.slot_start - timedelta(minutes=self.policy.appointment_early_minutes)
        late = booking.slot_end + timedelta(minutes=self.policy.appointment_late_minutes)
        in_slot = early <= now <= late
        return (TicketClass.APPOINTMENT if in_slot else TicketClass.NORMAL), booking.service_id, booking.code

    def _booking_of_card(self, id_hash: str, now: datetime) -> str:
        """The card holder's unused booking of today, the one whose slot is nearest to now."""
        today = business_day(self.layout.hall, now)
        mine = [a for a in self.state.appointments.values() if a.id_hash == id_hash and a.used_by is None
                and not a.cancelled and business_day(self.layout.hall, a.slot_start) == today]
        if not mine:
            raise EngineError("no_booking_for_card", "no booking today for this ID card")
        nearest = min(mine, key=lambda a: min(abs(a.slot_start - now), abs(a.slot_end - now)))
        return nearest.code

    def _issue(self, outcome: Outcome, service_id: str, ticket_class: TicketClass, *, now: datetime,
               token: str, kiosk: str | None, appointment: str | None = None,
               staff: str | None = None) -> Ticket:
        try:
            service = self.layout.service(service_id)
        except KeyError:
            raise EngineError("unknown_service", f"unknown service {service_id!r}") from None
        if not token:
            raise EngineError("no_token", "a ticket needs a page token")
        if staff is None and not self.views.accepting(self.state, service.id):
            raise EngineError("service_closed", f"暂停取号：{service.name.zh}暂无窗口办理 / no window "
                              f"is open for {service.name.en}: numbers are paused")
        if self.clock.settling:
            raise EngineError("clock_unsettled", "系统正在校准时间，请稍候 / the system is checking its "
                              "clock, please wait a moment: it reads a new business day not yet "
                              f"started (held {self.state.day})")
        if not self.state.day:  # a caller that never showed the engine its clock
            self.commit(outcome, ev.DayStarted(at=now, day=business_day(self.layout.hall, now)))
        day = self.state.day  # moves only forward (observe), so a number is never issued twice
        prefix = service.prefix
        counter, first, last = prefix, 1, None
        if service.number_range is not None:
            (first, last), counter = service.number_range, f"{prefix}{service.number_range[0]}"
        seq = max(self.state.counters.get(counter, 0), first - 1) + 1
        while f"{day}-{prefix}{seq:03d}" in self.state.tickets:  # e.g. a range edited mid-day
            seq += 1
        if last is not None and seq > last:
            raise EngineError("range_exhausted", f"{service.name.zh}今日号段 {prefix}{first:03d}–"
                              f"{prefix}{last:03d} 已发完，请到咨询台 / the numbers of {service.name.en} "
                              f"({prefix}{first:03d}–{prefix}{last:03d}) are used up for today")
        number = f"{prefix}{seq:03d}"
        ticket_id = f"{day}-{number}"
        self.commit(outcome, ev.TicketIssued(
            at=now, ticket_id=ticket_id, number=number, prefix=prefix, seq=seq, day=day,
            service_id=service.id, ticket_class=ticket_class, token=token, kiosk_id=kiosk,
            appointment_code=appointment,
            staff_id=staff, counter=None if counter == prefix else counter))
        outcome.dirty_windows.update(self.services.windows_of[service.id])
        outcome.queue_changed = True
        return self.state.tickets[ticket_id]

    def printer_expecting(self, command: Command) -> str | None:
        """The printer a paper ticket request would send its job to, as far as is known before it
        is decided (the kiosk's printer, when it can print): a read, nothing changes. None for
        anything else. The engine may still refuse the request: that costs the printer one query."""
        if not isinstance(command, TakeTicket) or not command.request.paper:
            return None
        printer = self._printer_of.get(command.kiosk)
        return printer if printer is not None and self.supervisor.printer_usable(printer) else None

    def _print(self, outcome: Outcome, ticket: Ticket, kiosk: str | None, *, now: datetime,
               info: TicketInfo | None = None) -> str | None:
        """Send a print job to the kiosk's printer unless it is known to be unable to print;
        ``info``: the ticket as shown, when the caller has built it already."""
        printer = self._printer_of.get(kiosk or "")
        if kiosk is None or printer is None or not self.supervisor.printer_usable(printer):
            return None
        sent = 0
        while f"{ticket.ticket_id}-p{sent + 1}" in self.state.jobs:
            sent += 1
        job_id = f"{ticket.ticket_id}-p{sent + 1}"
        self.commit(outcome, ev.PrintJobSent(at=now, job_id=job_id, ticket_id=ticket.ticket_id,
                                             kiosk_id=kiosk, printer_id=printer))
        outcome.effects.append(SendPrintJob(printer, PrintJob(
            job_id=job_id, kiosk_id=kiosk, hall_name=text(self.layout.hall.name),
            ticket=info or self.views.ticket(self.state, ticket), reprint=sent > 0)))
        return job_id

    def _print_result(self, command: ReportPrint, now: datetime, token: str) -> Outcome:
        result = command.result
        job = self.state.jobs.get(result.command_id or "")
        if job is not None and job.printer_id != command.printer:  # the topic names the sender
            raise EngineError("wrong_sender", f"print job {job.job_id!r} went to printer {job.printer_id!r}, "
                              f"not to {command.printer!r}: only that printer reports on it")
        if job is None:
            raise EngineError("unknown_job", f"no print job {result.command_id!r} for this printer")
        outcome = Outcome()
        if job.state is JobState.SENT:
            self.commit(outcome, ev.PrintJobEnded(at=now, job_id=job.job_id, ok=result.ok,
                                                  reason=result.reason))
        return outcome

    # --- windows --------------------------------------------------------------------------------

    def _window_command(self, command: ActAtWindow, now: datetime, token: str) -> Outcome:
        cmd = command.command
        number = self._window_number(command.window)
        runtime = self.state.windows.get(number)
        status = runtime.status if runtime else WindowStatus.CLOSED
        if (status, cmd.action) not in WINDOW_TABLE:
            raise EngineError("wrong_state", f"window {number} is {status.value} "
                              f"({WINDOW_STATUS_ZH[status]}): cannot {cmd.action.value}")
        outcome = Outcome(dirty_windows={number})
        current = self.state.tickets.get(runtime.ticket_id) if runtime and runtime.ticket_id else None
        affected = self._window_action(outcome, cmd, number, current, now)
        state = self.views.window(self.state, number, now)
        shown = affected or (self.state.tickets.get(state.ticket_id) if state.ticket_id else None)
        outcome.reply = WindowCommandResult(
            command_id=cmd.command_id, ok=True, window=number, action=cmd.action,
            ticket=self.views.ticket(self.state, shown) if shown else None, state=state)
        self._long_paused.discard(number)  # a fresh state: paused just now, or not paused
        outcome.window_states[number] = state
        return outcome

    def _window_number(self, number: int) -> int:
        if number not in self._window_numbers:
            raise EngineError("unknown_window", f"unknown window {str(number)!r}")
        return number

    def _window_action(self, outcome: Outcome, cmd: WindowCommand, window: int,
                       current: Ticket | None, now: datetime) -> Ticket | None:
        action = cmd.action
        if action is WindowAction.LOGIN:
            if not cmd.clerk_id:
                raise EngineError("missing_clerk", "login needs a clerk id")
            self.commit(outcome, ev.WindowOpened(at=now, window=window, clerk_id=cmd.clerk_id))
            outcome.queue_changed = True  # the summary counts open windows per service
            return None
        if action is WindowAction.LOGOUT:
            held = self.state.windows[window].held
            if held:
                numbers = ", ".join(self.state.tickets[t].number for t in held)
                raise EngineError("tickets_held", f"window {window} holds {numbers}: call them back "
                                  "or transfer them before signing out")
            self._return_transferred(outcome, window, now)
            self.commit(outcome, ev.WindowClosed(at=now, window=window))
            outcome.queue_changed = True
            return None
        if action is WindowAction.PAUSE:
            self.commit(outcome, ev.WindowPaused(at=now, window=window, reason=cmd.reason))
            return None
        if action is WindowAction.RESUME:
            self.commit(outcome, ev.WindowResumed(at=now, window=window))
            return None
        if action is WindowAction.NEXT:
            return self._call_next(outcome, window, now)
        if action in (WindowAction.CALL_BACK, WindowAction.REACTIVATE):
            return self._by_number(outcome, cmd, window, now)
        if action is WindowAction.CALL_TICKET:
            return self._call_out_of_turn(outcome, cmd, window, now)
        assert current is not None  # every other legal action has a ticket at the window
        return self._act_on_current(outcome, cmd, window, current, now)

    def _call_next(self, outcome: Outcome, window: int, now: datetime) -> Ticket:
        ticket = pick_next(self.state, self.index, self.policy, window, now)
        if ticket is None:
            raise EngineError("queue_empty", f"no ticket waiting for window {window}")
        self._call(outcome, ticket, window, now, call_back=False)
        return ticket

    def _call_out_of_turn(self, outcome: Outcome, cmd: WindowCommand, window: int,
                          now: datetime) -> Ticket:
        """特呼: a waiting ticket this window may serve, called before its turn; the reason is kept
        in the call event (who: the window's clerk)."""
        if not (cmd.reason or "").strip():
            raise EngineError("missing_field", "特呼 (call_ticket) needs a reason")
        ticket = self._ticket_by_number(cmd.ticket_number)
        self._check_ticket(ticket, "call")
        if not any(key[3] == ticket.ticket_id for key in self.index.keys.get(window, [])):
            raise EngineError("not_for_window", f"{ticket.number} is not in the queue of window {window}")
        self._call(outcome, ticket, window, now, call_back=False, out_of_turn=cmd.reason)
        return ticket

    def _call(self, outcome: Outcome, ticket: Ticket, window: int, now: datetime,
              call_back: bool, *, out_of_turn: str | None = None) -> None:
        higher = not call_back and CLASS_RANK[ticket.ticket_class] < CLASS_RANK[TicketClass.NORMAL]
        self.commit(outcome, ev.TicketCalled(at=now, ticket_id=ticket.ticket_id, window=window,
                                             higher_class=higher, call_back=call_back,
                                             out_of_turn=out_of_turn))
        outcome.effects.append(Announce(self.views.call(ticket, window, now)))
        outcome.dirty_windows.update(self.services.windows_for(ticket))
        outcome.queue_changed = True

    def _by_number(self, outcome: Outcome, cmd: WindowCommand, window: int, now: datetime) -> Ticket:
        ticket = self._ticket_by_number(cmd.ticket_number)
        if cmd.action is WindowAction.CALL_BACK:
            self._check_ticket(ticket, "call_back")
            if ticket.window != window:
                raise EngineError("held_elsewhere", f"{ticket.number} is held at window {ticket.window}")
            self._call(outcome, ticket, window, now, call_back=True)
            return ticket
        self._check_ticket(ticket, "reactivate")
        limit = timedelta(minutes=self.policy.no_show_reactivate_minutes)
        if ticket.no_show_at is None or now - ticket.no_show_at > limit:
            raise EngineError("reactivation_expired", f"{ticket.number} missed its call more than "
                              f"{self.policy.no_show_reactivate_minutes} minutes ago")
        place = reentry_place(self.state, ticket, self.policy.no_show_reenter_after)
        self.commit(outcome, ev.TicketReactivated(at=now, ticket_id=ticket.ticket_id, sort_at=now,
                                                  place=place))
        outcome.dirty_windows.update(self.services.windows_for(ticket))
        outcome.queue_changed = True
        return ticket

    def _act_on_current(self, outcome: Outcome, cmd: WindowCommand, window: int, ticket: Ticket,
                        now: datetime) -> Ticket:
        action = cmd.action
        self._check_ticket(ticket, action.value)
        tid = ticket.ticket_id
        if action is WindowAction.RECALL:
            if ticket.attempts > self.policy.recall_limit:
                raise EngineError("recall_limit", f"{ticket.number} was recalled "
                                  f"{self.policy.recall_limit} times already")
            self.commit(outcome, ev.TicketRecalled(at=now, ticket_id=tid, window=window))
            outcome.effects.append(Announce(self.views.call(ticket, window, now)))
        elif action is WindowAction.START:
            self.commit(outcome, ev.ServiceStarted(at=now, ticket_id=tid, window=window))
        elif action is WindowAction.NO_SHOW:
            self.commit(outcome, ev.TicketNoShow(at=now, ticket_id=tid, window=window))
        elif action is WindowAction.HOLD:
            self.commit(outcome, ev.TicketHeld(at=now, ticket_id=tid, window=window))
        elif action is WindowAction.TRANSFER:
            self._transfer(outcome, cmd, window, ticket, now)
        elif action is WindowAction.FINISH:
            prompt_id = f"{tid}-r"
            expires = now + timedelta(seconds=self.policy.rating_timeout_s)
            self.commit(outcome, ev.TicketFinished(at=now, ticket_id=tid, window=window,
                                                   clerk_id=self.state.windows[window].clerk_id,
                                                   prompt_id=prompt_id, rating_expires_at=expires))
            outcome.effects.append(AskRating(window, RatingPrompt(
                prompt_id=prompt_id, window=window, ticket_id=tid, ticket_number=ticket.number,
                clerk_id=ticket.clerk_id, service_id=ticket.service_id, expires_at=expires,
                timeout_s=self.policy.rating_timeout_s)))
        return ticket

    def _transfer(self, outcome: Outcome, cmd: WindowCommand, window: int, ticket: Ticket,
                  now: datetime) -> None:
        if cmd.target_service is None and cmd.target_window is None:
            raise EngineError("missing_target", "transfer needs a target service or window")
        to_service = cmd.target_service or ticket.service_id
        try:
            self.layout.service(to_service)
        except KeyError:
            raise EngineError("unknown_service", f"unknown service {to_service!r}") from None
        if cmd.target_window is not None and cmd.target_window not in self._window_numbers:
            raise EngineError("unknown_window", f"unknown window {cmd.target_window}")
        if cmd.target_window == window:
            raise EngineError("same_window", f"{ticket.number} is already at window {window}")
        to_window = self._open_target(cmd, ticket)
        if to_window is None:
            self._check_service_open(to_service, ticket)
        self.commit(outcome, ev.TicketTransferred(at=now, ticket_id=ticket.ticket_id, window=window,
                                                  to_service=to_service, to_window=to_window))
        outcome.dirty_windows.update(self.services.windows_for(ticket))
        outcome.queue_changed = True

    def _open_target(self, cmd: WindowCommand, ticket: Ticket) -> int | None:
        """Where a transfer may go without stranding the ticket (policy ``stranded_tickets``).

        A closed target window is refused (``window_closed``) or, with ``requeue``, replaced by the
        service's queue. A service whose windows are all signed out is like its own tickets then:
        any window serving it may call the ticket, the manager is alerted and the kiosk says so.
        """
        target = cmd.target_window
        if target is None:
            return None
        runtime = self.state.windows.get(target)
        if runtime is not None and runtime.status is not WindowStatus.CLOSED:
            return target
        if self.policy.stranded_tickets != "requeue":
            raise EngineError("window_closed", f"window {target} is closed (未登录): nobody there "
                              f"could call {ticket.number}; transfer to a service instead")
        return None

    def _check_service_open(self, service_id: str, ticket: Ticket) -> None:
        """A transfer into a service no signed-in window serves: refused (``no_open_window``) unless
        the policy requeues and the kiosks still issue for it (``no_window_kiosk = "warn"``); then
        accepted, and the manager is alerted while the ticket waits (Supervisor)."""
        if signed_in_windows(self.state, self.services, service_id):
            return
        if self.policy.stranded_tickets == "requeue" and self.views.accepting(self.state, service_id):
            return
        name = self.layout.service(service_id).name
        raise EngineError("no_open_window", f"{name.zh}暂无已登录的窗口办理，不能转入 / no window "
                          f"serving {name.en} is signed in: {ticket.number} would wait where "
                          "nobody calls it")

    def _return_transferred(self, outcome: Outcome, window: int, now: datetime) -> None:
        """Sign-out with tickets transferred to this window waiting: refused, or they go back."""
        waiting_here = sorted((t for t in self.state.tickets.values()
                               if t.target_window == window and t.status is TicketStatus.WAITING),
                              key=lambda t: t.place)
        if not waiting_here:
            return
        if self.policy.stranded_tickets != "requeue":
            numbers = ", ".join(t.number for t in waiting_here)
            raise EngineError("tickets_transferred", f"{numbers} transferred to window {window} "
                              "wait: call them, or transfer them on, before signing out")
        self.commit(outcome, ev.TicketsReturned(at=now, window=window,
                                                ticket_ids=[t.ticket_id for t in waiting_here]))
        for ticket in waiting_here:
            outcome.dirty_windows.update(self.services.windows_for(ticket))
        outcome.queue_changed = True

    def _ticket_by_number(self, number: str | None) -> Ticket:
        for ticket in self.state.tickets.values():
            if ticket.number == number and ticket.day == self.state.day:
                return ticket
        raise EngineError("unknown_ticket", f"no ticket {number!r} today")

    @staticmethod
    def _check_ticket(ticket: Ticket, transition: str) -> None:
        if (ticket.status, transition) not in TICKET_TABLE:
            raise EngineError("wrong_state", f"{ticket.number} is {ticket.status.value} "
                              f"({TICKET_STATUS_ZH[ticket.status]}): cannot {transition}")

    # --- ratings --------------------------------------------------------------------------------

    def _rating(self, command: Rate, now: datetime, token: str) -> Outcome:
        rating = command.rating
        window = self._window_number(command.window)
        prompt = self.state.prompts.get(rating.prompt_id)
        if prompt is None or prompt.window != window or rating.window != window:
            raise EngineError("unknown_prompt", f"no rating was asked with {rating.prompt_id!r} at "
                              f"window {window}")
        if prompt.state is PromptState.RATED:
            raise EngineError("already_rated", f"ticket {prompt.ticket_id} was rated already "
                              "(one rating per service)")
        # Pressed late? By the pad's own elapsed time when it sends one: its wall clock may differ.
        late = (rating.answered_after_s > self.policy.rating_timeout_s
                if rating.answered_after_s is not None else rating.rated_at > prompt.expires_at)
        if prompt.state is PromptState.TIMED_OUT and late:
            raise EngineError("rating_late", f"the rating of {prompt.ticket_id} closed at "
                              f"{prompt.expires_at.isoformat()}")
        ticket = self.state.tickets.get(prompt.ticket_id)
        number = ticket.number if ticket else prompt.ticket_id.rsplit("-", 1)[-1]
        service = self.layout.service(prompt.service_id)
        bad = rating.level <= 2
        outcome = Outcome()
        self.commit(outcome, ev.RatingRecorded(
            at=now, rating_id=rating.rating_id, prompt_id=prompt.prompt_id, ticket_id=prompt.ticket_id,
            ticket_number=number, service_id=service.id, department_id=service.department,
            window=window, clerk_id=prompt.clerk_id, level=rating.level, reasons=rating.reasons,
            channel=rating.channel.value, rated_at=rating.rated_at,
            case_deadline=deadline(self.layout.hall, self.policy, now,
                                   self.policy.case_deadline_working_days) if bad else None))
        outcome.reply = RatingAck(command_id=rating.rating_id, ok=True)
        return outcome

    # --- staff ----------------------------------------------------------------------------------

    def _staff_command(self, command: ActAsStaff, now: datetime, token: str) -> Outcome:
        cmd = command.command
        outcome = Outcome()
        ticket: Ticket | None = None
        case: CaseRecord | None = None
        if cmd.action is StaffAction.ISSUE_GREEN:
            ticket = self._issue(outcome, cmd.service_id or "", TicketClass.GREEN, now=now, token=token,
                                 kiosk=cmd.kiosk_id, staff=cmd.staff_id)
            if cmd.kiosk_id:
                self._print(outcome, ticket, cmd.kiosk_id, now=now)
        elif cmd.action is StaffAction.REPRINT:
            ticket = self.state.tickets.get(cmd.ticket_id or "")
            if ticket is None:
                raise EngineError("unknown_ticket", f"no ticket {cmd.ticket_id!r} today")
            kiosk = cmd.kiosk_id or ticket.kiosk_id
            if self._printer_of.get(kiosk or "") is None:
                raise EngineError("no_printer", f"kiosk {kiosk!r} has no printer")
            if self._print(outcome, ticket, kiosk, now=now) is None:
                raise EngineError("printer_unusable", f"the printer of kiosk {kiosk} cannot print now")
        elif cmd.action is StaffAction.BOOK_APPOINTMENT:
            self._book(outcome, cmd, now)
        elif cmd.action in (StaffAction.CHANGE_APPOINTMENT, StaffAction.CANCEL_APPOINTMENT):
            self._rebook(outcome, cmd, now)
        else:
            case = self._move_case(outcome, cmd, now)
        outcome.reply = StaffResult(command_id=cmd.command_id, ok=True,
                                    ticket=self.views.ticket(self.state, ticket) if ticket else None,
                                    case=self.views.case(case) if case else None)
        return outcome

    def _book(self, outcome: Outcome, cmd: StaffCommand, now: datetime) -> None:
        if not (cmd.appointment_code and cmd.service_id and cmd.slot_start and cmd.slot_end):
            raise EngineError("missing_field", "an appointment needs a code, service and slot")
        existing = self.state.appointments.get(cmd.appointment_code)
        if existing is not None:
            if existing.cancelled:  # its code is spent: a new booking takes another code
                raise EngineError("appointment_cancelled", f"appointment {existing.code} was cancelled "
                                  "(use another code)")
            if same_booking(existing, cmd.service_id, cmd.slot_start, cmd.slot_end,
                                                       cmd.id_hash):
                return  # the platform sent it again: booked once
            raise EngineError("appointment_exists", f"appointment {cmd.appointment_code} exists with "
                              "other content (change it, or use another code)")
        self._check_slot(cmd.appointment_code, cmd.service_id, cmd.slot_start, cmd.slot_end, now)
        self.commit(outcome, ev.AppointmentBooked(at=now, code=cmd.appointment_code,
                                                  service_id=cmd.service_id,
                                                  slot_start=cmd.slot_start, slot_end=cmd.slot_end,
                                                  id_hash=cmd.id_hash))

    def _check_slot(self, code: str, service_id: str, start: datetime, end: datetime, now: datetime) -> None:
        try:
            self.layout.service(service_id)
        except KeyError:
            raise EngineError("unknown_service", f"unknown service {service_id!r}") from None
        if end <= start:
            raise EngineError("bad_slot", "the slot ends before it starts")
        if end <= now:
            raise EngineError("slot_past", f"the slot ended at {end.isoformat()}, before now")
        horizon = now + timedelta(days=self.policy.booking_horizon_days)
        if start > horizon:
            raise EngineError("slot_too_far", f"the slot starts at {start.isoformat()}: bookings are taken "
                              f"at most {self.policy.booking_horizon_days} days ahead")
        check_capacity(self.layout, self.state, code=code, service_id=service_id, start=start, end=end)

    def _rebook(self, outcome: Outcome, cmd: StaffCommand, now: datetime) -> None:
        """Change or cancel a booking; the same change or a cancel again is accepted and changes nothing."""
        booking = self.state.appointments.get(cmd.appointment_code or "")
        if booking is None:
            raise EngineError("unknown_appointment", f"unknown appointment code {cmd.appointment_code!r}")
        if booking.used_by is not None:
            raise EngineError("appointment_used", f"appointment {booking.code} was already checked in")
        if cmd.action is StaffAction.CANCEL_APPOINTMENT:
            if not booking.cancelled:
                self.commit(outcome, ev.AppointmentCancelled(at=now, code=booking.code))
            return
        if booking.cancelled:
            raise EngineError("appointment_cancelled", f"appointment {booking.code} was cancelled")
        service_id = cmd.service_id or booking.service_id
        start, end = cmd.slot_start or booking.slot_start, cmd.slot_end or booking.slot_end
        id_hash = cmd.id_hash or booking.id_hash
        if same_booking(booking, service_id, start, end, id_hash):
            return
        self._check_slot(booking.code, service_id, start, end, now)
        self.commit(outcome, ev.AppointmentChanged(at=now, code=booking.code, service_id=service_id,
                                                   slot_start=start, slot_end=end, id_hash=id_hash))

    def _move_case(self, outcome: Outcome, cmd: StaffCommand, now: datetime) -> CaseRecord:
        case = self.state.cases.get(cmd.case_id or "")
        if case is None:
            raise EngineError("unknown_case", f"no follow-up case {cmd.case_id!r}")
        if cmd.action is StaffAction.CASE_ASSIGN:
            return self._assign_case(outcome, case, cmd, now)
        to_state = CASE_TABLE.get((case.state, cmd.action))
        if to_state is None:
            raise EngineError("wrong_state", f"case {case.case_id} is {case.state.value} "
                              f"({CASE_STATE_ZH[case.state]}): cannot {cmd.action.value}")
        self.commit(outcome, ev.CaseMoved(at=now, case_id=case.case_id, to_state=to_state,
                                          by=cmd.staff_id, note=cmd.note))
        return case

    def _assign_case(self, outcome: Outcome, case: CaseRecord, cmd: StaffCommand,
                     now: datetime) -> CaseRecord:
        """Make ``cmd.assignee`` responsible for an open case; the same person again changes nothing."""
        if not (cmd.assignee or "").strip():
            raise EngineError("missing_field", "case_assign needs an assignee")
        if case.state in (CaseState.CLOSED, CaseState.REVOKED):
            raise EngineError("wrong_state", f"case {case.case_id} is {case.state.value} "
                              f"({CASE_STATE_ZH[case.state]}): cannot be assigned")
        if cmd.assignee != case.assignee:
            self.commit(outcome, ev.CaseAssigned(at=now, case_id=case.case_id, assignee=cmd.assignee or "",
                                                 by=cmd.staff_id, note=cmd.note))
        return case

    # --- time and devices -----------------------------------------------------------------------

    def tick(self, now: datetime, mono: float | None = None) -> Outcome:
        """The clock (steps, the day's reset), rating timeouts (未评价), 自动叫号, long pauses and
        supervision alerts."""
        outcome = self.observe(now, mono)
        self._auto_call(outcome, now)
        long_pause = timedelta(minutes=self.policy.long_pause_minutes)
        paused_long = {w.number for w in self.state.windows.values()
                       if w.status is WindowStatus.PAUSED and now - w.since >= long_pause}
        outcome.dirty_windows |= paused_long ^ self._long_paused  # the notice comes or goes
        self._long_paused = paused_long
        for prompt in list(self.state.prompts.values()):
            if prompt.state is PromptState.PENDING and now > prompt.expires_at:
                self.commit(outcome, ev.RatingTimedOut(at=now, prompt_id=prompt.prompt_id))
        outcome.effects += self.supervisor.review(self.state, now)
        return outcome

    def _auto_call(self, outcome: Outcome, now: datetime) -> None:
        """自动叫号: an idle window with a clerk calls its next ticket after its configured pause."""
        for number, runtime in self.state.windows.items():
            after = self._auto_after.get(number, 0)
            if (after and runtime.status is WindowStatus.IDLE and self.index.waiting_at(number)
                    and now - runtime.since >= timedelta(seconds=after)):
                outcome.dirty_windows.add(number)
                self._call_next(outcome, number, now)

    def device_status(self, status: DeviceStatus, now: datetime) -> Outcome:
        refused = self.supervisor.device_seen(status)  # foreign bus members dropped, the rest taken
        return Outcome(effects=self.supervisor.review(self.state, now), refused=refused)

    def waiting_tickets(self) -> list[Ticket]:
        return [t for t in self.state.tickets.values() if t.status is TicketStatus.WAITING]


C = TypeVar("C", bound=Command)


class _Dispatch(Protocol):
    """One row of the engine's table: decide a command of its kind, or say how it is refused."""

    @property
    def kind(self) -> type[Command]: ...

    def run(self, command: Command, now: datetime, token: str) -> Outcome: ...

    def refuse(self, command: Command, problem: Problem) -> Reply | None: ...


@dataclass(frozen=True)
class _Entry(Generic[C]):
    """A handler and its refusal for commands of type ``kind`` (``C``)."""

    kind: type[C]
    handler: Callable[[C, datetime, str], Outcome]
    failure: Callable[[C, Problem], Reply | None]  # the ``ok: false`` answer, None: no answer

    def run(self, command: Command, now: datetime, token: str) -> Outcome:
        assert isinstance(command, self.kind)
        return self.handler(command, now, token)

    def refuse(self, command: Command, problem: Problem) -> Reply | None:
        assert isinstance(command, self.kind)
        return self.failure(command, problem)


def _check_deadline(req: TicketRequest, now: datetime) -> None:
    """Refuse a ticket request its kiosk has stopped waiting for, judged by the coordinator's clock.

    Raises :class:`EngineError` ``request_expired`` when ``now`` is past the deadline, and
    ``clock_skew`` when the deadline is further ahead than a kiosk ever sets it (its send time +
    ``TICKET_REQUEST_TTL_S``) plus ``CLOCK_SKEW_MAX_S``: that kiosk's clock runs ahead, and it would
    give up on a request this coordinator could still issue. See docs/coordinator.md.
    """
    if req.deadline is None:
        return
    if now > req.deadline:
        late = (now - req.deadline).total_seconds()
        raise EngineError("request_expired", f"ticket request {req.command_id} arrived {late:.1f} s "
                          f"after its deadline {req.deadline.isoformat()}: no ticket issued")
    ahead = (req.deadline - now).total_seconds()
    if ahead > TICKET_REQUEST_TTL_S + CLOCK_SKEW_MAX_S:
        raise EngineError("clock_skew", f"ticket request {req.command_id} has its deadline {ahead:.1f} s "
                          f"ahead; a kiosk sets {TICKET_REQUEST_TTL_S:.0f} s: its clock is "
                          f"{ahead - TICKET_REQUEST_TTL_S:.1f} s ahead of the coordinator's")
