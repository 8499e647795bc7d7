"""Keyed hash and masks of an ID number; the reader session's command cycle, sans-IO."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from hall_devices.demo.sim.idcard import DEMO_CARDS
from hall_devices.idcard.codec import Command, encode_command, encode_reply, read_reply_data
from hall_devices.idcard.identity import (
    IdNumberError,
    check_digit,
    hall_key,
    id_hash,
    mask_id,
    mask_name,
    normalise,
)
from hall_devices.idcard.session import CardPresented, CardUnreadable, ModuleChanged, ReaderSession
from hall_devices.settings import Settings


def test_check_digit_follows_gb_11643() -> None:
    # The standard's own example number: 11010519491231002X.
    assert check_digit("11010519491231002") == "X"
    assert normalise(" 11010519491231002x ") == "11010519491231002X"
    with pytest.raises(IdNumberError, match="check digit") as refused:
        normalise("110105194912310021")
    assert "110105194912310021" not in str(refused.value)
    with pytest.raises(IdNumberError, match="17 digits"):
        normalise("12345")


def test_the_hash_is_keyed_and_the_masks_hide_the_middle() -> None:
    number = DEMO_CARDS[0].id_number
    assert id_hash(b"hall-a", number) == id_hash(b"hall-a", number.lower())
    assert id_hash(b"hall-a", number) != id_hash(b"hall-b", number)
    assert len(id_hash(b"hall-a", number)) == 64 and number not in id_hash(b"hall-a", number)
    assert mask_id(number) == number[:3] + "*" * 11 + number[-4:]
    assert mask_name("张三丰") == "张**" and mask_name("李四") == "李*"


def test_the_hall_key_is_made_once_in_a_private_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = hall_key(settings)
    assert key == hall_key(settings) and len(key) == 64
    assert stat.S_IMODE(os.stat(tmp_path / "data" / "id-secret").st_mode) == 0o600
    assert hall_key(Settings(data_dir=tmp_path, id_secret=SecretStr("given"))) == b"given"


def test_session_checks_the_sam_then_finds_selects_and_reads_a_card_once() -> None:
    session = ReaderSession(poll_s=0.3, gone_polls=2)
    assert session.next_command(0.0) == encode_command(Command.SAM_STATUS)
    assert session.next_command(0.1) is None  # one command outstanding
    events, follow = session.receive(encode_reply(0x90), 0.1)
    assert events == [ModuleChanged(True)] and follow is None
    assert session.next_command(0.2) is None  # the next poll is not due
    assert session.next_command(0.4) == encode_command(Command.FIND_CARD)
    events, follow = session.receive(encode_reply(0x9F, bytes(4)), 0.5)
    assert follow == encode_command(Command.SELECT_CARD)
    events, follow = session.receive(encode_reply(0x90, bytes(8)), 0.6)
    assert follow == encode_command(Command.READ_TEXT)
    card = encode_reply(0x90, read_reply_data(DEMO_CARDS[1]))
    events, follow = session.receive(card[:100], 0.7)
    assert events == [] and follow is None
    events, follow = session.receive(card[100:], 0.8)
    assert events == [CardPresented(DEMO_CARDS[1])]
    # The card stays: read again, not reported again; gone twice, then back: reported again.
    for at, replies in ((1.2, [encode_reply(0x9F, bytes(4)), encode_reply(0x90, bytes(8)), card]),
                        (1.6, [encode_reply(0x80)]), (2.0, [encode_reply(0x80)]),
                        (2.4, [encode_reply(0x9F, bytes(4)), encode_reply(0x90, bytes(8)), card])):
        assert session.next_command(at) == encode_command(Command.FIND_CARD)
        seen = []
        for reply in replies:
            seen += session.receive(reply, at)[0]
        assert seen == ([CardPresented(DEMO_CARDS[1])] if at == 2.4 else [])


def test_session_reports_a_failed_read_and_a_silent_or_faulty_module() -> None:
    session = ReaderSession(poll_s=0.3, reply_timeout_s=1.0)
    session.next_command(0.0)
    assert session.receive(encode_reply(0x60), 0.1)[0] == [ModuleChanged(False, "SAM self-test failed")]
    assert session.next_command(0.5) == encode_command(Command.SAM_STATUS)  # asked again, not find
    assert session.receive(encode_reply(0x90), 0.6)[0] == [ModuleChanged(True)]
    session.next_command(1.0)
    session.receive(encode_reply(0x9F, bytes(4)), 1.0)
    session.receive(encode_reply(0x90, bytes(8)), 1.0)
    assert session.receive(encode_reply(0x41), 1.1)[0] == [CardUnreadable("module: reading the card failed")]
    session.next_command(1.3)
    session.receive(encode_reply(0x9F, bytes(4)), 1.3)
    session.receive(encode_reply(0x90, bytes(8)), 1.3)
    assert session.receive(encode_reply(0x41), 1.3)[0] == []  # still the same card: told once
    assert session.next_command(1.7) == encode_command(Command.FIND_CARD)
    assert session.check_timeout(2.2) == []
    assert session.check_timeout(2.8) == [ModuleChanged(False, "not_responding")]
    assert session.next_command(3.2) == encode_command(Command.SAM_STATUS)


def test_session_deadline_is_the_next_poll_or_the_reply_timeout() -> None:
    session = ReaderSession(poll_s=0.3, reply_timeout_s=1.0)
    assert session.next_deadline() == 0.0  # the SAM status is due at once
    session.next_command(0.0)
    assert session.next_deadline() == 1.0  # a reply is awaited: its timeout
    session.receive(encode_reply(0x90), 0.1)
    assert session.next_deadline() == 0.4  # answered: the next poll
    assert session.next_command(0.39) is None and session.next_command(0.4) is not None
    assert session.check_timeout(1.39) == [] and session.check_timeout(1.4) != []  # due at the deadline
