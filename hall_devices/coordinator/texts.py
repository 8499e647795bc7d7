"""Every text the hall's screens, pads and voice show, composed once, from the catalog's words.

The coordinator publishes these in the window state (``screen``, ``pad_text``), the call (``text``,
``speech``) and the queue summary (``groups``); the LED and BX-6 screens, the TV hall screen, the
pads and the announcer render them as they come, so one sentence is never worded twice and a
time-derived text (the long-pause notice) follows the coordinator's clock alone. Pure functions:
values in, :class:`~hall_devices.contract.Text` (Chinese and English) out.
"""

from __future__ import annotations

from collections.abc import Mapping

from hall_devices.catalog import SCREEN
from hall_devices.contract import Text, WaitingGroup, WindowStatus
from hall_devices.layout import Layout

DIGITS = "零一二三四五六七八九"


def _say(key: str, **values: object) -> Text:
    zh, en = SCREEN[key]
    return Text(zh=zh.format(**values), en=en.format(**values))


def call_text(number: str, window: int) -> Text:
    """请A001号到3号窗口 / Ticket A001, please go to window 3."""
    return _say("call", number=number, window=window)


def window_label(window: int, name: Text) -> Text:
    """3号窗口  市场监管 / Window 3  Market regulation: where a ticket is listed on the TV."""
    zh, en = SCREEN["window_label"]
    return Text(zh=zh.format(window=window, name=name.zh), en=en.format(window=window, name=name.en))


def window_reading(number: int) -> str:
    """Window numbers read as numbers: 3 三, 12 十二, 21 二十一; past 99 digit by digit."""
    if number < 10:
        return DIGITS[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return ("" if tens == 1 else DIGITS[tens]) + "十" + (DIGITS[ones] if ones else "")
    return "".join(DIGITS[int(d)] for d in str(number))


def speech(number: str, window: int) -> Text:
    """The spoken call: 请 A 零零一 号 到 三 号窗口 办理 (ticket digits one by one, the window read as
    a number), words split by spaces."""
    letters = " ".join(c for c in number if not c.isdigit())
    digits = "".join(DIGITS[int(c)] for c in number if c.isdigit())
    zh, en = SCREEN["speech"]
    return Text(zh=zh.format(letters=letters, digits=digits, window=window_reading(window)),
                en=en.format(number=number, window=window))


def window_screen(window: int, name: Text, status: WindowStatus, *, ticket_number: str | None = None,
                  pause_reason: str | None = None, pause_notice: Text | None = None) -> Text:
    """A window screen: the call, who is served, a pause notice, or a welcome.

    ``pause_notice`` (临时有事，请稍候) is given once the coordinator's clock says the pause is long;
    it wins over the clerk's reason. A reason typed by a clerk has no English: it is shown as typed."""
    if status is WindowStatus.CALLING and ticket_number:
        return call_text(ticket_number, window)
    if status is WindowStatus.SERVING and ticket_number:
        return _say("serving", number=ticket_number)
    if status is WindowStatus.PAUSED:
        if pause_notice is not None:
            return pause_notice
        return Text(zh=pause_reason, en=pause_reason) if pause_reason else _say("paused")
    if status is WindowStatus.CLOSED:
        return _say("closed")
    return Text(zh=SCREEN["welcome"][0].format(name=name.zh), en=SCREEN["welcome"][1].format(name=name.en))


def pad_text(status: WindowStatus, ticket_number: str | None, waiting: int) -> str:
    """A keypad's display: the ticket number, else the waiting count; blank when closed or paused."""
    if status in (WindowStatus.CLOSED, WindowStatus.PAUSED):
        return ""
    return ticket_number or str(waiting)


def waiting_groups(layout: Layout, waiting: Mapping[str, int]) -> list[WaitingGroup]:
    """One group per department of ``layout``, in its order: its ticket letters and the tickets
    waiting for its services (``waiting``: service id → count; a missing service counts 0)."""
    groups = []
    for department in layout.departments:
        services = [s for s in layout.services if s.department == department.id]
        prefixes = sorted({s.prefix for s in services})
        count = sum(waiting.get(s.id, 0) for s in services)
        name = Text(zh=department.name.zh, en=department.name.en)
        shown = "/".join(prefixes)
        groups.append(WaitingGroup(
            department_id=department.id, name=name, prefixes=prefixes, waiting=count,
            line=Text(zh=SCREEN["waiting_group"][0].format(name=name.zh, prefixes=shown, count=count),
                      en=SCREEN["waiting_group"][1].format(name=name.en, prefixes=shown, count=count)),
            count=_say("waiting_count", count=count)))
    return groups

