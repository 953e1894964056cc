"""Pick the store from `ROUTER_DATABASE_URL`, spelled as SQLAlchemy spells it."""

from __future__ import annotations

__all__ = ["open_store", "postgres_url", "sqlite_path"]

from pathlib import Path

from router.errors import ConfigError, ConfigProblem
from router.store.base import Store
from router.store.sqlite import SqliteStore

_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def sqlite_path(url: str) -> Path | None:
    """`sqlite:///var/router.db` → `var/router.db`; `sqlite:////abs.db` → `/abs.db`."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        return None
    return Path(url.removeprefix(prefix))


def postgres_url(url: str) -> str | None:
    """A libpq URL for `postgresql://…` (also `postgres://`, `postgresql+psycopg://`)."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme) and len(url) > len(scheme):
            return "postgresql://" + url.removeprefix(scheme)
    return None


def open_store(url: str) -> Store:
    """An unopened store for the URL, or ConfigError naming what is wrong with it."""
    path = sqlite_path(url)
    if path is not None:
        return SqliteStore(path)
    pg = postgres_url(url)
    if pg is not None:
        # Imported here: psycopg costs every SQLite install (and each worker) ~10 MiB.
        from router.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(pg)
    scheme = url.split(":", 1)[0] if ":" in url else "(none)"
    message = (
        f"unknown scheme {scheme!r}; use sqlite:///relative.db, sqlite:////absolute.db "
        "or postgresql://user:password@host/database"
    )
    # The URL may carry a password: name the variable, never echo the value.
    raise ConfigError("environment", [ConfigProblem("ROUTER_DATABASE_URL", message)])
