"""Every text the kiosk shows, Chinese first, English available."""

from __future__ import annotations

from hall_devices.catalog import say

TEXTS: dict[str, tuple[str, str]] = {
    "welcome": ("欢迎取号，请选择办理部门", "Welcome. Choose a department"),
    "search": ("搜索事项", "Search"),
    "search_hint": ("输入事项拼音首字母，如“护照”输入 HZ", "Type letters of the name, e.g. PASS"),
    "appointment": ("预约签到", "Appointment check-in"),
    "appointment_hint": ("请输入预约码，或将预约二维码对准下方扫码口", "Type your code, or scan it below"),
    "check_in": ("签到取号", "Check in"),
    "language": ("English", "中文"),
    "home": ("首页", "Home"),
    "back": ("返回", "Back"),
    "clear": ("清除", "Clear"),
    "delete": ("删除", "Delete"),
    "waiting": ("现在取号，前面还有 {waiting} 人，预计约 {minutes} 分钟",
                "Take a number now: {waiting} ahead, about {minutes} min"),
    "windows": ("办理窗口：{windows}", "Windows: {windows}"),
    "materials": ("一次性告知：请备齐以下材料", "Please bring the following"),
    "take": ("取号", "Take a number"),
    "take_priority": ("优先取号（老年人、残疾人、孕妇）", "Priority (elderly, disabled, pregnant)"),
    "your_number": ("您的号码", "Your number"),
    "printing": ("号票正在打印，请取走号票", "Your ticket is printing"),
    "printed": ("号票已打印，请取走号票", "Please take your ticket"),
    "print_failed": ("号票打印失败，请记住屏幕上的号码或扫码，并告知工作人员",
                     "The ticket did not print: note the number or scan the code, and tell the staff"),
    "no_paper_qr": ("打印机暂停服务，请记住号码或用手机扫码保存", "The printer is out of service: note "
                    "the number or scan the code"),
    "no_paper_desk": ("打印机暂停服务，请到{desk}取号", "The printer is out of service: please go to "
                      "the {desk}"),
    "ahead": ("前面还有 {ahead} 人，预计等候约 {minutes} 分钟", "{ahead} ahead, about {minutes} min"),
    "scan_me": ("扫码查看排队进度", "Scan to follow your place"),
    "unavailable": ("系统暂时无法取号，请到{desk}咨询", "Numbers cannot be issued now: please ask at the "
                    "{desk}"),
    "busy": ("系统繁忙，未能取号，请稍后再试", "No number was issued: please try again"),
    "refused": ("未能取号：{reason}", "No number issued: {reason}"),
    "asking": ("正在取号，请稍候……", "Getting your number, please wait…"),
    "done": ("完成", "Done"),
    "class_priority": ("优先", "Priority"),
    "class_appointment": ("预约", "Appointment"),
    "class_green": ("绿色通道", "Green channel"),
    "class_transferred": ("转办", "Transferred"),
    "class_normal": ("普通", "Normal"),
    "no_results": ("没有找到相关事项", "Nothing found"),
    "no_window_warn": ("该事项暂无窗口办理，取号后请留意叫号或到咨询台咨询",
                       "No window is open for this service now: after taking a number, listen for "
                       "your call or ask at the information desk"),
    "no_window_stop": ("暂停取号：该事项暂无窗口办理，请到咨询台咨询",
                       "Numbers paused: no window is open for this service; please ask at the "
                       "information desk"),
    "refused_service_closed": ("暂停取号：该事项暂无窗口办理，请到咨询台咨询",
                               "Numbers paused: no window is open for this service; please ask at "
                               "the information desk"),
    "elder": ("长辈模式", "Large text"),
    "standard": ("标准模式", "Standard"),
    "help": ("呼叫帮办", "Call staff"),
    "help_open": ("已呼叫工作人员，请在本机旁稍候", "Staff have been called: please wait here"),
    "help_answered": ("工作人员正在赶来，请稍候", "A member of staff is on the way"),
    "help_failed": ("未能呼叫工作人员，请到{desk}", "Staff could not be called: please go to the {desk}"),
    "refused_range_exhausted": ("该事项今日号码已发完，请到咨询台咨询",
                                "Today's numbers for this service are used up: please ask at the "
                                "information desk"),
    "phone": ("短信提醒（可选）", "SMS reminder (optional)"),
    "phone_hint": ("输入手机号，快轮到您和叫号时发短信提醒；当日结束即删除",
                   "Your mobile number: an SMS when your turn is near and when you are called; deleted "
                   "at the end of the day"),
    "phone_ok": ("确定", "OK"),
    "phone_bad": ("请输入11位手机号", "Please type an 11-digit mobile number"),
    "phone_set": ("短信提醒：{phone}", "SMS reminder: {phone}"),
    "card_hint": ("也可将居民身份证放在读卡区签到", "Or place your ID card on the reader"),
    "card_unreadable": ("未能读取身份证，请移开后重新放置", "The ID card could not be read: take it "
                        "away and place it again"),
    "card_not_valid": ("无法识别该证件，请使用居民身份证或到{desk}咨询", "This card cannot be used: use a "
                       "resident ID card or ask at the {desk}"),
    "card_holder": ("{name}（{number}）", "{name} ({number})"),
    "card_no_booking": ("{name}您好，未查到您今天的预约，请选择办理事项取号",
                        "Hello {name}: no booking today was found; please choose a service"),
}


def refusal(code: str, lang: str, desk: str) -> str:
    """The applicant's text for a refused ticket request: 未能取号：<the catalog's text and advice>.

    The words are :mod:`hall_devices.catalog`'s (the engine's own message goes to the log only);
    ``desk`` is the info desk in ``lang``."""
    return tr("refused", lang, reason=say(code, lang, (desk, desk)))


def tr(key: str, lang: str, **values: object) -> str:
    zh, en = TEXTS[key]
    return (zh if lang == "zh" else en).format(**values)
