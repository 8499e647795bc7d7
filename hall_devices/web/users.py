"""Web users: managers and clerks, with PBKDF2-hashed passwords in a TOML file (mode 0600).

The file is the one source of truth: `hall-devices web-user` edits it, a running web re-reads it
when it changes (no restart), and a session stays valid only while its user's entry is unchanged
(see :attr:`User.stamp`), so removing a user, changing a role or a password ends that user's
sessions at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

Role = Literal["manager", "clerk"]
ROLES: tuple[Role, ...] = ("manager", "clerk")
ITERATIONS = 200_000
MIN_LENGTH = 10
# The passwords `hall-devices up` gives its demo users; a production web refuses them.
DEMO_PASSWORDS = frozenset({"manager-demo", "clerk-demo"})
# The demo's accounts; users files written before the ``demo`` flag existed are checked against these.
DEMO_ACCOUNTS = {"manager": "manager-demo", "clerk": "clerk-demo"}
U = TypeVar("U")
_COMMON = frozenset({"password", "password1", "1234567890", "0123456789", "qwertyuiop", "12345678910",
                     "administrator", "changeme12", "abcdefghij", "a123456789", "1qaz2wsx3edc"})


class UsersError(Exception):
    """The users file cannot be read or changed; the message names the file, user or rule."""


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``pbkdf2_sha256$iterations$salt$digest`` (base64); ~0.1 s of CPU: call it off the event loop."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` result; ~0.1 s, off the event loop."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(computed, base64.b64decode(digest))


def password_problem(name: str, password: str) -> str | None:
    """Why ``password`` is too weak for user ``name`` (Chinese / English), or None if it will do.

    Rules: at least 10 characters, letters and at least one digit or sign, not the user name, not a
    demo or well-known password.
    """
    if not password:
        return "密码不能为空 / the password is empty"
    if len(password) < MIN_LENGTH:
        return f"密码至少 {MIN_LENGTH} 个字符 / the password needs at least {MIN_LENGTH} characters"
    if password in DEMO_PASSWORDS or password.lower() in _COMMON or name.lower() in password.lower():
        return "密码太容易猜到 / the password is too easy to guess (demo, common or the user name)"
    letters = any(c.isalpha() for c in password)
    others = any(not c.isalpha() for c in password)
    if not (letters and others):
        return "密码需同时包含字母和数字或符号 / the password needs letters and a digit or sign"
    return None


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string, quotes included: what the users files are written with, so
    an entry's name reads back as it was (a quote, a backslash or a control character escaped)."""
    out = ["\\" + ch if ch in '"\\' else f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch
           for ch in text]
    return '"' + "".join(out) + '"'


def make_stamp(*parts: str) -> str:
    """16 hex digits that change whenever any of ``parts`` does (what a session is bound to)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str
    demo: bool = False  # made by `hall-devices up` with a demo password
    # The windows a clerk may open (numbers of the layout); empty: none. Managers are not confined.
    windows: tuple[int, ...] = ()

    @property
    def stamp(self) -> str:
        """Changes whenever the role, password or windows do: a session is bound to the stamp it
        began with."""
        return make_stamp(self.role, self.password_hash, ",".join(map(str, self.windows)))

    def may_open(self, window: int) -> bool:
        """Whether this user may sign in to ``window``: a manager any, a clerk only its own."""
        return self.role == "manager" or window in self.windows


def parse_windows(text: str) -> tuple[int, ...]:
    """``"3,4"`` as ``(3, 4)`` (sorted, no repeats); ``""`` as ``()``. Raises :class:`UsersError`."""
    numbers = set()
    for part in text.split(","):
        if part.strip():
            if not part.strip().isdecimal() or len(part.strip()) > 4 or int(part) < 1:
                raise UsersError(f"bad window number {part.strip()[:20]!r}: windows are given as 3,4")
            numbers.add(int(part))
    return tuple(sorted(numbers))


def user_rows(path: Path, error: type[Exception], missing: str) -> list[dict[str, Any]]:
    """The ``[[users]]`` tables of a users file (the hall's or the region's). Raises ``error``
    naming the file: ``missing`` when there is none, or why it cannot be read."""
    if not path.exists():
        raise error(missing)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"cannot read the users file {path}: {exc}") from exc
    rows = data.get("users", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise error(f"{path}: users must be [[users]] tables")
    return rows


def load_users(path: Path) -> dict[str, User]:
    """Every user of the file by name. Raises :class:`UsersError` naming the file and entry."""
    users = {}
    rows = user_rows(path, UsersError, f"no users file at {path}: add users with `hall-devices web-user add`")
    for i, row in enumerate(rows):
        if row.get("role") not in ROLES or not row.get("name") or not row.get("password"):
            raise UsersError(f"{path}: users[{i}] needs name, role (manager or clerk) and password")
        windows = row.get("windows", [])
        if not isinstance(windows, list) or not all(isinstance(w, int) and w >= 1 for w in windows):
            raise UsersError(f"{path}: users[{i}].windows must be a list of window numbers, like [3, 4]")
        users[row["name"]] = User(row["name"], row["role"], row["password"], bool(row.get("demo", False)),
                                  tuple(sorted(set(windows))))
    return users


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write the file whole (a temporary file renamed over it), created 0600: no half-written file.
    Run as root, it keeps the owner and group of the file it replaces, or takes its folder's
    (:func:`give_like`). Raises OSError when the folder cannot be written."""
    lines = ["# Web users; passwords are PBKDF2-SHA256 hashes. Edit with `hall-devices web-user`.", ""]
    for user in users.values():
        lines += ["[[users]]", f"name = {toml_string(user.name)}", f'role = "{user.role}"',
                  f'password = "{user.password_hash}"'] + (["demo = true"] if user.demo else []) + (
                      [f"windows = [{', '.join(map(str, user.windows))}]"] if user.windows else []) + [""]
    write_private(path, "\n".join(lines))


