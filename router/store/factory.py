"""Pick the store from `ROUTER_DATABASE_URL`, spelled as SQLAlchemy spells it."""

from __future__ import annotations

__all__ = ["open_store", "sqlite_path"]

from pathlib import Path

from router.errors import ConfigError, ConfigProblem
from router.store.base import Store
from router.store.sqlite import SqliteStore


def sqlite_path(url: str) -> Path | None:
    """`sqlite:///var/router.db` → `var/router.db`; `sqlite:////abs.db` → `/abs.db`."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        return None
    return Path(url.removeprefix(prefix))


def open_store(url: str) -> Store:
    """An unopened store for the URL, or ConfigError naming what is wrong with it."""
    path = sqlite_path(url)
    if path is not None:
        return SqliteStore(path)
    scheme = url.split(":", 1)[0] if ":" in url else "(none)"
    if scheme in {"postgresql", "postgres"}:
        message = "PostgreSQL is not supported yet; use sqlite:///path/to/router.db"
    else:
        message = f"unknown scheme {scheme!r}; use sqlite:///relative.db or sqlite:////absolute.db"
    # The URL may carry a password: name the variable, never echo the value.
    raise ConfigError("environment", [ConfigProblem("ROUTER_DATABASE_URL", message)])
