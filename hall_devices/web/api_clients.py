"""The booking platform's API clients: one bearer token each, kept only as its SHA-256 (0600 file).

A token is 32 random bytes (URL-safe text), shown once when the client is added; with that much
entropy a plain SHA-256 cannot be reversed, so no slow hash is needed. File: JSON
``{"clients": {"<name>": {"sha256": "<hex>", "added": "<ISO time>"}}}``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,23}$")


class ApiClientsError(Exception):
    """The clients file cannot be read or a client name is refused; the message names which."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_clients(path: Path) -> dict[str, str]:
    """name → token digest; an absent file is no clients."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {str(name): str(entry["sha256"]) for name, entry in data["clients"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ApiClientsError(f"cannot read API clients file {path}: {exc}") from exc


def add_client(path: Path, name: str) -> str:
    """Add (or renew) client ``name``; returns its new token, which is not kept anywhere."""
    if not NAME.match(name):
        raise ApiClientsError(f"client name {name!r}: letters, digits, _ . -, at most 24")
    token = secrets.token_urlsafe(32)
    data = {"clients": {n: {"sha256": d} for n, d in read_clients(path).items()}}
    data["clients"][name] = {"sha256": _digest(token), "added": dt.datetime.now(dt.UTC).isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=1)
    tmp.replace(path)
    return token


class ApiClients:
    """Who a bearer token belongs to; the file is read again when it changes (a client added)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[tuple[int, int, int], dict[str, str]] | None = None

    def who(self, token: str) -> str | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        # Not the time alone: it moves in clock ticks, and a renewal (same size) written in the
        # tick of the last read would leave the revoked token valid. Each write is a new file.
        signature = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._seen is None or self._seen[0] != signature:
            self._seen = (signature, read_clients(self.path))
        digest = _digest(token)
        for name, known in self._seen[1].items():
            if hmac.compare_digest(digest, known):
                return name
        return None
