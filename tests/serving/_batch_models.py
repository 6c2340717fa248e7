"""pyfunc models for the batch-scoring tests: a slow one, one counting its loads, and one
whose worker processes wait for (or crash beside) the caller."""

from __future__ import annotations

import os
import time
from typing import Any


class SlowDouble:
    """Doubles ``a``, taking 0.1 s per call: a job that runs long enough to be killed."""

    def predict(self, frame: Any) -> Any:
        time.sleep(0.1)
        return frame["a"].to_numpy() * 2


class CountsLoads:
    """Doubles ``a``; every load appends the loading process's id to the file ``log``. In the
    process that saved it (the caller, which scores beside process workers) a call first
    waits, up to a minute, until another process has loaded it: so a worker takes part."""

    def __init__(self, log: str, caller: int | None = None) -> None:
        self.log = log
        self.caller = os.getpid() if caller is None else caller

    def to_config(self) -> dict[str, Any]:
        return {"log": self.log, "caller": self.caller}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CountsLoads:
        with open(config["log"], "a") as out:
            out.write(f"{os.getpid()}\n")
        return cls(config["log"], config["caller"])

    def predict(self, frame: Any) -> Any:
        deadline = time.monotonic() + 60  # no log yet: saving it, which predicts an example
        while os.getpid() == self.caller and os.path.exists(self.log):
            if time.monotonic() > deadline:
                break
            with open(self.log) as lines:
                if any(int(line) != self.caller for line in lines if line.strip()):
                    break
            time.sleep(0.02)
        return frame["a"].to_numpy() * 2


class WaitsForAWorker:
    """Doubles ``a``, logging each call's process id to the file ``log``. In the process that
    saved it (the caller) a call first waits, up to a minute, until another process has logged
    a call: so the caller and a worker process both score units, however slowly workers start.
    With ``crash``, a process other than the caller dies (exit 17) right after logging."""

    def __init__(self, log: str, crash: bool = False, caller: int | None = None) -> None:
        self.log, self.crash = log, crash
        self.caller = os.getpid() if caller is None else caller

    def to_config(self) -> dict[str, Any]:
        return {"log": self.log, "crash": self.crash, "caller": self.caller}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WaitsForAWorker:
        return cls(config["log"], config["crash"], config["caller"])

    def predict(self, frame: Any) -> Any:
        with open(self.log, "a") as out:
            out.write(f"{os.getpid()}\n")
        if os.getpid() != self.caller:
            if self.crash:
                os._exit(17)
        else:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not self._a_worker_called():
                time.sleep(0.02)
        return frame["a"].to_numpy() * 2

    def _a_worker_called(self) -> bool:
        with open(self.log) as lines:
            return any(int(line) != self.caller for line in lines if line.strip())


class SlowToStartInWorkers:
    """Doubles ``a``; loading it takes ``delay`` seconds in any process but the one that
    saved it: worker processes that are still starting when the caller has scored it all."""

    def __init__(self, delay: float, caller: int | None = None) -> None:
        self.delay = delay
        self.caller = os.getpid() if caller is None else caller

    def to_config(self) -> dict[str, Any]:
        return {"delay": self.delay, "caller": self.caller}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SlowToStartInWorkers:
        if os.getpid() != config["caller"]:
            time.sleep(config["delay"])
        return cls(config["delay"], config["caller"])

    def predict(self, frame: Any) -> Any:
        return frame["a"].to_numpy() * 2
