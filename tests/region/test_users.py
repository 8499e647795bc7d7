"""The regional dashboard's users file: written back whole, every entry as it was read."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall_devices.region.users import load_region_users, set_region_password
from hall_devices.web.users import hash_password


@pytest.mark.parametrize("name", ['chen"wei', "region\\chen", "li\\bming", "王\tfang"])
def test_a_password_change_keeps_every_name_as_written(tmp_path: Path, name: str) -> None:
    users = tmp_path / "users.toml"
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    entries = [(quoted, "auditor", "a-pass"), ("zhao", "region_manager", "z-pass")]
    users.write_text("".join(f'[[users]]\nname = "{n}"\nrole = "{r}"\npassword = "{hash_password(p)}"\n'
                             for n, r, p in entries), encoding="utf-8")
    assert set(load_region_users(users)) == {name, "zhao"}
    set_region_password(users, "zhao", "Winter-Hall-2031")
    assert set(load_region_users(users)) == {name, "zhao"}
