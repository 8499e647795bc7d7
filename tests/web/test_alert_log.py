"""The web's alert history (web/alert_log.py) on a real SQLite file: raisings kept across a reopen,
cleared when they leave the coordinator's active list, acknowledged once, paged newest first."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hall_devices.web.alert_log import AlertLog, alert_file

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def alert(n: int) -> dict[str, Any]:
    """The contract's Alert as the web receives it (JSON), raised ``n`` minutes after T0."""
    return {"alert_id": f"long_wait:A{n:03d}", "kind": "long_wait", "subject": f"A{n:03d}",
            "message": {"zh": f"A{n:03d} 已等候 40 分钟", "en": f"A{n:03d} has waited 40 min"},
            "raised_at": (T0 + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"), "cleared": False}


def key(n: int) -> tuple[str, str]:
    a = alert(n)
    return a["alert_id"], a["raised_at"]


def test_history_survives_a_reopen_and_is_paged_newest_first(tmp_path: Path) -> None:
    path = alert_file(tmp_path)
    log = AlertLog(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    log.seen([alert(n) for n in range(1, 121)], T0)
    log.seen([alert(120)], T0 + timedelta(hours=3))  # 1..119 left the active list: cleared
    assert log.acknowledge(key(120), "mgr", T0 + timedelta(hours=3))
    assert not log.acknowledge(key(120), "boss", T0 + timedelta(hours=4))  # once: the first one stands
    assert not log.acknowledge(("long_wait:Z999", "2026-01-01T00:00:00Z"), "mgr", T0)  # never seen
    assert log.acknowledge(key(5), "mgr", T0 + timedelta(hours=3))  # a cleared one may still be seen to
    log.close()

    again = AlertLog(path)  # a restarted web server
    assert again.acks() == {key(120): {"by": "mgr", "at": "2026-11-30T04:00:00+00:00"}}  # active ones only
    first, total = again.page(1, 50)
    assert total == 120 and len(first) == 50
    assert first[0]["alert_id"] == "long_wait:A120" and not first[0]["cleared"]
    assert first[0]["ack"] == {"by": "mgr", "at": "2026-11-30T04:00:00+00:00"}
    assert first[1]["alert_id"] == "long_wait:A119" and first[1]["cleared"]
    assert first[1]["cleared_at"] == "2026-11-30T04:00:00+00:00" and first[1]["ack"] is None
    last, _ = again.page(3, 50)
    assert [a["subject"] for a in last] == [f"A{n:03d}" for n in range(20, 0, -1)]
    assert last[-5]["ack"] is not None and last[-5]["subject"] == "A005"
    assert last[0]["message"] == alert(20)["message"]
    # The same raising again (a retained list re-sent) is one row; a new raising of it is another.
    again.seen([alert(120), {**alert(120), "raised_at": "2026-11-30T05:00:00Z"}], T0 + timedelta(hours=4))
    assert again.page(1, 50)[1] == 121
    again.close()


def test_an_alert_raised_anew_by_a_restarted_coordinator_keeps_its_acknowledgement(tmp_path: Path) -> None:
    """A restarted coordinator raises what still holds with a new raised_at; the manager already
    acknowledged that condition. An alert cleared in between is a new one: acknowledged again."""
    log = AlertLog(alert_file(tmp_path))
    log.seen([alert(1)], T0)
    assert log.acknowledge(key(1), "mgr", T0 + timedelta(minutes=5))
    again = {**alert(1), "raised_at": (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
    acks = log.seen([again], T0 + timedelta(hours=1))  # replaced in one step: never seen cleared
    assert acks == {(again["alert_id"], again["raised_at"]): {"by": "mgr", "at": "2026-11-30T01:05:00+00:00"}}
    assert log.acks() == acks
    assert log.seen([], T0 + timedelta(hours=2)) == {}  # cleared
    third = {**alert(1), "raised_at": (T0 + timedelta(hours=3)).isoformat().replace("+00:00", "Z")}
    assert log.seen([third], T0 + timedelta(hours=3)) == {}  # raised again after clearing: not seen yet
    rows, total = log.page(1, 10)
    assert total == 3 and [r["ack"] is not None for r in rows] == [False, True, True]
    log.close()
