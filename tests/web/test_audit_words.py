"""Every action the source can write to an audit trail has words for people (Chinese first).

The actions are found in the code itself: each ``audit(...)``, ``record_audit(...)`` and
``AuditLog(...).record(...)`` call under hall_devices/, its literal codes, and its computed ones from
the very constants the code builds them from (the console's WindowAction, the case and help routes,
the staff page's and `web-user`'s codes). A call whose action is neither fails: it needs a line here.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hall_devices import catalog
from hall_devices.catalog import AUDIT_ACTIONS, AUDIT_OUTCOMES, audit_outcome, audit_words
from hall_devices.contract import WindowAction
from hall_devices.web.app import CASE_ACTIONS, CONSOLE_ACTIONS, HELP_STATES, STAFF_AUDIT
from hall_devices.web.manage import AUDITED

PACKAGE = Path(catalog.__file__).resolve().parent
# f"prefix{...}": the route parameter or enum the rest comes from (the route refuses any other, 404)
COMPUTED = {"case_": set(CASE_ACTIONS), "window_": {a.value for a in WindowAction} | set(CONSOLE_ACTIONS),
            "help_": set(HELP_STATES)}
# an action given as a name or lookup: where its values come from ("action" passes the caller's on)
NAMED = {("web/app.py", "code"): set(STAFF_AUDIT.values()), ("web/manage.py", "AUDITED[action]"):
         set(AUDITED.values()), ("web/access.py", "action"): set()}


def _action_argument(call: ast.Call) -> ast.expr | None:
    """The action of ``x.audit(request, actor, action)``, ``record_audit(log, request, actor, action)``
    or ``AuditLog(...).record(actor, action)``; None for any other call."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    given = [k.value for k in call.keywords if k.arg == "action"]
    if name == "audit" and isinstance(func, ast.Attribute):
        position = 2
    elif name == "record_audit":
        position = 3
    elif name == "record" and isinstance(func, ast.Attribute) and (
            "AuditLog" in ast.unparse(func.value) or "audit" in ast.unparse(func.value)):
        position = 1
    else:
        return None
    return given[0] if given else (call.args[position] if len(call.args) > position else None)


def recorded_actions() -> dict[str, str]:
    """Every action code the source can record -> the first file recording it."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            action = _action_argument(node) if isinstance(node, ast.Call) else None
            if action is None:
                continue
            if isinstance(action, ast.Constant) and isinstance(action.value, str):
                codes = {action.value}
            elif isinstance(action, ast.JoinedStr) and isinstance(action.values[0], ast.Constant):
                prefix = str(action.values[0].value)
                assert prefix in COMPUTED, f"{where}: a computed audit action {ast.unparse(action)}"
                codes = {prefix + rest for rest in COMPUTED[prefix]}
            else:
                key = (where, ast.unparse(action))
                assert key in NAMED, f"{where}: an audit action from {ast.unparse(action)}: list it in NAMED"
                codes = NAMED[key]
            for code in codes:
                found.setdefault(code, where)
    return found


def test_the_scan_finds_each_kind_of_action() -> None:
    found = recorded_actions()
    # literal, computed (three routes), named (staff page, web-user) and the region's own
    for code in ("sign_in_failed", "window_pause", "window_call_ticket", "case_reject_appeal", "help_close",
                 "green_ticket", "user_role_changed", "retry_reports", "alert_ack"):
        assert code in found, code
    assert len(found) >= 35


def test_every_recorded_action_has_words_chinese_first() -> None:
    missing = {code: where for code, where in recorded_actions().items() if code not in AUDIT_ACTIONS}
    assert not missing, f"audit actions without words in catalog.AUDIT_ACTIONS: {missing}"
    for code, entry in {**AUDIT_ACTIONS, **AUDIT_OUTCOMES}.items():
        assert any("\u4e00" <= c <= "\u9fff" for c in entry.zh), code
        assert entry.en and entry.en.isascii() and "_" not in entry.en, code


def test_a_code_without_words_is_shown_as_it_is() -> None:
    assert audit_words("sign_in") == "登录 Sign in"
    assert audit_words("window_pause") == "暂停服务 Pause"
    assert audit_words("sign_in_v9") == "sign_in_v9"  # a newer version's row: its code, no error
    assert audit_outcome("refused") == "拒绝 Refused"
    assert audit_outcome("ticket already served") == "ticket already served"  # the coordinator's words
