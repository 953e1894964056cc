"""Shared fixtures: the shipped team model, and a factory for variations of it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from router.config import load_team_model
from router.crosscheck import cross_check
from router.teammodel import TeamModel

from pg import PostgresServer

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "config"

MakeModel = Callable[..., TeamModel]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (skipped, or failed in CI, when not installed)."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def shipped_model() -> TeamModel:
    """The team model in `config/`, loaded as the daemon loads it (from any working folder)."""
    return load_team_model(CONFIG_DIR)


@pytest.fixture(scope="session")
def shipped_document(shipped_model: TeamModel) -> dict[str, Any]:
    """The shipped team model as the plain YAML-shaped dict a user would write."""
    return shipped_model.model_dump(mode="json", by_alias=True)


@pytest.fixture(scope="session")
def make_model(shipped_document: dict[str, Any]) -> MakeModel:
    """A factory: `make_model(leave=[...], team={"members": [...]})` → a validated TeamModel.

    Each keyword names a top-level section of the shipped document. A mapping is merged into
    that section (so `team={"members": ...}` keeps the timezone and calendar); anything else
    replaces the section. The result is validated and cross-checked like a loaded config, so a
    test cannot silently run on a model the router would refuse.
    """

    def factory(**changes: Any) -> TeamModel:
        document = copy.deepcopy(shipped_document)
        for key, value in changes.items():
            section = document.get(key)
            if isinstance(value, dict) and isinstance(section, dict):
                document[key] = {**section, **copy.deepcopy(value)}
            else:
                document[key] = copy.deepcopy(value)
        model = TeamModel.model_validate(document)
        problems = cross_check(model)
        if problems:
            raise ValueError("; ".join(str(problem) for problem in problems))
        return model

    return factory
