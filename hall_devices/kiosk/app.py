"""The touch kiosk: departments → services (or search) → service page → number; appointment check-in.

Portrait 1080×1920. Everything it knows arrives as Qt signals from :class:`KioskLink`; widgets are
touched on the GUI thread only. Honest states: when the coordinator cannot be reached no number is
issued; when the printer cannot print, the number is shown with its QR code or the applicant is sent
to the information desk (the layout's ``paper_out_fallback``); a failed print is shown.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import Any

from PyQt6.QtCore import QEvent, QObject, Qt, QTimer
from PyQt6.QtGui import QResizeEvent
from PyQt6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from hall_devices.contract import (
    CardRead,
    HelpRequest,
    PrintResult,
    QueueSummary,
    TicketClass,
    TicketInfo,
    TicketReply,
)
from hall_devices.contract import Text as Words
from hall_devices.kiosk.elder import ELDER_STYLE, ENLARGE, Reader, enlarge
from hall_devices.kiosk.link import KioskLink
from hall_devices.kiosk.pages import LetterKeyboard, Page, button, clear, label, qr_pixmap
from hall_devices.kiosk.search import build_index, search
from hall_devices.kiosk.texts import TEXTS, refusal, tr
from hall_devices.layout import KioskDevice, Layout, Service
from hall_devices.mqtt.bus import BusError

log = logging.getLogger(__name__)
STANDARD_STYLE = ("QWidget { background: #f4f7fb; color: #10243e; } "
                  "QPushButton { background: #1f5fbf; color: white; border-radius: 12px; "
                  "padding: 12px; } QPushButton:disabled { background: #9aa7b8; }")


class KioskWindow(QWidget):
    phone = ""  # a mobile number left for reminders, for the next ticket only

    def __init__(self, layout: Layout, kiosk: KioskDevice, link: KioskLink, *,  # noqa: PLR0915 - a signal a line
                 idle_s: float = 60.0, result_s: float = 20.0, reader: Reader | None = None) -> None:
        super().__init__()
        self.layout_ = layout
        self.kiosk = kiosk
        self.link = link
        self.lang = "zh"
        self.summary: QueueSummary | None = None
        self.index = build_index(layout)
        self.query = ""
        self.code = ""
        self.shown_ticket: TicketInfo | None = None
        self.shown_job: str | None = None
        self.card: CardRead | None = None  # the ID card read for the applicant at the kiosk now
        self.page_name = "home"
        self._last_page: tuple[str, Any] = ("home", None)
        self.typed = QLabel()
        self.results = QVBoxLayout()
        self.check_in_button = QPushButton()
        self._busy = False
        self.setWindowTitle(f"{layout.hall.name.zh} 取号机 {kiosk.id}")
        self.setStyleSheet(STANDARD_STYLE)
        self.header = label(layout.hall.name.zh, points=26, bold=True, center=True)
        self.lang_button = button(tr("language", "zh"), self.toggle_language, points=20, name="lang")
        self.home_button = button(tr("home", "zh"), self.show_home, points=20, name="home")
        self.banner = label(points=22, bold=True, center=True)
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet("background: #b3261e; color: white; padding: 16px;")
        self.banner.hide()
        self.page = Page()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.page)
        tools = self._tools(reader)
        top = QHBoxLayout()
        top.addWidget(self.home_button)
        top.addWidget(self.header, 1)
        top.addWidget(self.lang_button)
        outer = QVBoxLayout(self)
        outer.addLayout(top)
        outer.addLayout(tools)
        outer.addWidget(self.banner)
        outer.addWidget(self.stack, 1)
        self.idle = QTimer(self)
        self.idle.setSingleShot(True)
        self.idle.timeout.connect(self.on_idle)
        self.idle_ms, self.result_ms = int(idle_s * 1000), int(result_s * 1000)
        link.summary_changed.connect(self.on_summary)
        link.coordinator_changed.connect(self.on_availability)
        link.printer_changed.connect(lambda _ok: self.on_availability(None))
        link.ticket_answered.connect(self.on_ticket)
        link.print_finished.connect(self.on_print)
        link.card_read.connect(self.on_card)
        link.layout_changed.connect(self.on_layout)
        self.show_home()
        self.on_availability(None)

    # --- plumbing ---------------------------------------------------------------------------------

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.lang, **values)

    def name(self, service: Service) -> str:
        return service.name.zh if self.lang == "zh" else service.name.en

    def eventFilter(self, watched: QObject | None, event: QEvent | None) -> bool:  # noqa: N802 - Qt's name
        if event is not None and event.type() == QEvent.Type.MouseButtonPress and self.page_name != "home":
            self.idle.start(self.idle_ms)  # any touch keeps the page
        return False

    def _show(self, name: str, argument: Any = None, timeout_ms: int | None = None) -> None:
        self.page_name = name
        self.back_button.setEnabled(name != "home")
        if self.elder:
            enlarge(self.page)
        # landscape and the demo window: smaller, never cut off or below the fold; the demo's
        # half-size window (a mouse, not a finger) may have smaller buttons than a real screen
        # sparse pages (a service, the ticket) grow to use the screen: no empty lower half
        self.page.fit(floor_px=75 if min(self.width(), self.height()) >= 1000 else 40,
                      largest=2.0 if name in ("service", "result") else 1.0)
        if self.elder:
            self.read_aloud()
        if name != "result":
            self._last_page = (name, argument)
        if name == "home":
            self.idle.stop()
        else:
            self.idle.start(timeout_ms or self.idle_ms)

    def toggle_language(self) -> None:
        self.lang = "en" if self.lang == "zh" else "zh"
        self.header.setText(self.layout_.hall.name.zh if self.lang == "zh" else self.layout_.hall.name.en)
        self.lang_button.setText(self.t("language"))
        self.home_button.setText(self.t("home"))
        for tool, key in ((self.back_button, "back"), (self.help_button, "help")):
            tool.setText(self.t(key))
        self.elder_button.setText(self.t("standard" if self.elder else "elder"))
        self.rerender()

    def rerender(self) -> None:
        """The page shown, built again (language or mode changed)."""
        name, argument = self._last_page
        if name == "department":
            self.show_department(argument)
        elif name == "service":
            self.show_service(argument)
        elif name == "search":
            self.show_search()
        elif name == "appointment":
            self.show_appointment()
        else:
            self.show_home()
        self.on_availability(None)

    def can_issue(self) -> bool:
        return self.link.coordinator_up and not self._busy

    def on_availability(self, _reachable: bool | None) -> None:
        if not self.link.coordinator_up:
            desk = self.layout_.hall.info_desk.zh if self.lang == "zh" else self.layout_.hall.info_desk.en
            self.banner.setText(self.t("unavailable", desk=desk))
            self.banner.show()
        else:
            self.banner.hide()
        for widget in self.findChildren(QWidget):
            if widget.objectName() in ("take", "take-priority"):
                widget.setEnabled(self.can_issue() and self.accepting(self._last_page[1]))
            elif widget.objectName() == "check-in":
                widget.setEnabled(self.can_issue() and bool(self.code))

    def on_summary(self, summary: QueueSummary) -> None:
        shown = self._last_page[1] if self.page_name == "service" else None
        before = self.windows_open(shown) if shown else None
        self.summary = summary
        if shown and self.windows_open(shown) != before:
            self.show_service(shown)  # its windows all signed out, or one came back

    def windows_open(self, service_id: str) -> tuple[int | None, bool]:
        """(signed-in windows serving it, still issuing) by the coordinator's queue summary."""
        for row in self.summary.services if self.summary else []:
            if row.service_id == service_id:
                return row.open_windows, row.accepting
        return None, True

    def accepting(self, service_id: object) -> bool:
        return not isinstance(service_id, str) or self.windows_open(service_id)[1]

    def waiting(self, service_id: str) -> tuple[int, int]:
        for row in self.summary.services if self.summary else []:
            if row.service_id == service_id:
                # the figure the ticket will print (people ahead), not all who wait for the service
                return (row.waiting if row.ahead is None else row.ahead), row.estimated_minutes
        return 0, 0

    def on_layout(self, layout: Layout) -> None:
        """The layout the coordinator now runs: new services and names show at once. A number
        being shown or asked for stays; a page whose department or service is gone goes home."""
        self.layout_ = layout
        self.index = build_index(layout)
        self.header.setText(layout.hall.name.zh if self.lang == "zh" else layout.hall.name.en)
        if self.page_name == "result" or self._busy:
            return  # the next page drawn is the new layout's
        name, argument = self._last_page
        known = {s.id for s in layout.services} | {d.id for d in layout.departments}
        if name in ("department", "service") and argument not in known:
            self.show_home()
        elif name == "department":
            self.show_department(argument)
        elif name == "service":
            self.show_service(argument)
        elif name == "search":
            self._search_results()
        elif name == "home":
            self._home()  # the applicant's card and phone, if any, stay

    # --- pages ------------------------------------------------------------------------------------

    def show_home(self) -> None:
        self.card = None
        self.phone = ""
        self._home()

    def _home(self) -> None:
        self.page.reset(self.t("welcome"))
        if self.card is not None:  # a card without a booking: its holder chooses a service
            greeting = label(self.t("card_no_booking", name=self.card.masked_name), points=24, bold=True,
                             center=True)
            greeting.setObjectName("card-greeting")
            self.page.body.addWidget(greeting)
        grid = QWidget()
        cells = QGridLayout(grid)
        for i, department in enumerate(self.layout_.departments):
            text = department.name.zh if self.lang == "zh" else department.name.en
            # elder mode: fewer, larger choices; landscape: use the width
            columns = 1 if self.elder else 4 if self.width() > self.height() else 2
            cells.addWidget(button(text, partial(self.show_department, department.id), points=24,
                                   height=140, name=f"dept-{department.id}"), i // columns, i % columns)
        self.page.body.addWidget(grid)
        self.page.body.addWidget(button(self.t("search"), self.show_search, name="search"))
        self.page.body.addWidget(button(self.t("appointment"), self.show_appointment, name="appointment"))
        self.page.body.addStretch(1)
        self._show("home")

    def _service_button(self, service: Service) -> QPushButton:
        waiting, minutes = self.waiting(service.id)
        text = f"{self.name(service)}\n{self.t('waiting', waiting=waiting, minutes=minutes)}"
        return button(text, partial(self.show_service, service.id), points=22, height=130,
                      name=f"service-{service.id}")

    def show_department(self, department_id: str) -> None:
        department = self.layout_.department(department_id)
        self.page.reset(department.name.zh if self.lang == "zh" else department.name.en)
        for service in self.layout_.services:
            if service.department == department_id:
                self.page.body.addWidget(self._service_button(service))
        self.page.body.addStretch(1)
        self._show("department", department_id)

    def show_search(self) -> None:
        self.page.reset(self.t("search"))
        self.page.body.addWidget(label(self.t("search_hint"), points=20))
        self.typed = label(points=34, bold=True, center=True)
        self.typed.setObjectName("query")
        self.page.body.addWidget(self.typed)
        holder = QWidget()
        self.results = QVBoxLayout(holder)
        self.page.body.addWidget(holder)
        self.page.body.addWidget(LetterKeyboard(self._search_key, columns=self._key_columns()))
        self._search_results()
        self._show("search")

    def _search_results(self) -> None:
        """Only the typed letters and the results change as keys are pressed."""
        self.typed.setText(self.query or "…")
        clear(self.results)
        found = search(self.index, self.query)
        for service_id in found[:3 if self.elder else 6]:
            self.results.addWidget(self._service_button(self.layout_.service(service_id)))
        if self.query and not found:
            self.results.addWidget(label(self.t("no_results"), center=True))

    def _search_key(self, key: str) -> None:
        self.query = "" if key == "CLEAR" else self.query[:-1] if key == "DELETE" else self.query + key
        self._search_results()

    def show_service(self, service_id: str) -> None:
        if self.page_name in ("search", "department"):
            self._came_from = self.page_name  # where 返回 leads
        service = self.layout_.service(service_id)
        department = self.layout_.department(service.department)
        self.page.reset(self.name(service))
        waiting, minutes = self.waiting(service_id)
        windows = "、".join(str(w) for w in self.layout_.windows_serving(service_id))
        self.page.body.addWidget(label(department.name.zh if self.lang == "zh" else department.name.en,
                                       points=22, center=True))
        waiting_label = label(self.t("waiting", waiting=waiting, minutes=minutes), points=24, bold=True,
                              center=True)
        waiting_label.setObjectName("service-waiting")
        self.page.body.addWidget(waiting_label)
        self.page.body.addWidget(label(self.t("windows", windows=windows), points=20, center=True))
        open_windows, accepting = self.windows_open(service_id)
        if open_windows == 0:  # 暂停取号, or a warning: the hall's policy no_window_kiosk
            notice = label(self.t("no_window_stop" if not accepting else "no_window_warn"), points=24,
                           bold=True, center=True)
            notice.setObjectName("no-window")
            self.page.body.addWidget(notice)
        self.page.body.addWidget(label(self.t("materials"), points=22, bold=True))
        for i, item in enumerate(service.materials, start=1):
            self.page.body.addWidget(label(f"{i}. {item.zh if self.lang == 'zh' else item.en}", points=20))
        take = button(self.t("take"), lambda: self.take(service_id, TicketClass.NORMAL), points=30,
                      height=150, name="take")
        priority = button(self.t("take_priority"), lambda: self.take(service_id, TicketClass.PRIORITY),
                          points=22, height=120, name="take-priority")
        for widget in (take, priority):
            widget.setEnabled(self.can_issue() and accepting)
            self.page.body.addWidget(widget)
        if self.phone:
            masked = f"{self.phone[:3]}****{self.phone[-4:]}"
            self.page.body.addWidget(label(self.t("phone_set", phone=masked), points=20, center=True))
        self.page.body.addWidget(button(self.t("phone"), partial(self.show_phone, service_id), points=20,
                                        name="phone"))
        self.page.body.addStretch(1)
        self._show("service", service_id)

    def show_phone(self, service_id: str) -> None:
        self.page.reset(self.t("phone"))
        self.page.body.addWidget(label(self.t("phone_hint"), points=20))
        self.typed = label(self.phone or "…", points=34, bold=True, center=True)
        self.typed.setObjectName("phone-typed")
        self.page.body.addWidget(self.typed)
        self.page.body.addWidget(LetterKeyboard(self._phone_key, digits=True, letters=False))
        self.page.body.addWidget(button(self.t("phone_ok"), partial(self._phone_done, service_id), points=28,
                                        height=120, name="phone-ok"))
        self._show("phone", service_id)

    def _phone_key(self, key: str) -> None:
        self.phone = "" if key == "CLEAR" else self.phone[:-1] if key == "DELETE" else (self.phone + key)[:11]
        self.typed.setText(self.phone or "…")

    def _phone_done(self, service_id: str) -> None:
        if self.phone and not re.fullmatch(r"1[3-9][0-9]{9}", self.phone):
            self.typed.setText(self.t("phone_bad"))
            self.phone = ""
            return
        self.show_service(service_id)

    def show_appointment(self) -> None:
        self.page.reset(self.t("appointment"))
        self.page.body.addWidget(label(self.t("appointment_hint"), points=20))
        self.typed = label(self.code or "…", points=34, bold=True, center=True)
        self.typed.setObjectName("code")
        self.page.body.addWidget(self.typed)
        self.page.body.addWidget(label(self.t("card_hint"), points=20))
        self.page.body.addWidget(LetterKeyboard(self._code_key, digits=True, columns=self._key_columns()))
        self.check_in_button = button(self.t("check_in"), lambda: self.check_in(self.code), points=28,
                                      height=130, name="check-in")
        self.check_in_button.setEnabled(self.can_issue() and bool(self.code))
        self.page.body.addWidget(self.check_in_button)
        self._show("appointment")

    def _code_key(self, key: str) -> None:
        self.code = "" if key == "CLEAR" else self.code[:-1] if key == "DELETE" else (self.code + key)[:32]
        self.typed.setText(self.code or "…")
        self.check_in_button.setEnabled(self.can_issue() and bool(self.code))

    # --- taking a number --------------------------------------------------------------------------

    def check_in(self, code: str) -> None:
        """From the keypad or the 2D barcode scanner."""
        if code:
            self.code = ""
            self._request(None, TicketClass.APPOINTMENT, code)

    def take(self, service_id: str, ticket_class: TicketClass) -> None:
        self._request(service_id, ticket_class, None, phone=self.phone or None)
        self.phone = ""

    def on_card(self, card: CardRead) -> None:
        """A card on the reader: check in its holder's booking; without one, a normal ticket."""
        if self._busy:
            return
        if not card.ok:
            self.card = None
            key = "card_unreadable" if card.problem == "unreadable" else "card_not_valid"
            self._message(self.t(key, desk=self._desk()))
            return
        self.card = card
        self._request(None, TicketClass.APPOINTMENT, None, id_hash=card.id_hash)

    def _request(self, service_id: str | None, ticket_class: TicketClass, code: str | None,
                 id_hash: str | None = None, phone: str | None = None) -> None:
        if not self.can_issue():
            self.on_availability(None)
            return
        paper = self.link.printer_ok
        if not paper and self.kiosk.paper_out_fallback == "info_desk":
            self._message(self.t("no_paper_desk", desk=self._desk()))
            return
        self._busy = True
        self.on_availability(None)
        self._message(self.t("asking"), name="asking", done=False)
        self.link.request_ticket(service_id, ticket_class, code, paper, id_hash=id_hash, phone=phone)

    def _desk(self) -> str:
        desk = self.layout_.hall.info_desk
        return desk.zh if self.lang == "zh" else desk.en

    def on_ticket(self, answer: object) -> None:
        self._busy = False
        self.on_availability(None)
        if isinstance(answer, BusError):
            self._message(self.t("busy"))
            return
        assert isinstance(answer, TicketReply)
        if not answer.ok or answer.ticket is None:
            code = answer.error.code if answer.error else "other"
            log.info("ticket request %s refused: %s", answer.command_id, answer.error)
            if code == "no_booking_for_card" and self.card is not None:
                self._home()  # the card still takes a normal ticket: choose a service
                return
            if f"refused_{code}" in TEXTS:  # the service's own state: what the applicant can do now
                self._message(self.t(f"refused_{code}"))
                return
            self._message(refusal(code, self.lang, self._desk()))
            return
        self.show_result(answer.ticket, answer.print_job_id)

    def _message(self, text: str, name: str = "message", done: bool = True) -> None:
        self.page.reset("")
        message = label(text, points=28, bold=True, center=True)
        message.setObjectName(name)
        self.page.body.addWidget(message)
        if done:
            self.page.body.addWidget(button(self.t("done"), self.show_home, name="done"))
        self.page.body.addStretch(1)
        self._show(name, timeout_ms=self.result_ms)

    def show_result(self, ticket: TicketInfo, job_id: str | None) -> None:
        self.shown_ticket, self.shown_job = ticket, job_id
        service = self.layout_.service(ticket.service_id)
        self.page.reset(self.t("your_number"))
        number = label(ticket.number, points=96, bold=True, center=True)
        number.setObjectName("number")
        self.page.body.addWidget(number)
        if ticket.ticket_class is not TicketClass.NORMAL:
            self.page.body.addWidget(label(f"【{self.t('class_' + ticket.ticket_class.value)}】", points=28,
                                           bold=True, center=True))
        self.page.body.addWidget(label(self.name(service), points=26, center=True))
        if self.card is not None and self.card.masked_name and self.card.masked_id:
            holder = label(self.t("card_holder", name=self.card.masked_name, number=self.card.masked_id),
                           points=22, center=True)
            holder.setObjectName("card-holder")
            self.page.body.addWidget(holder)
            self.card = None  # this ticket is the card's; the next applicant starts afresh
        ahead = label(self.t("ahead", ahead=ticket.people_ahead, minutes=ticket.estimated_minutes),
                      points=24, center=True)
        ahead.setObjectName("ahead")
        self.page.body.addWidget(ahead)
        windows = "、".join(str(w) for w in ticket.windows)
        self.page.body.addWidget(label(self.t("windows", windows=windows), points=22, center=True))
        if ticket.status_url:
            qr = QLabel()
            qr.setObjectName("qr")
            qr.setPixmap(qr_pixmap(ticket.status_url))
            qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.page.body.addWidget(qr)
            self.page.body.addWidget(label(self.t("scan_me"), points=20, center=True))
        status = label(self.t("printing") if job_id else self.t("no_paper_qr"), points=24, bold=True,
                       center=True)
        status.setObjectName("print-status")
        self.page.body.addWidget(status)
        self.page.body.addWidget(button(self.t("done"), self.show_home, name="done"))
        self._show("result", timeout_ms=self.result_ms)

    def on_print(self, result: PrintResult) -> None:
        if self.page_name != "result" or result.command_id != self.shown_job:
            return
        status = self.findChild(QLabel, "print-status")
        if status is None:
            return
        if result.ok:
            status.setText(self.t("printed"))
        else:
            status.setText(self.t("print_failed"))  # never hidden: the applicant and staff see it
            status.setStyleSheet("color: #b3261e;")

    # --- Back, elder mode, 呼叫帮办 ---------------------------------------------------------------

    def _tools(self, reader: Reader | None) -> QVBoxLayout:
        """The second row of the bar, on every page: 返回, 长辈模式, 呼叫帮办 (two rows of three
        fit the 540 px demo window as well as a 1080 px kiosk), and the help request's state."""
        self._came_from = "department"
        self._refit = QTimer(self)
        self._refit.setSingleShot(True)
        self._refit.timeout.connect(self._fit_again)
        self.elder = False  # 长辈模式: one tap, until the kiosk idles back home
        self.reader = reader or Reader()
        self.link.help_changed.connect(self.on_help)
        self.back_button = button(tr("back", "zh"), self.go_back, points=20, name="back")
        self.elder_button = button(tr("elder", "zh"), self.toggle_elder, points=20, name="elder")
        self.help_button = button(tr("help", "zh"), self.ask_help, points=20, name="help")
        self.help_status = label(points=22, bold=True, center=True)
        self.help_status.setObjectName("help-status")
        self.help_status.setStyleSheet("background: #1b6e3a; color: white; padding: 12px;")
        self.help_status.hide()
        row = QHBoxLayout()
        for tool in (self.back_button, self.elder_button, self.help_button):
            row.addWidget(tool, 1)
        tools = QVBoxLayout()
        tools.addLayout(row)
        tools.addWidget(self.help_status)
        return tools

    def resizeEvent(self, event: QResizeEvent | None) -> None:  # noqa: N802 - Qt's name
        """A new size (the demo window, a rotated screen): the page is laid out again to fit it."""
        super().resizeEvent(event)
        small = self.width() < 700  # the demo's window: a lower bar leaves room for the page
        for tool in (self.home_button, self.lang_button, self.back_button, self.elder_button,
                     self.help_button):
            tool.setMinimumHeight(60 if small else 100)
        if not self._refit.isActive():  # after Qt has laid the window out at its new size
            self._refit.start(0)

    def _fit_again(self) -> None:
        if self.page_name in ("home", "department", "service", "search", "appointment"):
            self.rerender()

    def _key_columns(self) -> int:
        return 12 if self.width() > self.height() else 6 if self.width() < 700 else 7

    def go_back(self) -> None:
        """One step up: service → its department (or search), anything else → home."""
        name, argument = self._last_page
        if self.page_name == "service" and name == "service" and isinstance(argument, str):
            if self._came_from == "search":
                self.show_search()
            else:
                self.show_department(self.layout_.service(argument).department)
        else:
            self.show_home()

    def toggle_elder(self) -> None:
        """长辈模式 on or off: large text, high contrast, fewer choices, pages read aloud."""
        self.elder = not self.elder
        self.setStyleSheet(ELDER_STYLE if self.elder else STANDARD_STYLE)
        self.elder_button.setText(self.t("standard" if self.elder else "elder"))
        tools = (self.header, self.home_button, self.lang_button, self.back_button, self.elder_button,
                 self.help_button, self.help_status, self.banner)
        for widget in tools:  # the bar stays; its text grows and shrinks with the mode
            chosen = widget.font()
            chosen.setPointSize(round(chosen.pointSize() * (ENLARGE if self.elder else 1 / ENLARGE)))
            widget.setFont(chosen)
        if not self.elder:
            self.reader.stop()
        self.rerender()

    def read_aloud(self) -> None:
        """The page's title, then what it says and offers, in order."""
        parts = [self.page.title.text()]
        for widget in self.page.findChildren(QLabel) + self.page.findChildren(QPushButton):
            if widget is not self.page.title and widget.text() and not widget.objectName().startswith("key-"):
                parts.append(widget.text().replace("\n", "，"))
        self.reader.read("。".join(parts[:12]))

    def on_idle(self) -> None:
        """Nobody touched the kiosk: home, and the next applicant starts in the standard mode."""
        if self.elder:
            self.toggle_elder()
        self.show_home()

    def ask_help(self) -> None:
        desk = self.layout_.hall.info_desk
        where = self.kiosk.location
        location = Words(zh=where.zh, en=where.en) if where else Words(zh=f"取号机 {self.kiosk.id}",
                                                                      en=f"kiosk {self.kiosk.id}")
        if self.link.ask_help(location) is None:
            self._help_text(self.t("help_failed", desk=desk.zh if self.lang == "zh" else desk.en))

    def on_help(self, request: HelpRequest) -> None:
        if request.state == "closed":
            self.help_status.hide()
        else:
            self._help_text(self.t("help_answered" if request.state == "answered" else "help_open"))

    def _help_text(self, text: str) -> None:
        self.help_status.setText(text)
        self.help_status.show()
