"""Every refusal code in the source has a Chinese and an English text for people.

The codes are found in the code itself, not from a hand list: every ``EngineError("code", ...)``
and ``Problem(code="code", ...)`` (or ``Problem("code", ...)``) under hall_devices/.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

from hall_devices import catalog
from hall_devices.catalog import ALERT_KINDS, CATALOG, FAULTS, PARKED_WORDS, both, say
from hall_devices.contract import Alert, DeviceFault

PACKAGE = Path(catalog.__file__).resolve().parent
MAKERS = {"EngineError", "Problem"}


def codes_in_source() -> dict[str, str]:
    """code -> the first file raising it."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name not in MAKERS:
                continue
            given = [k.value for k in node.keywords if k.arg == "code"] or node.args[:1]
            for value in given:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.setdefault(value.value, str(path.relative_to(PACKAGE)))
    return found


def test_the_scan_finds_the_codes_it_should() -> None:
    codes = codes_in_source()
    # a few from each maker and place, so that a broken scan cannot pass by finding nothing
    for code in ("unknown_appointment", "wrong_state", "bad_json", "bad_query", "wrong_sender"):
        assert code in codes
    assert len(codes) >= 35


def test_every_code_has_both_texts() -> None:
    missing = {code: where for code, where in codes_in_source().items() if code not in CATALOG}
    assert not missing, f"codes without catalog texts: {missing}"
    for code, entry in CATALOG.items():
        assert any("\u4e00" <= c <= "\u9fff" for c in entry.zh), code
        assert entry.en and entry.en.isascii(), code
        assert bool(entry.advice_zh) == bool(entry.advice_en), code
        for text in (entry.zh, entry.en):
            assert "_" not in text, (code, text)  # no code names reach people


def test_advice_follows_the_text_and_the_desk_is_named() -> None:
    desk = ("一楼咨询台", "desk")
    assert say("unknown_appointment", "zh", desk) == "预约码无效，请核对预约码或到一楼咨询台咨询"
    assert say("unknown_appointment", "en") == ("this appointment code is not known; please check "
                                                "the code, or ask at the information desk")
    assert both("queue_empty") == "没有等候的号票，请稍后再叫号 / nobody is waiting for this window; " \
                                  "please call again later"
    assert say("already_rated", "zh") == "该办件已评价"  # no advice, no dangling comma


def test_every_device_fault_and_alert_kind_has_a_name() -> None:
    kinds = typing.get_args(Alert.model_fields["kind"].annotation)
    assert kinds and set(kinds) <= set(ALERT_KINDS), set(kinds) - set(ALERT_KINDS)
    assert {f.value for f in DeviceFault} <= set(FAULTS), {f.value for f in DeviceFault} - set(FAULTS)
    for zh, en in [*FAULTS.values(), *ALERT_KINDS.values()]:
        assert any("\u4e00" <= c <= "\u9fff" for c in zh) and en.isascii()


def test_the_regional_dashboards_words_for_parked_events_are_both_and_used() -> None:
    templates = PACKAGE / "region" / "templates"
    shown = "".join(p.read_text(encoding="utf-8") for p in templates.glob("*.html"))
    for key, (zh, en) in PARKED_WORDS.items():
        assert any("\u4e00" <= c <= "\u9fff" for c in zh) and en and en.isascii(), key
        assert f"w.{key}[" in shown or f"parked_words.{key}[" in shown, f"{key} is shown nowhere"
