"""Monitor runs end to end on real stores (SQLite and PostgreSQL) and a real prediction log: the
shifted hour is flagged and the unshifted one is not, the auto reference follows lineage and is
reused, empty windows, failures stored, history, the schedule, labels, alerts and reports."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from _deployment_log import (
    DEPLOYMENT,
    MODEL,
    REQUEST_ROWS,
    ROWS,
    SHIFTED,
    SHIFTED_END,
    START,
    UNSHIFTED_END,
    Clock,
    Deployed,
    deploy,
    features,
    log_window,
    register,
)

from loopwright.config import resolve_settings
from loopwright.monitoring.entities import MonitorRun
from loopwright.monitoring.service import MonitoringService
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord
from loopwright.serving.predictions import PredictionService
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store

pytest.importorskip("sklearn")


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deployed(store: Store, tmp_path: Path) -> Deployed:
    return deploy(store, tmp_path)


@pytest.fixture
def monitoring(store: Store, deployed: Deployed, clock: Clock) -> MonitoringService:
    return MonitoringService(store, PredictionService(deployed.log), actor="ada", clock=clock)


def drifted(run: MonitorRun) -> set[str]:
    assert run.drift is not None
    return set(run.drift.drifted_columns)


def test_the_shifted_window_is_flagged_and_the_unshifted_is_not(
    monitoring: MonitoringService, store: Store
) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT)
    calm = monitoring.run("churn", at=UNSHIFTED_END)
    shifted = monitoring.run("churn", at=SHIFTED_END)
    for run in (calm, shifted):
        assert (run.status, run.rows, run.error) == ("ok", ROWS, None)
        assert run.model_versions == (f"{MODEL}/1",)
        assert run.window_end - run.window_start == 3600 * 1000
    assert not drifted(calm) & {"input.age", "input.income", "input.plan"}
    assert set(SHIFTED) <= drifted(shifted)
    assert "input.income" not in drifted(shifted)
    assert shifted.drift is not None and shifted.drift.current_rows == ROWS
    tested = {r.column for r in shifted.drift.tests}
    assert {"input.age", "input.income", "input.plan", "output.predict"} <= tested
    # Each run: one results row per test with a statistic, the summary readable in SQL.
    with store.db.read() as conn:
        for run in (calm, shifted):
            assert run.drift is not None
            stored = conn.execute(
                sa.select(t.monitor_results).where(t.monitor_results.c.run_id == run.id)
            ).all()
            finite = {(r.column, r.test) for r in run.drift.tests if not math.isnan(r.statistic)}
            assert {(r.column_name, r.test) for r in stored} == finite
            row = conn.execute(sa.select(t.monitor_runs).where(t.monitor_runs.c.id == run.id)).one()
            summary = json.loads(row.summary_json)
            assert row.dataset_drift == run.drift.dataset_drift
            assert summary["share_drifted"] == pytest.approx(run.drift.share_drifted)
            assert summary["model_versions"] == [f"{MODEL}/1"]
            assert summary["distributions"]  # the report's charts


def test_auto_reference_follows_lineage_and_is_reused(
    monitoring: MonitoringService, deployed: Deployed
) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT)
    monitoring.run("churn", at=UNSHIFTED_END)
    monitor = monitoring.get("churn")
    [reference] = monitoring.references()
    assert monitor.reference_id == reference.id
    assert reference.source == f"model:{MODEL}/1"
    assert reference.dataset_version_id == deployed.dataset.id
    monitoring.run("churn", at=SHIFTED_END)
    monitoring.create("second", deployment=DEPLOYMENT)
    monitoring.run("second", at=SHIFTED_END)
    assert monitoring.references() == [reference]  # not rebuilt
    assert monitoring.get("second").reference_id == reference.id


def test_the_auto_reference_is_that_of_the_version_serving_most_rows(
    monitoring: MonitoringService, store: Store, tmp_path: Path, deployed: Deployed
) -> None:
    fitted, version, _ = register(store, tmp_path, model_name="churn-v2")
    log = PredictionLog(deployed.log)
    try:  # 3x the rows of churn/1 in the hour after the shifted one
        log_window(log, fitted, version, SHIFTED_END + timedelta(hours=1), shifted=False,
                   rows=3 * ROWS // 4, prefix="v2")  # fmt: skip
        log_window(log, deployed.model, deployed.version, SHIFTED_END + timedelta(hours=1),
                   shifted=False, rows=ROWS // 4, prefix="v1", seed=9)  # fmt: skip
    finally:
        log.close()
    monitoring.create("churn", deployment=DEPLOYMENT)
    run = monitoring.run("churn", at=SHIFTED_END + timedelta(hours=1))
    assert run.model_versions == ("churn-v2/1", f"{MODEL}/1")
    [reference] = monitoring.references()
    assert reference.source == "model:churn-v2/1"


def test_an_explicit_reference_is_used(monitoring: MonitoringService) -> None:
    monitoring.create(
        "churn", deployment=DEPLOYMENT, reference="churn-train@v1", columns=["input.age"]
    )
    run = monitoring.run("churn", at=SHIFTED_END)
    assert run.drift is not None
    assert {r.column for r in run.drift.tests if r.column != "*"} == {"input.age"}
    assert drifted(run) == {"input.age"}


def test_an_empty_window_is_no_data_and_builds_nothing(
    monitoring: MonitoringService, clock: Clock
) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT, alerts=["drift_share>0.1"])
    run = monitoring.run("churn", at=START)
    assert (run.status, run.rows, run.drift, run.performance, run.alerts) == (
        "no_data", 0, None, None, ()
    )  # fmt: skip
    assert monitoring.references() == []
    assert monitoring.alerts(monitor="churn") == []
    assert monitoring.get("churn").last_run_at == clock.now
    assert monitoring.get_run(run.id) == run
    assert json.loads(monitoring.report("churn", format="json"))  # a report says so too
    assert "No data" in monitoring.report("churn")


def test_a_failure_is_stored_as_a_failed_run(store: Store, tmp_path: Path, clock: Clock) -> None:
    fitted, version, _ = register(store, tmp_path, lineage=False)
    root = tmp_path / "log-no-lineage"
    log = PredictionLog(root)
    try:
        log_window(log, fitted, version, UNSHIFTED_END, shifted=False, rows=80)
    finally:
        log.close()
    monitoring = MonitoringService(store, PredictionService(root), clock=clock)
    monitoring.create("churn", deployment=DEPLOYMENT)
    run = monitoring.run("churn", at=UNSHIFTED_END)
    assert run.status == "failed" and run.drift is None
    assert run.error is not None and "names no training data in its lineage" in run.error
    assert monitoring.history("churn") == [run]
    assert monitoring.get("churn").last_run_at == clock.now


def test_a_corrupted_sketch_fails_the_run_with_a_clear_error(
    monitoring: MonitoringService, store: Store
) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT, reference="churn-train@v1")
    reference_id = monitoring.get("churn").reference_id
    junk = store.blobs.put_bytes(b"LWSKETCH garbage")
    with store.db.write() as conn:
        conn.execute(
            t.monitor_references.update()
            .where(t.monitor_references.c.id == reference_id)
            .values(sketch_blob=junk.hash)
        )
    run = monitoring.run("churn", at=SHIFTED_END)
    assert run.status == "failed"
    assert run.error is not None
    assert "InvalidInput" in run.error and "the sketch of reference" in run.error
    assert "build the reference again" in run.error


def test_history_newest_first_with_limit_and_since(monitoring: MonitoringService) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT, window=timedelta(minutes=30))
    ends = [START + timedelta(minutes=30 * i) for i in (1, 4, 2, 3)]
    runs = {end: monitoring.run("churn", at=end) for end in ends}
    history = monitoring.history("churn")
    assert [r.window_end for r in history] == sorted(
        (r.window_end for r in runs.values()), reverse=True
    )
    assert [r.id for r in monitoring.history("churn", limit=2)] == [h.id for h in history[:2]]
    since = monitoring.history("churn", since=START + timedelta(minutes=90))
    assert [r.id for r in since] == [h.id for h in history[:2]]
    stored = monitoring.get_run(runs[ends[1]].id)
    original = runs[ends[1]]
    assert (stored.status, stored.rows, stored.model_versions) == (
        original.status, original.rows, original.model_versions
    )  # fmt: skip
    assert stored.drift is not None and original.drift is not None
    assert drifted(stored) == drifted(original)
    assert [(r.column, r.test, r.drifted) for r in stored.drift.tests] == [
        (r.column, r.test, r.drifted) for r in original.drift.tests
    ]
    assert [r.statistic for r in stored.drift.tests] == pytest.approx(
        [r.statistic for r in original.drift.tests], nan_ok=True
    )
    assert len(stored.drift.distributions) == len(original.drift.distributions)


def test_run_due_follows_every_on_the_clock(monitoring: MonitoringService, clock: Clock) -> None:
    monitoring.create("due", deployment=DEPLOYMENT, every=timedelta(minutes=15))
    monitoring.create("manual", deployment=DEPLOYMENT)
    first = monitoring.run_due()
    assert [r.monitor for r in first] == ["due"]  # never ran: due now
    assert first[0].window_end == clock.now
    assert monitoring.run_due() == []
    clock.advance(timedelta(minutes=14, seconds=59))
    assert monitoring.run_due() == []
    clock.advance(timedelta(seconds=1))
    assert [r.monitor for r in monitoring.run_due()] == ["due"]
    assert monitoring.get("due").last_run_at == clock.now
    assert monitoring.get("manual").last_run_at is None
    assert len(monitoring.history("due")) == 2


def test_labels_give_the_window_performance(monitoring: MonitoringService) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT, task="classification")
    unlabelled = monitoring.run("churn", at=SHIFTED_END)
    assert unlabelled.performance is None
    frame = features(ROWS, shifted=True, seed=10)  # the seed log_window used for this hour
    labels = pd.DataFrame(
        {
            "request_id": [f"s-{i // REQUEST_ROWS}" for i in range(ROWS // 2)],
            "row": [i % REQUEST_ROWS for i in range(ROWS // 2)],
            "label": (frame["age"][: ROWS // 2] > 42).astype(int).tolist(),
        }
    )
    imported = monitoring.log_labels(DEPLOYMENT, labels)
    assert imported.rows == ROWS // 2
    run = monitoring.run("churn", at=SHIFTED_END)
    assert run.performance is not None
    assert run.performance.task == "classification"
    assert run.performance.rows == ROWS // 2 and run.performance.predictions == ROWS
    assert run.performance.coverage == pytest.approx(0.5)
    assert 0.5 < run.performance.metrics["accuracy"] <= 1.0
    assert monitoring.get_run(run.id).performance == run.performance
    whole = monitoring.performance(
        DEPLOYMENT, since=START, until=SHIFTED_END, slices=["input.plan"]
    )
    assert whole.rows == ROWS // 2 and whole.predictions == 2 * ROWS
    assert set(whole.by_slice["input.plan"]) == {"a", "b", "c"}
    assert len(monitoring.labels(DEPLOYMENT)) == ROWS // 2


def test_an_inputs_only_monitor_is_scored_once_labels_exist(
    monitoring: MonitoringService,
) -> None:
    # columns names inputs only: performance still needs the outputs (and who answered).
    monitoring.create("ages", deployment=DEPLOYMENT, columns=["input.age"])
    frame = features(ROWS, shifted=True, seed=10)  # the seed log_window used for this hour
    monitoring.log_labels(
        DEPLOYMENT,
        pd.DataFrame(
            {
                "request_id": [f"s-{i // REQUEST_ROWS}" for i in range(ROWS)],
                "row": [i % REQUEST_ROWS for i in range(ROWS)],
                "label": (frame["age"] > 42).astype(int).tolist(),
            }
        ),
    )
    run = monitoring.run("ages", at=SHIFTED_END)
    assert (run.status, run.error) == ("ok", None)
    assert run.performance is not None and run.performance.rows == ROWS
    assert 0.5 < run.performance.metrics["accuracy"] <= 1.0
    assert run.drift is not None
    tested = {r.column for r in run.drift.tests} - {"*"}  # "*": the multivariate test
    assert tested == {"input.age"}  # the outputs were read, not tested


def test_the_embedded_log_reads_arrow_and_names_its_location(deployed: Deployed) -> None:
    log = PredictionService(deployed.log)
    assert log.location == str(deployed.log.resolve())
    table = log.read_table(DEPLOYMENT, until=SHIFTED_END, columns=["request_id", "input.age"])
    assert table.column_names == ["request_id", "input.age"]
    frame = log.read(DEPLOYMENT, until=SHIFTED_END, columns=["request_id", "input.age"])
    assert table.num_rows == len(frame) == 2 * ROWS
    assert table["input.age"].to_pylist() == frame["input.age"].tolist()


def test_alerts_open_on_drift_and_resolve_when_it_clears(monitoring: MonitoringService) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT, alerts=["wasserstein:input.age>0.2"])
    shifted = monitoring.run("churn", at=SHIFTED_END)
    assert len(shifted.alerts) == 1
    [alert] = monitoring.alerts(monitor="churn", status="open")
    assert alert.id == shifted.alerts[0] and alert.rule == "wasserstein:input.age>0.2"
    assert monitoring.get_run(shifted.id).alerts == shifted.alerts
    calm = monitoring.run("churn", at=UNSHIFTED_END)
    assert calm.alerts == ()
    assert monitoring.alerts(monitor="churn", status="open") == []
    assert [a.status for a in monitoring.alerts(monitor="churn")] == ["resolved"]
    monitoring.run("churn", at=SHIFTED_END)  # reopened: a new alert
    assert [a.status for a in monitoring.alerts(monitor="churn")] == ["open", "resolved"]
    monitoring.delete("churn")  # its alerts go with it
    assert monitoring.alerts() == []


def test_reports_of_the_latest_and_of_a_given_run(monitoring: MonitoringService) -> None:
    monitoring.create("churn", deployment=DEPLOYMENT)
    first = monitoring.run("churn", at=UNSHIFTED_END)
    monitoring.run("churn", at=SHIFTED_END)
    html = monitoring.report("churn")
    assert html.lstrip().lower().startswith("<!doctype html") and "input.age" in html
    document = json.loads(monitoring.report("churn", run_id=first.id, format="json"))
    assert len(json.dumps(document)) < 10_000
    monitoring.create("other", deployment=DEPLOYMENT)
    from loopwright.errors import InvalidInput

    with pytest.raises(InvalidInput, match="belongs to monitor 'churn'"):
        monitoring.report("other", run_id=first.id)


def test_compare_two_frames_stores_nothing(monitoring: MonitoringService, store: Store) -> None:
    result = monitoring.compare(features(2000), features(2000, shifted=True, seed=5))
    assert {"age", "plan"} <= set(result.drifted_columns)
    assert "income" not in result.drifted_columns
    with store.db.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.monitor_runs)).scalar_one() == 0
        )


class _AlwaysNo:
    """A candidate model that answers 0 whatever it is asked (worse than the primary)."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return np.zeros(len(frame), dtype=np.int64)


