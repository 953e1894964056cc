"""Durations as people write them in the team model: `30s`, `10m`, `1h`, `7d`, `1h30m`."""

from __future__ import annotations

__all__ = ["format_duration", "parse_duration"]

import re
from datetime import timedelta

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)([wdhms])")
_WHOLE = re.compile(r"(?:\d+[wdhms])+")
MAX_SECONDS = 100 * 366 * 86_400


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `10m`, `1h`, `7d`, `2w` or a sum such as `1h30m`.

    Raises ValueError with the accepted forms when the text is not a duration.
    """
    cleaned = text.strip().lower()
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(
            f"{text!r} is not a duration: use a number and a unit s, m, h, d or w (e.g. 10m, 7d)"
        )
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned))
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than the 100 years the router plans for")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest spelling that `parse_duration` reads back to the same value."""
    remaining = int(value.total_seconds())
    if remaining == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w":
            continue
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
