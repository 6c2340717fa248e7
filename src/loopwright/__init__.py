"""Loopwright: versioned data, tracking, registry, serving, monitoring and retraining in one loop.

Example:
    >>> import loopwright as lw
    >>> client = lw.connect(home="lw-doc-init")
    >>> client.store.db.dialect
    'sqlite'

Heavy modules load on first use, so ``import loopwright`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import LoopwrightError as LoopwrightError

if TYPE_CHECKING:
    from .client import Client as Client
    from .client import connect as connect

__version__ = "0.1.0"
__all__ = ["Client", "LoopwrightError", "__version__", "connect"]

_LAZY = {"Client": "client", "connect": "client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'loopwright' has no attribute {name!r}")
