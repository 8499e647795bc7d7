"""Lifecycle tables: which action is legal in which state, and the state it leads to.

A pair missing from a table is an illegal action: the engine answers with an error naming the
current state and changes nothing.
"""

from __future__ import annotations

# Re-exported: the engine names states in its messages with these words and checks windows with this
# table; both live where the other parts read them (the catalog, the contract).
from hall_devices.catalog import CASE_STATE_ZH, TICKET_STATUS_ZH, WINDOW_STATUS_ZH
from hall_devices.contract import WINDOW_TABLE, CaseState, StaffAction, TicketStatus

__all__ = ["CASE_STATE_ZH", "CASE_TABLE", "TICKET_STATUS_ZH", "TICKET_TABLE", "WINDOW_STATUS_ZH",
           "WINDOW_TABLE"]

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

