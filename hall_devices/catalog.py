"""The message catalog: what a person reads when the hall refuses something.

Every refusal code the coordinator or the bus can answer (``Problem.code``, raised as
``EngineError(code, message)`` in the engine and queries, or made in mqtt/bus.py and contract.py) has a
Chinese and an English text here, and advice where there is something to do. The kiosk, the clerk's
console, the manager's dashboard and the CLI all show these words; the engine's own ``message``
(developer English naming the state) goes to logs and the audit trail only.

Texts may hold ``{desk}``, the hall's information desk (``layout.hall.info_desk``); :func:`say`
fills it with 咨询台 / information desk when the caller has no layout at hand.
tests/test_catalog.py finds every code in the source and checks it has both texts here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One refusal for people: what happened (``zh``/``en``) and what to do (``advice_*``, may be
    empty)."""

    zh: str
    en: str
    advice_zh: str = ""
    advice_en: str = ""


_ASK = ("请到{desk}咨询", "please ask at the {desk}")
_ADMIN = ("请联系管理员", "please tell the hall's administrator")
_CHECK = ("请核对后重试", "please check and try again")

CATALOG: dict[str, Message] = {
    # --- ticket requests (kiosk, staff) ---
    "request_expired": Message("系统响应超时", "the system answered too late",
                               "请重新取号", "please try again"),
    "clock_skew": Message("取号机时间与系统不一致", "this kiosk's clock is wrong",
                          "请到{desk}取号", "please go to the {desk}"),
    "clock_unsettled": Message("系统正在校准时间", "the system is checking its clock", "请稍候",
                               "please wait a moment"),
    "unknown_kiosk": Message("本取号机未登记", "this kiosk is not registered", *_ASK),
    "missing_service": Message("未选择事项", "no service was chosen", "请先选择事项",
                               "please choose a service first"),
    "unknown_service": Message("没有该事项", "there is no such service", *_ASK),
    "no_token": Message("号票信息不完整", "the ticket request was incomplete", "请重新取号",
                        "please try again"),
    "service_closed": Message("该事项暂无窗口办理，暂停取号", "no window is open for this service: "
                              "numbers are paused", *_ASK),
    "range_exhausted": Message("该事项今日号码已发完", "today's numbers for this service are used up",
                               *_ASK),
    "unknown_appointment": Message("预约码无效", "this appointment code is not known",
                                   "请核对预约码或到{desk}咨询",
                                   "please check the code, or ask at the {desk}"),
    "appointment_used": Message("该预约已签到取号", "this appointment has already been checked in",
                                "如未拿到号票，请到{desk}补打", "if you have no ticket, the {desk} "
                                "can print it again"),
    "appointment_service": Message("预约事项与所选事项不符", "the appointment is for another service",
                                   "请直接点“预约签到”输入预约码",
                                   "please use Appointment check-in with your code"),
    "appointment_exists": Message("该预约码已存在", "this appointment code exists already",
                                  "请换一个预约码", "please use another code"),
    "appointment_cancelled": Message("该预约已取消", "this appointment was cancelled",
                                     "请选择事项取号或重新预约",
                                     "please choose a service, or book again"),
    "no_booking_for_card": Message("未查到该身份证今天的预约", "no booking today for this ID card",
                                   "请选择事项取号或到{desk}咨询",
                                   "please choose a service, or ask at the {desk}"),
    "no_slot": Message("该事项此时段不接受预约", "this service takes no bookings at that time",
                       "请选择该事项的预约时段", "please choose one of the service's booking times"),
    "slot_full": Message("该时段预约已满", "this time is fully booked", "请选择其他时段",
                         "please choose another time"),
    "slot_past": Message("该时段已过", "this time has already passed", "请选择以后的时段",
                         "please choose a later time"),
    "slot_too_far": Message("该时段超出可预约范围", "this time is beyond the booking horizon",
                            "请选择较近的日期", "please choose an earlier day"),
    "bad_slot": Message("预约时段无效：结束早于开始", "the slot ends before it starts",
                        "请重新选择时段", "please choose the slot again"),
    # --- windows (console, keypad) ---
    "unknown_window": Message("没有该窗口", "there is no such window", "请选择本厅的窗口",
                              "please choose a window of this hall"),
    "wrong_state": Message("当前状态下不能执行此操作", "this cannot be done in the current state",
                           "请刷新后按可用的按钮操作", "please use one of the buttons enabled now"),
    "window_taken": Message("本窗口已有工作人员在岗", "another clerk is on duty at this window",
                            "如需接替，请先离岗再上岗", "to take over, sign them out first, then sign in"),
    # (the web's own code: one-step sign-in where someone else is on duty; the engine says wrong_state)
    "missing_clerk": Message("未指明工作人员", "no clerk was named", "请先登录账号",
                             "please sign in first"),
    "tickets_held": Message("本窗口还有挂起的号票", "this window still holds tickets",
                            "请先回呼或转办后再下岗", "call them back or transfer them before "
                            "signing out"),
    "tickets_transferred": Message("还有转到本窗口的号票在等候", "tickets transferred to this window "
                                   "are waiting", "请先叫号或转出后再下岗",
                                   "call them or transfer them on before signing out"),
    "queue_empty": Message("没有等候的号票", "nobody is waiting for this window",
                           "请稍后再叫号", "please call again later"),
    "held_elsewhere": Message("该号票挂起在其他窗口", "this ticket is held at another window",
                              "请由该窗口回呼", "the window that holds it can call it back"),
    "reactivation_expired": Message("该号过号时间太久，不能恢复", "this ticket missed its call too "
                                    "long ago to be restored", "请为办事人重新取号",
                                    "please give the applicant a new number"),
    "recall_limit": Message("该号重呼次数已达上限", "this ticket was recalled too often",
                            "请按过号处理", "please mark it as not shown"),
    "missing_target": Message("未选择转办去向", "no transfer target was chosen",
                              "请选择事项或窗口", "please choose a service or a window"),
    "same_window": Message("该号已在本窗口", "this ticket is already at this window",
                           "请选择其他窗口", "please choose another window"),
    "window_closed": Message("目标窗口未登录，无人办理", "nobody is signed in at the target window",
                             "请改为转到事项", "please transfer to a service instead"),
    "not_for_window": Message("该号不在本窗口的等候队列中", "this ticket is not in this window's queue",
                              "请选择本窗口可办理的号", "please choose a ticket this window serves"),
    "no_open_window": Message("该事项暂无已登录的窗口办理，不能转入", "no window serving this service "
                              "is signed in: the ticket cannot be transferred there",
                              "请转到其他事项或窗口", "please transfer to another service or window"),
    "unknown_ticket": Message("今天没有这个号", "there is no such ticket today", *_CHECK),
    # --- ratings (pads) ---
    "unknown_prompt": Message("没有待评价的办件", "no rating was asked for"),
    "already_rated": Message("该办件已评价", "this service was rated already"),
    "rating_late": Message("评价时间已过", "the time to rate has passed"),
    # --- printers ---
    "unknown_job": Message("没有该打印任务", "there is no such print job", *_ADMIN),
    "no_printer": Message("该取号机没有打印机", "this kiosk has no printer", "请选择其他取号机",
                          "please choose another kiosk"),
    "printer_unusable": Message("打印机暂时不能打印", "the printer cannot print now",
                                "请检查纸张或选择其他取号机", "check its paper, or choose another kiosk"),
    # --- cases (差评整改) ---
    "unknown_case": Message("没有该回访单", "there is no such follow-up case", *_CHECK),
    # --- messages and queries ---
    "missing_field": Message("信息不完整", "something required was missing", "请补全后重试",
                             "please complete it and try again"),
    "bad_query": Message("查询条件有误", "the query was not understood", *_CHECK),
    "bad_json": Message("收到的数据无法识别", "the message could not be read", *_ADMIN),
    "bad_topic": Message("收到的消息地址无法识别", "the message came on an address the hall does not "
                         "know", *_ADMIN),
    "too_large": Message("查询结果过大", "the answer is too large", "请缩短查询的日期范围",
                         "please ask for fewer days"),
    "config_refused": Message("新的大厅配置未被采用", "the new hall layout was not applied",
                              "请按原因修改配置后重新下发", "please correct it as the reasons say and "
                              "send it again"),
    "bad_schema": Message("收到的数据格式不符", "the message had the wrong shape", *_ADMIN),
    "wrong_sender": Message("发送方无权执行此操作", "the sender may not do this", *_ADMIN),
    "internal_error": Message("系统内部错误，操作未执行", "an internal error: nothing was done",
                              *_ADMIN),
    # --- the web's own refusals (web/security.py, before any page) ---
    "cross_origin": Message("来源不符，请求被拒绝", "request refused: it did not come from this "
                            "server's own page", "请从本系统的页面操作",
                            "please use this server's own pages"),
    "form_too_large": Message("提交内容过大，请求被拒绝", "request refused: the form is too large",
                              "请缩短填写的内容", "please shorten what you typed"),
}

