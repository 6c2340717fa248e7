"""Lazy package exports: names load on first use, so ``import loopwright`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, modules: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` importing ``name`` from ``package.<modules[name]>``.

    The value is cached in ``namespace`` (the package's ``globals()``), so each name is looked
    up once. Use: ``__getattr__ = lazy_exports(__name__, _LAZY, globals())``.
    """

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__
