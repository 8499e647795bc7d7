"""The booking platform's bearer tokens: the web reads the clients file again when it changes."""

from __future__ import annotations

import os
from pathlib import Path

from hall_devices.web.api_clients import ApiClients, add_client


def test_a_renewed_token_is_seen_even_within_one_clock_tick(tmp_path: Path) -> None:
    # A file's time moves in clock ticks: a renewal written in the tick the web last read the file
    # in keeps its time, and the old token (the one renewing revokes) must not stay valid.
    path = tmp_path / "api-clients.json"
    old = add_client(path, "platform")
    clients = ApiClients(path)
    assert clients.who(old) == "platform"
    before = path.stat()
    new = add_client(path, "platform")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick
    assert path.stat().st_size == before.st_size  # a renewal is the same size, too
    assert clients.who(old) is None
    assert clients.who(new) == "platform"
