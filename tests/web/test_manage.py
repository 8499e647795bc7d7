"""`hall-devices web-user`: add, list, role, passwd, remove; passwords from standard input with a
minimum strength; each change effective in the running web at once (no restart), ending that
user's sessions; each change in the audit trail."""

from __future__ import annotations

import contextlib
import io
import os
import select
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hall_devices.cli import main
from hall_devices.web.audit import AuditLog, audit_file
from tests.web.conftest import SecureHall, request


def web_user(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secure: SecureHall,
             *args: str, stdin: str = "") -> tuple[int, str]:
    """The command, in this process, on the running web's files; returns its code and output."""
    monkeypatch.setenv("HALL_WEB_USERS", str(secure.web.users))
    monkeypatch.setenv("HALL_DATA_DIR", str(secure.web.data))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["web-user", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def sign_in(secure: SecureHall, name: str, password: str, window: str = "") -> tuple[int, str]:
    answer = request(secure, "/login", {"username": name, "password": password, "window": window},
                     {"Origin": secure.web.url})
    return answer.status, answer.headers.get("Set-Cookie", "").split(";", 1)[0]


@pytest.mark.parametrize(("password", "problem"), [
    ("", "the password is empty"),
    ("Ab1", "needs at least 10 characters"),
    ("onlyletterspassword", "needs letters and a digit or sign"),
    ("1234567890123", "needs letters and a digit or sign"),
    ("fay-is-my-name-1", "too easy to guess"),
    ("manager-demo", "too easy to guess"),
    ("Password1", "needs at least 10 characters"),
])
def test_an_empty_or_weak_password_is_refused(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], secure: SecureHall,
                                             password: str, problem: str) -> None:
    code, said = web_user(monkeypatch, capsys, secure, "add", "fay", "--role", "manager", "--password-stdin",
                          stdin=password + "\n")
    assert code == 1 and "not changed: " in said and problem in said, said
    code, said = web_user(monkeypatch, capsys, secure, "list")
    assert "fay" not in said


def test_users_change_in_the_running_web_and_their_sessions_end(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], secure: SecureHall) -> None:
    def run(*args: str, stdin: str = "") -> str:
        code, said = web_user(monkeypatch, capsys, secure, *args, stdin=stdin)
        assert code == 0, said
        return said

    run("add", "fay", "--role", "manager", "--password-stdin", stdin="Lantern-Hall-42\n")
    assert "fay\tmanager" in run("list")
    assert stat.S_IMODE(secure.web.users.stat().st_mode) == 0o600
    code, said = web_user(monkeypatch, capsys, secure, "add", "fay", "--role", "clerk", "--password-stdin",
                          stdin="Lantern-Hall-43\n")
    assert code == 1 and "user 'fay' exists" in said
    # Added while the web runs: signs in at once.
    status, fay = sign_in(secure, "fay", "Lantern-Hall-42")
    assert status == 303
    assert request(secure, "/devices", cookie=fay).status == 200
    # A role change ends the session; as a clerk she must now choose a window.
    code, said = web_user(monkeypatch, capsys, secure, "role", "fay", "--role", "clerk")
    assert code == 1 and "a clerk needs the windows it may open: --windows 3" in said
    run("role", "fay", "--role", "clerk", "--windows", "4")
    assert request(secure, "/devices", cookie=fay).status == 303  # back to sign-in
    status, fay = sign_in(secure, "fay", "Lantern-Hall-42", window="4")
    assert status == 303
    assert request(secure, "/devices", cookie=fay).status == 403  # a clerk now
    # A new password ends the session; the old password no longer signs in.
    run("passwd", "fay", "--password-stdin", stdin="Harbour-Gate-77\n")
    assert request(secure, "/console", cookie=fay).status == 303
    assert sign_in(secure, "fay", "Lantern-Hall-42", window="4")[0] == 401
    status, fay = sign_in(secure, "fay", "Harbour-Gate-77", window="4")
    assert status == 303
    # Removal ends the session and the user.
    run("remove", "fay")
    assert request(secure, "/console", cookie=fay).status == 303
    assert sign_in(secure, "fay", "Harbour-Gate-77", window="4")[0] == 401
    assert "fay" not in run("list")
    code, said = web_user(monkeypatch, capsys, secure, "remove", "fay")
    assert code == 1 and "no user 'fay'" in said
    # Every change is in the audit trail, by the account that ran the command.
    rows = AuditLog(audit_file(secure.web.data)).entries(actor=None)
    changes = [(r.action, r.target) for r in rows if r.action.startswith("user_")]
    assert changes[:4] == [("user_removed", "fay"), ("user_password_set", "fay"),
                           ("user_role_changed", "fay"), ("user_added", "fay")]
    assert all(r.actor.endswith("(command line)") for r in rows if r.action.startswith("user_"))


def _until(master: int, text: bytes, seen: bytearray) -> None:
    while text not in seen:
        ready, _, _ = select.select([master], [], [], 30)
        assert ready, f"no {text!r} in {bytes(seen)!r}"
        seen += os.read(master, 1024)


