"""Supervision 电子监察: alerts derived from the state, device statuses and the time.

An alert has a stable id (kind + subject); it is published once when raised and once when cleared,
and the set of active alerts is published (retained) whenever it changes. Alerts are derived, not
stored: after a restart they are derived again from the rebuilt state and the retained statuses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from hall_devices.catalog import fault_names
from hall_devices.contract import (
    CLOCK_SKEW_MAX_S,
    ActiveAlerts,
    Alert,
    CaseState,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    Problem,
    Text,
    TicketStatus,
    WindowStatus,
    can_work,
)
from hall_devices.coordinator.calendar import business_day, local, uncovered_years
from hall_devices.coordinator.model import JobState, State
from hall_devices.coordinator.outcome import Effect, RaiseAlert, ShowAlerts
from hall_devices.coordinator.policy import QueueIndex, signed_in_windows
from hall_devices.layout import Layout

AlertKind = Literal["long_wait", "overtime", "paused_with_waiting", "device_offline", "device_fault",
                    "paper_near_end", "paper_out", "print_failed", "clock_step", "no_open_window",
                    "calendar_uncovered", "case_overdue"]
CASE_DONE = (CaseState.CLOSED, CaseState.REVOKED, CaseState.REVISITED)  # no longer counted as overdue
CLOCK_STEP_SHOWN = timedelta(hours=1)  # a clock step stays on the dashboard this long


class Supervisor:
    def __init__(self, layout: Layout, index: QueueIndex) -> None:
        self.layout = layout
        self.index = index
        self.devices: dict[str, DeviceStatus] = {}
        self.active: dict[str, Alert] = {}

    def device_seen(self, status: DeviceStatus) -> Problem | None:
        """Take a device's status. Its bus members the layout does not put on that bus are dropped
        (an agent's account may only speak for its own bus) and returned as a ``wrong_sender``
        problem naming the bus and those members; the rest of the status is taken."""
        on_bus = {d.id for d in self.layout.members(status.device_id)}
        foreign = sorted((set(status.members) | set(status.member_faults)) - on_bus)
        if foreign:
            status = status.model_copy(update={
                "members": {k: v for k, v in status.members.items() if k in on_bus},
                "member_faults": {k: v for k, v in status.member_faults.items() if k in on_bus}})
        self.devices[status.device_id] = status
        if not foreign:
            return None
        shown = ", ".join(foreign[:5]) + (f" (+{len(foreign) - 5})" if len(foreign) > 5 else "")
        return Problem(code="wrong_sender", message=(
            f"布局中总线 {status.device_id} 上没有设备 {shown}，其状态已拒收 / bus {status.device_id!r} "
            f"reported devices the layout does not put on it: {shown}; their states are refused"))

    def printer_usable(self, printer_id: str) -> bool:
        return can_work(self.devices.get(printer_id))  # the contract's one rule

    def _place(self, member_id: str) -> tuple[str, str]:
        """Where a bus member is, for a manager: its window, or the hall screen."""
        device = next((d for d in self.layout.devices if d.id == member_id), None)
        window = getattr(device, "window", None)
        if isinstance(window, int):
            return f"{window} 号窗口", f"window {window}"
        return ("大厅", "hall") if device is not None and device.kind == "hall_screen" else ("总线", "bus")

    def conditions(self, state: State, now: datetime) -> dict[str, Alert]:
        found: dict[str, Alert] = {}

        def raise_(kind: AlertKind, subject: str, zh: str, en: str) -> None:
            alert_id = f"{kind}:{subject}"
            previous = self.active.get(alert_id)
            found[alert_id] = Alert(alert_id=alert_id, kind=kind, subject=subject,
                                    message=Text(zh=zh, en=en),
                                    raised_at=previous.raised_at if previous else now)

        policy = self.layout.policy
        long_wait = timedelta(minutes=policy.long_wait_minutes)
        for ticket in state.tickets.values():
            if ticket.status is TicketStatus.WAITING and now - ticket.issued_at > long_wait:
                minutes = int((now - ticket.issued_at).total_seconds() // 60)
                raise_("long_wait", ticket.number, f"{ticket.number} 已等候 {minutes} 分钟",
                       f"{ticket.number} has waited {minutes} minutes")
            began = ticket.started_at or ticket.called_at
            if ticket.status in (TicketStatus.CALLED, TicketStatus.SERVING) and began is not None:
                promised = self.layout.service(ticket.service_id).promised_minutes
                if now - began > timedelta(minutes=promised):
                    raise_("overtime", ticket.number,
                           f"{ticket.window} 号窗口办理 {ticket.number} 超过承诺时限 {promised} 分钟",
                           f"window {ticket.window}: {ticket.number} over its promised {promised} min")
        long_pause = timedelta(minutes=policy.long_pause_minutes)
        for window in state.windows.values():
            if window.status is WindowStatus.PAUSED and now - window.since >= long_pause:
                count = self.index.waiting_at(window.number)
                if count:
                    raise_("paused_with_waiting", str(window.number),
                           f"{window.number} 号窗口暂停超过 {policy.long_pause_minutes} 分钟，"
                           f"{count} 人等候",
                           f"window {window.number} paused over {policy.long_pause_minutes} min "
                           f"with {count} waiting")
        self._hall_conditions(state, now, raise_)
        for device_id, status in self.devices.items():
            faults = set(status.faults)
            if status.state is DeviceState.OFFLINE:
                raise_("device_offline", device_id, f"设备 {device_id} 离线", f"device {device_id} offline")
            elif DeviceFault.PAPER_OUT in faults:
                raise_("paper_out", device_id, f"打印机 {device_id} 缺纸",
                       f"printer {device_id} out of paper")
            elif status.state is DeviceState.FAULT:
                zh, en = (fault_names(faults, "zh"), fault_names(faults, "en")) if faults \
                    else (status.detail or "故障", status.detail or "fault")
                raise_("device_fault", device_id, f"设备 {device_id} 故障：{zh}",
                       f"device {device_id} faulted: {en}")
            elif DeviceFault.CLOCK_SKEW in faults:  # its tickets still work: it sets them by ours
                raise_("device_fault", device_id,
                       f"设备 {device_id} 的时钟与系统相差超过 {CLOCK_SKEW_MAX_S:.0f} 秒，请校准（NTP）",
                       f"device {device_id}: its clock differs from the coordinator's by over "
                       f"{CLOCK_SKEW_MAX_S:.0f} s: fix its time sync (NTP)")
            if status.state is not DeviceState.OFFLINE:  # a screen or pad on a bus that stays unreachable
                for member_id, member_state in status.members.items():
                    if member_state is DeviceState.FAULT:
                        zh_at, en_at = self._place(member_id)
                        own = status.member_faults.get(member_id)
                        named = faults if own is None else set(own)
                        raise_("device_fault", member_id,
                               f"设备 {member_id}（{zh_at}）故障：{fault_names(named, 'zh') or '故障'}",
                               f"device {member_id} ({en_at}) faulted: {fault_names(named, 'en') or 'fault'}")
            if DeviceFault.PAPER_NEAR_END in faults and DeviceFault.PAPER_OUT not in faults:
                raise_("paper_near_end", device_id, f"打印机 {device_id} 纸将尽",
                       f"printer {device_id} paper near end")
        latest: dict[str, JobState] = {}
        for job in state.jobs.values():  # insertion order: the last job of a ticket wins
            latest[job.ticket_id] = job.state
        for ticket_id, job_state in latest.items():
            failed = state.tickets.get(ticket_id)
            if job_state is JobState.FAILED and failed is not None:
                raise_("print_failed", failed.number, f"号票 {failed.number} 打印失败，请补打",
                       f"ticket {failed.number} failed to print: reprint it")
        return found

    def _hall_conditions(self, state: State, now: datetime,
                         raise_: Callable[[AlertKind, str, str, str], None]) -> None:
        """Clock steps, services no signed-in window serves while tickets wait, the calendar."""
        for at, step_s, label in state.clock_steps:
            if timedelta(0) <= now - at < CLOCK_STEP_SHOWN:
                shown = local(self.layout.hall, at).strftime("%H:%M:%S")
                raise_("clock_step", label,
                       f"系统时钟在 {shown} 跳变 {_span(step_s, 'zh')}，排队顺序、号码和等候时长不受影响",
                       f"the clock stepped by {_span(step_s, 'en')} at {shown}; queue order, numbers "
                       "and waits are unaffected")
        for service_id, count in self.index.per_service.items():
            if count and self._closed_today(state, service_id):
                service = self.layout.service(service_id)
                raise_("no_open_window", service_id,
                       f"{service.name.zh}：{count} 人等候，但没有已登录的窗口办理",
                       f"{service.name.en}: {count} waiting and no window serving it is signed in")
        for case in state.cases.values():  # the dashboard links the alert to the case (open the case)
            if case.state not in CASE_DONE and now > case.deadline:
                raise_("case_overdue", case.case_id,
                       f"差评工单 {case.ticket_number}（{case.window} 号窗口）已超过整改期限",
                       f"the follow-up case of {case.ticket_number} (window {case.window}) is past its "
                       "deadline")
        for year in uncovered_years(self.layout.policy, local(self.layout.hall, now).date()):
            raise_("calendar_uncovered", str(year),
                   f"{year} 年的法定节假日和调休上班日未知：请升级 chinesecalendar 或在布局文件中填写",
                   f"the holidays and make-up working days of {year} are unknown: upgrade "
                   "chinesecalendar or list them in the layout")

    def _closed_today(self, state: State, service_id: str) -> bool:
        """No window serving the service signed in, once some window of the hall has signed in or
        out this business day (before the morning's first sign-in nobody is alerted)."""
        return (not signed_in_windows(state, self.index.services, service_id)
                and any(w.status is not WindowStatus.CLOSED
                        or business_day(self.layout.hall, w.since) == state.day
                        for w in state.windows.values()))

    def review(self, state: State, now: datetime) -> list[Effect]:
        found = self.conditions(state, now)
        out: list[Effect] = []
        for alert_id, alert in found.items():
            if alert_id not in self.active:
                out.append(RaiseAlert(alert))
        for alert_id, alert in self.active.items():
            if alert_id not in found:
                out.append(RaiseAlert(alert.model_copy(update={"cleared": True})))
        if out:
            self.active = found
            out.append(ShowAlerts(ActiveAlerts(
                updated_at=now, alerts=sorted(found.values(), key=lambda a: a.raised_at))))
        return out


def _span(seconds: float, lang: str) -> str:
    """+8 h 0 min 5 s / -10 min 0 s, and in Chinese +8小时0分5秒."""
    sign = "+" if seconds >= 0 else "-"
    total = round(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if lang == "zh":
        return sign + (f"{hours}小时" if hours else "") + f"{minutes}分{secs}秒"
    return sign + (f"{hours} h " if hours else "") + f"{minutes} min {secs} s"
