"""`hall-devices web-user add|list|remove|role|passwd`: the web's users, edited while it runs.

A password is typed at a prompt (twice, not echoed) or read from standard input with
``--password-stdin`` (one line, for scripts); never from the command line, where other accounts can
read it. It must pass :func:`~hall_devices.web.users.password_problem`. A running web sees each change
at its next request: a removed user, a changed role or password ends that user's sessions at once.
Each change is written to the audit trail as ``user_added``, ``user_removed``, ``user_role_changed``
or ``user_password_set`` by ``account@host (command line)``. A clerk carries the windows it may
open (``--windows 3,4`` on ``add`` and ``role``; changing them ends the clerk's sessions too).
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from pathlib import Path

from hall_devices.settings import Settings
from hall_devices.web.audit import AuditError, AuditLog, audit_file
from hall_devices.web.users import (
    ROLES,
    Role,
    UsersError,
    add_user,
    load_users,
    parse_windows,
    password_problem,
    remove_user,
    set_password,
    set_role,
)

AUDITED = {"add": "user_added", "remove": "user_removed", "role": "user_role_changed",
           "passwd": "user_password_set"}


class PasswordError(Exception):
    """The password given is empty, weak or not confirmed; the message says which."""


def read_password(name: str, from_stdin: bool) -> str:
    """The new password of ``name``, from standard input or a prompt; raises :class:`PasswordError`."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"{name} 的新密码 / new password for {name}: ")
        if getpass.getpass("再输一次 / again: ") != password:
            raise PasswordError("两次输入不一致 / the two passwords differ")
    problem = password_problem(name, password)
    if problem:
        raise PasswordError(problem)
    return password


def add_parsers(tools: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The subcommands of `web-user`; each runs :func:`run`."""
    def command(name: str, text: str, *, user: bool = True, password: bool = False,
                role: bool = False) -> None:
        sub = tools.add_parser(name, help=text)
        if user:
            sub.add_argument("name", help="the user's sign-in name")
        if role:
            sub.add_argument("--role", choices=ROLES, required=True,
                             help="manager: every page; clerk: the console of the windows of --windows")
            sub.add_argument("--windows", default=None, metavar="3,4",
                             help="the windows a clerk may open, e.g. 3,4 (a clerk needs at least one; "
                                  "managers may open any)")
        if password:
            sub.add_argument("--password-stdin", action="store_true",
                             help="read the password from standard input (one line) instead of a prompt")
        sub.add_argument("--file", type=Path, help="users file (default: settings.web_users)")
        sub.set_defaults(run=run, action=name)

    command("add", "add a user (password from a prompt or --password-stdin)", password=True, role=True)
    command("list", "list the users and their roles", user=False)
    command("remove", "remove a user; that user's sessions end at once")
    command("role", "change a user's role; that user's sessions end at once", role=True)
    command("passwd", "set a user's password; that user's sessions end at once", password=True)


# Present on an installed hall PC (the Debian package); /usr/bin/hall-devices loads it.
PRODUCTION_ENV = Path("/etc/hall/common.env")


def run(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file or settings.web_users
    action: str = args.action
    if not path.is_absolute() and PRODUCTION_ENV.is_file():
        # The development default (./var/hall) on an installed PC: a file the web never reads.
        print(f"未修改 / not changed: 本机已安装大厅配置 {PRODUCTION_ENV}，但用户文件 {path} 是当前目录下的"
              "相对路径，网页不会读取。请用 sudo hall-devices web-user ... / this PC has the hall's "
              f"settings ({PRODUCTION_ENV}) but the users file {path} is relative to the current "
              "folder, where the web never looks: run `sudo hall-devices web-user ...` (the installed "
              f"command loads {PRODUCTION_ENV}) or give --file /var/lib/hall/users.toml",
              file=sys.stderr)
        return 1
    try:
        if action == "list":
            users = load_users(path) if path.exists() else {}
            if not users:
                print(f"没有网页用户 / no web users in {path}"
                      f"{'' if path.exists() else ' (the file does not exist yet)'}: "
                      "add one with `hall-devices web-user add NAME --role manager`")
            for user in users.values():
                windows = ["windows " + ",".join(map(str, user.windows))] if user.role == "clerk" else []
                print("\t".join([user.name, user.role, *windows]
                                + (["demo password"] if user.demo else [])))
            return 0
        name: str = args.name
        done = _change(path, action, name, args)
    except (UsersError, PasswordError) as exc:
        print(f"未修改 / not changed: {exc}", file=sys.stderr)
        return 1
    except (OSError, EOFError, KeyboardInterrupt) as exc:
        print(f"未修改 / not changed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"{done} (in {path})")
    try:
        AuditLog(audit_file(settings.data_dir)).record(
            f"{getpass.getuser()}@{socket.gethostname()} (command line)", AUDITED[action], name,
            detail=" ".join(filter(None, [getattr(args, "role", None), getattr(args, "windows", None)
                                          and f"windows {args.windows}"])))
    except AuditError as exc:
        print(f"警告 / warning: changed, but not in the audit trail: {exc}", file=sys.stderr)
    return 0


def _change(path: Path, action: str, name: str, args: argparse.Namespace) -> str:
    if action == "add":
        if path.exists() and name in load_users(path):
            raise UsersError(f"user {name!r} exists: use `web-user passwd` or `web-user role`")
        role: Role = args.role
        windows = _windows(role, args.windows)
        add_user(path, name, role, read_password(name, args.password_stdin), windows)
        return f"added {role} {name}" + (f" for window(s) {args.windows}" if windows else "")
    if action == "remove":
        remove_user(path, name)
        return f"removed {name}"
    if action == "role":
        old = load_users(path).get(name)
        keep = args.windows is None and args.role == "clerk" and old is not None and bool(old.windows)
        set_role(path, name, args.role, None if keep else _windows(args.role, args.windows))
        return f"{name} is now {args.role}" + (f" for window(s) {args.windows}" if args.windows else "")
    if name not in load_users(path):
        raise UsersError(f"no user {name!r} in {path}")
    set_password(path, name, read_password(name, args.password_stdin))
    return f"password of {name} set"


def _windows(role: Role, given: str | None) -> tuple[int, ...]:
    """The windows of ``--windows`` for ``role``: a clerk needs at least one; a manager none."""
    windows = parse_windows(given or "")
    if role == "clerk" and not windows:
        raise UsersError("a clerk needs the windows it may open: --windows 3 (or 3,4)")
    if role == "manager" and windows:
        raise UsersError("a manager may open every window: leave out --windows")
    return windows
