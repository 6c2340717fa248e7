"""pyfunc models for the batch-scoring tests: one kills its process, one is slow."""

from __future__ import annotations

import os
import time
from typing import Any


class ExitOnNegative:
    """Doubles ``a``; its process dies on a negative ``a`` (a crash, not an exception)."""

    def predict(self, frame: Any) -> Any:
        if (frame["a"] < 0).any():
            os._exit(17)  # what a segfaulting native library looks like from outside
        return frame["a"].to_numpy() * 2


class SlowDouble:
    """Doubles ``a``, taking 0.1 s per call: a job that runs long enough to be killed."""

    def predict(self, frame: Any) -> Any:
        time.sleep(0.1)
        return frame["a"].to_numpy() * 2


class CountsLoads:
    """Doubles ``a``; every load appends the loading process's id to the file ``log``."""

    def __init__(self, log: str) -> None:
        self.log = log

    def to_config(self) -> dict[str, str]:
        return {"log": self.log}

    @classmethod
    def from_config(cls, config: dict[str, str]) -> CountsLoads:
        with open(config["log"], "a") as out:
            out.write(f"{os.getpid()}\n")
        return cls(config["log"])

    def predict(self, frame: Any) -> Any:
        return frame["a"].to_numpy() * 2
