from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall_devices.contract import DeviceFault, DeviceState, PrintFailure, can_work
from hall_devices.demo.sim.printer import Switches, status_reply
from hall_devices.printer.status import (
    NOT_RESPONDING,
    PrinterStatus,
    StatusError,
    StatusPoll,
    decode,
    online,
    query,
)


def test_queries_are_dle_eot() -> None:
    assert [query(n) for n in (1, 2, 3, 4)] == [b"\x10\x04\x01", b"\x10\x04\x02", b"\x10\x04\x03",
                                                 b"\x10\x04\x04"]
    with pytest.raises(ValueError, match="n=5"):
        query(5)


@pytest.mark.parametrize(("replies", "faults", "state", "failure"), [
    ({1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12}, set(), DeviceState.OK, None),
    ({4: 0x1E}, {DeviceFault.PAPER_NEAR_END}, DeviceState.WARNING, None),
    ({1: 0x1A, 2: 0x32, 4: 0x7E}, {DeviceFault.PRINTER_OFFLINE, DeviceFault.PAPER_OUT,
                                   DeviceFault.PAPER_NEAR_END}, DeviceState.FAULT, PrintFailure.PAPER_OUT),
    ({1: 0x1A, 2: 0x16}, {DeviceFault.PRINTER_OFFLINE, DeviceFault.COVER_OPEN}, DeviceState.FAULT,
     PrintFailure.COVER_OPEN),
    ({3: 0x1A}, {DeviceFault.CUTTER_ERROR}, DeviceState.FAULT, PrintFailure.CUTTER_ERROR),
    ({1: 0x1A}, {DeviceFault.PRINTER_OFFLINE}, DeviceState.FAULT, PrintFailure.OFFLINE),
    # DLE EOT 3 error causes (protocols.md §1): b2 mechanical, b5 unrecoverable, b6 auto-recoverable.
    ({3: 0x16}, {DeviceFault.MECHANICAL_ERROR}, DeviceState.FAULT, PrintFailure.PRINTER_ERROR),
    ({3: 0x32}, {DeviceFault.PRINTER_ERROR}, DeviceState.FAULT, PrintFailure.PRINTER_ERROR),
    ({3: 0x52}, {DeviceFault.PRINTER_ERROR}, DeviceState.FAULT, PrintFailure.PRINTER_ERROR),
])
def test_decode_table(replies: dict[int, int], faults: set[DeviceFault], state: DeviceState,
                      failure: PrintFailure | None) -> None:
    status = decode(replies)
    assert status.faults == faults and status.state is state and status.failure is failure


def test_a_poll_asks_one_at_a_time() -> None:
    poll = StatusPoll()
    assert poll.start() == b"\x10\x04\x01"
    with pytest.raises(StatusError, match="already waiting"):
        poll.start()
    assert poll.receive(0x12) == b"\x10\x04\x02"
    assert poll.receive(0x12) == b"\x10\x04\x03"
    assert poll.receive(0x12) == b"\x10\x04\x04"
    assert poll.receive(0x7E) == PrinterStatus(frozenset({DeviceFault.PAPER_OUT, DeviceFault.PAPER_NEAR_END}))
    with pytest.raises(StatusError, match="no query in flight"):
        poll.receive(0x12)


def test_no_reply_is_not_responding() -> None:
    poll = StatusPoll()
    poll.start()
    assert poll.no_reply() == NOT_RESPONDING
    assert NOT_RESPONDING.failure is PrintFailure.NOT_RESPONDING


@given(st.lists(st.integers(0, 255), min_size=1, max_size=4))
def test_any_reply_byte_decodes_or_raises_status_error(replies: list[int]) -> None:
    poll = StatusPoll()
    poll.start()
    try:
        for byte in replies:
            poll.receive(byte)
    except StatusError:
        assert poll.state == "idle"


@pytest.mark.parametrize("switch", ["mechanical_error", "autocutter_error", "unrecoverable_error",
                                    "recoverable_error"])
def test_a_printer_in_error_cannot_print_by_the_contracts_one_rule(switch: str) -> None:
    switches = Switches(**{switch: True})
    status = decode({n: status_reply(n, switches) for n in (1, 2, 3, 4)})
    assert status.state is DeviceState.FAULT and not can_work(status.state)
    assert status_reply(2, switches) == 0x52 and status_reply(1, switches) == 0x1A  # error, offline
    assert can_work(DeviceState.WARNING) and can_work(None) and not can_work(DeviceState.OFFLINE)


@pytest.mark.parametrize(("reply", "can_print"), [
    (0x12, True),  # online, nothing to say
    (0x1A, False),  # bit 3: offline (cover open, paper end or an error)
    (0x16, True),  # bit 2 (drawer pin 3) says nothing about printing
    (0xFF, False),  # not of the form 0xx1xx10: garbled
    (None, False),  # no reply: not responding
])
def test_one_dle_eot_1_reply_says_whether_a_job_may_go(reply: int | None, can_print: bool) -> None:
    assert online(reply) is can_print


@given(st.builds(Switches, paper_near_end=st.booleans(), paper_out=st.booleans(), cover_open=st.booleans(),
                 offline=st.booleans(), mechanical_error=st.booleans(), autocutter_error=st.booleans(),
                 unrecoverable_error=st.booleans(), recoverable_error=st.booleans()))
def test_dle_eot_1_is_offline_exactly_when_the_full_poll_finds_a_blocking_fault(switches: Switches) -> None:
    status = decode({n: status_reply(n, switches) for n in (1, 2, 3, 4)})
    assert online(status_reply(1, switches)) is (status.failure is None)