# A code this catalog does not know (a newer coordinator): said plainly, never the engine's words.
UNKNOWN = Message("操作未完成", "it was not done", *_ASK)


def message(code: str) -> Message:
    """The catalog entry of ``code``; :data:`UNKNOWN` for a code not listed."""
    return CATALOG.get(code, UNKNOWN)


def say(code: str, lang: str = "zh", desk: tuple[str, str] = ("咨询台", "information desk")) -> str:
    """One language's text of ``code`` with its advice: 预约码无效，请核对预约码或到咨询台咨询.

    ``lang`` is ``"zh"`` or anything else for English; ``desk`` is (zh, en) of the info desk."""
    entry = message(code)
    if lang == "zh":
        text = entry.zh + (f"，{entry.advice_zh}" if entry.advice_zh else "")
        return text.format(desk=desk[0])
    text = entry.en + (f"; {entry.advice_en}" if entry.advice_en else "")
    return text.format(desk=desk[1])


def both(code: str, desk: tuple[str, str] = ("咨询台", "information desk")) -> str:
    """Chinese first, English after: ``预约码无效，… / this appointment code is not known; …``."""
    return f"{say(code, 'zh', desk)} / {say(code, 'en', desk)}"


# --- device and alert words (the dashboard) ------------------------------------------------------

