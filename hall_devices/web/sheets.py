"""The dashboard's tables as people read them: statistics, ratings and cases with Chinese headers,
names, hall time; case filters and order (overdue first); pages of a long list.

Pure functions of the coordinator's query data and the layout: the pages render them, the exports
(:mod:`hall_devices.web.exports`) write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hall_devices.catalog import CASE_STATE_ZH, DIMENSION_ZH, STAT_COLUMNS
from hall_devices.layout import Layout
from hall_devices.web.exports import Sheet
from hall_devices.web.present import hall_time

PAGE_SIZE = 50  # rows a page of ratings or cases shows
CLOSED_CASES = ("closed", "revoked")
# Steps of a case whose note the rules require: a decision must say why (GB/T 39734 整改 and 申诉).
NOTE_REQUIRED = {"appeal", "revoke", "reject_appeal", "close"}
NOTE_LONGEST = 500  # characters of a case step's note: the server refuses more, the form takes no more


def clerk_names(layout: Layout) -> dict[str, str]:
    """Clerk id → name, from the layout's staff list (ids without a name show as they are)."""
    return {member.id: member.name for member in layout.staff}


def assignees(layout: Layout, accounts: Sequence[str]) -> dict[str, str]:
    """Who a case may be assigned to, id → label: the layout's staff list (张敏（Z0601）), then the
    web's accounts (users file) that are not on it, by account name."""
    people = {member.id: f"{member.name}（{member.id}）" for member in layout.staff}
    people.update({name: name for name in sorted(accounts) if name not in people})
    return people


def statistics_sheet(data: dict[str, Any], layout: Layout) -> Sheet:
    names = clerk_names(layout)
    rows = []
    for row in data.get("rows", []):
        name = names.get(row["key"], row["name"]) if row["dimension"] == "clerk" else row["name"]
        rows.append([DIMENSION_ZH.get(row["dimension"], row["dimension"]), row["key"], name,
                     *(row.get(c) for c in STAT_COLUMNS)])
    title = f"统计 {data['first_day']}" + (f" 至 {data['last_day']}" if data["last_day"] != data["first_day"]
                                          else "")
    return Sheet(title, ["维度", "编码", "名称", *STAT_COLUMNS.values()], rows)


def ratings_sheet(rows: Sequence[dict[str, Any]], layout: Layout) -> Sheet:
    names = clerk_names(layout)
    windows = {w.number: w.name.zh for w in layout.windows}
    headers = ["时间", "号码", "事项", "部门", "窗口", "工作人员", "评价", "原因", "渠道", "整改单"]
    return Sheet("评价", headers, [
        [hall_time(r["rated_at"], layout.hall, "%Y-%m-%d %H:%M:%S"), r["ticket_number"], r["service"],
         r.get("department", ""), f"{r['window']}号窗口 {windows.get(r['window'], '')}".strip(),
         names.get(r["clerk_id"] or "", r["clerk_id"] or ""), f"{r['level']} {r['level_name']}",
         "、".join(r.get("reasons") or []), r.get("channel", ""),
         CASE_STATE_ZH.get(r["case_state"], r["case_state"]) if r.get("case_id") else ""]
        for r in rows])


def cases_sheet(cases: Sequence[dict[str, Any]], layout: Layout) -> Sheet:
    names = clerk_names(layout)
    return Sheet("差评整改", ["号码", "事项", "部门", "窗口", "工作人员", "责任人", "指派人", "指派时间",
                          "评价", "状态", "超期", "期限", "立案", "过程"], [
        [c["ticket_number"], c["service"], department_name(layout, c["department_id"]),
         f"{c['window']}号窗口", names.get(c["clerk_id"] or "", c["clerk_id"] or ""),
         who(c.get("assignee"), names), who(c.get("assigned_by"), names),
         hall_time(c["assigned_at"], layout.hall) if c.get("assigned_at") else "", c["level"],
         CASE_STATE_ZH.get(c["state"], c["state"]), "是" if c.get("overdue") else "",
         hall_time(c["deadline"], layout.hall, "%Y-%m-%d"), hall_time(c["opened_at"], layout.hall),
         "；".join(f"{hall_time(h['at'], layout.hall)} {CASE_STATE_ZH.get(h['state'], h['state'])} "
                  f"{who(h.get('by'), names)} {h.get('note') or ''}".strip() for h in c.get("history", []))]
        for c in cases])


def who(by: str | None, names: dict[str, str]) -> str:
    """A person in a case's history (or its assignee) by name; the coordinator's own steps as 系统."""
    return "系统" if by == "system" else names.get(by or "", by or "")


def department_name(layout: Layout, department_id: str) -> str:
    found = [d.name.zh for d in layout.departments if d.id == department_id]
    return found[0] if found else department_id


@dataclass(frozen=True)
class CaseFilter:
    """The cases page's filters: ``state`` ("open" = not closed or revoked, "" = all, or one
    state), ``department``, ``window`` (0 = any), ``assignee`` ("" = anyone, "mine" = the signed-in
    ``me``, "none" = nobody yet, or one person's id), ``order`` ("deadline" or "opened")."""

    state: str = "open"
    department: str = ""
    window: int = 0
    order: str = "deadline"
    assignee: str = ""
    me: str = ""

    def _assigned(self, case: dict[str, Any]) -> bool:
        wanted = {"": None, "mine": self.me, "none": ""}.get(self.assignee, self.assignee)
        return wanted is None or (case.get("assignee") or "") == wanted

    def apply(self, cases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The matching cases, overdue first, then by deadline (or newest opened first)."""
        chosen = [c for c in cases if (
            (self.state == "" or (self.state == "open" and c["state"] not in CLOSED_CASES)
             or c["state"] == self.state)
            and (not self.department or c["department_id"] == self.department)
            and (not self.window or c["window"] == self.window) and self._assigned(c))]
        if self.order == "opened":
            chosen.sort(key=lambda c: str(c["opened_at"]), reverse=True)
        else:
            chosen.sort(key=lambda c: str(c["deadline"]))
        chosen.sort(key=lambda c: not c.get("overdue"))  # stable: overdue ones first
        return chosen


def page_of(rows: Sequence[Any], page: int, size: int = PAGE_SIZE) -> tuple[list[Any], int]:
    """Rows of page ``page`` (1-based, clamped) and the number of pages (at least 1)."""
    pages = max(1, -(-len(rows) // size))
    page = min(max(1, page), pages)
    return list(rows[(page - 1) * size:page * size]), pages
