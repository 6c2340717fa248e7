"""The suite's own layout: test folders are not packages, so pytest imports every test module by
its file name alone; two modules with one name in different folders break collection of the
whole suite (only a full run shows it)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def test_test_modules_have_unique_names() -> None:
    names = Counter(
        path.name for path in TESTS.rglob("*.py") if path.name not in ("conftest.py", "__init__.py")
    )
    assert [name for name, count in names.items() if count > 1] == []
