"""``is_number``: the one rule for whole numbers read from text."""

from __future__ import annotations

import pytest

from loopwright._numbers import is_number


@pytest.mark.parametrize("text", ["0", "7", "0012", "9" * 4300])
def test_ascii_digits_int_reads_are_numbers(text: str) -> None:
    assert is_number(text) and int(text) >= 0


@pytest.mark.parametrize("text", ["", "²", "①", "٣", "1.5", "-1", "+1", " 1", "1_0", "9" * 4301])
def test_anything_else_is_not(text: str) -> None:
    assert not is_number(text)
