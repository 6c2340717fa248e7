"""A pyfunc model whose process dies on a negative ``a`` (a worker crash, not an exception)."""

from __future__ import annotations

import os
from typing import Any


class ExitOnNegative:
    def predict(self, frame: Any) -> Any:
        if (frame["a"] < 0).any():
            os._exit(17)  # what a segfaulting native library looks like from outside
        return frame["a"].to_numpy() * 2
