"""Where and how the daemon runs: `ROUTER_*` environment variables and an optional `.env`."""

from __future__ import annotations

__all__ = ["Settings", "load_settings"]

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from router.errors import ConfigError, ConfigProblem


class Settings(BaseSettings):
    """The process settings (the team model is separate: see `router.config`)."""

    model_config = SettingsConfigDict(
        env_prefix="ROUTER_", env_file=".env", extra="ignore", frozen=True
    )

    config: Path = Path("config")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    database_url: str = "sqlite:///var/router.db"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_from: str = "pipeline-alert-router@localhost"
    inbound_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    hmac_secret: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    rate_limit_per_second: float = Field(default=100.0, ge=0)
    rate_limit_burst: int = Field(default=1000, ge=1)
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    delivery_max_age_seconds: float = Field(default=3600, gt=0)
    delivery_lease_seconds: float = Field(default=60, gt=0)
    delivery_per_destination: int = Field(default=16, ge=1, le=256)
    delivery_workers: int = Field(default=1, ge=0, le=16)
    webhook_timeout_seconds: float = Field(default=10, gt=0, le=300)
    smtp_timeout_seconds: float = Field(default=10, gt=0, le=300)
    drain_timeout_seconds: float = Field(default=10, gt=0)
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def hmac_secrets(self) -> list[str]:
        """`ROUTER_HMAC_SECRET` may list several secrets, comma-separated, for rotation."""
        if self.hmac_secret is None:
            return []
        return [s.strip() for s in self.hmac_secret.get_secret_value().split(",") if s.strip()]


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, or ConfigError naming each bad variable.

    Messages name the variable, never its value: a value may be a secret.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        problems = [
            ConfigProblem(
                "ROUTER_" + "_".join(str(part) for part in e["loc"][:1]).upper(), e["msg"]
            )
            for e in err.errors(include_url=False)
        ]
        raise ConfigError("environment", problems) from None
    except SettingsError as err:
        # Raised for a value that is not valid JSON (ROUTER_INBOUND_TOKENS); names the field.
        raise ConfigError("environment", [ConfigProblem("", str(err))]) from None
