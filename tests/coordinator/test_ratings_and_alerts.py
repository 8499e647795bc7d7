"""好差评, follow-up cases, printing, supervision alerts and the queue summary, over MQTT."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from hall_devices.catalog import FAULTS
from hall_devices.contract import (
    ACTIVE_ALERTS,
    ALERT,
    DEVICE_STATUS,
    PRINT_JOB,
    PRINT_RESULT,
    QUEUE_SUMMARY,
    CaseState,
    DeviceFault,
    DeviceState,
    DeviceStatus,
    PrintFailure,
    PrintResult,
)
from hall_devices.coordinator.engine import Engine
from hall_devices.coordinator.outcome import ActAsStaff, ActAtWindow, RaiseAlert, Rate, TakeTicket
from hall_devices.layout import Layout
from hall_devices.mqtt.bus import encode
from tests.coordinator.harness import Hall, error_code
from tests.support import probe


def serve(hall: Hall, window: int, service: str, clerk: str = "Z0601") -> str:
    hall.take(service)
    if hall.states.get(window) is None or hall.states[window].status == "closed":
        hall.ok(window, "login", clerk_id=clerk)
    number = hall.next_number(window)
    hall.ok(window, "finish")
    return number


def test_rating_is_recorded_once_with_everything(hall: Hall) -> None:
    serve(hall, 6, "passport")
    prompt = hall.prompt(6)
    assert prompt.ticket_number == "B001" and prompt.clerk_id == "Z0601"
    ack = hall.rate(6, prompt.prompt_id, 5, rating_id="pad6-r1")
    assert ack.ok and ack.command_id == "pad6-r1"
    again = hall.rate(6, prompt.prompt_id, 5, rating_id="pad6-r1")  # a redelivery
    assert again == ack
    second = hall.rate(6, prompt.prompt_id, 3, rating_id="pad6-r2")  # one rating per service
    assert error_code(second) == "already_rated"
    hall.service.stop()
    from hall_devices.coordinator.store import open_read_only

    db = open_read_only(hall.store)
    rows = [json.loads(r[0]) for r in db.execute("SELECT body FROM events WHERE kind='rating_recorded'")]
    db.close()
    assert len(rows) == 1
    rating = rows[0]
    assert (rating["level"], rating["window"], rating["clerk_id"], rating["service_id"],
            rating["department_id"], rating["ticket_number"]) == (5, 6, "Z0601", "passport", "ga", "B001")
    assert rating["case_deadline"] is None


def test_bad_rating_opens_a_case_taken_to_closed(hall: Hall) -> None:
    serve(hall, 6, "passport")
    prompt = hall.prompt(6)
    assert hall.rate(6, prompt.prompt_id, 1).ok
    case_id = f"C-{prompt.ticket_id}"
    refused = hall.staff("case_close", case_id=case_id)
    assert error_code(refused) == "wrong_state" and "verifying (待核实)" in refused.error.message  # type: ignore[union-attr]
    verified = hall.staff("case_verify", case_id=case_id, note="窗口人员解释不清，已批评教育")
    assert verified.case and verified.case.state is CaseState.RECTIFYING
    # Monday 09:00 + 10 working days = Monday two weeks on; the deadline is the end of that day.
    assert verified.case.deadline.date().isoformat() == "2026-12-08"
    hall.staff("case_revisit", case_id=case_id, note="已电话回访，群众表示满意")
    closed = hall.staff("case_close", case_id=case_id)
    assert closed.case and closed.case.state is CaseState.CLOSED
    assert [step.state for step in closed.case.history] == [
        CaseState.VERIFYING, CaseState.RECTIFYING, CaseState.REVISITED, CaseState.CLOSED]


def test_appeal_and_revoke(hall: Hall) -> None:
    serve(hall, 6, "passport")
    prompt = hall.prompt(6)
    hall.rate(6, prompt.prompt_id, 2)
    case_id = f"C-{prompt.ticket_id}"
    assert hall.staff("case_appeal", case_id=case_id, note="评价与事实不符").ok
    revoked = hall.staff("case_revoke", case_id=case_id)
    assert revoked.case and revoked.case.state is CaseState.REVOKED
    assert error_code(hall.staff("case_verify", case_id="C-none")) == "unknown_case"


def test_a_case_gets_a_person_responsible_kept_across_a_restart(hall: Hall) -> None:
    """Issue 19: a manager assigns a case; the assignee, who assigned it and when are events in
    the store (a restarted coordinator still knows them); a closed case cannot be assigned."""
    serve(hall, 6, "passport")
    prompt = hall.prompt(6)
    assert hall.rate(6, prompt.prompt_id, 1).ok
    case_id = f"C-{prompt.ticket_id}"
    assert error_code(hall.staff("case_assign", case_id=case_id)) == "missing_field"
    assigned = hall.staff("case_assign", case_id=case_id, assignee="Z0701", note="请核实")
    assert assigned.case is not None
    assert (assigned.case.assignee, assigned.case.assigned_by, assigned.case.assigned_at) == (
        "Z0701", "mgr01", hall.clock())
    assert assigned.case.state is CaseState.VERIFYING  # assigning moves nothing
    hall.restart_coordinator()
    again = hall.staff("case_verify", case_id=case_id, note="已核实")
    assert again.case is not None and (again.case.assignee, again.case.assigned_by) == ("Z0701", "mgr01")
    hall.staff("case_revisit", case_id=case_id, note="已回访")
    hall.staff("case_close", case_id=case_id, note="办结")
    late = hall.staff("case_assign", case_id=case_id, assignee="Z0601")
    assert error_code(late) == "wrong_state"
    assert error_code(hall.staff("case_assign", case_id="C-none", assignee="Z0601")) == "unknown_case"


def test_no_rating_in_time_is_unrated_never_a_score(hall: Hall) -> None:
    serve(hall, 6, "passport")
    prompt = hall.prompt(6)
    hall.clock.advance(seconds=61)
    from tests.support import wait_until

    wait_until(lambda: hall.service.engine.state.prompts[prompt.prompt_id].state == "timed_out",
               what="rating timeout")
    late = hall.rate(6, prompt.prompt_id, 4)  # pressed after the prompt closed
    assert error_code(late) == "rating_late"
    # A rating pressed in time but delivered late (pad outbox) still counts.
    serve(hall, 6, "passport")
    second = hall.prompt(6)
    pressed = hall.clock()
    hall.clock.advance(seconds=120)
    wait_until(lambda: hall.service.engine.state.prompts[second.prompt_id].state == "timed_out",
               what="second timeout")
    assert hall.rate(6, second.prompt_id, 4, rated_at=pressed).ok


def test_rating_for_an_unknown_prompt(hall: Hall) -> None:
    assert error_code(hall.rate(6, "nope-r", 5)) == "unknown_prompt"


def test_print_job_failure_alert_and_reprint(hall: Hall) -> None:
    printer = probe(hall.broker.port, "P1", hall.broker.credentials["P1"],
                    subscribe=[PRINT_JOB.topic(hall="demo", printer="P1")])
    alerts = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    reply = hall.take("passport", paper=True)
    assert reply.print_job_id == f"{reply.ticket.ticket_id}-p1"  # type: ignore[union-attr]
    job = json.loads(printer.expect(lambda m: True).payload)
    assert job["ticket"]["number"] == "B001" and job["job_id"] == reply.print_job_id
    assert next(m["zh"] for m in job["ticket"]["materials"]) == "居民身份证"
    failed = PrintResult(command_id=job["job_id"], ok=False, reason=PrintFailure.PAPER_OUT)
    printer.client.publish(PRINT_RESULT.topic(hall="demo", printer="P1"), encode(failed), qos=1)
    alert = json.loads(alerts.expect(lambda m: b"print_failed" in m.payload).payload)
    assert alert["subject"] == "B001" and not alert["cleared"]
    reprint = hall.staff("reprint", ticket_id=reply.ticket.ticket_id)  # type: ignore[union-attr]
    assert reprint.ok
    job2 = json.loads(printer.expect(lambda m: True).payload)
    assert job2["job_id"].endswith("-p2") and job2["reprint"] is True
    done = PrintResult(command_id=job2["job_id"], ok=True)
    printer.client.publish(PRINT_RESULT.topic(hall="demo", printer="P1"), encode(done), qos=1)
    cleared = json.loads(alerts.expect(lambda m: b"print_failed" in m.payload).payload)
    assert cleared["cleared"] is True
    printer.stop()
    alerts.stop()


def test_paper_out_stops_paper_tickets_and_alerts(hall: Hall) -> None:
    printer = probe(hall.broker.port, "P1", hall.broker.credentials["P1"])
    alerts = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    status = DeviceStatus(device_id="P1", kind="printer", state=DeviceState.FAULT,
                          faults=[DeviceFault.PAPER_OUT], updated_at=datetime.now(UTC))
    printer.client.publish(DEVICE_STATUS.topic(hall="demo", device="P1"), encode(status),
                           qos=1, retain=True)
    alert = json.loads(alerts.expect(lambda m: b"paper_out" in m.payload).payload)
    assert alert["subject"] == "P1" and "缺纸" in alert["message"]["zh"]
    reply = hall.take("passport", paper=True)
    assert reply.ok and reply.print_job_id is None  # the number is issued; the kiosk shows it
    printer.stop()
    alerts.stop()


def test_long_wait_and_long_pause_alerts(hall: Hall) -> None:
    alerts = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "pause", reason="临时离开")
    hall.take("passport")
    hall.clock.advance(minutes=31)
    wanted = {"long_wait", "paused_with_waiting"}  # others (calendar_uncovered) may come and go
    kinds = set()
    for _ in range(2):
        kinds.add(json.loads(alerts.expect(lambda m: json.loads(m.payload)["kind"] in wanted,
                                           timeout_s=5).payload)["kind"])
    assert kinds == wanted
    alerts.stop()


def test_overtime_alert(hall: Hall) -> None:
    alerts = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo")])
    hall.take("passport")
    hall.ok(6, "login", clerk_id="Z0601")
    hall.ok(6, "next")
    hall.clock.advance(minutes=16)  # passport promises 15 minutes
    alert = json.loads(alerts.expect(lambda m: b"overtime" in m.payload).payload)
    assert alert["subject"] == "B001"
    alerts.stop()


def test_queue_summary_and_estimate(hall: Hall) -> None:
    summary = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                    subscribe=[QUEUE_SUMMARY.topic(hall="demo")])
    hall.ok(6, "login", clerk_id="Z0601")
    for _ in range(3):
        hall.take("passport")
    last = hall.take("passport")
    assert last.ticket and last.ticket.people_ahead == 3
    # Passport: 15 promised minutes, one open window (6) of two (6 and 21): 3 × 15 / 1.
    assert last.ticket.estimated_minutes == 45
    hall.clock.advance(seconds=1)

    def passport_waiting(m: object) -> bool:
        data = json.loads(m.payload)  # type: ignore[attr-defined]
        return any(s["service_id"] == "passport" and s["waiting"] == 4 for s in data["services"])

    summary.expect(passport_waiting)
    summary.stop()


def test_device_offline_alert_raised_and_cleared(hall: Hall) -> None:
    pads = probe(hall.broker.port, "KB1", hall.broker.credentials["KB1"])
    alerts = probe(hall.broker.port, "monitor", hall.broker.credentials["monitor"],
                   subscribe=[ALERT.topic(hall="demo"), ACTIVE_ALERTS.topic(hall="demo")])
    topic = DEVICE_STATUS.topic(hall="demo", device="KB1")
    for state in (DeviceState.OFFLINE, DeviceState.OK):
        status = DeviceStatus(device_id="KB1", kind="pad_bus", state=state, updated_at=datetime.now(UTC))
        pads.client.publish(topic, encode(status), qos=1, retain=True)
        # Other alerts may come and go meanwhile (calendar_uncovered at the coordinator's start: the
        # 2027 holidays are not known yet in late 2026): only this device's are looked at.
        alert = json.loads(alerts.expect(lambda m: m.topic.endswith("/alert")
                                         and json.loads(m.payload)["subject"] == "KB1").payload)
        assert alert["kind"] == "device_offline"
        assert alert["cleared"] is (state is DeviceState.OK)
        offline = state is DeviceState.OFFLINE
        def listed(m: mqtt.MQTTMessage, offline: bool = offline) -> bool:
            return m.topic.endswith("/alerts/active") and (
                "device_offline:KB1" in [a["alert_id"] for a in json.loads(m.payload)["alerts"]]) is offline

        active = json.loads(alerts.expect(listed).payload)
        assert [a["alert_id"] for a in active["alerts"] if a["kind"] != "calendar_uncovered"] == (
            ["device_offline:KB1"] if state is DeviceState.OFFLINE else [])
    pads.stop()
    alerts.stop()


def test_a_kiosk_whose_clock_is_off_is_alerted(layout: Layout) -> None:
    engine = Engine(layout)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    skewed = DeviceStatus(device_id="K1", kind="kiosk", state=DeviceState.WARNING,
                          faults=[DeviceFault.CLOCK_SKEW], updated_at=now)
    raised = [e.alert for e in engine.device_status(skewed, now).effects
              if isinstance(e, RaiseAlert) and e.alert.subject == "K1"]
    assert [(a.alert_id, a.cleared) for a in raised] == [("device_fault:K1", False)]
    assert "时钟" in raised[0].message.zh and "NTP" in raised[0].message.en
    fixed = skewed.model_copy(update={"state": DeviceState.OK, "faults": []})
    cleared = [e.alert for e in engine.device_status(fixed, now).effects
               if isinstance(e, RaiseAlert) and e.alert.subject == "K1"]
    assert [(a.alert_id, a.cleared) for a in cleared] == [("device_fault:K1", True)]


def test_a_device_fault_alert_names_each_fault_from_the_catalog(layout: Layout) -> None:
    """A newcomer's dashboard read "设备 R1 故障：not_responding": the raw code, not a name."""
    engine = Engine(layout)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    for fault in DeviceFault:
        if fault is DeviceFault.PAPER_OUT:  # alerted as paper_out, in words of its own
            continue
        status = DeviceStatus(device_id="R1", kind="idcard_reader", state=DeviceState.FAULT,
                              faults=[fault], updated_at=now)
        raised = [e.alert for e in engine.device_status(status, now).effects
                  if isinstance(e, RaiseAlert) and e.alert.alert_id == "device_fault:R1"]
        zh, en = FAULTS[fault.value]
        assert [(a.message.zh, a.message.en) for a in raised] == [
            (f"设备 R1 故障：{zh}", f"device R1 faulted: {en}")], fault
        engine.device_status(status.model_copy(update={"state": DeviceState.OK, "faults": []}), now)


