"""Module-level scorers the tests register by reference (``module:function``)."""

from __future__ import annotations

from typing import Any

import loopwright as lw


@lw.scorer
def word_count(*, outputs: Any) -> float:
    return float(len(str(outputs).split()))


@lw.scorer
def fails_on_six(*, outputs: Any) -> bool:
    if outputs == "6":
        raise RuntimeError("six is not allowed")
    return True