FAULTS: dict[str, tuple[str, str]] = {  # DeviceFault values
    "paper_near_end": ("纸将尽", "paper nearly out"),
    "paper_out": ("缺纸", "out of paper"),
    "cover_open": ("机盖未关", "cover open"),
    "cutter_error": ("切刀故障", "cutter fault"),
    "mechanical_error": ("机械故障", "mechanical fault"),
    "printer_error": ("打印机故障", "printer fault"),
    "printer_offline": ("打印机脱机", "printer offline"),
    "not_responding": ("无应答", "not responding"),
    "port_missing": ("串口未找到", "serial port missing"),
    "nack": ("设备拒收指令", "command refused by the device"),
    "garbled": ("通讯乱码", "garbled replies"),
    "unencodable": ("内容无法显示", "content cannot be shown"),
    "clock_skew": ("时钟不准", "clock wrong"),
}


def fault_names(codes: Iterable[str], lang: str = "zh") -> str:
    """The faults' names in one language, sorted by code and joined ("无应答、串口未找到"); a code
    the catalog lacks is shown as it is rather than dropped."""
    zh = lang == "zh"
    names = [FAULTS[c][0 if zh else 1] if c in FAULTS else c for c in sorted(set(codes))]
    return ("、" if zh else ", ").join(names)


ALERT_KINDS: dict[str, tuple[str, str]] = {  # Alert.kind values
    "long_wait": ("等候过久", "long wait"),
    "overtime": ("办理超时", "service overtime"),
    "paused_with_waiting": ("暂停但有人等候", "paused with people waiting"),
    "device_offline": ("设备离线", "device offline"),
    "device_fault": ("设备故障", "device fault"),
    "paper_near_end": ("纸将尽", "paper nearly out"),
    "paper_out": ("缺纸", "out of paper"),
    "print_failed": ("打印失败", "print failed"),
    "clock_step": ("时钟跳变", "clock stepped"),
    "no_open_window": ("无窗口办理", "no window open"),
    "calendar_uncovered": ("节假日未知", "holidays unknown"),
    "case_overdue": ("差评整改超期", "follow-up case overdue"),
}

DEVICE_KINDS: dict[str, tuple[str, str]] = {
    "kiosk": ("取号机", "kiosk"), "printer": ("号票打印机", "ticket printer"),
    "led_bus": ("LED 窗口屏总线", "LED screen bus"), "window_screen": ("窗口屏", "window screen"),
    "hall_screen": ("大厅屏", "hall screen"), "pad_bus": ("呼叫器/评价器总线", "pad bus"),
    "pad": ("呼叫器/评价器", "pad"), "announcer": ("语音播报", "announcer"),
    "coordinator": ("排队协调服务", "coordinator"), "web": ("管理网站", "web server"),
}

