"""Device tests from the command line against the project's simulators, their output decoded."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from hall_devices.cli import main
from hall_devices.demo.sim.leds import LedBusSimulator
from hall_devices.demo.sim.pads import PadBusSimulator
from hall_devices.demo.sim.printer import PrinterSimulator
from hall_devices.layout import Layout, PadDevice, WindowScreenDevice
from hall_devices.ops.devtest import watch_pads
from hall_devices.pads.codec import Key
from tests.conftest import EXAMPLE


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[PrinterSimulator]:
    sim = PrinterSimulator(tmp_path / "printer").start()
    yield sim
    sim.stop()


def test_a_test_ticket_prints_through_the_printer_runner(printer: PrinterSimulator,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["device-test", "printer", "--id", "P1", "--serial", str(printer.path),
                 "--layout", str(EXAMPLE)])
    assert code == 0 and "test ticket printed on P1" in capsys.readouterr().out
    ticket = printer.wait_tickets(1)[0]
    assert ticket.big() == ["T000"] and ticket.cut
    assert "打印测试" in ticket.text and "中文打印正常" in ticket.text and "打印机 P1" in ticket.text


def test_a_printer_out_of_paper_says_so(printer: PrinterSimulator,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    printer.switches.paper_out = True
    code = main(["device-test", "printer", "--id", "P1", "--serial", str(printer.path),
                 "--layout", str(EXAMPLE)])
    assert code == 1 and "not printed on P1: paper_out" in capsys.readouterr().out
    assert printer.tickets == []  # nothing half printed


def test_every_led_screen_shows_its_address(tmp_path: Path, layout: Layout,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    members = layout.members("L1")
    sim = LedBusSimulator(tmp_path / "leds", "bx", [d.address for d in members]).start()  # type: ignore[union-attr]
    silent = next(d for d in members if isinstance(d, WindowScreenDevice))
    sim.switches.corrupt[silent.address] = 100  # this controller refuses every frame
    try:
        code = main(["device-test", "leds", "--bus", "L1", "--serial", str(sim.path),
                     "--layout", str(EXAMPLE)])
    finally:
        sim.stop()
    out = capsys.readouterr().out
    assert code == 1  # one screen did not confirm
    for device in members:
        line = next(x for x in out.splitlines() if x.startswith(f"{device.id} "))
        if device is silent:
            assert "ok" not in line.split(":")[-1]
        else:
            assert line.endswith(": ok"), line
            assert f"地址{device.address}" in sim.text(device.address), sim.text(device.address)  # type: ignore[union-attr]


def test_keys_and_ratings_are_shown_as_pressed(tmp_path: Path, layout: Layout) -> None:
    pads = [p for p in layout.members("KB1") if isinstance(p, PadDevice)]
    sim = PadBusSimulator(tmp_path / "pads", [p.address for p in pads]).start()
    first = pads[0]
    argv = [sys.executable, "-m", "hall_devices.cli", "device-test", "pads", "--bus", "KB1",
            "--serial", str(sim.path), "--layout", str(EXAMPLE), "--count", "3", "--duration", "30"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Each pad shows its own address first: then the tool is listening.
        assert sim.wait(lambda: all(sim.display(p.address) == f"{p.address:06d}" for p in pads), 15)
        assert sim.pads[first.address].rating_asks == 1
        sim.press(first.address, Key.NEXT)
        sim.press(first.address, Key.RECALL)
        sim.rate(first.address, 2)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        sim.stop()
    assert process.returncode == 0, err
    lines = [x for x in out.splitlines() if x.startswith(first.id)]
    assert [x.split(": ", 1)[1] for x in lines] == ["按键 key 顺呼 NEXT", "按键 key 重呼 RECALL",
                                                   "评价 rating 2 不满意"]
    assert f"window {first.window}" in lines[0]
    assert len(sim.echoes) == 3  # each press acknowledged, as the pad agent does


def test_watching_a_quiet_bus_ends_after_its_duration(tmp_path: Path, layout: Layout) -> None:
    sim = PadBusSimulator(tmp_path / "pads", [p.address for p in layout.members("KB1")]).start()  # type: ignore[union-attr]
    out = io.StringIO()
    try:
        worker = threading.Thread(target=lambda: out.write(str(watch_pads(layout, "KB1", out, str(sim.path),
                                                                          duration_s=0.5))))
        worker.start()
        worker.join(10)
    finally:
        sim.stop()
    assert not worker.is_alive() and out.getvalue().endswith("False")


def test_a_test_call_is_spoken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    code = main(["device-test", "speak", "--id", "VOICE1", "--output", f"wav:{tmp_path}",
                 "--number", "B012", "--window", "12", "--layout", str(EXAMPLE)])
    assert code == 0 and "B012 → 12" in capsys.readouterr().out
    (spoken,) = tmp_path.glob("*.wav")
    assert spoken.name == "0001-B012-w12.wav"
    with wave.open(str(spoken)) as audio:
        assert audio.getnframes() / audio.getframerate() > 1.0


def test_a_missing_player_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("aplay") is not None or shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng without aplay")
    code = main(["device-test", "speak", "--id", "VOICE1", "--output", "device", "--layout", str(EXAMPLE)])
    assert code == 1 and "apt-get install alsa-utils" in capsys.readouterr().out


def test_a_device_in_use_by_its_role_is_not_touched(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from hall_devices.ops.reach import running_role
    from tests.support import wait_until

    # A printer id of its own: no other process on this machine runs its role.
    device = f"PT{os.getpid()}"
    layout_file = tmp_path / "hall.toml"
    text = EXAMPLE.read_text(encoding="utf-8").replace('"P2"', f'"{device}"')
    layout_file.write_text(text, encoding="utf-8")
    role = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "hall-devices", "printer",
                             "--id", device])
    try:
        wait_until(lambda: running_role(device, None) == role.pid, what="the role's process")
        code = main(["device-test", "printer", "--id", device, "--layout", str(layout_file)])
    finally:
        role.kill()
        role.wait()
    assert code == 1 and f"{device} is in use by process {role.pid}" in capsys.readouterr().err
