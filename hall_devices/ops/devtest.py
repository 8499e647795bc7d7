"""Device tests from the command line, through the agents' own codecs and ports (no MQTT).

- a test ticket, through the printer agent's runner (status poll, ESC/POS, paper-out detection);
- a test pattern and each screen's address on an LED bus (BX frames confirmed by each controller's
  reply, or EQ frames);
- keypad keys and pad ratings, shown live as they are pressed (frames echoed as the pad agent does);
- a test call spoken by the announcer's speech and output.

Stop the device's role first (``systemctl stop hall-printer@P1``): a serial port has one owner.
Each function writes its report lines to ``out`` and returns True when the device answered well.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

from hall_devices.announcer.agent import make_output
from hall_devices.announcer.speech import EspeakSpeaker, SegmentSpeaker, Speaker, SpeechError, join_wavs
from hall_devices.contract import (
    Call,
    PrintJob,
    Text,
    TicketClass,
    TicketInfo,
    TicketStatus,
)
from hall_devices.coordinator import texts
from hall_devices.layout import (
    AnnouncerDevice,
    HallScreenDevice,
    Layout,
    LedBusDevice,
    PadBusDevice,
    PadDevice,
    PrinterDevice,
    WindowScreenDevice,
)
from hall_devices.leds import bx
from hall_devices.leds.frames import hall_regions, screen_bytes, window_regions
from hall_devices.link import LinkLostError, SerialLink
from hall_devices.pads.codec import (
    Control,
    Frame,
    Garbage,
    Key,
    PadDecoder,
    ask_rating_frame,
    rating_level,
    show_frame,
)
from hall_devices.printer.ledger import JobLedger
from hall_devices.printer.runner import PrinterRunner

TEST_NUMBER = "T000"
LEVELS = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}
KEY_NAMES = {Key.RATE: "请评价 RATE", Key.NEXT: "顺呼 NEXT", Key.RECALL: "重呼 RECALL",
             Key.CONFIRM: "确认 CONFIRM", Key.PAUSE: "暂停 PAUSE", Key.TRANSFER: "转移 TRANSFER"}


T = TypeVar("T")


def _device(layout: Layout, device_id: str, kind: type[T]) -> T:
    device = layout.device(device_id)  # KeyError names an unknown id
    if not isinstance(device, kind):
        raise ValueError(f"{device_id!r} is a {device.kind}, not a {kind.__name__}")
    return device


def print_test_ticket(layout: Layout, printer_id: str, out: TextIO, url: str | None = None) -> bool:
    """One test ticket through the printer agent's runner; says whether it printed, or why not."""
    printer = _device(layout, printer_id, PrinterDevice)
    now = datetime.now(UTC)
    ticket = TicketInfo(ticket_id=f"test-{TEST_NUMBER}", number=TEST_NUMBER, service_id="test",
                        service_name=Text(zh="打印测试", en="Print test"),
                        department_name=Text(zh="测试", en="Test"), ticket_class=TicketClass.NORMAL,
                        status=TicketStatus.WAITING, issued_at=now, people_ahead=0, estimated_minutes=0,
                        windows=[], materials=[Text(zh="中文打印正常", en="Chinese prints well")])
    job = PrintJob(job_id=f"test-{secrets.token_hex(6)}", kiosk_id=printer.kiosk,
                   hall_name=Text(zh=layout.hall.name.zh, en=layout.hall.name.en), ticket=ticket,
                   footer=Text(zh=f"打印机 {printer.id} · {printer.paper_mm} 毫米 · {printer.encoding}",
                               en=f"printer {printer.id}, {printer.paper_mm} mm, {printer.encoding}"))
    with tempfile.TemporaryDirectory(prefix="hall-printer-test-") as tmp:
        runner = PrinterRunner(printer, layout.hall, JobLedger(Path(tmp) / "ledger.sqlite3"), url)
        try:
            result = runner.print_job(job)
        finally:
            runner.close()
    if result.ok:
        out.write(f"已打印测试号票 {TEST_NUMBER} / test ticket printed on {printer.id}\n")
        return True
    out.write(f"打印失败 / not printed on {printer.id}: {result.reason}"
              f" ({', '.join(sorted(runner.status.faults))})\n")
    return False


def _screens(layout: Layout, bus_id: str) -> list[WindowScreenDevice | HallScreenDevice]:
    return [d for d in layout.members(bus_id) if isinstance(d, WindowScreenDevice | HallScreenDevice)]


def test_pattern(screen: WindowScreenDevice | HallScreenDevice) -> str:
    """What a screen shows under test: its address, its id and a row of full blocks."""
    where = f"窗口{screen.window}" if isinstance(screen, WindowScreenDevice) else "大厅屏"
    return f"地址{screen.address} {where}\n{screen.id} ████████"


