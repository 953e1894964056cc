"""The loaded team model, swapped atomically on SIGHUP.

A reload builds and validates the new model completely before swapping it in; an invalid
file is logged, and the old model keeps serving.
"""

from __future__ import annotations

__all__ = ["LoadedConfig", "changed_sections"]

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import structlog

from router.config import config_digest, load_team_model
from router.errors import ConfigError
from router.logs import known_secrets, redact_secrets
from router.teammodel import TeamModel

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class LoadedConfig:
    """The team model in force, where it came from, and when it was loaded."""

    path: Path
    model: TeamModel
    digest: str
    loaded_at: datetime

    @classmethod
    def load(cls, path: Path, now: datetime, model: TeamModel | None = None) -> LoadedConfig:
        """Load `path` (or take an already loaded `model` for it)."""
        loaded = model if model is not None else load_team_model(path)
        return cls(path, loaded, config_digest(path), now)

    def reload(self, now: datetime) -> bool:
        """Re-read the file; swap the model in if it is valid. Returns whether it swapped."""
        try:
            fresh = load_team_model(self.path)
        except ConfigError as err:
            log.error("config.reload_failed", problems=err.lines(), keeping=self.digest)
            return False
        redact_secrets(known_secrets(model=fresh))  # before anything could log them
        changed = changed_sections(self.model, fresh)
        # One assignment each: a request sees the old model or the new, never a mixture.
        self.model, self.digest, self.loaded_at = fresh, config_digest(self.path), now
        log.info("config.reloaded", digest=self.digest, changed=changed)
        return True


def changed_sections(old: TeamModel, new: TeamModel) -> list[str]:
    """The top-level keys whose content differs (secrets compared, never logged)."""
    return [name for name in TeamModel.model_fields if getattr(old, name) != getattr(new, name)]
