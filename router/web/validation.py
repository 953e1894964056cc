"""Validating an operator's runtime change (leave, override, silence) the way the config
file is validated: shape first (pydantic), then against the team model (cross-checks)."""

from __future__ import annotations

__all__ = ["validated"]

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from router.errors import ConfigProblem
from router.ingest.common import shape_errors
from router.web.errors import ApiError

Entry = TypeVar("Entry", bound=BaseModel)


def validated(
    model_type: type[Entry],
    document: object,
    check: Callable[[Entry], list[ConfigProblem]],
    what: str,
) -> Entry:
    """`document` as `model_type`, cross-checked by `check`; otherwise 422 with field paths."""
    if not isinstance(document, dict):
        raise ApiError(422, "invalid_body", "expected a JSON object", ["(body)"])
    try:
        entry = model_type.model_validate(document)
    except ValidationError as err:
        raise ApiError(422, "invalid_body", f"invalid {what}", shape_errors(err).details) from None
    problems = check(entry)
    if problems:
        details = [{"path": p.path.lstrip("."), "message": p.message} for p in problems]
        raise ApiError(422, "invalid_body", f"invalid {what}", details)
    return entry
