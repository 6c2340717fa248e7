"""Invocation names: which call of which step, stable across re-runs of the same code.

The first call of ``train`` is ``train``, the second ``train#2``; a ``map`` is one call whose
items are ``train[0]``, ``train[1]``... (``train#2[0]`` when it is the step's second call).
Resume matches a new run's calls to the old run's step runs by these names, so calls made in the
same order get the same names. Steps called concurrently from threads of the pipeline body get
names in the order the calls arrive, which may differ between runs (then they simply miss).
"""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["Invocations"]


class Invocations:
    """Hands out invocation names for one pipeline run (thread-safe)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next(self, step: str) -> str:
        """The name of the next call of ``step``: ``step``, then ``step#2``, ``step#3``..."""
        with self._lock:
            self._counts[step] += 1
            n = self._counts[step]
        return step if n == 1 else f"{step}#{n}"

    @staticmethod
    def item(call: str, index: int) -> str:
        """The name of item ``index`` of the map called as ``call``."""
        return f"{call}[{index}]"