def write_private(path: Path, text: str) -> None:
    """``text`` as the whole of ``path``: a temporary file, created 0600 (and, run as root, given
    the owner of the file it replaces, :func:`give_like`), renamed over it, so no reader ever sees
    half a file. Raises OSError when the folder cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        give_like(handle.fileno(), path if path.exists() else path.parent)
        handle.write(text)
    os.replace(temporary, path)


def give_like(fd: int, like: Path) -> None:
    """Run as root (``sudo hall-devices web-user ...``): the open file ``fd`` gets the owner and group
    of ``like`` (the file it replaces, else its folder: /var/lib/hall, the web's state directory,
    owned by the service user ``hall``), so the web can still read and write it. Anyone else cannot
    give a file away: it stays theirs, which is the web's own when run as the web's user."""
    if os.geteuid() == 0:
        found = os.stat(like)
        os.fchown(fd, found.st_uid, found.st_gid)


def _check_name(name: str) -> None:
    if not name or len(name) > 32 or not all(c.isalnum() or c in "._-" for c in name):
        raise UsersError(f"bad user name {name!r}: 1-32 letters, digits, '.', '_' or '-'")


def add_user(path: Path, name: str, role: Role, password: str, windows: tuple[int, ...] = ()) -> None:
    """Add ``name`` or replace its role, password and windows (the windows a clerk may open). An
    empty password is refused (strength rules are the caller's: :func:`password_problem`); a demo
    password marks the user as a demo user."""
    _check_name(name)
    if not password:
        raise UsersError("密码不能为空 / the password is empty")
    users = load_users(path) if path.exists() else {}
    users[name] = User(name, role, hash_password(password), password in DEMO_PASSWORDS, windows)
    save_users(path, users)


def remove_user(path: Path, name: str) -> None:
    users = load_users(path)
    if users.pop(name, None) is None:
        raise UsersError(f"no user {name!r} in {path}")
    save_users(path, users)


def set_role(path: Path, name: str, role: Role, windows: tuple[int, ...] | None = None) -> None:
    """Change the role of ``name`` and, unless None, the windows it may open (kept otherwise)."""
    users = load_users(path)
    if name not in users:
        raise UsersError(f"no user {name!r} in {path}")
    old = users[name]
    users[name] = User(name, role, old.password_hash, old.demo, old.windows if windows is None else windows)
    save_users(path, users)


def set_password(path: Path, name: str, password: str) -> None:
    users = load_users(path)
    if name not in users:
        raise UsersError(f"no user {name!r} in {path}")
    add_user(path, name, users[name].role, password, users[name].windows)


class FileDirectory(Generic[U]):
    """A users file as a running web sees it: re-read with ``load`` whenever it changes on disk
    (size, time, inode). The hall's web reads :class:`User` entries, the regional dashboard its own."""

    def __init__(self, path: Path, load: Callable[[Path], dict[str, U]]) -> None:
        self.path = path
        self._load = load
        self._seen: tuple[int, int, int] | None = None
        self.users: dict[str, U] = {}
        self.refresh()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def refresh(self) -> None:
        """Re-read the file if it changed. A file that became unreadable keeps the last good users
        and raises ``load``'s error once (the caller logs it; the next change is read again); a
        removed file means no users."""
        signature = self._signature()
        if signature == self._seen:
            return
        self._seen = signature
        self.users = self._load(self.path) if signature is not None else {}

    def get(self, name: str) -> U | None:
        return self.users.get(name)


class UserDirectory(FileDirectory[User]):
    """The hall web's users file (:func:`load_users`: raises :class:`UsersError`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, load_users)
