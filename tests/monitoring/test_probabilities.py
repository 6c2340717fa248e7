"""Probability outputs end to end: a deployment that logs ``predict_proba`` (a list of class
probabilities per row) gets prediction drift on each position (``output.predict_proba[0]``,
``[1]``), against a reference whose outputs the model version scored under the same names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _deployment_log import (
    DEPLOYMENT,
    REQUEST_ROWS,
    ROWS,
    SHIFTED_END,
    UNSHIFTED_END,
    Clock,
    deploy,
    features,
    register,
)

from loopwright.config import resolve_settings
from loopwright.monitoring.entities import MonitorRun
from loopwright.monitoring.service import MonitoringService
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
from loopwright.serving.predictions import PredictionService
from loopwright.store.home import Store, open_store

pytest.importorskip("sklearn")

PROBA = ("output.predict_proba[0]", "output.predict_proba[1]")


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


def log_hour(log: PredictionLog, model: Any, version: Any, end: datetime, shifted: bool) -> None:
    """ROWS rows in the hour before ``end``, logged with ``predict`` and ``predict_proba`` as
    serving logs them (the probabilities a 2-D array: one list per row)."""
    frame = features(ROWS, shifted=shifted, seed=5 + shifted)
    predicted, proba = model.predict(frame), model.predict_proba(frame)
    step = timedelta(hours=1) / (ROWS // REQUEST_ROWS + 1)
    for n, first in enumerate(range(0, ROWS, REQUEST_ROWS)):
        part = slice(first, first + REQUEST_ROWS)
        log.append(
            PredictionRecord(
                request_id=f"{'s' if shifted else 'u'}-{n}", deployment=DEPLOYMENT,
                variant="primary", model=version.model, model_version=version.version,
                timestamp=end - timedelta(hours=1) + step * (n + 1), latency_ms=1.0, status=200,
                inputs={c: frame[c].iloc[part].tolist() for c in frame.columns},
                outputs={"predict": predicted[part], "predict_proba": proba[part]},
            )
        )  # fmt: skip


@pytest.fixture
def monitoring(store: Store, tmp_path: Path) -> MonitoringService:
    fitted, version, _ = register(store, tmp_path)
    root = tmp_path / "proba-log"
    log = PredictionLog(root)
    try:
        log_hour(log, fitted, version, UNSHIFTED_END, shifted=False)
        log_hour(log, fitted, version, SHIFTED_END, shifted=True)
    finally:
        log.close()
    return MonitoringService(store, PredictionService(root), actor="ada", clock=Clock())


def results(run: MonitorRun, column: str) -> dict[str, Any]:
    assert run.drift is not None, run.error
    return {r.test: r for r in run.drift.tests if r.column == column}


def test_each_probability_is_tested_against_the_model_scored_reference(
    monitoring: MonitoringService,
) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT)
    calm = monitoring.run("churn", at=UNSHIFTED_END)
    shifted = monitoring.run("churn", at=SHIFTED_END)
    assert (calm.status, shifted.status) == ("ok", "ok"), (calm.error, shifted.error)
    (reference,) = monitoring.references()
    assert reference.source == "model:churn/1"
    assert set(PROBA) <= set(reference.columns)  # the model scored them under the log's names
    for column in PROBA:
        calm_w, shifted_w = results(calm, column)["wasserstein"], results(shifted, column)
        assert calm_w.kind == "prediction" and "skipped" not in calm_w.detail
        assert not calm_w.drifted
        assert shifted_w["wasserstein"].drifted  # age +15 moves the churn probability
        assert not shifted_w["missing"].drifted
    assert shifted.drift is not None and set(PROBA) <= set(shifted.drift.drifted_columns)
    charts = {d.column for d in shifted.drift.distributions}
    assert set(PROBA) <= charts
    # The list column itself is not a column of the result: its positions are.
    assert "output.predict_proba" not in {r.column for r in shifted.drift.tests}


def test_a_monitor_can_name_one_position_or_the_whole_vector(
    monitoring: MonitoringService,
) -> None:
    monitoring.create("positive", deployment=DEPLOYMENT, columns=["output.predict_proba[1]"])
    run = monitoring.run("positive", at=SHIFTED_END)
    assert run.status == "ok", run.error
    assert run.drift is not None
    assert {r.column for r in run.drift.tests} - {"*"} == {"output.predict_proba[1]"}
    assert run.drift.drifted_columns == ("output.predict_proba[1]",)

    monitoring.create("vector", deployment=DEPLOYMENT, columns=["output.predict_proba"])
    run = monitoring.run("vector", at=SHIFTED_END)
    assert run.status == "ok", run.error
    assert run.drift is not None
    assert {r.column for r in run.drift.tests} - {"*"} == set(PROBA)


def test_outputs_the_deployment_does_not_log_are_not_reported_missing(
    store: Store, tmp_path: Path
) -> None:
    # This log has predict only; the model-scored reference also holds predict_proba.
    deployed = deploy(store, tmp_path)
    monitoring = MonitoringService(
        store, PredictionService(deployed.log), actor="ada", clock=Clock()
    )
    monitoring.create("churn", deployment=DEPLOYMENT)
    run = monitoring.run("churn", at=UNSHIFTED_END)
    assert run.status == "ok" and run.drift is not None, run.error
    (reference,) = monitoring.references()
    assert set(PROBA) <= set(reference.columns)
    tested = {r.column for r in run.drift.tests}
    assert "output.predict" in tested and not tested & set(PROBA)
    skipped = [r for r in run.drift.tests if "skipped" in r.detail]
    assert skipped == []
