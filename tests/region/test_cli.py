"""The region's provisioning commands: the regional broker's accounts and a hall's bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from hall_devices.cli import main


def test_region_provision_and_a_halls_bridge(tmp_path: Path) -> None:
    halls = tmp_path / "halls.toml"
    halls.write_text('[[halls]]\nid = "h1"\ndistrict = "420704"\n\n'
                     '[[halls]]\nid = "h2"\ndistrict = "420702"\n', encoding="utf-8")
    out = tmp_path / "region"
    assert main(["region-provision", "--halls", str(halls), "--out", str(out),
                 "--broker-user", "nobody"]) == 0
    acl = (out / "acl").read_text(encoding="utf-8")
    assert "user hall-h1\ntopic read region/420704/h1/resend" in acl
    assert "topic write region/420702/h2/events" in acl and "region/420704/h2" not in acl
    assert oct((out / "passwd").stat().st_mode & 0o777) == "0o600"
    assert (out / "mosquitto.conf").exists() and (out / "tls" / "ca.crt").exists()

    bad = tmp_path / "bad.toml"
    bad.write_text('[[halls]]\nid = "h3"\ndistrict = "4207"\n', encoding="utf-8")
    assert main(["region-provision", "--halls", str(bad), "--out", str(tmp_path / "bad")]) == 1

    hall_conf = tmp_path / "mosquitto.conf"
    hall_conf.write_text("listener 1883 127.0.0.1\n", encoding="utf-8")
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    argv = ["region-bridge", "--broker-config", str(hall_conf), "--hall", "h1", "--district", "420704",
            "--region-host", "region.example", "--region-ca", str(out / "tls" / "ca.crt"),
            "--password-file", str(secret)]
    assert main(argv) == 0
    text = hall_conf.read_text(encoding="utf-8")
    assert "remote_username hall-h1\nremote_password s3cret" in text
    assert "topic events out 1 hall/h1/region/ region/420704/h1/" in text
    assert "topic resend in 1 hall/h1/region/ region/420704/h1/" in text
    assert "cleansession false" in text and oct(hall_conf.stat().st_mode & 0o777) == "0o600"
    assert main(argv) == 1  # once only


@pytest.mark.parametrize("anyone", ["*", "0.0.0.0/0", "::/0", "0.0.0.0/0.0.0.0"])
def test_region_web_refuses_a_proxy_that_is_not_an_address(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          anyone: str) -> None:
    # Checked before anything is opened: trusting anyone ("*", or every address as a network) would
    # let anyone pick the address the sign-in throttle and the audit trail see.
    argv = ["region-web", "--db", "postgresql://nobody@127.0.0.1:1/none", "--users", str(tmp_path / "u.toml"),
            "--trusted-proxies", f"10.0.0.1, {anyone}"]
    assert main(argv) == 2
    said = "is not an IP address or network" if anyone == "*" else "is every address, trusting anyone"
    assert f"--trusted-proxies: {anyone!r} {said}" in capsys.readouterr().err
    assert not (tmp_path / "region-audit.sqlite3").exists()
