"""Durable state behind one small protocol: SQLite embedded, PostgreSQL for replicas."""

from __future__ import annotations

__all__ = ["IngestOutcome", "Store", "StoreUnavailableError", "open_store"]

from router.store.base import IngestOutcome, Store, StoreUnavailableError
from router.store.factory import open_store
