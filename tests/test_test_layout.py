"""The suite's own layout: test folders are not packages, so pytest imports every test module by
its file name alone; two modules with one name in different folders break collection of the
whole suite (only a full run shows it)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).parent


def test_test_modules_have_unique_names() -> None:
    paths: dict[str, list[str]] = defaultdict(list)
    for path in sorted(TESTS.rglob("*.py")):
        if path.name not in ("conftest.py", "__init__.py"):
            paths[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: found for name, found in paths.items() if len(found) > 1}
    assert clashes == {}, f"rename all but one of each (e.g. test_<area>_<name>.py): {clashes}"
