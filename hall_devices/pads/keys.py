"""What a clerk's key presses mean, sans-IO: keys and the window's state in, an intent out.

Single keys: 顺呼 next, 重呼 recall, 请评价 finish (and ask for a rating), 暂停 pause (again: resume).
Digits then 确认 confirm:
- one digit: ``6`` no-show 弃号, ``0`` hold 挂起, ``3`` call back 回呼 (the first held ticket);
- ``000``: sign out;
- any other digits at a closed window: sign in with that clerk id;
- after 转移 transfer: the target window's number.
Anything else is refused (the pad beeps twice) and the typed digits are cleared.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hall_devices.contract import WindowAction, WindowState, WindowStatus
from hall_devices.pads.codec import Key

SIGN_OUT = "000"
CONFIRM_DIGIT = {"6": WindowAction.NO_SHOW, "0": WindowAction.HOLD, "3": WindowAction.CALL_BACK}
SINGLE = {Key.NEXT: WindowAction.NEXT, Key.RECALL: WindowAction.RECALL, Key.RATE: WindowAction.FINISH}
MAX_DIGITS = 8


class Mode(StrEnum):
    NORMAL = "normal"
    TRANSFER = "transfer"


@dataclass(frozen=True)
class Intent:
    """A window command to send, or a refusal to signal."""

    action: WindowAction | None
    clerk_id: str | None = None
    ticket_number: str | None = None
    target_window: int | None = None
    refused: str | None = None


@dataclass
class PadKeys:
    digits: str = ""
    mode: Mode = Mode.NORMAL

    def press(self, key: Key, state: WindowState | None) -> Intent | None:
        """The intent of one key, or None while digits are being typed."""
        if Key.D0 <= key <= Key.D9:
            if len(self.digits) < MAX_DIGITS:
                self.digits += str(int(key))
            return None
        if key is Key.TRANSFER:
            self.mode, self.digits = Mode.TRANSFER, ""
            return None
        if key is Key.CONFIRM:
            digits, mode = self.digits, self.mode
            self.digits, self.mode = "", Mode.NORMAL
            return self._confirm(digits, mode, state)
        self.digits, self.mode = "", Mode.NORMAL
        if key in SINGLE:
            return Intent(SINGLE[key])
        if key is Key.PAUSE:
            paused = state is not None and state.status is WindowStatus.PAUSED
            return Intent(WindowAction.RESUME if paused else WindowAction.PAUSE)
        return Intent(None, refused=f"key {int(key):#04x} has no meaning here")

    @staticmethod
    def _confirm(digits: str, mode: Mode, state: WindowState | None) -> Intent:
        if not digits:
            return Intent(None, refused="confirm without digits")
        if mode is Mode.TRANSFER:
            return Intent(WindowAction.TRANSFER, target_window=int(digits))
        closed = state is None or state.status is WindowStatus.CLOSED
        if closed:
            return Intent(WindowAction.LOGIN, clerk_id=digits)
        if digits == SIGN_OUT:
            return Intent(WindowAction.LOGOUT)
        action = CONFIRM_DIGIT.get(digits)
        if action is WindowAction.CALL_BACK:
            if state is None or not state.held:
                return Intent(None, refused="no held ticket to call back")
            return Intent(action, ticket_number=state.held[0])
        if action is not None:
            return Intent(action)
        return Intent(None, refused=f"digits {digits} + confirm mean nothing here")
