"""The ticket's bytes on a recording printer, and the simulator's decoder reading them back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hall_devices.contract import PrintJob, Text, TicketClass, TicketInfo, TicketStatus
from hall_devices.demo.sim.printer import decode_raster_qr
from hall_devices.layout import Layout, PrinterDevice
from hall_devices.printer.decode import Cut, EscPosDecoder, QrCode, Raster, Unknown
from hall_devices.printer.decode import Text as Line
from hall_devices.printer.ticket import render

URL = "http://hall.local:8080/t/Q7x-2kfA93mN"


def job(ticket_class: TicketClass = TicketClass.PRIORITY, materials: bool = True) -> PrintJob:
    return PrintJob(job_id="2026-11-23-B007-p1", kiosk_id="K1",
                    hall_name=Text(zh="示例县政务服务中心", en="Demo County Government Service Centre"),
                    print_materials=materials, ticket=TicketInfo(
                        ticket_id="2026-11-23-B007", number="B007", service_id="passport",
                        service_name=Text(zh="普通护照申领", en="Ordinary passport"),
                        department_name=Text(zh="公安局", en="Public Security Bureau"),
                        ticket_class=ticket_class, status=TicketStatus.WAITING,
                        issued_at=datetime(2026, 11, 23, 1, 5, tzinfo=UTC), people_ahead=3,
                        estimated_minutes=45, windows=[6, 21],
                        materials=[Text(zh="居民身份证", en="ID card"),
                                   Text(zh="出入境证件申请表（需本人签名）", en="Form, signed")],
                        status_url=URL))


def printer(layout: Layout, device_id: str) -> PrinterDevice:
    device = layout.device(device_id)
    assert isinstance(device, PrinterDevice)
    return device


def test_80mm_gb18030_bytes(layout: Layout) -> None:
    data = render(job(), printer(layout, "P1"), layout.hall)
    assert data.startswith(b"\x1b\x40\x1c\x26")  # ESC @ then FS & (Chinese mode)
    assert b"\x1d\x21\x33\x1b\x45\x01\x1b\x61\x01B007\n" in data  # GS ! 4x4, bold, centred
    assert "【优先】Priority\n".encode("gb18030") in data
    # Full-width punctuation is sent in the printer's encoding, not as '?'.
    assert "前面还有 3 人，预计等候约 45 分钟".encode("gb18030") in data
    assert "，".encode("gb18030") == b"\xa3\xac"
    assert "取号时间 Issued: 2026-11-23 09:05".encode("gb18030") in data  # local time (UTC+8)
    # Native QR (GS ( k): store the URL, then print it.
    store = b"\x1d\x28\x6b" + bytes([len(URL) + 3, 0]) + b"\x31\x50\x30" + URL.encode()
    assert store in data and b"\x1d\x28\x6b\x03\x00\x31\x51\x30" in data
    # Feed and full cut, then back to plain left-aligned text for whatever prints next.
    assert data.endswith(b"\x1b\x64\x06\x1d\x56\x00" + b"\x1b\x21\x00" * 3 + b"\x1b\x45\x00\x1b\x61\x00")
    assert b"?" not in data.replace(b"t/Q7x", b"")


def test_58mm_gbk_without_native_qr_or_cutter(layout: Layout) -> None:
    data = render(job(), printer(layout, "P2"), layout.hall)
    assert b"\x1d\x21\x22\x1b\x45\x01\x1b\x61\x01B007\n" in data  # 3x3 on narrow paper
    assert "一次性告知：请备齐以下材料\n".encode("gbk") in data
    assert b"\x1d\x28\x6b" not in data and b"\x1d\x76\x30" in data  # an image, GS v 0
    assert b"\x1d\x56" not in data  # POS-5890 has no cutter


def read_back(data: bytes, encoding: str) -> tuple[list[Line], list[str], bool]:
    decoder = EscPosDecoder()
    events = []
    for i in range(0, len(data), 13):  # bytes arrive in pieces
        events += decoder.feed(data[i:i + 13])
    assert not [e for e in events if isinstance(e, Unknown)]
    lines = [e for e in events if isinstance(e, Line)]
    qr = [e.payload.decode() for e in events if isinstance(e, QrCode)]
    rasters = [e for e in events if isinstance(e, Raster)]
    return lines, qr + (decode_raster_qr(rasters) if rasters else []), any(
        isinstance(e, Cut) for e in events)


@pytest.mark.parametrize(("device", "encoding", "cut"), [("P1", "gb18030", True), ("P2", "gbk", False)])
def test_decoded_ticket_equals_the_input(layout: Layout, device: str, encoding: str, cut: bool) -> None:
    lines, qr, was_cut = read_back(render(job(), printer(layout, device), layout.hall), encoding)
    texts = [line.data.decode(encoding) for line in lines]
    big = [t for t, line in zip(texts, lines, strict=True) if line.width >= 3]
    assert big == ["B007"]
    assert "普通护照申领" in texts and "示例县政务服务中心" in texts
    assert "2.出入境证件申请表（需本人签名）" in "".join(texts).replace(" ", "")  # wrapped to the paper
    assert qr == [URL]
    assert was_cut is cut


def test_utf8_printer(layout: Layout) -> None:
    utf8 = printer(layout, "P1").model_copy(update={"encoding": "utf-8"})
    data = render(job(), utf8, layout.hall)
    assert "普通护照申领".encode() in data
    lines, _qr, _cut = read_back(data, "utf-8")
    assert "普通护照申领" in [line.data.decode() for line in lines]


def test_materials_are_optional(layout: Layout) -> None:
    data = render(job(materials=False), printer(layout, "P1"), layout.hall)
    assert "居民身份证".encode("gb18030") not in data


@given(st.binary(max_size=300))
def test_random_bytes_never_break_the_decoder(data: bytes) -> None:
    decoder = EscPosDecoder()
    decoder.feed(data)
    decoder.feed(b"\n")
