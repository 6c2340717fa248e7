"""Child process for the crash test: logs one metric point per step until it is killed."""

from __future__ import annotations

import sys

from loopwright.client import Client
from loopwright.config import resolve_settings

client = Client(resolve_settings(home=sys.argv[1]))
run = client.start_run(experiment="crash", name="victim")
print(run.id, flush=True)
step = 0
while True:
    run.log_metric("loss", 1.0 / (step + 1), step=step)
    step += 1
