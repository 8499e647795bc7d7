"""`hall-devices report` over a store filled by a real coordinator driven over MQTT."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from hall_devices.cli import main
from hall_devices.contract import RatingPrompt
from hall_devices.coordinator.calendar import business_day
from tests.conftest import EXAMPLE
from tests.coordinator.harness import Hall
from tests.support import wait_until


def run_day(hall: Hall) -> None:
    """Passport at window 6: 4 tickets; ratings 5, 4 and 1; one no rating; one no-show."""
    for _ in range(5):
        hall.take("passport")
    hall.take("hukou_in")
    hall.ok(6, "login", clerk_id="Z0601")
    for level in (5, 4, 1, None):
        hall.clock.advance(minutes=6)
        hall.next_number(6)
        hall.clock.advance(minutes=10)
        hall.ok(6, "finish")
        prompt = hall.prompt(6)
        if level is None:
            hall.clock.advance(seconds=61)

            def timed_out(p: RatingPrompt = prompt) -> bool:
                return hall.service.engine.state.prompts[p.prompt_id].state == "timed_out"

            wait_until(timed_out, what="rating timeout")
        else:
            assert hall.rate(6, prompt.prompt_id, level).ok
    hall.next_number(6)
    hall.ok(6, "no_show")
    hall.service.stop()


def report(hall: Hall, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["report", "--date", "2026-11-23", "--format", fmt, "--store", str(hall.store),
                 "--layout", str(EXAMPLE)])
    assert code == 0
    return capsys.readouterr().out


def test_daily_figures(hall: Hall, capsys: pytest.CaptureFixture[str]) -> None:
    run_day(hall)
    data = json.loads(report(hall, "json", capsys))
    rows = {(r["dimension"], r["key"]): r for r in data["rows"]}
    total = rows[("total", "")]
    assert (total["issued"], total["served"], total["no_show"]) == (6, 4, 1)
    assert (total["rated"], total["unrated"], total["bad"]) == (3, 1, 1)
    assert total["satisfaction_pct"] == pytest.approx(66.7)  # levels 3-5 over rated: 2 of 3
    assert total["participation_pct"] == 75.0  # rated over served: 3 of 4
    assert total["avg_service_min"] == 10.0
    passport = rows[("service", "passport")]
    assert passport["issued"] == 5 and passport["level_5"] == 1 and passport["level_1"] == 1
    assert rows[("department", "ga")]["issued"] == 6
    assert rows[("window", "6")]["served"] == 4
    assert rows[("clerk", "Z0601")]["served"] == 4
    assert data["tickets_per_hour"] == {"9": 6}  # issued at 09:00 local
    assert data["bad_rating_cases"] == {"verifying": 1}
    assert rows[("service", "passport")]["p90_wait_min"] >= rows[("service", "passport")]["avg_wait_min"]

    table = list(csv.DictReader(io.StringIO(report(hall, "csv", capsys))))
    assert table[0]["dimension"] == "total" and table[0]["issued"] == "6"
    text = report(hall, "text", capsys)
    assert "满意率%" in text and "居民身份证" not in text and "普通护照申领" in text


def test_without_a_date_the_halls_business_day_now(hall: Hall, capsys: pytest.CaptureFixture[str]) -> None:
    hall.service.stop()
    before = business_day(hall.layout.hall, datetime.now(UTC))
    assert main(["report", "--format", "json", "--store", str(hall.store), "--layout", str(EXAMPLE)]) == 0
    data = json.loads(capsys.readouterr().out)
    after = business_day(hall.layout.hall, datetime.now(UTC))
    assert data["first_day"] == data["last_day"] and data["first_day"] in {before, after}


def test_bad_dates_are_named(hall: Hall, capsys: pytest.CaptureFixture[str]) -> None:
    hall.service.stop()
    assert main(["report", "--date", "2026-13-01", "--store", str(hall.store)]) == 1
    assert "not a date" in capsys.readouterr().err


def test_backup_of_a_live_store_and_restart_from_it(hall: Hall, capsys: pytest.CaptureFixture[str],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    hall.take("passport")
    hall.take("passport")
    copy = tmp_path_factory.mktemp("backup") / "store.sqlite3"
    assert main(["store", "backup", "--store", str(hall.store), "--to", str(copy)]) == 0  # while it runs
    assert "backed up" in capsys.readouterr().out
    assert main(["store", "backup", "--store", str(hall.store), "--to", str(copy)]) == 1
    from hall_devices.coordinator.service import rebuild
    from hall_devices.coordinator.store import EventStore

    restored = EventStore(copy)
    engine = rebuild(hall.layout, restored)
    assert sorted(t.number for t in engine.state.tickets.values()) == ["B001", "B002"]
    # A snapshot from another version of the state is passed over: the events are replayed.
    restored.save_snapshot(restored.last_seq, "2026-11-23T00:00:00+00:00", b'{"not": "a state"}')
    assert sorted(t.number for t in rebuild(hall.layout, restored).state.tickets.values()) == ["B001", "B002"]
    restored.close()
