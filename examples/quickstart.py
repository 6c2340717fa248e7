"""Fit a small linear model by gradient descent and track the run in Loopwright.

Prints the run's id on stdout (progress goes to stderr), so a shell can pass it on:
``loopwright runs show "$(python examples/quickstart.py)"``.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

import loopwright as lw


def make_data(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(x, 3.0 * x + 0.5 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(n))]


def main() -> str:
    data = make_data(200, seed=7)
    params = {"learning_rate": 0.1, "epochs": 50, "seed": 7}
    client = lw.connect()
    with client.start_run(
        experiment="quickstart", name="linear-gd", tags={"model": "linear"}
    ) as run:
        run.log_params(params)
        w = b = 0.0
        for epoch in range(params["epochs"]):
            grad_w = sum(2 * (w * x + b - y) * x for x, y in data) / len(data)
            grad_b = sum(2 * (w * x + b - y) for x, y in data) / len(data)
            w -= params["learning_rate"] * grad_w
            b -= params["learning_rate"] * grad_b
            mse = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
            run.log_metric("mse", mse, step=epoch)
        run.log_metrics({"final_mse": mse, "weight": w, "bias": b})
        with tempfile.TemporaryDirectory() as tmp:
            model_file = Path(tmp) / "model.json"
            model_file.write_text(json.dumps({"weight": w, "bias": b}))
            run.log_artifact(model_file, artifact_path="model")
        print(f"trained: y = {w:.3f} x + {b:.3f}, mse {mse:.4f}", file=sys.stderr)
    client.close()
    return run.id


if __name__ == "__main__":
    print(main())