def test_an_overdue_case_is_alerted_until_it_is_revisited(layout: Layout) -> None:
    """Issue 19: the dashboard's "open the case" action needs an alert about a case: one past its
    deadline (the cases query's overdue rule) is alerted with the case id as subject."""
    from datetime import timedelta

    from hall_devices.contract import (
        Alert,
        Rating,
        RatingLevel,
        StaffAction,
        StaffCommand,
        TicketRequest,
        WindowAction,
        WindowCommand,
    )

    engine = Engine(layout)
    now = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
    engine.observe(now)
    def accepted(command: TakeTicket | ActAtWindow | Rate) -> None:
        reply = engine.handle(command, now, token="tok1").reply
        assert reply is not None and reply.ok, reply

    accepted(TakeTicket("K1", TicketRequest(command_id="t1", service_id="passport", paper=False)))
    accepted(ActAtWindow(6, WindowCommand(command_id="w1", action=WindowAction.LOGIN, clerk_id="Z0601")))
    accepted(ActAtWindow(6, WindowCommand(command_id="w2", action=WindowAction.NEXT)))
    accepted(ActAtWindow(6, WindowCommand(command_id="w3", action=WindowAction.FINISH)))
    prompt = next(iter(engine.state.prompts.values()))
    accepted(Rate(6, Rating(rating_id="r1", prompt_id=prompt.prompt_id, window=6, level=RatingLevel(1),
                            rated_at=now)))
    case = next(iter(engine.state.cases.values()))

    def overdue(at: datetime) -> list[Alert]:
        return [e.alert for e in engine.tick(at).effects
                if isinstance(e, RaiseAlert) and e.alert.kind == "case_overdue"]

    assert overdue(case.deadline) == []  # at the deadline itself: not yet
    late = case.deadline + timedelta(minutes=1)
    [raised] = overdue(late)
    assert (raised.subject, raised.cleared) == (case.case_id, False)
    assert case.ticket_number in raised.message.zh and "期限" in raised.message.zh
    for step, action in enumerate((StaffAction.CASE_VERIFY, StaffAction.CASE_REVISIT)):
        engine.handle(ActAsStaff("web", StaffCommand(command_id=f"s{step}", action=action, staff_id="mgr",
                                                     case_id=case.case_id, note="已处理")), late)
    [cleared] = overdue(late + timedelta(minutes=1))
    assert (cleared.subject, cleared.cleared) == (case.case_id, True)
