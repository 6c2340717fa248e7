"""The drift and quality tests, by name.

``TESTS`` maps a test's name to its class (``ColumnTest`` or ``TableTest`` in ``_base``). Classes
are imported on first use, by module path, so a module that is absent (an optional family) only
removes its names: iterating ``TESTS`` lists the tests that can run here.

Example::

    from loopwright.monitoring.stats import TESTS, default_tests

    TESTS["psi"].default_threshold  # 0.1
    default_tests("numeric")  # ("wasserstein",)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from ...errors import InvalidInput
from ._base import ColumnTest, CurrentColumn, CurrentTable, Score, TableTest

__all__ = [
    "TESTS",
    "ColumnTest",
    "CurrentColumn",
    "CurrentTable",
    "Score",
    "TableTest",
    "default_tests",
]

# name -> "module:Class" under loopwright.monitoring.stats
_ENTRIES: dict[str, str] = {
    # numeric columns
    "ks": "numeric:KS",
    "wasserstein": "numeric:Wasserstein",
    "anderson": "numeric:AndersonDarling",
    # both kinds
    "psi": "numeric:PSI",
    "jensenshannon": "numeric:JensenShannon",
    # categorical columns
    "chi2": "categorical:Chi2",
    "linf": "categorical:LInf",
    # all columns at once
    "mmd": "multivariate:MMD",
    "classifier": "multivariate:ClassifierTest",
    # data quality
    "missing": "quality:MissingShare",
    "out_of_range": "quality:OutOfRange",
    "new_categories": "quality:NewCategories",
    "type_change": "quality:TypeChange",
    "schema": "quality:SchemaChange",
}

# Effect sizes, each gated by its null test (see _base's verdict rule). Quality checks run by
# default when their module is present; multivariate tests only when asked (they cost seconds).
_DEFAULTS: dict[str, tuple[str, ...]] = {
    "numeric": ("wasserstein",),
    "categorical": ("jensenshannon",),
    "quality": ("missing", "out_of_range", "new_categories", "type_change", "schema"),
    "multivariate": (),
}


class _Registry(Mapping[str, Any]):
    """A read-only mapping that imports each test class on first access."""

    def __init__(self, entries: Mapping[str, str]) -> None:
        self._entries = dict(entries)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        path = self._entries.get(name)
        if path is None:
            raise KeyError(name)
        module_name, _, attr = path.partition(":")
        full = f"{__name__}.{module_name}"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as exc:
            if exc.name != full:  # a broken import inside the module is a bug: let it show
                raise
            raise KeyError(name) from None
        cls = getattr(module, attr, None)
        if cls is None:
            raise KeyError(name)
        self._loaded[name] = cls
        return cls

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._entries if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self[name]
        except KeyError:
            return False
        return True


TESTS: Mapping[str, Any] = _Registry(_ENTRIES)


def default_tests(kind: str) -> tuple[str, ...]:
    """The tests run when none are named, for ``numeric``, ``categorical``, ``quality`` or
    ``multivariate``; only those available here."""
    if kind not in _DEFAULTS:
        raise InvalidInput(f"unknown test kind {kind!r}; kinds: {', '.join(_DEFAULTS)}")
    return tuple(name for name in _DEFAULTS[kind] if name in TESTS)
