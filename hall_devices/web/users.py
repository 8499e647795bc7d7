"""Web users: managers and clerks, with PBKDF2-hashed passwords in a TOML file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["manager", "clerk"]
ITERATIONS = 200_000


class UsersError(Exception):
    pass


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(computed, base64.b64decode(digest))


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str


def load_users(path: Path) -> dict[str, User]:
    if not path.exists():
        raise UsersError(f"no users file at {path}: add users with `hall-devices web user add`")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    users = {}
    for i, row in enumerate(data.get("users", [])):
        if row.get("role") not in ("manager", "clerk") or not row.get("name") or not row.get("password"):
            raise UsersError(f"{path}: users[{i}] needs name, role (manager or clerk) and password")
        users[row["name"]] = User(row["name"], row["role"], row["password"])
    return users


def add_user(path: Path, name: str, role: Role, password: str) -> None:
    users = load_users(path) if path.exists() else {}
    users[name] = User(name, role, hash_password(password))
    lines = ["# Web users; passwords are PBKDF2-SHA256 hashes. Edit with `hall-devices web user add`.", ""]
    for user in users.values():
        lines += ["[[users]]", f'name = "{user.name}"', f'role = "{user.role}"',
                  f'password = "{user.password_hash}"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)
