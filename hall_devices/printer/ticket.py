"""The paper ticket: ESC/POS bytes for one print job, for 80 mm and 58 mm paper.

Commands are encoded by python-escpos on a recording printer with the printer's profile (native QR
where the profile has it, an image otherwise; a cut where it has a cutter). Text is ours: Chinese
mode (FS &) and the printer's own encoding, so full-width punctuation prints as itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta, timezone

from escpos.printer import Dummy

from hall_devices.contract import PrintJob, TicketClass
from hall_devices.layout import Hall, PrinterDevice
from hall_devices.printer.wrap import NBSP, display_width, wrap

INIT = b"\x1b\x40"  # ESC @: every ticket starts here
CHINESE_ON = b"\x1c\x26"  # FS &
LF = b"\n"
# Every ticket's first bytes. They print nothing (a reset and a mode), so the runner may send them
# with its DLE EOT 1, before the printer has said it is online.
SETUP = INIT + CHINESE_ON
CLASS_MARK = {TicketClass.GREEN: ("绿色通道", "Green channel"),
              TicketClass.APPOINTMENT: ("预约", "Appointment"),
              TicketClass.TRANSFERRED: ("转办", "Transferred"),
              TicketClass.PRIORITY: ("优先", "Priority")}


@dataclass(frozen=True)
class PaperProfile:
    """What differs between printers, as data."""

    profile: str
    encoding: str
    columns: int  # half-width characters per line in font A
    number_size: int  # character magnification of the ticket number
    qr_size: int

    @classmethod
    def of(cls, printer: PrinterDevice) -> PaperProfile:
        wide = printer.paper_mm == 80
        return cls(printer.profile, printer.encoding, 48 if wide else 32, 4 if wide else 3,
                   6 if wide else 5)


def _quiet_escpos() -> None:
    # python-escpos warns about profile media widths on every printer it makes.
    logging.getLogger("escpos").setLevel(logging.ERROR)


class _Page:
    """The ticket's bytes: our text as is, escpos commands taken from its recording printer in turn
    (``output`` then ``clear``, its public API), so nothing of ours passes through its encoder."""

    def __init__(self, paper: PaperProfile) -> None:
        _quiet_escpos()
        self.paper = paper
        self.out = Dummy(profile=paper.profile)
        self._data = bytearray()

    def raw(self, data: bytes) -> None:
        self._commands()
        self._data += data

    def _commands(self) -> None:
        """Move what escpos has encoded so far behind what is already on the page."""
        self._data += self.out.output
        self.out.clear()

    def line(self, text: str = "", *, align: str = "left", bold: bool = False, size: int = 1) -> None:
        if size > 1:
            self.out.set(align=align, bold=bold, custom_size=True, width=size, height=size)
        else:
            self.out.set(align=align, bold=bold, normal_textsize=True)
        self.raw(text.encode(self.paper.encoding, errors="replace") + LF)

    def wrapped(self, text: str, indent: str = "", *, align: str = "left", bold: bool = False) -> None:
        """Wrap by display width (a Chinese character takes two columns) at sensible boundaries."""
        for line in wrap(text, self.paper.columns, indent):
            self.line(line, align=align, bold=bold)

    def bilingual(self, zh: str, en: str, *, align: str = "left") -> None:
        """One line when both fit, else the Chinese and the English each on their own lines."""
        if display_width(f"{zh} {en}") <= self.paper.columns:
            self.line(f"{zh} {en}", align=align)
        else:
            self.wrapped(zh, align=align)
            self.wrapped(en, align=align)

    def qr(self, payload: str) -> None:
        native = bool(self.out.profile.supports("qrCode"))
        # An image QR is sent as a bitmap: every module size step costs seconds at 9600 baud.
        size = self.paper.qr_size if native else 3
        self.out.qr(payload, native=native, size=size, center=not native)
        if native:
            self.out.set(align="center")

    def cut(self) -> None:
        self.out.cut()
        self.out.set(align="left", normal_textsize=True, bold=False)

    def bytes(self) -> bytes:
        self._commands()
        return bytes(self._data)


def render(job: PrintJob, printer: PrinterDevice, hall: Hall) -> bytes:
    paper = PaperProfile.of(printer)
    page = _Page(paper)
    ticket = job.ticket
    page.raw(SETUP)
    page.wrapped(job.hall_name.zh, align="center", bold=True)
    page.wrapped(job.hall_name.en, align="center")
    page.line("-" * paper.columns)
    page.wrapped(ticket.service_name.zh, align="center", bold=True)
    page.wrapped(ticket.service_name.en, align="center")
    page.line(ticket.number, align="center", bold=True, size=paper.number_size)
    if ticket.ticket_class in CLASS_MARK:
        zh, en = CLASS_MARK[ticket.ticket_class]
        page.wrapped(f"【{zh}】{en}", align="center", bold=True)
    if job.reprint:
        page.line("（补打 / reprint）", align="center")
    page.wrapped(f"前面还有 {ticket.people_ahead} 人，预计等候约 {ticket.estimated_minutes} 分钟")
    page.wrapped(f"{ticket.people_ahead} ahead, about {ticket.estimated_minutes} min")
    local = ticket.issued_at.astimezone(timezone(timedelta(hours=hall.utc_offset_hours)))
    page.wrapped(f"取号时间 Issued: {local:%Y-%m-%d}{NBSP}{local:%H:%M}")
    windows = "、".join(str(w) for w in ticket.windows)
    page.wrapped(f"办理窗口 Windows: {windows}")
    if ticket.status_url:
        page.qr(ticket.status_url)
        page.bilingual("扫码查看排队进度", "Scan for your place", align="center")
    if job.print_materials and ticket.materials:
        page.wrapped("一次性告知：请备齐以下材料", bold=True)
        for i, item in enumerate(ticket.materials, start=1):
            page.wrapped(f"{i}. {item.zh}", indent="   ")
    footer = job.footer
    if footer is not None:
        page.line("-" * paper.columns)
        page.wrapped(footer.zh)
        page.wrapped(footer.en)
    page.wrapped("过号请到窗口说明，可重新激活。", align="center")
    page.cut()
    return page.bytes()
