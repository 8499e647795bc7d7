from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hall_devices.contract import Text, WindowAction, WindowState, WindowStatus
from hall_devices.coordinator import texts
from hall_devices.pads.codec import Key
from hall_devices.pads.keys import Intent, PadKeys


def state(status: WindowStatus, held: list[str] | None = None) -> WindowState:
    name = Text(zh="三", en="3")
    return WindowState(window=3, name=name, status=status, since=datetime.now(UTC), held=held or [],
                       screen=texts.window_screen(3, name, status), pad_text=texts.pad_text(status, None, 0),
                       window_label=texts.window_label(3, name))


def press(keys: PadKeys, window: WindowState | None, *pressed: Key) -> Intent | None:
    result = None
    for key in pressed:
        result = keys.press(key, window)
    return result


def digits(text: str) -> list[Key]:
    return [Key(int(c)) for c in text]


IDLE = state(WindowStatus.IDLE, held=["A004", "A007"])


@pytest.mark.parametrize(("window", "keys", "expected"), [
    (None, [*digits("0301"), Key.CONFIRM], Intent(WindowAction.LOGIN, clerk_id="0301")),
    (IDLE, [Key.NEXT], Intent(WindowAction.NEXT)),
    (IDLE, [Key.RECALL], Intent(WindowAction.RECALL)),
    (IDLE, [Key.RATE], Intent(WindowAction.FINISH)),
    (IDLE, [Key.PAUSE], Intent(WindowAction.PAUSE)),
    (state(WindowStatus.PAUSED), [Key.PAUSE], Intent(WindowAction.RESUME)),
    (IDLE, [Key.D6, Key.CONFIRM], Intent(WindowAction.NO_SHOW)),
    (IDLE, [Key.D0, Key.CONFIRM], Intent(WindowAction.HOLD)),
    (IDLE, [Key.D3, Key.CONFIRM], Intent(WindowAction.CALL_BACK, ticket_number="A004")),
    (IDLE, [Key.TRANSFER, *digits("17"), Key.CONFIRM], Intent(WindowAction.TRANSFER, target_window=17)),
    (IDLE, [*digits("000"), Key.CONFIRM], Intent(WindowAction.LOGOUT)),
])
def test_keys_to_intents(window: WindowState | None, keys: list[Key], expected: Intent) -> None:
    assert press(PadKeys(), window, *keys) == expected


@pytest.mark.parametrize(("window", "keys", "why"), [
    (IDLE, [Key.CONFIRM], "confirm without digits"),
    (IDLE, [*digits("42"), Key.CONFIRM], "digits 42 + confirm mean nothing here"),
    (state(WindowStatus.IDLE), [Key.D3, Key.CONFIRM], "no held ticket to call back"),
])
def test_refusals(window: WindowState, keys: list[Key], why: str) -> None:
    intent = press(PadKeys(), window, *keys)
    assert intent is not None and intent.action is None and intent.refused == why


def test_a_single_key_clears_typed_digits() -> None:
    keys = PadKeys()
    press(keys, IDLE, Key.D6, Key.NEXT)
    assert press(keys, IDLE, Key.D0, Key.CONFIRM) == Intent(WindowAction.HOLD)