def show_led_test(layout: Layout, bus_id: str, out: TextIO, url: str | None = None,
                  reply_timeout_s: float = 0.5) -> bool:
    """The test pattern on every screen of the bus; BX controllers must confirm each frame."""
    bus = _device(layout, bus_id, LedBusDevice)
    link = SerialLink(url or bus.serial, bus.baudrate, bus.parity.value)
    if not link.ensure_open():
        out.write(f"串口打不开 / cannot open {url or bus.serial}: {link.last_error}\n")
        return False
    good = True
    try:
        for screen in _screens(layout, bus_id):
            pattern = test_pattern(screen)
            if isinstance(screen, HallScreenDevice):
                regions = hall_regions(pattern, f"LED {bus.protocol.upper()}", "测试 TEST", screen.width,
                                       screen.height)
            else:
                regions = window_regions(pattern, screen.width, screen.height)
            frame = screen_bytes(bus.protocol, screen.address, regions)
            link.read_waiting()
            link.write(frame)
            answer = _bx_answer(link, screen.address, reply_timeout_s + len(frame) * 10 / bus.baudrate) \
                if bus.protocol == "bx" else "sent (EQ controllers do not answer)"
            good &= answer in ("ok", "sent (EQ controllers do not answer)")
            out.write(f"{screen.id} 地址/address {screen.address}: {answer}\n")
    except LinkLostError as exc:
        out.write(f"串口断开 / port lost: {exc}\n")
        return False
    finally:
        link.close()
    return good


def _bx_answer(link: SerialLink, address: int, within_s: float) -> str:
    decoder = bx.BxDecoder()
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for item in decoder.feed(link.read()):
            if isinstance(item, bx.BadFrame):
                return f"garbled reply ({item.reason})"
            if item.header.source == address and item.command[0] == 0xA0:
                reply = bx.parse_reply(item)
                return "ok" if reply.ok else f"refused (NACK {reply.reason})"
    return "无应答 / no reply"


def watch_pads(layout: Layout, bus_id: str, out: TextIO, url: str | None = None, *,
               duration_s: float | None = None, count: int | None = None, rating_s: int = 30) -> bool:
    """Show each pad's address on its display, light its rating keys, then print every key and
    rating as it comes, echoing each frame as the pad agent does; until ``count`` events,
    ``duration_s`` or Ctrl-C. True when at least one press was seen."""
    bus = _device(layout, bus_id, PadBusDevice)
    pads = {p.address: p for p in layout.members(bus_id) if isinstance(p, PadDevice)}
    if not pads:
        raise ValueError(f"{bus_id!r} has no pads")
    serial_url = url or bus.serial
    link = SerialLink(serial_url, bus.baudrate, bus.parity.value)
    if not link.ensure_open():
        out.write(f"串口打不开 / cannot open {serial_url}: {link.last_error}\n")
        return False
    seen = 0
    decoder = PadDecoder()
    try:
        for address in pads:
            link.write(show_frame(address, f"{address:06d}").encode())
            link.write(ask_rating_frame(address, rating_s).encode())
        out.write(f"请在评价器上按键或评价（Ctrl-C 结束）/ press keys or rate on the pads "
                  f"({len(pads)} on {bus_id}; Ctrl-C ends)\n")
        out.flush()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while (deadline is None or time.monotonic() < deadline) and (count is None or seen < count):
            for item in decoder.feed(link.read()):
                if isinstance(item, Garbage):
                    out.write(f"garbage: {item.reason}\n")
                    continue
                line = _pad_event(item, pads)
                if line is None:
                    continue  # an echo of our own frame
                link.write(item.encode())  # acknowledged, as the pad agent does
                seen += 1
                out.write(line + "\n")
                out.flush()
    except (LinkLostError, KeyboardInterrupt):
        pass
    finally:
        link.close()
    return seen > 0


def _pad_event(frame: Frame, pads: dict[int, PadDevice]) -> str | None:
    pad = pads.get(frame.address)
    who = f"{pad.id} 窗口/window {pad.window} 地址/address {frame.address}" if pad else \
        f"unknown pad at address {frame.address}"
    level = rating_level(frame)
    if level is not None:
        return f"{who}: 评价 rating {level} {LEVELS.get(level, '?')}"
    if frame.control == Control.KEY and frame.data:
        code = frame.data[-1]
        try:
            key = Key(code)
        except ValueError:
            return f"{who}: unknown key 0x{code:02X}"
        return f"{who}: 按键 key {KEY_NAMES.get(key, str(int(key)))}"
    return None


def speak_test_call(layout: Layout, device_id: str, out: TextIO, *, output: str | None = None,
                    voice: str = "cmn", segments: Path | None = None, number: str = "A001",
                    window: int = 1) -> bool:
    """A test call made and played as the announcer does; an error names the missing tool."""
    device = _device(layout, device_id, AnnouncerDevice)
    speaker: Speaker = SegmentSpeaker(segments) if segments else EspeakSpeaker(voice)
    spec = output or ("device" if device.output == "default" else device.output)
    player = make_output(spec)
    call = Call(call_id=f"test-{secrets.token_hex(4)}", ticket_id=f"test-{number}", ticket_number=number,
                window=window, window_name=Text(zh=f"{window}号窗口", en=f"window {window}"),
                service_id="test", called_at=datetime.now(UTC),
                text=texts.call_text(number, window), speech=texts.speech(number, window),
                window_label=texts.window_label(window, Text(zh=f"{window}号窗口", en=f"window {window}")))
    if player is None:
        out.write(f"{device_id}: 输出已关闭 / output is off\n")
        return False
    with tempfile.TemporaryDirectory(prefix="hall-voice-test-") as tmp:
        once, whole = Path(tmp) / "once.wav", Path(tmp) / "whole.wav"
        try:
            speaker.synthesize(call, once)
            seconds = join_wavs([once] * device.repeat, whole, 0.8)
            player.play(whole, 1, call)
        except SpeechError as exc:
            out.write(f"播报失败 / not spoken: {exc}\n")
            return False
    out.write(f"已播报 / spoken on {spec}: {number} → {window} ({seconds:.1f} s)\n")
    return True
