"""A store with something in every dashboard section (imported by bare name by the UI tests).

:func:`seed` fills a store (users already added by the ``ui_server`` fixture) with:

- experiment ``churn``: three runs with parameters, stepped metrics, a text artifact and a
  nested folder, each training on ``churn-train@v1`` (two versions, one validated);
- model ``churn``: versions 1 and 2 (logged by the first two runs), an ``alias:champion`` rule
  and a pending request (by ``eve``) to point ``champion`` at version 2;
- deployment ``churn-api`` serving ``models:/churn/1``, with six hours of logged predictions
  (``age`` drifting up hour by hour) and their labels;
- monitor ``churn-watch`` run over each hour: drift reports, and an open ``drift_share`` alert
  from the drifted hours;
- pipeline ``ui_pipeline:train`` run once (two steps), and loop ``churn-loop`` running it.

Everything is built through the services a user calls (the embedded client), so pages read
records the way production writes them. It takes a few seconds (three small model fits).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
from _llm_world import LlmWorld

import loopwright as lw
from loopwright.config import Settings
from loopwright.data.validation import Suite
from loopwright.errors import PermissionDenied
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location

EXPERIMENT, MODEL, DATASET = "churn", "churn", "churn-train"
DEPLOYMENT, MONITOR, LOOP = "churn-api", "churn-watch", "churn-loop"
FEATURES = ["age", "income"]
REQUEST_ROWS = 8  # 50 requests an hour
HOUR = timedelta(hours=1)
HOURS = 6  # of logged predictions, each checked by the monitor

PIPELINE_MODULE = "ui_pipeline"
PIPELINE_SOURCE = '''
"""The dashboard tests' pipeline: make data, then summarise it."""

import loopwright as lw


@lw.step
def make(rows: int) -> list[float]:
    return [float(i % 7) for i in range(rows)]


@lw.step
def summarise(values: list[float]) -> float:
    lw.log_metric("mean", sum(values) / len(values))
    return sum(values) / len(values)


@lw.pipeline
def train(rows: int = 50) -> float:
    return summarise(make(rows))
