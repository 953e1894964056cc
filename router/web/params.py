"""Whole numbers from paths and query strings, parsed once, safely."""

from __future__ import annotations

__all__ = ["whole_number"]

MAX_DIGITS = 18


def whole_number(text: str, low: int, high: int) -> int | None:
    """`text` as an int in [low, high], or None. ASCII digits only: `str.isdigit` also
    accepts `²` and `٣`, which `int` refuses or reads unexpectedly."""
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        return None
    value = int(text)
    return value if low <= value <= high else None
