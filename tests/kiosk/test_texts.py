"""The kiosk's refusal texts: Chinese first, English available, never the engine's own message."""

from __future__ import annotations

import pytest

from hall_devices.catalog import CATALOG
from hall_devices.kiosk.texts import refusal


@pytest.mark.parametrize(("code", "zh", "en"), [
    ("request_expired", "未能取号：系统响应超时，请重新取号",
     "No number issued: the system answered too late; please try again"),
    ("clock_skew", "未能取号：取号机时间与系统不一致，请到一楼咨询台取号",
     "No number issued: this kiosk's clock is wrong; please go to the ground-floor desk"),
    ("clock_unsettled", "未能取号：系统正在校准时间，请稍候",
     "No number issued: the system is checking its clock; please wait a moment"),
    ("unknown_appointment", "未能取号：预约码无效，请核对预约码或到一楼咨询台咨询",
     "No number issued: this appointment code is not known; please check the code, or ask at the "
     "ground-floor desk"),
    ("no_booking_for_card", "未能取号：未查到该身份证今天的预约，请选择事项取号或到一楼咨询台咨询",
     "No number issued: no booking today for this ID card; please choose a service, or ask at the "
     "ground-floor desk"),
    ("no_such_code_yet", "未能取号：操作未完成，请到一楼咨询台咨询",
     "No number issued: it was not done; please ask at the ground-floor desk"),
])
def test_refusals_in_both_languages(code: str, zh: str, en: str) -> None:
    assert refusal(code, "zh", "一楼咨询台") == zh
    assert refusal(code, "en", "ground-floor desk") == en


def test_every_refusal_text_is_complete() -> None:
    for code in CATALOG:
        for lang in ("zh", "en"):
            shown = refusal(code, lang, "desk")
            assert "{" not in shown and "}" not in shown, (code, lang)
        assert refusal(code, "en", "desk").isascii(), code