# --- the regional dashboard's words for parked events (region/parking.py, region/web.py) ----------

PARKED_WORDS: dict[str, tuple[str, str]] = {
    "column": ("搁置事件", "Parked events"),
    "heading": ("区域库拒收而搁置的事件", "Events the region's database refused, parked"),
    "explain": ("这些事件的数据区域数据库无法保存，已原样另存，其后的事件照常接收。"
                "若事件来自被盗用或出错的大厅账号，大厅自己在该序号的事件可能与此不同："
                "之后收到同序号、内容不同且可保存的事件时，区域会将其补存于该序号，此处保留原记录并注明。"
                "评价类事件的好差评记录可能缺失，请与大厅的存储和评价记录核对，并联系大厅管理员。",
                "The region's database could not store these events: each was kept as sent, apart, and "
                "the events after it are taken as usual. If one came from a stolen or broken hall "
                "account, the hall's own event at that number may differ: a later copy of that number "
                "that differs and can be stored is stored in its place, and the row here is kept and "
                "marked. For a rating, its record for the province may be missing: check against the "
                "hall's store and ratings, and tell its administrator."),
    "seq": ("序号", "Seq"),
    "kind": ("事件类型", "Kind"),
    "hall_time": ("大厅时间", "Hall time"),
    "error": ("拒收原因", "Refused because"),
    "parked_at": ("搁置时间", "Parked at"),
    "replaced": ("已由后到的同序号事件补存", "stored from a later copy of this number"),
    "rating_missing": ("好差评记录可能缺失", "rating record may be missing"),
    "rating_incomplete": ("该号的好差评记录可能不全（如办件编号、窗口、事项、等候时长为空）",
                          "this ticket's rating record may be incomplete (case, window, service, wait)"),
    "none": ("无", "none"),
    # why, in words, before PostgreSQL's own message (English, for whoever fixes the hall)
    "refused_22": ("数据格式或取值无效（如不存在的日期、无法保存的内容）", "a value its type cannot take"),
    "refused_54": ("超出数据库限制（如嵌套过深、内容过长）", "beyond a limit of the database"),
    "refused_driver": ("含数据库无法保存的字符", "a character the database cannot keep"),
    "postgresql_said": ("数据库原文", "as the database said"),
}

# --- what the screens, the pads and the voice say (composed by the coordinator alone) ------------
# coordinator/texts.py fills these and publishes them in the window state, the call and the queue
# summary; the LED, BX-6 and TV screens, the pads and the announcer show them as they come.

SCREEN: dict[str, tuple[str, str]] = {
    "call": ("请{number}号到{window}号窗口", "Ticket {number}, please go to window {window}"),
    "serving": ("正在办理\n{number}号", "Now serving\n{number}"),
    "paused": ("暂停服务", "Not in service"),
    "closed": ("暂停服务", "Not in service"),
    "welcome": ("欢迎光临\n{name}", "Welcome\n{name}"),
    "window_label": ("{window}号窗口  {name}", "Window {window}  {name}"),  # the TV's calls table
    "no_calls": ("欢迎光临", "Welcome"),  # a hall screen before the day's first call
    "speech": ("请 {letters} {digits} 号 到 {window} 号窗口 办理",
               "Ticket {number}, please go to window {window}"),
    "waiting_group": ("{name}({prefixes}) 等候{count}人", "{name} ({prefixes}): {count} waiting"),
    "waiting_count": ("{count} 人", "{count} waiting"),
}


# --- states and statistics, as the dashboard and `report` name them ------------------------------

WINDOW_STATUS_ZH: dict[str, str] = {"closed": "未登录", "idle": "空闲", "calling": "呼叫中",
                                    "serving": "办理中", "paused": "暂停服务"}  # WindowStatus values
TICKET_STATUS_ZH: dict[str, str] = {"waiting": "等候中", "called": "已呼叫", "serving": "办理中",
                                    "no_show": "过号", "held": "挂起", "done": "已办结",
                                    "expired": "已过期"}  # TicketStatus values
CASE_STATE_ZH: dict[str, str] = {"verifying": "待核实", "rectifying": "整改中", "revisited": "已回访",
                                 "closed": "已办结", "appealed": "申诉", "revoked": "撤销"}  # CaseState

# The statistics query's rows: each dimension, and each column in the order tables show them.
DIMENSION_ZH: dict[str, str] = {"total": "合计", "department": "部门", "service": "事项", "window": "窗口",
                                "clerk": "工作人员"}
