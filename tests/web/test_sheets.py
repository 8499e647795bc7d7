"""The dashboard's tables (sans-IO): case filters with overdue first, pages, export sheets in
Chinese with names and hall time."""

from __future__ import annotations

from typing import Any

from hall_devices.layout import Layout
from hall_devices.web.sheets import CaseFilter, cases_sheet, page_of, ratings_sheet, statistics_sheet


def case(case_id: str, state: str, deadline: str, *, overdue: bool = False, department: str = "ga",
         window: int = 6) -> dict[str, Any]:
    return {"case_id": case_id, "state": state, "deadline": deadline, "overdue": overdue,
            "department_id": department, "window": window,
            "opened_at": f"2026-11-{case_id[-2:]}T01:00:00+00:00",
            "ticket_number": "B001", "service": "普通护照申领", "clerk_id": "Z0601", "level": 1,
            "history": [{"at": "2026-11-23T01:30:00+00:00", "state": "verifying", "by": "system",
                         "note": None}]}


def test_cases_are_filtered_and_overdue_come_first() -> None:
    cases = [case("C-11", "verifying", "2026-12-05T15:59:59+00:00"),
             case("C-12", "rectifying", "2026-12-20T15:59:59+00:00", overdue=True),
             case("C-13", "closed", "2026-12-01T15:59:59+00:00"),
             case("C-14", "verifying", "2026-12-02T15:59:59+00:00", department="sw", window=17)]
    assert [c["case_id"] for c in CaseFilter().apply(cases)] == ["C-12", "C-14", "C-11"]  # open only
    assert [c["case_id"] for c in CaseFilter(state="").apply(cases)] == ["C-12", "C-13", "C-14", "C-11"]
    assert [c["case_id"] for c in CaseFilter(department="sw").apply(cases)] == ["C-14"]
    assert [c["case_id"] for c in CaseFilter(window=6, state="verifying").apply(cases)] == ["C-11"]
    newest = CaseFilter(order="opened").apply(cases)
    assert [c["case_id"] for c in newest] == ["C-12", "C-14", "C-11"]


def test_pages_of_a_long_list() -> None:
    rows = list(range(120))
    assert page_of(rows, 1) == (list(range(50)), 3)
    assert page_of(rows, 3) == (list(range(100, 120)), 3)
    assert page_of(rows, 99)[0] == list(range(100, 120))  # clamped to the last page
    assert page_of([], 1) == ([], 1)


def test_export_sheets_speak_chinese_with_names_and_hall_time(layout: Layout) -> None:
    stats = statistics_sheet({"first_day": "2026-11-23", "last_day": "2026-11-23", "rows": [
        {"dimension": "total", "key": "", "name": "合计", "issued": 3},
        {"dimension": "clerk", "key": "Z0601", "name": "Z0601", "issued": 2}]}, layout)
    assert list(stats.headers[:4]) == ["维度", "编码", "名称", "取号"]
    assert [list(r[:4]) for r in stats.rows] == [["合计", "", "合计", 3], ["工作人员", "Z0601", "张敏", 2]]
    ratings = ratings_sheet([{"rated_at": "2026-11-23T16:30:05+00:00", "ticket_number": "B001",
                              "service": "普通护照申领", "department": "公安局", "window": 6,
                              "clerk_id": "Z0601", "level": 1, "level_name": "非常不满意", "reasons": [],
                              "channel": "pad", "case_id": None, "case_state": None}], layout)
    assert ratings.rows[0][0] == "2026-11-24 00:30:05"  # 16:30 UTC is past midnight in the hall
    assert ratings.rows[0][5] == "张敏"
    sheet = cases_sheet([case("C-11", "verifying", "2026-12-05T15:59:59+00:00")], layout)
    row = dict(zip(sheet.headers, sheet.rows[0], strict=True))  # by column name: issue 19 added 责任人
    assert row["期限"] == "2026-12-05" and row["部门"] == "公安局"
    assert row["过程"] == "2026-11-23 09:30 待核实 系统"  # hall time, no developer words
