"""LED supervision, sans-IO: replies from the manual's byte literals, decisions from times passed in."""

from __future__ import annotations

from hall_devices.contract import DeviceFault, DeviceState
from hall_devices.leds import bx
from hall_devices.leds.supervision import Outcome, ScreenHealth, bus_state, reply_outcome

HEAD = bytes.fromhex("a5 a5 a5 a5 a5 a5 a5 a5")
REPLY_HEADER = bytes.fromhex("00 80 fe ff 00 00 00 00 00 00 fe 02 05 00")  # protocols.md §2
ACK = HEAD + REPLY_HEADER + bytes.fromhex("a0 00 00 00 00 14 ac 5a")
NACK_CRC = HEAD + REPLY_HEADER + bytes.fromhex("a0 01 05 00 00 05 51 5a")


def outcome(raw: bytes, address: int = 0xFFFE) -> Outcome | None:
    return reply_outcome(bx.BxDecoder().feed(raw), address)


def test_ack_nack_busy_garbled_and_silence_are_told_apart() -> None:
    assert outcome(ACK) is Outcome.ACK
    assert outcome(NACK_CRC) is Outcome.NACK
    busy = bx.BxFrame(bx.Header(bx.PC_ADDRESS, source=0xFFFE), bytes.fromhex("a0 01 03 00 00")).encode()
    assert busy[:-3] == NACK_CRC[:-8] + bytes.fromhex("a0 01 03 00 00")  # same header, error 3
    assert outcome(busy) is Outcome.BUSY
    garbled = bytearray(ACK)
    garbled[-4] ^= 0x01  # the CRC no longer matches
    assert outcome(bytes(garbled)) is Outcome.GARBLED
    assert outcome(b"") is None  # nothing yet: silence is the caller's timeout
    assert outcome(ACK, address=7) is None  # another screen's reply is not this one's


def test_silence_faults_a_screen_only_after_the_configured_time_and_backs_off() -> None:
    health = ScreenHealth(retries=3, unreachable_after_s=5.0, max_backoff_s=8.0)
    for t in (0.0, 0.3, 0.6):
        assert health.may_write(t)
        health.record(Outcome.SILENT, t)
    assert health.fault(0.7) is None  # three silences, but not yet unreachable for 5 s
    assert not health.may_write(0.7) and health.may_write(1.6)  # backoff 1 s after the retries
    health.record(Outcome.SILENT, 1.6)
    assert not health.may_write(3.5) and health.may_write(3.6)  # then 2 s
    assert health.fault(5.0) is DeviceFault.NOT_RESPONDING
    health.news()  # a new call for that window: one try now, whatever the backoff
    assert health.may_write(5.0)
    health.record(Outcome.ACK, 5.1)
    assert health.fault(100.0) is None and health.tries == 0


def test_nack_and_garbled_are_named_and_busy_is_answered_with_backoff() -> None:
    nack = ScreenHealth(retries=1, unreachable_after_s=0.0)
    nack.record(Outcome.NACK, 0.0)
    assert nack.fault(0.0) is DeviceFault.NACK
    garbled = ScreenHealth(retries=1, unreachable_after_s=0.0)
    garbled.record(Outcome.GARBLED, 0.0)
    assert garbled.fault(0.0) is DeviceFault.GARBLED
    busy = ScreenHealth(retries=3)
    delays = []
    for _ in range(7):
        now = busy.not_before
        busy.record(Outcome.BUSY, now)
        delays.append(round(busy.not_before - now, 3))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]  # never three tries within 20 ms
    busy.news()  # new content does not hurry a busy controller
    assert not busy.may_write(busy.not_before - 0.01)


def test_a_bus_with_no_screen_answering_is_fault() -> None:
    assert bus_state([None, None]) == (DeviceState.OK, [])
    assert bus_state([DeviceFault.NOT_RESPONDING, None]) == (
        DeviceState.WARNING, [DeviceFault.NOT_RESPONDING])
    assert bus_state([DeviceFault.NOT_RESPONDING, DeviceFault.NACK]) == (
        DeviceState.FAULT, [DeviceFault.NACK, DeviceFault.NOT_RESPONDING])
