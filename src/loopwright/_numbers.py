"""Whole numbers read from text (a version in a URI, a count in a header): one rule everywhere.

``str.isdigit()`` also accepts digits ``int()`` refuses (``"²"``, ``"①"``), so a check with it
followed by ``int()`` turns such input into a ValueError where a clear refusal was meant.
"""

from __future__ import annotations

__all__ = ["is_number"]

_MAX_DIGITS = 4300  # int() refuses longer (Python's integer string conversion limit)


def is_number(text: str) -> bool:
    """``text`` is a non-negative whole number in ASCII digits that ``int()`` reads."""
    return text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS
