"""An ID card reader module on a pty: answers SAM status, find, select and read like the real one.

``place(card)`` puts a card on the reader, ``remove()`` takes it away. Switches: ``sam_fault`` (SAM
status 60), ``read_fails`` (read answers 41), ``garbled`` (every reply's check byte is wrong),
``silent`` (no answers); ``port.unplug()`` pulls the cable. The cards carry invented people with
valid check digits (GB 11643); no real person's number is used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from hall_devices.demo.sim.port import PortSimulator
from hall_devices.idcard.codec import (
    CARD_FOUND,
    SUCCESS,
    CardText,
    Command,
    Frame,
    FrameDecoder,
    IdCardCodecError,
    encode_reply,
    parse_command,
    read_reply_data,
)
from hall_devices.idcard.identity import check_digit


def demo_card(name: str, first17: str, sex: str = "1") -> CardText:
    """A made-up card; ``first17`` gets its check digit appended."""
    return CardText(name=name, sex=sex, nation="01", birth=first17[6:14],
                    address="湖北省鄂州市鄂城区演示路1号", id_number=first17 + check_digit(first17),
                    authority="鄂州市公安局鄂城分局",
                    valid_from="20200101", valid_to="20400101")


DEMO_CARDS = (
    demo_card("张三丰", "42070219800101001"),
    demo_card("李四", "42070219920315002", sex="2"),
    demo_card("王小五", "42070420010720003"),
)


@dataclass
class ReaderSwitches:
    sam_fault: bool = False
    read_fails: bool = False
    garbled: bool = False
    silent: bool = False


class IdCardReaderSimulator(PortSimulator):
    def __init__(self, path: Path) -> None:
        super().__init__(path, "sim-idcard")
        self.switches = ReaderSwitches()
        self.card: CardText | None = None
        self.commands: list[Command | None] = []
        self._decoder = FrameDecoder()
        self._lock = threading.Lock()

    def place(self, card: CardText) -> None:
        with self._lock:
            self.card = card

    def remove(self) -> None:
        with self._lock:
            self.card = None

    def on_bytes(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, Frame):
                reply = self.answer(item)
                if reply is not None:
                    self.port.write(reply)

    def answer(self, item: Frame) -> bytes | None:
        """The module's reply to one host frame (None: no reply)."""
        try:
            command = parse_command(item)
        except IdCardCodecError:
            return encode_reply(0x21)
        self.commands.append(command.command)
        if self.switches.silent:
            return None
        with self._lock:
            card = self.card
        if command.command is Command.SAM_STATUS or command.command is Command.RESET_SAM:
            reply = encode_reply(0x60 if self.switches.sam_fault else SUCCESS)
        elif self.switches.sam_fault:
            reply = encode_reply(0x60)
        elif command.command is Command.FIND_CARD:
            reply = encode_reply(CARD_FOUND, bytes(4)) if card else encode_reply(0x80)
        elif command.command is Command.SELECT_CARD:
            reply = encode_reply(SUCCESS, bytes(8)) if card else encode_reply(0x81)
        elif command.command is Command.READ_TEXT:
            if card is None or self.switches.read_fails:
                reply = encode_reply(0x41)
            else:
                reply = encode_reply(SUCCESS, read_reply_data(card))
        else:
            reply = encode_reply(0x21)
        if self.switches.garbled:
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        return reply