STAT_COLUMNS: dict[str, str] = {
    "issued": "取号", "served": "办结", "no_show": "过号", "avg_wait_min": "平均等候(分)",
    "p90_wait_min": "P90等候(分)", "avg_service_min": "平均办理(分)", "rated": "评价数", "unrated": "未评价",
    "satisfaction_pct": "满意率%", "participation_pct": "参评率%", "bad": "差评", "level_5": "非常满意",
    "level_4": "满意", "level_3": "基本满意", "level_2": "不满意", "level_1": "非常不满意",
}


# --- the audit trail's actions and outcomes (web/templates/audit.html, hall and region) ----------
# The rows keep the codes (the filter's values, the CSV, class="audit-<code>"); people read these.
# tests/web/test_audit_words.py finds every action the source can record and checks it is here.

AUDIT_ACTIONS: dict[str, Message] = {
    # sign-in (web/access.py, region/access.py)
    "sign_in": Message("登录", "Sign in"),
    "sign_in_failed": Message("登录失败", "Failed sign-in"),
    "sign_out": Message("退出登录", "Sign out"),
    "password_change": Message("修改密码", "Password change"),
    "password_changed": Message("密码已修改", "Password changed"),
    # the clerk's console (window_ + WindowAction values); window_login also for one-step sign-in
    "window_login": Message("窗口上岗", "Window sign-in"),
    "window_logout": Message("窗口离岗", "Window sign-out"),
    "window_next": Message("顺呼", "Call next"),
    "window_recall": Message("重呼", "Recall"),
    "window_start": Message("开始办理", "Start serving"),
    "window_no_show": Message("过号", "No-show"),
    "window_reactivate": Message("激活过号", "Reactivate a missed ticket"),
    "window_hold": Message("挂起", "Hold"),
    "window_call_back": Message("回呼", "Call back"),
    "window_transfer": Message("转移", "Transfer"),
    "window_pause": Message("暂停服务", "Pause"),
    "window_resume": Message("恢复服务", "Resume"),
    "window_finish": Message("办结", "Finish"),
    "window_call_ticket": Message("特呼", "Call a chosen ticket"),
    # 差评整改 cases (case_ + the web's case actions)
    "case_verify": Message("核实差评", "Verify case"),
    "case_appeal": Message("申诉", "Appeal"),
    "case_revisit": Message("回访", "Revisit"),
    "case_close": Message("办结回访单", "Close case"),
    "case_revoke": Message("撤销回访单", "Revoke case"),
    "case_reject_appeal": Message("驳回申诉", "Reject appeal"),
    "case_assign": Message("指派责任人", "Assign case"),
    # the staff page, alerts, 呼叫帮办 (help_ + its actions)
    "green_ticket": Message("绿色通道取号", "Green-channel ticket"),
    "reprint": Message("补打号票", "Reprint ticket"),
    "alert_ack": Message("确认告警", "Acknowledge alert"),
    "help_answer": Message("响应求助", "Answer help request"),
    "help_close": Message("关闭求助", "Close help request"),
    # `hall-devices web-user` (web/manage.py AUDITED)
    "user_added": Message("添加用户", "User added"),
    "user_removed": Message("删除用户", "User removed"),
    "user_role_changed": Message("修改用户角色", "User role changed"),
    "user_password_set": Message("设置用户密码", "User password set"),
    # the regional dashboard (region/web.py)
    "retry_reports": Message("立即重报好差评", "Report ratings now"),
}

# Outcomes the web writes as codes; any other outcome is already a message (the catalog's refusal
# or the coordinator's own words) and is shown as written.
AUDIT_OUTCOMES: dict[str, Message] = {
    "ok": Message("成功", "OK"),
    "refused": Message("拒绝", "Refused"),
    "unknown or already acknowledged": Message("告警不存在或已确认", "Unknown or already acknowledged"),
    "no open help request": Message("没有待处理的求助", "No open help request"),
}


def audit_words(code: str, words: dict[str, Message] = AUDIT_ACTIONS) -> str:
    """``登录 Sign in`` for a code in ``words``; the code itself for any other (a row written by an
    older or newer version, or an outcome that is already a message)."""
    entry = words.get(code)
    return f"{entry.zh} {entry.en}" if entry else code


def audit_outcome(outcome: str) -> str:
    return audit_words(outcome, AUDIT_OUTCOMES)
