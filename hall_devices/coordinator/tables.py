"""Lifecycle tables: which action is legal in which state, and the state it leads to.

A pair missing from a table is an illegal action: the engine answers with an error naming the
current state and changes nothing.
"""

from __future__ import annotations

from hall_devices.contract import CaseState, StaffAction, TicketStatus, WindowAction, WindowStatus

W = WindowStatus
A = WindowAction

WINDOW_TABLE: dict[tuple[WindowStatus, WindowAction], WindowStatus] = {
    (W.CLOSED, A.LOGIN): W.IDLE,
    (W.IDLE, A.LOGOUT): W.CLOSED,
    (W.IDLE, A.NEXT): W.CALLING,
    (W.IDLE, A.CALL_BACK): W.CALLING,
    (W.IDLE, A.PAUSE): W.PAUSED,
    (W.IDLE, A.REACTIVATE): W.IDLE,
    (W.IDLE, A.CALL_TICKET): W.CALLING,
    (W.CALLING, A.RECALL): W.CALLING,
    (W.CALLING, A.START): W.SERVING,
    (W.CALLING, A.NO_SHOW): W.IDLE,
    (W.CALLING, A.HOLD): W.IDLE,
    (W.CALLING, A.TRANSFER): W.IDLE,
    (W.CALLING, A.FINISH): W.IDLE,  # keypads have no "arrived" key: finishing a call is fine
    (W.CALLING, A.REACTIVATE): W.CALLING,
    (W.SERVING, A.HOLD): W.IDLE,
    (W.SERVING, A.TRANSFER): W.IDLE,
    (W.SERVING, A.FINISH): W.IDLE,
    (W.SERVING, A.REACTIVATE): W.SERVING,
    (W.PAUSED, A.RESUME): W.IDLE,
    (W.PAUSED, A.LOGOUT): W.CLOSED,
    (W.PAUSED, A.REACTIVATE): W.PAUSED,
}

T = TicketStatus
TICKET_TABLE: dict[tuple[TicketStatus, str], TicketStatus] = {
    (T.WAITING, "call"): T.CALLED,
    (T.CALLED, "recall"): T.CALLED,
    (T.CALLED, "start"): T.SERVING,
    (T.CALLED, "no_show"): T.NO_SHOW,
    (T.CALLED, "hold"): T.HELD,
    (T.CALLED, "transfer"): T.WAITING,
    (T.CALLED, "finish"): T.DONE,
    (T.SERVING, "hold"): T.HELD,
    (T.SERVING, "transfer"): T.WAITING,
    (T.SERVING, "finish"): T.DONE,
    (T.NO_SHOW, "reactivate"): T.WAITING,
    (T.HELD, "call_back"): T.CALLED,
}

C = CaseState
S = StaffAction
CASE_TABLE: dict[tuple[CaseState, StaffAction], CaseState] = {
    (C.VERIFYING, S.CASE_VERIFY): C.RECTIFYING,
    (C.VERIFYING, S.CASE_APPEAL): C.APPEALED,
    (C.RECTIFYING, S.CASE_REVISIT): C.REVISITED,
    (C.REVISITED, S.CASE_CLOSE): C.CLOSED,
    (C.APPEALED, S.CASE_REVOKE): C.REVOKED,
    (C.APPEALED, S.CASE_REJECT_APPEAL): C.RECTIFYING,
}

WINDOW_STATUS_ZH = {W.CLOSED: "未登录", W.IDLE: "空闲", W.CALLING: "呼叫中", W.SERVING: "办理中",
                    W.PAUSED: "暂停服务"}
TICKET_STATUS_ZH = {T.WAITING: "等候中", T.CALLED: "已呼叫", T.SERVING: "办理中", T.NO_SHOW: "过号",
                    T.HELD: "挂起", T.DONE: "已办结", T.EXPIRED: "已过期"}
CASE_STATE_ZH = {C.VERIFYING: "待核实", C.RECTIFYING: "整改中", C.REVISITED: "已回访", C.CLOSED: "已办结",
                 C.APPEALED: "申诉", C.REVOKED: "撤销"}
