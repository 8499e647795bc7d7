from __future__ import annotations

import json
from pathlib import Path

import pytest

from hall_devices.cli import main
from hall_devices.settings import SettingsError, load_settings


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hall.toml"
    config.write_text('broker_port = 1999\nhall_id = "ezhou"\nbroker_password = "s3cret"\n')
    monkeypatch.setenv("HALL_BROKER_PORT", "2883")
    settings = load_settings(config)
    assert settings.broker_port == 2883  # environment over file
    assert settings.hall_id == "ezhou"
    assert settings.broker_password is not None
    assert settings.broker_password.get_secret_value() == "s3cret"


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HALL_BROKER_PASSWORD", "hunter2")
    monkeypatch.setenv("HALL_BROKER_USERNAME", "K1")
    assert main(["config", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["broker_password"] == "****"
    assert shown["broker_username"] == "K1"
    assert "hunter2" not in json.dumps(shown)


def test_bad_values_are_named(tmp_path: Path) -> None:
    config = tmp_path / "hall.toml"
    config.write_text("broker_port = 70000\n")
    with pytest.raises(SettingsError, match="broker_port"):
        load_settings(config)
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_a_mistyped_sms_placeholder_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "hall.toml"
    config.write_text('sms_call_template = "请{numbr}号到{window}号窗口"\n')
    with pytest.raises(SettingsError, match=r"sms_call_template.*unknown placeholder\(s\) \{numbr\}"):
        load_settings(config)
    config.write_text('sms_place_template = "您前面还有{ahead人"\n')
    with pytest.raises(SettingsError, match=r"sms_place_template.*not a template"):
        load_settings(config)
    config.write_text('sms_place_template = "{hall}: {number} {{排队}} {ahead} {service}"\n')
    assert load_settings(config).sms_place_template.startswith("{hall}")
