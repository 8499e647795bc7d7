"""The sans-IO sign-in throttle and session table, with the time passed in; the users file as the
web re-reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall_devices.web.guard import Sessions, Throttle, ThrottleRules
from hall_devices.web.users import UserDirectory, UsersError, add_user, parse_windows, set_password, set_role

RULES = ThrottleRules(free=3, backoff_s=2.0, max_backoff_s=8.0, forget_after_s=100.0)


def test_the_backoff_starts_after_the_free_attempts_doubles_and_stops_at_the_maximum() -> None:
    throttle = Throttle(RULES)
    keys = ["user:ana", "address:10.0.0.9"]
    assert [throttle.attempt(keys, 0.0) for _ in range(2)] == [0.0, 0.0]
    assert throttle.attempt(keys, 0.0) == 0.0  # the third counts, and locks for 2 s
    assert throttle.attempt(keys, 1.0) == 1.0  # refused, not counted
    assert throttle.attempt(keys, 2.0) == 0.0  # allowed again: the fourth locks for 4 s
    assert throttle.wait_s(keys, 2.0) == 4.0
    assert throttle.attempt(keys, 6.0) == 0.0 and throttle.wait_s(keys, 6.0) == 8.0
    assert throttle.attempt(keys, 14.0) == 0.0 and throttle.wait_s(keys, 14.0) == 8.0  # at most 8 s


def test_each_key_counts_on_its_own_and_success_or_time_forgets_it() -> None:
    throttle = Throttle(RULES)
    for _ in range(3):
        throttle.attempt(["user:ana", "address:a"], 0.0)
    assert throttle.attempt(["user:ana", "address:b"], 0.5) > 0  # the user is locked from anywhere
    assert throttle.attempt(["user:bo", "address:a"], 0.5) > 0  # the address is locked for anyone
    assert throttle.attempt(["user:bo", "address:b"], 0.5) == 0.0
    throttle.succeeded(["user:bo", "address:b"])
    assert throttle.wait_s(["user:bo", "address:b"], 0.5) == 0.0
    for _ in range(2):
        throttle.attempt(["user:cai"], 10.0)
    assert throttle.attempt(["user:cai"], 200.0) == 0.0  # forgotten: this is a first failure again
    assert throttle.attempt(["user:cai"], 200.0) == 0.0


def test_a_session_ends_when_idle_too_old_or_its_user_changed() -> None:
    sessions = Sessions(idle_s=60, absolute_s=300)
    stamps = {"ana": "s1", "bo": "t1"}
    cookie = sessions.begin("ana", "s1", now=0.0, window=3)
    found = sessions.find(cookie, stamps, now=50.0)
    assert found is not None and found.window == 3
    assert sessions.find(cookie, stamps, now=100.0) is not None  # used at 50: idle only 50 s
    assert sessions.find(cookie, stamps, now=161.0) is None  # idle 61 s
    assert sessions.find(cookie, stamps, now=162.0) is None  # and gone for good
    old = sessions.begin("ana", "s1", now=0.0)
    for t in range(50, 300, 50):
        assert sessions.find(old, stamps, now=float(t)) is not None
    assert sessions.find(old, stamps, now=301.0) is None  # too old, however busy
    changed = sessions.begin("ana", "s1", now=0.0)
    assert sessions.find(changed, {"ana": "s2"}, now=1.0) is None  # password or role changed
    removed = sessions.begin("ana", "s1", now=0.0)
    assert sessions.find(removed, {"bo": "t1"}, now=1.0) is None  # user removed
    assert sessions.find("made-up", stamps, now=1.0) is None and sessions.find(None, stamps, 1.0) is None


def test_ending_a_user_ends_all_their_sessions_only() -> None:
    sessions = Sessions(idle_s=60, absolute_s=300)
    stamps = {"ana": "s1", "bo": "t1"}
    mine = [sessions.begin("ana", "s1", now=0.0) for _ in range(3)]
    theirs = sessions.begin("bo", "t1", now=0.0)
    assert sessions.end_user("ana") == 3
    assert all(sessions.find(c, stamps, 1.0) is None for c in mine)
    assert sessions.find(theirs, stamps, 1.0) is not None
    sessions.end(theirs)
    assert sessions.find(theirs, stamps, 1.0) is None and len(sessions) == 0


def test_the_users_file_is_read_again_when_it_changes_and_a_broken_one_keeps_the_last(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "ana", "manager", "Lantern-Hall-42")
    directory = UserDirectory(path)
    stamp = directory.users["ana"].stamp
    set_role(path, "ana", "clerk")
    directory.refresh()
    assert directory.users["ana"].role == "clerk" and directory.users["ana"].stamp != stamp
    path.write_text("[[users]]\nname = 'bo'\n", encoding="utf-8")  # edited by hand, wrongly
    with pytest.raises(UsersError, match=r"users\[0\] needs name, role"):
        directory.refresh()
    directory.refresh()  # said once, not at every request
    assert list(directory.users) == ["ana"]
    path.unlink()
    directory.refresh()
    assert directory.users == {}


def test_a_clerks_windows_are_kept_and_changing_them_changes_the_stamp(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    add_user(path, "gu", "clerk", "Lantern-Hall-42", (1, 2))
    directory = UserDirectory(path)
    gu = directory.users["gu"]
    assert gu.windows == (1, 2) and gu.may_open(2) and not gu.may_open(3)
    set_password(path, "gu", "Harbour-Gate-77")  # a new password keeps the windows
    directory.refresh()
    assert directory.users["gu"].windows == (1, 2)
    stamp = directory.users["gu"].stamp
    set_role(path, "gu", "clerk", (2,))  # other windows end the sessions too
    directory.refresh()
    gu = directory.users["gu"]
    assert gu.windows == (2,) and gu.stamp != stamp
    set_role(path, "gu", "manager", ())
    directory.refresh()
    assert directory.users["gu"].may_open(3)  # a manager may open any
    assert parse_windows(" 4, 3,4 ") == (3, 4) and parse_windows("") == ()
    for bad in ("0", "x", "3;4", "99999"):
        with pytest.raises(UsersError, match="bad window number"):
            parse_windows(bad)
    path.write_text("[[users]]\nname = 'bo'\nrole = 'clerk'\npassword = 'x'\nwindows = ['3']\n")
    with pytest.raises(UsersError, match=r"users\[0\].windows must be a list of window numbers"):
        directory.refresh()


def test_a_window_has_one_session_holder() -> None:
    sessions = Sessions(idle_s=10.0, absolute_s=100.0)
    stamps = {"gu": "s1", "hu": "s2"}
    cookie = sessions.begin("gu", "s1", now=0.0, window=2)
    sessions.begin("mgr", "s3", now=0.0)
    holder = sessions.holder(2, stamps, 1.0)
    assert holder is not None and holder.user == "gu" and sessions.holder(1, stamps, 1.0) is None
    assert sessions.holder(2, stamps, 20.0) is None  # idle: the window is free again
    assert sessions.find(cookie, stamps, 20.0) is None
    sessions.begin("hu", "s2", now=30.0, window=2)
    assert sessions.end_window(2) == 1 and sessions.holder(2, stamps, 30.0) is None
