"""The reader link, sans-IO: which command to send next, and what the module's replies mean.

One command is outstanding at a time. The cycle is SAM status once (and again after a fault), then
find card every ``poll_s``; on "found" select, then read the text. A card that stays on the reader
is reported once (read or unreadable); again only after it was seen gone ``gone_polls`` times in a row.
Time is passed in (seconds, monotonic). Events out: :class:`CardPresented`, :class:`CardUnreadable`,
:class:`ModuleChanged`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hall_devices.idcard.codec import (
    CARD_FOUND,
    STATUS_TEXT,
    SUCCESS,
    CardText,
    Command,
    Corrupt,
    FrameDecoder,
    IdCardCodecError,
    Reply,
    encode_command,
    parse_reply,
    read_reply_text,
)

CARD_ABSENT = (0x80, 0x81)


@dataclass(frozen=True)
class CardPresented:
    text: CardText = field(repr=False)


@dataclass(frozen=True)
class CardUnreadable:
    reason: str  # "module: <status meaning>" or "garbled: <codec problem>"


@dataclass(frozen=True)
class ModuleChanged:
    ok: bool
    reason: str | None = None  # "not_responding", "garbled", or the SAM's status meaning


Event = CardPresented | CardUnreadable | ModuleChanged


class ReaderSession:
    def __init__(self, poll_s: float = 0.3, reply_timeout_s: float = 1.5, gone_polls: int = 2) -> None:
        self.poll_s = poll_s
        self.reply_timeout_s = reply_timeout_s
        self.gone_polls = gone_polls
        self.decoder = FrameDecoder()
        self.module_ok: bool | None = None
        self._waiting: Command | None = None
        self._sent_at = 0.0
        self._next_at = 0.0
        self._checked = False  # SAM status answered 90 since the last fault
        self._last_card: CardText | None = None
        self._told_unreadable = False  # told once per card placed, not at every poll
        self._gone = 0
        self.garbled = 0

    def next_command(self, now: float) -> bytes | None:
        """The frame to write now, or None (a reply is awaited, or the next poll is not due)."""
        if self._waiting is not None or now < self._next_at:
            return None
        return self._send(Command.FIND_CARD if self._checked else Command.SAM_STATUS, now)

    def _send(self, command: Command, now: float) -> bytes:
        self._waiting, self._sent_at = command, now
        return encode_command(command)

    def receive(self, data: bytes, now: float) -> tuple[list[Event], bytes | None]:
        """Feed bytes read from the port; returns events and a frame to write at once, if any."""
        events: list[Event] = []
        follow: bytes | None = None
        for item in self.decoder.feed(data):
            if isinstance(item, Corrupt):
                self.garbled += 1
                continue
            if self._waiting is None:
                continue  # a late answer to a command that timed out
            try:
                reply = parse_reply(item)
            except IdCardCodecError:
                self.garbled += 1
                continue
            command, self._waiting = self._waiting, None
            follow = self._answer(command, reply, now, events)
        return events, follow

    def _answer(self, command: Command, reply: Reply, now: float, events: list[Event]) -> bytes | None:
        sw3 = reply.sw3
        self._next_at = now + self.poll_s
        if command is Command.SAM_STATUS:
            self._checked = sw3 == SUCCESS
            self._module(events, sw3 == SUCCESS, None if sw3 == SUCCESS else _meaning(sw3))
            return None
        self._module(events, True, None)
        if command is Command.FIND_CARD:
            if sw3 == CARD_FOUND:
                return self._send(Command.SELECT_CARD, now)
            if sw3 in CARD_ABSENT:
                self._absent()
            return None
        if command is Command.SELECT_CARD:
            if sw3 == SUCCESS:
                return self._send(Command.READ_TEXT, now)
            self._absent()
            return None
        # READ_TEXT
        if sw3 != SUCCESS:
            self._unreadable(events, f"module: {_meaning(sw3)}")
            return None
        try:
            text = read_reply_text(reply)
        except IdCardCodecError as exc:
            self._unreadable(events, f"garbled: {exc}")
            return None
        self._gone = 0
        if text != self._last_card:
            self._last_card = text
            events.append(CardPresented(text))
        return None

    def _unreadable(self, events: list[Event], reason: str) -> None:
        self._gone = 0
        if not self._told_unreadable:
            self._told_unreadable = True
            events.append(CardUnreadable(reason))

    def _absent(self) -> None:
        self._gone += 1
        if self._gone >= self.gone_polls:
            self._last_card = None
            self._told_unreadable = False

    def next_deadline(self) -> float:
        """When :meth:`check_timeout` (a reply is awaited) or :meth:`next_command` (none is) next has
        something to do, in the monotonic seconds passed in."""
        if self._waiting is not None:
            return self._sent_at + self.reply_timeout_s
        return self._next_at

    def check_timeout(self, now: float) -> list[Event]:
        """At :meth:`next_deadline`: a command unanswered for ``reply_timeout_s`` faults the module."""
        if self._waiting is None or now < self.next_deadline():
            return []
        self._waiting = None
        self._checked = False
        self._next_at = now + self.poll_s
        events: list[Event] = []
        self._module(events, False, "not_responding")
        return events

    def _module(self, events: list[Event], ok: bool, reason: str | None) -> None:
        if self.module_ok is not ok:
            self.module_ok = ok
            events.append(ModuleChanged(ok, reason))
        if not ok:
            self._checked = False


def _meaning(sw3: int) -> str:
    return STATUS_TEXT.get(sw3, f"unknown status {sw3:02X}")