@pytest.mark.skipif(shutil.which("setsid") is None, reason="util-linux's setsid is not installed")
def test_a_password_typed_at_the_prompt_twice_not_echoed(tmp_path: Path) -> None:
    """The terminal path: getpass on a pseudo-terminal that is the command's controlling terminal."""
    users = tmp_path / "users.toml"
    env = {**os.environ, "HALL_WEB_USERS": str(users), "HALL_DATA_DIR": str(tmp_path / "data")}
    outcomes = []
    for first, second in (("Lantern-Hall-42", "Lantern-Hall-43"), ("Lantern-Hall-42", "Lantern-Hall-42")):
        master, slave = os.openpty()
        command = subprocess.Popen(["setsid", "--ctty", sys.executable, "-m", "hall_devices.cli", "web-user",
                                    "add", "gil", "--role", "clerk", "--windows", "3"],
                                   stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        seen = bytearray()
        try:
            _until(master, b"new password for gil: ", seen)
            os.write(master, first.encode() + b"\n")
            _until(master, b"again: ", seen)
            os.write(master, second.encode() + b"\n")
            assert command.wait(30) in (0, 1)
            with contextlib.suppress(OSError):  # the terminal is gone once the command is
                _until(master, b"\n", seen)
                while select.select([master], [], [], 0.5)[0]:
                    seen += os.read(master, 1024)
        finally:
            os.close(master)
            if command.poll() is None:
                command.kill()
                command.wait()
        assert first.encode() not in seen  # typed, not shown
        outcomes.append((command.returncode, bytes(seen).decode(errors="replace")))
    assert outcomes[0][0] == 1 and "the two passwords differ" in outcomes[0][1]
    assert outcomes[1][0] == 0 and "added clerk gil" in outcomes[1][1]
    assert "gil" in users.read_text()


def test_list_says_there_are_no_users_and_shows_each_clerks_windows(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    monkeypatch.setenv("HALL_WEB_USERS", str(users))
    monkeypatch.setenv("HALL_DATA_DIR", str(tmp_path / "data"))
    assert main(["web-user", "list"]) == 0
    said = capsys.readouterr().out
    assert f"没有网页用户 / no web users in {users} (the file does not exist yet)" in said
    monkeypatch.setattr("sys.stdin", io.StringIO("Lantern-Hall-42\n"))
    assert main(["web-user", "add", "gil", "--role", "clerk", "--windows", "4,3", "--password-stdin"]) == 0
    assert main(["web-user", "role", "gil", "--role", "manager", "--windows", "3"]) == 1
    assert "a manager may open every window: leave out --windows" in capsys.readouterr().err
    assert main(["web-user", "role", "gil", "--role", "clerk", "--windows", "3,x"]) == 1
    assert "bad window number 'x'" in capsys.readouterr().err
    assert main(["web-user", "list"]) == 0
    assert capsys.readouterr().out == "gil\tclerk\twindows 3,4\n"
    assert main(["web-user", "remove", "gil"]) == 0
    capsys.readouterr()
    assert main(["web-user", "list"]) == 0
    assert f"no web users in {users}: add one with" in capsys.readouterr().out


def test_sudo_web_user_leaves_files_the_web_can_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Production: /var/lib/hall (the web's StateDirectory) is hall:hall; `sudo hall-devices web-user`
    runs as root. Here `nobody` stands for hall: a folder of its own, the command run as root."""
    import pwd

    if os.geteuid() != 0:
        pytest.skip("needs root: the command run with sudo")
    service = pwd.getpwnam("nobody")
    state = tmp_path / "state"
    state.mkdir(mode=0o750)
    os.chown(state, service.pw_uid, service.pw_gid)
    users, audit = state / "users.toml", audit_file(state)
    monkeypatch.setenv("HALL_WEB_USERS", str(users))
    monkeypatch.setenv("HALL_DATA_DIR", str(state))
    monkeypatch.setattr("sys.stdin", io.StringIO("Tulip-Harbour-4417\n"))
    assert main(["web-user", "add", "amy", "--role", "manager", "--password-stdin"]) == 0, capsys.readouterr()
    for made in (users, audit):
        found = made.stat()
        assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (
            service.pw_uid, service.pw_gid, 0o600), made
    # A file that exists keeps its owner and group (say an operator made it hall:root).
    os.chown(users, service.pw_uid, 0)
    monkeypatch.setattr("sys.stdin", io.StringIO("Quartz-Meadow-9025\n"))
    assert main(["web-user", "passwd", "amy", "--password-stdin"]) == 0, capsys.readouterr()
    found = users.stat()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (service.pw_uid, 0, 0o600)
    assert [p.name for p in state.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_no_users_file_in_the_current_folder_on_an_installed_pc(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from hall_devices.web import manage

    installed = tmp_path / "etc" / "common.env"
    installed.parent.mkdir()
    installed.write_text("HALL_WEB_USERS=/var/lib/hall/users.toml\n")
    monkeypatch.setattr(manage, "PRODUCTION_ENV", installed)  # stands for /etc/hall/common.env
    monkeypatch.delenv("HALL_WEB_USERS", raising=False)
    monkeypatch.delenv("HALL_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("Tulip-Harbour-4417\n"))
    code = main(["web-user", "add", "amy", "--role", "manager", "--password-stdin"])
    said = capsys.readouterr().err
    assert code == 1 and "sudo hall-devices web-user" in said and "relative to the current folder" in said
    assert not (tmp_path / "var").exists()  # neither users file nor audit trail written here
