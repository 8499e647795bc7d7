"""Process settings: environment (prefix ``HALL_``) over an optional TOML file over defaults.

Every role reads the same settings; a role uses the fields it needs. The TOML file is named by
``--config`` on the command line or ``HALL_CONFIG_FILE``; its keys are the field names below.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


SMS_PLACEHOLDERS = ("hall", "number", "ahead", "window", "service")  # filled by coordinator/reminders.py


class SettingsError(Exception):
    """The settings cannot be loaded; the message names the file or field at fault."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HALL_", extra="forbid", validate_default=True)

    hall_id: str = Field("demo", pattern=r"^[a-z0-9][a-z0-9_-]*$", description="hall id in every topic")
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(1883, ge=1, le=65535)
    broker_username: str | None = None
    broker_password: SecretStr | None = None
    broker_tls: bool = False
    broker_ca_file: Path | None = None
    broker_cert_file: Path | None = None
    broker_key_file: Path | None = None
    broker_keepalive_s: int = Field(15, ge=5, le=600)
    database_url: str = "sqlite:///var/hall/coordinator.sqlite3"
    layout: Path = Path("examples/hall.toml")
    data_dir: Path = Path("var/hall")
    log_level: LogLevel = "INFO"
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=1, le=65535)
    web_users: Path = Path("var/hall/users.toml")
    web_secret: SecretStr | None = Field(None, description="unused: sessions are kept on the server")
    web_demo: bool = Field(False, description="set by `hall-devices up` only: plain HTTP on 127.0.0.1 "
                                              "and demo passwords allowed; off = production mode")
    web_tls_cert_file: Path | None = Field(None, description="HTTPS certificate (provisioning's tls/web.crt)")
    web_tls_key_file: Path | None = Field(None, description="its private key (tls/web.key, mode 0600)")
    web_http_redirect_port: int | None = Field(None, ge=1, le=65535,
                                               description="plain HTTP port that only redirects to HTTPS")
    web_session_idle_minutes: float = Field(60, gt=0, le=24 * 60, description="a session ends unused")
    web_session_max_hours: float = Field(12, gt=0, le=7 * 24, description="a session ends this old")
    web_login_free_attempts: int = Field(5, ge=1, le=100, description="failed sign-ins before a wait")
    web_login_backoff_s: float = Field(2.0, gt=0, le=3600, description="first wait; doubles each time")
    web_login_max_backoff_s: float = Field(300.0, gt=0, le=86400, description="longest wait")
    web_trusted_proxies: str = Field(
        "", description="reverse proxies (IP addresses or networks, comma-separated) whose X-Forwarded-For "
                        "names the browser; empty (the default): none, the peer's address is the browser's")
    backup_dir: Path = Field(Path("var/backups/hall"), description="where `store backup` writes")
    backup_keep_days: int = Field(30, ge=1, description="backups older than this are removed")
    clock_status_command: str | None = Field(
        None, description="doctor: a command printing NTPSynchronized=yes|no (default: timedatectl, chronyc)")
    sms_gateway_url: str | None = Field(None, description="the hall's SMS gateway (HTTP POST, JSON); "
                                        "none: no reminders are sent")
    sms_username: str | None = None
    sms_password: SecretStr | None = None
    sms_place_template: str = Field("【{hall}】您的{number}号前面还有{ahead}人，请回到大厅留意叫号。",
                                    description="at the Nth place: {hall} {number} {ahead} {service}")
    sms_call_template: str = Field("【{hall}】请{number}号到{window}号窗口办理。",
                                   description="reminder at the call: {hall} {number} {window} {service}")
    sms_retry_s: float = Field(2.0, gt=0, le=60, description="first retry delay; doubles up to 60 s")
    reminder_place: int = Field(3, ge=1, le=50, description="remind when this many or fewer are ahead + 1")

    @field_validator("sms_place_template", "sms_call_template")
    @classmethod
    def _sms_placeholders(cls, template: str) -> str:
        """A mistyped placeholder is refused at start, naming it: found only at the first reminder it
        would silently stop every reminder of the hall."""
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
        except ValueError as exc:
            raise ValueError(f"not a template: {exc} (write a brace as {{{{ or }}}})") from None
        unknown = sorted({n for n in names if n not in SMS_PLACEHOLDERS})
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                             f"known: {' '.join('{' + n + '}' for n in SMS_PLACEHOLDERS)}")
        return template
    id_secret: SecretStr | None = Field(None, description="hall key for the keyed hash of ID numbers; "
                                        "made once in data_dir/id-secret if unset")
    region_forward: bool = Field(False, description="the coordinator publishes its committed events "
                                 "for the regional bridge and answers the region's resend requests")
    region_database_url: str | None = Field(None, description="the regional service's PostgreSQL URL")
    region_report_url: str | None = Field(None, description="the provincial 好差评 platform's endpoint")
    region_report_username: str | None = None
    region_report_password: SecretStr | None = None
    region_report_token: SecretStr | None = Field(None, description="bearer token instead of a password")
    region_report_ca_file: Path | None = None
    region_profile: str = Field("gbt39046", description="province profile: a shipped name or a .toml file")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win, then the environment, then the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def sqlite_path(self) -> Path:
        """The SQLite file named by ``database_url`` (only ``sqlite:///`` URLs are supported)."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            raise SettingsError(f"database_url must start with {prefix!r}, got {self.database_url!r}")
        return Path(self.database_url.removeprefix(prefix))

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret replaced by ``****``."""
        shown = self.model_dump(mode="json")
        for name, value in shown.items():
            if isinstance(getattr(self, name), SecretStr) and value is not None:
                shown[name] = "****"
        return shown


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings; ``config_file`` (or ``HALL_CONFIG_FILE``) names an optional TOML file."""
    env_file = os.environ.get("HALL_CONFIG_FILE")
    path = config_file or (Path(env_file) if env_file else None)
    try:
        if path is None:
            return Settings(**overrides)
        if not path.is_file():
            raise SettingsError(f"settings file not found: {path}")

        class _FromFile(Settings):
            model_config = SettingsConfigDict(toml_file=path)

        return _FromFile(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        where = f" in {path}" if path else ""
        raise SettingsError(f"invalid settings{where}: {problems}") from exc
    except ValueError as exc:  # a TOML syntax error from the file source
        raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
