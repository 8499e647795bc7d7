"""The printer's port on a real pty: DLE EOT n out, one reply byte in (protocols.md §1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.layout import Layout, PrinterDevice
from hall_devices.link import LinkLostError
from hall_devices.printer.transport import PrinterPort


@pytest.fixture
def wired(tmp_path: Path, layout: Layout) -> Iterator[tuple[PrinterSimulator, PrinterPort]]:
    sim = PrinterSimulator(tmp_path / "dev" / "printer").start()
    printer = layout.device("P1")
    assert isinstance(printer, PrinterDevice)
    port = PrinterPort(printer, str(sim.path), reply_timeout_s=0.5)
    yield sim, port
    port.close()
    sim.stop()


def test_each_query_gets_its_one_reply_byte(wired: tuple[PrinterSimulator, PrinterPort]) -> None:
    sim, port = wired
    assert port.ensure_open()
    assert port.status_byte(1) == 0x12
    sim.switches.paper_out = True
    assert [port.status_byte(n) for n in (1, 2, 3, 4)] == [0x1A, 0x32, 0x12, 0x7E]
    assert bytes(sim.received) == (b"\x10\x04\x01" b"\x10\x04\x01" b"\x10\x04\x02" b"\x10\x04\x03"
                                   b"\x10\x04\x04")


def test_a_pulled_cable_raises_link_lost_and_closes(wired: tuple[PrinterSimulator, PrinterPort]) -> None:
    sim, port = wired
    assert port.ensure_open()
    sim.port.unplug()
    with pytest.raises(LinkLostError):
        port.status_byte(1)
    assert not port.is_open