def test_compare_variants_on_the_joined_labels(
    monitoring: MonitoringService, deployed: Deployed
) -> None:
    end = SHIFTED_END + timedelta(hours=1)
    log = PredictionLog(deployed.log)
    try:
        ids = {
            "primary": log_window(log, deployed.model, deployed.version, end, shifted=False,
                                  rows=800, prefix="p", seed=20),
            "canary": log_window(log, _AlwaysNo(), deployed.version, end, shifted=False,
                                 rows=800, prefix="c", seed=21, variant="canary"),
        }  # fmt: skip
    finally:
        log.close()
    no_labels = monitoring.compare_variants(
        DEPLOYMENT, since=end - timedelta(hours=1), until=end, min_samples=50
    )
    assert no_labels.metric == "mean_prediction"
    for variant, seed in (("primary", 20), ("canary", 21)):
        frame = features(800, seed=seed)
        truth = (frame["age"] > 42).astype(int).tolist()
        monitoring.log_labels(
            DEPLOYMENT,
            pd.DataFrame(
                {
                    "request_id": [ids[variant][i // REQUEST_ROWS] for i in range(800)],
                    "row": [i % REQUEST_ROWS for i in range(800)],
                    "label": truth,
                }
            ),
        )
    result = monitoring.compare_variants(
        DEPLOYMENT, since=end - timedelta(hours=1), until=end, min_samples=50
    )
    assert result.metric == "accuracy"
    assert (result.baseline.variant, result.candidate.variant) == ("primary", "canary")
    assert (result.baseline.n, result.candidate.n) == (800, 800)
    assert result.difference < 0 and result.significant and result.decision == "rollback"
    assert result.window_end - result.window_start == 3600 * 1000


class _ThroughPandas:
    """The Predictions protocol through ``read`` only, as a remote log offers it."""

    def __init__(self, inner: PredictionService) -> None:
        self.inner = inner

    def read(self, deployment: str, **kwargs: Any) -> pd.DataFrame:
        return self.inner.read(deployment, **kwargs)


@pytest.mark.parametrize("reader", ["duckdb", "arrow", "pandas"])
def test_window_readers_agree(
    deployed: Deployed, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.monitoring import _window

    log = PredictionService(deployed.log)
    source: Any = _ThroughPandas(log) if reader == "pandas" else log
    if reader == "arrow":  # DuckDB missing: the log's Arrow reader
        monkeypatch.setitem(__import__("sys").modules, "duckdb", None)
    end = int(SHIFTED_END.timestamp() * 1000)
    wanted = ["input.age", "input.gone", "output.predict"]
    table = _window.read_window(source, DEPLOYMENT, end - 3600_000, end, wanted).table
    assert table.column_names == [*_window.SERVED_BY, "input.age", "output.predict"]
    assert table.num_rows == ROWS
    ids = sorted(zip(table["request_id"].to_pylist(), table["row"].to_pylist(), strict=True))
    assert ids[0] == ("s-0", 0) and len(set(ids)) == ROWS
    assert _window.model_version_counts(table) == [(f"{MODEL}/1", ROWS)]
    everything = _window.read_window(source, DEPLOYMENT, None, end, None).table
    assert everything.num_rows == 2 * ROWS
    assert set(_window.feature_columns(everything)) == {
        "input.age", "input.income", "input.plan", "output.predict"
    }  # fmt: skip
    outputs = _window.read_window(
        source, DEPLOYMENT, None, end, ["timestamp"], prefixes=("output.",)
    )
    assert outputs.table.column_names == [*_window.SERVED_BY, "timestamp", "output.predict"]
    empty = _window.read_window(source, DEPLOYMENT, None, int(START.timestamp() * 1000), wanted)
    assert (empty.table.num_rows, empty.rows) == (0, 0)
    sample = _window.read_window(source, DEPLOYMENT, None, end, wanted, max_rows=500)
    assert (sample.table.num_rows, sample.rows, sample.sampled) == (500, 2 * ROWS, True)
    again = _window.read_window(source, DEPLOYMENT, None, end, wanted, max_rows=500)
    assert again.table.sort_by("request_id").equals(sample.table.sort_by("request_id"))


def test_vector_outputs_are_tested_position_by_position(
    monitoring: MonitoringService, deployed: Deployed
) -> None:
    log = PredictionLog(deployed.log)
    try:
        log.append(
            PredictionRecord(
                request_id="proba-1", deployment=DEPLOYMENT, variant="primary", model=MODEL,
                model_version=1, timestamp=SHIFTED_END - timedelta(minutes=1), latency_ms=1.0,
                status=200, inputs={"age": [40.0, 41.0], "income": [1e4, 2e4], "plan": ["a", "b"]},
                outputs={"predict": [0, 1], "predict_proba": [[0.9, 0.1], [0.2, 0.8]]},
            )
        )  # fmt: skip
    finally:
        log.close()
    monitoring.create("churn", deployment=DEPLOYMENT)
    run = monitoring.run("churn", at=SHIFTED_END)
    assert run.status == "ok" and run.rows == ROWS + 2
    assert run.drift is not None
    tested = {r.column for r in run.drift.tests}  # tests/monitoring/test_probabilities.py
    assert "output.predict_proba" not in tested  # has the verdicts
    assert {"output.predict_proba[0]", "output.predict_proba[1]"} <= tested


@pytest.mark.s3
def test_a_log_on_s3_is_read_through_duckdb(tmp_path: Path, s3_blob_uri: str) -> None:
    settings = resolve_settings(home=tmp_path / "home", blob_uri=s3_blob_uri)
    with open_store(settings) as store:
        fitted, version, _ = register(store, tmp_path)
        log = PredictionLog(store.blobs)
        try:
            log_window(log, fitted, version, UNSHIFTED_END, shifted=False, rows=200)
            log_window(log, fitted, version, SHIFTED_END, shifted=True, rows=200)
        finally:
            log.close()
        monitoring = MonitoringService(store, PredictionService(store.blobs), clock=Clock())
        monitoring.create("churn", deployment=DEPLOYMENT)
        run = monitoring.run("churn", at=SHIFTED_END)
        assert (run.status, run.rows) == ("ok", 200)
        assert "input.age" in drifted(run)


def test_a_window_past_the_row_cap_is_tested_on_a_sample(
    store: Store, deployed: Deployed, clock: Clock
) -> None:
    from loopwright.errors import InvalidInput

    capped = MonitoringService(
        store, PredictionService(deployed.log), clock=clock, max_window_rows=400
    )
    capped.create("churn", deployment=DEPLOYMENT)
    run = capped.run("churn", at=SHIFTED_END)
    assert run.rows == ROWS
    assert run.drift is not None and run.drift.current_rows == 400
    assert set(SHIFTED) <= drifted(run)
    for bad in (0, True, 2.5):
        with pytest.raises(InvalidInput, match="max_window_rows"):
            MonitoringService(store, PredictionService(deployed.log), max_window_rows=bad)  # type: ignore[arg-type]


def test_a_window_holds_its_start_and_not_its_end(tmp_path: Path) -> None:
    from loopwright.monitoring._window import read_window

    root = tmp_path / "edges"
    log = PredictionLog(root)
    try:
        for name, moment in (("at-start", START), ("at-end", UNSHIFTED_END)):
            log.append(
                PredictionRecord(
                    request_id=name, deployment=DEPLOYMENT, variant="primary", model=MODEL,
                    model_version=1, timestamp=moment, latency_ms=1.0, status=200,
                    inputs={"age": [40.0]}, outputs={"predict": [1]},
                )
            )  # fmt: skip
    finally:
        log.close()
    start, end = (int(m.timestamp() * 1000) for m in (START, UNSHIFTED_END))
    sources: list[Any] = [PredictionService(root), _ThroughPandas(PredictionService(root))]
    for source in sources:
        window = read_window(source, DEPLOYMENT, start, end, ["input.age"])
        assert window.table["request_id"].to_pylist() == ["at-start"]


def test_a_window_read_a_few_columns_at_a_time_lines_up_row_for_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.monitoring import _window

    monkeypatch.setattr(_window, "_GROUP_COLUMNS", 3)  # 10 inputs + 5 more: six groups
    root = tmp_path / "wide"
    for part in range(3):  # three files: each log writes its own when closed
        log = PredictionLog(root)
        try:
            for request in range(4):
                number = part * 4 + request
                log.append(
                    PredictionRecord(
                        request_id=f"q-{number}", deployment=DEPLOYMENT, variant="primary",
                        model=MODEL, model_version=1,
                        timestamp=START + timedelta(minutes=number), latency_ms=1.0, status=200,
                        inputs={f"f{j}": [number * 1000.0 + r * 10 + j for r in range(50)]
                                for j in range(10)},
                        outputs={"predict": [number] * 50},
                    )
                )  # fmt: skip
        finally:
            log.close()
    wanted = [f"input.f{j}" for j in range(10)] + ["output.predict"]
    end = int(UNSHIFTED_END.timestamp() * 1000)
    table = _window.read_window(PredictionService(root), DEPLOYMENT, None, end, wanted).table
    assert table.column_names == [*_window.SERVED_BY, *wanted] and table.num_rows == 600
    for item in table.to_pylist():
        number = int(item["request_id"].removeprefix("q-"))
        assert item["output.predict"] == number
        for j in range(10):
            assert item[f"input.f{j}"] == number * 1000.0 + item["row"] * 10 + j