'''


@dataclass(frozen=True)
class World:
    """The ids the tests link to."""

    experiment_id: str
    run_ids: tuple[str, ...]
    dataset_versions: tuple[str, ...]  # refs, e.g. "churn-train@v1"
    pending_request_id: str
    pipeline_run_id: str
    request_ids: tuple[str, ...]  # logged predictions, the most drifted hour last
    # The LLM pages' records (_llm_world.seed_llm), for the modules that crawl them.
    llm: LlmWorld | None = None


def frame(rows: int, seed: int, *, shift: float = 0.0) -> pd.DataFrame:
    """Rows like the training data's, ``age`` moved up by ``shift``; truth in ``churned``."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({"age": rng.normal(40.0 + shift, 10.0, rows)})
    data["income"] = rng.normal(50.0, 10.0, rows)
    data["churned"] = (data["age"] + rng.normal(0, 5, rows) > 42).astype(int)
    return data


def seed(settings: Settings) -> World:
    from sklearn.linear_model import LogisticRegression

    client = lw.connect(settings.db_uri, home=settings.home, user="ada")
    try:
        train = frame(1500, 0)
        first = client.datasets.add(DATASET, train, message="first extract")
        client.datasets.validate(
            first, Suite("churn-checks").row_count_between(min=100).not_null("age")
        )
        second = client.datasets.add(DATASET, frame(1600, 1), message="with November")
        run_ids = []
        for n, c in enumerate((1.0, 0.1, 0.01)):
            with client.start_run(experiment=EXPERIMENT, name=f"logreg-c{c}") as run:
                run.use_dataset(first.id)
                run.log_params({"C": c, "max_iter": 500, "features": ",".join(FEATURES)})
                for step in range(30):
                    run.log_metric("loss", 1.0 / (step + 1 + n), step=step)
                    run.log_metric("accuracy", 0.6 + 0.01 * step - 0.02 * n, step=step)
                model = LogisticRegression(C=c, max_iter=500).fit(train[FEATURES], train["churned"])
                run.log_metric(
                    "test_accuracy", float(model.score(train[FEATURES], train["churned"]))
                )
                run.set_tag("team", "retention")
                notes = settings.home / f"notes-{n}.txt"
                notes.write_text(f"run {n}: C={c}\n")
                run.log_artifact(notes, "notes")
                if n < 2:  # versions 1 and 2 of the model
                    run.log_model(
                        model,
                        "model",
                        registered_model_name=MODEL,
                        input_example=train[FEATURES].head(5),
                    )
            run_ids.append(run.id)
        _deploy(client, settings)
        registry = client.registry
        registry.update_model(MODEL, description="Flags customers likely to cancel this month.")
        registry.set_card_info(
            MODEL,
            intended_use="Ranks accounts for the retention team's weekly calls.",
            limitations="Trained on synthetic ages and incomes; not for pricing decisions.",
        )
        rules = (ApprovalRule("traffic"), ApprovalRule("alias:champion"))
        registry.set_policy(MODEL, ApprovalPolicy(rules))
        # Asked by eve (an editor), so ada (an admin) and abe may decide it: pages show them
        # the approve and reject forms (nobody approves their own request).
        editor = lw.connect(settings.db_uri, home=settings.home, user="eve")
        try:
            pending = editor.registry.set_alias(MODEL, "champion", 2).request
        finally:
            editor.close()
        assert pending is not None and pending.status == "pending", "champion is not protected"
        now = datetime.now(UTC)
        request_ids = _serve(client, settings, now)
        client.monitoring.create(
            MONITOR, deployment=DEPLOYMENT, window=HOUR, alerts=["drift_share>0.2"]
        )
        for hour in reversed(range(HOURS)):  # one check per logged hour, oldest first
            client.monitoring.run(MONITOR, at=now - hour * HOUR)
        pipeline_run_id = _pipeline(client, settings.home / "code")
        client.loops.create(
            LOOP, deployment=DEPLOYMENT, pipeline=f"{PIPELINE_MODULE}:train", model=MODEL
        )
        experiment_id = client.get_run(run_ids[0]).experiment_id
    finally:
        client.close()
    return World(
        experiment_id=experiment_id,
        run_ids=tuple(run_ids),
        dataset_versions=(first.ref, second.ref),
        pending_request_id=pending.id,
        pipeline_run_id=pipeline_run_id,
        request_ids=request_ids,
    )


def _deploy(client: lw.Client, settings: Settings) -> None:
    """Deployment ``churn-api`` on version 1, which the default policy has ``abe`` approve."""
    try:
        client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")
        return
    except PermissionDenied:
        pass
    approver = lw.connect(settings.db_uri, home=settings.home, user="abe")
    try:
        (request,) = approver.registry.requests(model=MODEL)
        approver.registry.approve(request.id, "version 1 is the baseline")
    finally:
        approver.close()
    client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")


def _serve(client: lw.Client, settings: Settings, now: datetime) -> tuple[str, ...]:
    """:data:`HOURS` hours of version 1's predictions, ``age`` drifting up hour by hour, and
    their labels."""
    model = client.load_model(f"models:/{MODEL}/1")
    log = PredictionLog(log_location(settings))
    ids, truth = [], []
    try:
        for hour in range(HOURS, 0, -1):
            data = frame(400, 10 + hour, shift=4.0 * (HOURS - hour))
            predicted = np.asarray(model.predict(data[FEATURES])).ravel()
            latency = np.random.default_rng(hour).lognormal(1.6, 0.35, len(data))
            start = now - hour * HOUR
            for n, first in enumerate(range(0, len(data), REQUEST_ROWS)):
                part = data.iloc[first : first + REQUEST_ROWS]
                request_id = f"req-{hour}-{n}"
                log.append(
                    PredictionRecord(
                        request_id=request_id,
                        deployment=DEPLOYMENT,
                        variant="primary",
                        model=MODEL,
                        model_version=1,
                        timestamp=start + timedelta(seconds=30 + 70 * n),
                        latency_ms=float(latency[n]),
                        status=200,
                        inputs={c: part[c].tolist() for c in FEATURES},
                        outputs={"predict": predicted[first : first + REQUEST_ROWS].tolist()},
                    )
                )
                ids.append(request_id)
                truth += [(request_id, row, int(y)) for row, y in enumerate(part["churned"])]
    finally:
        log.close()
    client.monitoring.log_labels(
        DEPLOYMENT, pd.DataFrame(truth, columns=["request_id", "row", "label"])
    )
    return tuple(ids)


@contextmanager
def pipeline_code(code: Path) -> Iterator[ModuleType]:
    """The pipeline module, written to ``code`` and imported with ``code`` on sys.path; on
    exit both are undone, so the folder and ``ui_pipeline`` do not outlive the seed into
    other tests (the server never imports it: no loop driver runs there)."""
    code.mkdir(exist_ok=True)
    (code / f"{PIPELINE_MODULE}.py").write_text(textwrap.dedent(PIPELINE_SOURCE))
    folder = str(code)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    sys.modules.pop(PIPELINE_MODULE, None)
    importlib.invalidate_caches()
    try:
        yield importlib.import_module(PIPELINE_MODULE)
    finally:
        sys.modules.pop(PIPELINE_MODULE, None)
        if added and folder in sys.path:
            sys.path.remove(folder)


def _pipeline(client: lw.Client, code: Path) -> str:
    """Run the pipeline module once (from ``code``)."""
    with pipeline_code(code) as module:
        run = module.train.run(client=client, params={"rows": 50})
    assert run.status == "completed", f"the seed's pipeline ended {run.status}: {run.error}"
    return str(run.id)
