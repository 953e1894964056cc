"""Helpers for tests that write team-model files: copies of the shipped config, edited."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO_ROOT / "config"
SHIPPED_FILES = ("escalation.yaml", "pipelines.yaml", "runbooks.yaml", "team.yaml")


def copy_shipped(into: Path) -> Path:
    """A copy of the shipped `config/` folder at `into/config`; returns the folder."""
    folder = into / "config"
    shutil.copytree(SHIPPED_CONFIG, folder)
    return folder


def merge_shipped(into: Path, name: str = "team-model.yaml") -> Path:
    """The shipped folder as one file (its files concatenated as written); returns the file."""
    file = into / name
    file.write_text("\n".join((SHIPPED_CONFIG / part).read_text() for part in SHIPPED_FILES))
    return file


def edit(file: Path, old: str, new: str) -> None:
    """Replace `old` with `new` in `file`; `old` must occur exactly once, so no edit misses."""
    text = file.read_text()
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"{old!r} occurs {count} times in {file}, expected once")
    file.write_text(text.replace(old, new))


def cut_from(file: Path, marker: str) -> None:
    """Drop everything in `file` from the line that starts with `marker` to the end."""
    text = file.read_text()
    index = text.index(f"\n{marker}")
    file.write_text(text[: index + 1])
