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


def open_store(url: str, *, fsync_commits: bool = True) -> Store:
    """An unopened store for the URL, or ConfigError naming what is wrong with it.

    `fsync_commits=False` is for a delivery worker on SQLite: its commits (claims, delivery
    outcomes) reach the disk with the serving process's next commit, whose fsync of the
    write-ahead log covers every frame before it, instead of each paying an fsync under the
    writer lock. A power cut can lose the last of them, and then a page is sent again with
    its idempotency key: what at-least-once delivery allows. Alerts and pages are always
    stored by the serving process, with an fsync before the 202."""
    path = sqlite_path(url)
    if path is not None:
        return SqliteStore(path, fsync_commits=fsync_commits)
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
