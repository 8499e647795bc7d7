"""What the hall keeps of an ID number: a keyed hash to match bookings, a masked form to show.

The clear number lives only in the reader agent's memory for the time of one read (and in the booking
intake's for one request). The key is the hall's own secret (``HALL_ID_SECRET``, or a 0600 file made
once in the data directory), so a leaked hash cannot be looked up in a table of all valid numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from hall_devices.settings import Settings

ID_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")
HASH_PATTERN = r"^[0-9a-f]{64}$"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"  # GB 11643-1999 (ISO 7064 MOD 11-2)


class IdNumberError(ValueError):
    """Not a valid 18-digit citizen identity number; the message never repeats the number."""


def normalise(id_number: str) -> str:
    """Upper-case, stripped, validated (format and check digit). Raises :class:`IdNumberError`."""
    value = id_number.strip().upper()
    if not ID_PATTERN.match(value):
        raise IdNumberError(f"an ID number has 17 digits and a digit or X; got {len(value)} characters")
    if check_digit(value[:17]) != value[17]:
        raise IdNumberError("the ID number's check digit does not match (GB 11643)")
    return value


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def id_hash(key: bytes, id_number: str) -> str:
    """HMAC-SHA256 of the normalised number under the hall key, 64 hex digits."""
    return hmac.new(key, normalise(id_number).encode("ascii"), hashlib.sha256).hexdigest()


def mask_id(id_number: str) -> str:
    """First 3 and last 4 characters: ``110***********123X``."""
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]


def mask_name(name: str) -> str:
    """The first character and one star per other character: ``张**``."""
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def hall_key(settings: Settings) -> bytes:
    """The hall's key: ``settings.id_secret``, else ``data_dir/id-secret`` (made once, mode 0600)."""
    if settings.id_secret is not None:
        return settings.id_secret.get_secret_value().encode()
    path = Path(settings.data_dir) / "id-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()
