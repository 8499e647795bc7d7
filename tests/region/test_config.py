"""The hall's check of a pushed layout (region/config.py): what a screen shows may change at once,
a device may not (it has a broker account and a port of its own)."""

from __future__ import annotations

from hall_devices.coordinator.model import State
from hall_devices.layout import Layout
from hall_devices.region.config import check
from tests.conftest import EXAMPLE

TEXT = EXAMPLE.read_text(encoding="utf-8")
HS1 = 'id = "HS1"\nbus = "L1"\naddress = 200\n'


def test_a_new_notice_on_a_hall_screen_is_applied(layout: Layout) -> None:
    assert TEXT.count(HS1) == 1
    notice = 'notice = { zh = "今日下午停电检修", en = "Power maintenance this afternoon" }\n'
    text = TEXT.replace(HS1, HS1 + notice)
    new, reasons = check(layout, 0, 1, text, State())
    assert reasons == [] and new is not None
    assert new.device("HS1").notice.zh == "今日下午停电检修"  # type: ignore[union-attr]


def test_a_device_moved_to_another_address_is_refused_with_the_reason(layout: Layout) -> None:
    new, reasons = check(layout, 0, 1, TEXT.replace(HS1, HS1.replace("200", "201")), State())
    assert new is None
    assert any("devices cannot change by a push" in r for r in reasons), reasons
