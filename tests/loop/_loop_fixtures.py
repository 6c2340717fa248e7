"""A deployment for the loop to retrain (imported by bare name by the loop tests).

:func:`world` registers ``churn`` v1 (a logistic regression on ``age`` and ``income``; the truth
is ``age + noise > 42``), stores the holdout ``churn-holdout``, creates deployment ``churn-api``
serving ``models:/churn/1`` and writes the loop's pipeline module ``ct_pipeline.py``
(``ct_pipeline:churn``): one step trains on fresh data, ``quality="good"`` on the truth and
``"bad"`` on flipped labels, registers the model as a new ``churn`` version and the pipeline
returns ``models:/churn/N``. With ``approval``, the model's policy has one ``traffic`` rule
(v1 approved for traffic by ``ada``); without, the policy is empty.

:func:`serve` writes served traffic of one variant into the prediction log (the registered
version's real predictions on fresh rows) and logs the true labels, as late labels arrive.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import loopwright as lw
from loopwright.client import Client
from loopwright.errors import PermissionDenied
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location

MODEL, DEPLOYMENT, HOLDOUT = "churn", "churn-api", "churn-holdout"
BOT, APPROVER = "loop-bot", "ada"
PIPELINE = "ct_pipeline:churn"
FEATURES = ["age", "income"]
REQUEST_ROWS = 50
HOUR_MS = 3_600_000

PIPELINE_SOURCE = '''
"""The loop's training pipeline (written by the loop tests)."""

import numpy as np
import pandas as pd

import loopwright as lw
from loopwright.pipelines import pipeline, step


def frame(rows, seed):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"age": rng.normal(40.0, 10.0, rows)})
    data["income"] = rng.normal(50.0, 10.0, rows)
    data["churned"] = (data["age"] + rng.normal(0, 5, rows) > 42).astype(int)
    return data


@step
def train(quality: str, seed: int) -> int:
    from sklearn.linear_model import LogisticRegression

    data = frame(2000, seed)
    target = data["churned"] if quality == "good" else 1 - data["churned"]
    model = LogisticRegression(max_iter=1000).fit(data[["age", "income"]], target)
    info = lw.active_run().log_model(
        model, "model", registered_model_name="churn", input_example=data[["age", "income"]].head(5)
    )
    return info.registered_version.version


@pipeline
def churn(quality: str = "good", seed: int = 1) -> str:
    return f"models:/churn/{train(quality, seed)}"
'''


def frame(rows: int, seed: int) -> pd.DataFrame:
    """Rows drawn like the pipeline's, with the truth in ``churned``."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"age": rng.normal(40.0, 10.0, rows)})
    data["income"] = rng.normal(50.0, 10.0, rows)
    data["churned"] = (data["age"] + rng.normal(0, 5, rows) > 42).astype(int)
    return data


@dataclass
class World:
    client: Client
    approver: Client
    home: Path
    db_uri: str
    code: Path


def connect(db_uri: str, home: Path, user: str) -> Client:
    return lw.connect(db_uri, home=home, user=user)


def world(tmp_path: Path, db_uri: str, *, approval: bool) -> World:
    """The registered model, holdout, deployment and pipeline module (see the module doc)."""
    from sklearn.linear_model import LogisticRegression

    home = tmp_path / "home"
    client = connect(db_uri, home, BOT)
    approver = connect(db_uri, home, APPROVER)
    client.users.add(APPROVER, "approver")
    data = frame(2000, 0)
    with client.start_run(experiment="churn-v1") as run:
        model = LogisticRegression(max_iter=1000).fit(data[FEATURES], data["churned"])
        run.log_model(
            model, "model", registered_model_name=MODEL, input_example=data[FEATURES].head(5)
        )
    client.datasets.add(HOLDOUT, frame(600, 99))
    rules = (ApprovalRule("traffic"),) if approval else ()
    client.registry.set_policy(MODEL, ApprovalPolicy(rules))
    if approval:
        try:
            client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")
        except PermissionDenied:
            (request,) = client.registry.requests(model=MODEL)
            approver.registry.approve(request.id, "v1 is the baseline")
    client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")
    code = tmp_path / "code"
    code.mkdir()
    (code / "ct_pipeline.py").write_text(textwrap.dedent(PIPELINE_SOURCE))
    return World(client, approver, home, db_uri, code)


def gates(threshold: float = 0.7) -> dict[str, Any]:
    return {
        "name": "churn-release",
        "dataset": HOLDOUT,
        "target": "churned",
        "rules": [f"metrics.accuracy >= {threshold}"],
    }


def serve(
    client: Client,
    *,
    variant: str,
    version: int,
    start_ms: int,
    rows: int = 1000,
    seed: int = 7,
    status: int = 200,
    errors: int = 0,
    labels: bool = True,
) -> None:
    """Log ``rows`` rows answered by ``variant`` (``churn`` ``version``'s own predictions) in
    the minute after ``start_ms``, the first ``errors`` requests with status 500; then their
    true labels."""
    model = client.load_model(f"models:/{MODEL}/{version}")
    data = frame(rows, seed)
    predicted = np.asarray(model.predict(data[FEATURES])).ravel()
    log = PredictionLog(log_location(client.settings))
    truth = []
    try:
        for n, first in enumerate(range(0, rows, REQUEST_ROWS)):
            part = data.iloc[first : first + REQUEST_ROWS]
            request_id = f"{variant}-{version}-{seed}-{n}"
            at = datetime.fromtimestamp((start_ms + 1000 + n * 10) / 1000, UTC)
            log.append(
                PredictionRecord(
                    request_id=request_id,
                    deployment=DEPLOYMENT,
                    variant=variant,
                    model=MODEL,
                    model_version=version,
                    timestamp=at,
                    latency_ms=2.0,
                    status=500 if n < errors else status,
                    inputs={c: part[c].tolist() for c in FEATURES},
                    outputs={"predict": predicted[first : first + REQUEST_ROWS].tolist()},
                )
            )
            truth += [(request_id, row, int(y)) for row, y in enumerate(part["churned"])]
    finally:
        log.close()
    if labels:
        client.monitoring.log_labels(
            DEPLOYMENT, pd.DataFrame(truth, columns=["request_id", "row", "label"])
        )
