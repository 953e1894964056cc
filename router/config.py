"""Load the team model from a YAML file or a folder of YAML files, all problems at once.

A folder's `*.yaml`/`*.yml` files are merged by top-level key; a key defined in two files is
a problem, as is a key repeated inside one mapping (YAML would silently keep the last one).
Dates and times stay strings until pydantic reads them, and only `true`/`false` are booleans
(YAML 1.2), so `country: NO` means Norway and `2026-10-26T09:00` is never mangled.
"""

from __future__ import annotations

__all__ = ["config_digest", "load_team_model"]

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from router.crosscheck import cross_check
from router.errors import ConfigError, ConfigProblem
from router.teammodel import TeamModel


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no timestamp conversion and no duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "a key must be a plain value, not a list or mapping",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _install_resolvers() -> None:
    dropped = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool"}
    _StrictLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in dropped]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _StrictLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )


_install_resolvers()


def load_team_model(path: Path) -> TeamModel:
    """The validated, cross-checked team model at `path`, or ConfigError listing every problem."""
    document, owners = _read(path)
    try:
        model = TeamModel.model_validate(document)
    except ValidationError as err:
        raise ConfigError(str(path), _problems_from(err, owners)) from None
    problems = cross_check(model)
    if problems:
        raise ConfigError(str(path), [_located(p, owners) for p in problems])
    return model


def config_digest(path: Path) -> str:
    """`sha256:<hex>` of the YAML files at `path` (names and bytes): which config is loaded."""
    digest = hashlib.sha256()
    for file in _yaml_files(path):
        digest.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()}"


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
    return [path] if path.is_file() else []


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """The merged document, and which file each top-level key came from."""
    files = _yaml_files(path)
    if not files:
        message = "no *.yaml files in this folder" if path.is_dir() else "no such file or folder"
        raise ConfigError(str(path), [ConfigProblem("", message)])
    document: dict[str, Any] = {}
    owners: dict[str, Path] = {}
    problems: list[ConfigProblem] = []
    for file in files:
        for key, value in _read_file(file, problems).items():
            if key in owners:
                message = f"defined in both {owners[key].name} and {file.name}"
                problems.append(ConfigProblem(str(key), message, str(file)))
                continue
            document[key], owners[key] = value, file
    if problems:
        raise ConfigError(str(path), problems)
    return document, owners


def _read_file(file: Path, problems: list[ConfigProblem]) -> dict[str, Any]:
    try:
        data = yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problems.append(ConfigProblem("", f"{where}{err.problem or err.context}", str(file)))
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        problems.append(ConfigProblem("", f"cannot be read: {err}", str(file)))
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(ConfigProblem("", "must be a mapping of top-level keys", str(file)))
        return {}
    return {str(k): v for k, v in data.items()}


def _problems_from(err: ValidationError, owners: dict[str, Path]) -> list[ConfigProblem]:
    problems = []
    for error in err.errors(include_url=False):
        path = _key_path(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if _shows_input(error["type"], path, error["input"]):
            message = f"{message} (got {error['input']!r})"
        problems.append(_located(ConfigProblem(path, message), owners))
    return problems


def _shows_input(kind: str, path: str, value: object) -> bool:
    """Echo a wrong scalar back to the user, unless it may be a secret."""
    if kind in {"missing", "extra_forbidden"} or "secret" in path or "integration_keys" in path:
        return False
    if kind == "value_error":
        return False  # our own validators already name the value
    return isinstance(value, str | int | float | bool) or value is None


def _key_path(loc: tuple[int | str, ...]) -> str:
    """`('pipelines', 2, 'owners', 'primary')` → `pipelines[2].owners.primary`."""
    if len(loc) > 2 and loc[0] == "channels":
        loc = loc[:2] + loc[3:]  # pydantic's discriminator tag: not a key the user wrote
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _located(problem: ConfigProblem, owners: dict[str, Path]) -> ConfigProblem:
    """Name the file that defined the problem's top-level key."""
    top = re.split(r"[.\[]", problem.path, maxsplit=1)[0]
    file = owners.get(top)
    if file is None:
        return problem
    return ConfigProblem(problem.path, problem.message, str(file))
