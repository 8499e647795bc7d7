"""The regional dashboard's users: a TOML file in the hall's format (``[[users]]`` name, role,
PBKDF2 ``password`` hash, mode 0600) with roles of its own, ``region_manager`` and ``auditor``.

A running dashboard re-reads the file when it changes (:class:`~hall_devices.web.users.FileDirectory`)
and binds each session to its user's :attr:`RegionUser.stamp`: a new password, a new role or a
removed entry ends that user's sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from hall_devices.web.users import (
    FileDirectory,
    hash_password,
    make_stamp,
    toml_string,
    user_rows,
    write_private,
)

RegionRole = Literal["region_manager", "auditor"]
ROLE_ZH = {"region_manager": "区域管理员", "auditor": "审计（只读）"}


class RegionWebError(Exception):
    """The users file cannot be read; the message names the file and entry."""


@dataclass(frozen=True)
class RegionUser:
    name: str
    role: RegionRole
    password_hash: str

    @property
    def stamp(self) -> str:
        """Changes whenever the role or password does: a session is bound to the stamp it began with."""
        return make_stamp(self.role, self.password_hash)


def load_region_users(path: Path) -> dict[str, RegionUser]:
    """Every user of the file by name. Raises :class:`RegionWebError` naming the file and entry."""
    users = {}
    for i, row in enumerate(user_rows(path, RegionWebError, f"no users file at {path}")):
        if row.get("role") not in ROLE_ZH or not row.get("name") or not row.get("password"):
            raise RegionWebError(f"{path}: users[{i}] needs name, role (region_manager or auditor) "
                                 "and password")
        users[row["name"]] = RegionUser(row["name"], row["role"], row["password"])
    return users


def region_directory(path: Path) -> FileDirectory[RegionUser]:
    """The users file as the running dashboard sees it (re-read on change). Raises
    :class:`RegionWebError` when it is missing or cannot be read now; later, a removed file means no
    users."""
    if not path.exists():
        raise RegionWebError(f"no users file at {path}")
    return FileDirectory(path, load_region_users)


def save_region_users(path: Path, users: dict[str, RegionUser]) -> None:
    """Write the file whole (a temporary file renamed over it), created 0600, keeping the owner of
    the file it replaces when run as root, as the hall's ``save_users``. Raises OSError."""
    lines = ["# Regional dashboard users; passwords are PBKDF2-SHA256 hashes.", ""]
    for user in users.values():
        lines += ["[[users]]", f"name = {toml_string(user.name)}", f'role = "{user.role}"',
                  f'password = "{user.password_hash}"', ""]
    write_private(path, "\n".join(lines))


def write_region_users(path: Path, users: dict[str, tuple[RegionRole, str]]) -> None:
    """Write a users file from name → (role, plain password); mode 0600."""
    save_region_users(path, {name: RegionUser(name, role, hash_password(password))
                             for name, (role, password) in users.items()})


def set_region_password(path: Path, name: str, password: str) -> None:
    """A new password for ``name`` (the strength rules are the caller's); the other entries are kept
    as they are. Raises :class:`RegionWebError` (no such user, unreadable file) or OSError."""
    users = load_region_users(path)
    if name not in users:
        raise RegionWebError(f"no user {name!r} in {path}")
    users[name] = replace(users[name], password_hash=hash_password(password))
    save_region_users(path, users)
