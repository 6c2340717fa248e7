"""Prometheus gauges from stored monitor runs, parsed back with prometheus_client's parser; the
text written without prometheus_client gives the same samples."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loopwright._ids import new_id
from loopwright.config import resolve_settings
from loopwright.monitoring.prometheus import CONTENT_TYPE, _Family, _text, render
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


def samples(text: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def add_monitor(store: Store, name: str, deployment: str) -> str:
    monitor_id = new_id()
    with store.db.write() as conn:
        conn.execute(
            t.monitors.insert(),
            {
                "id": monitor_id,
                "name": name,
                "deployment": deployment,
                "reference_spec": "auto",
                "spec_json": "{}",
                "created_by": "ada",
                "created_at": 1,
                "updated_at": 1,
            },
        )
    return monitor_id


def add_run(
    store: Store,
    monitor_id: str,
    *,
    window_end: int,
    status: str = "ok",
    rows: int = 100,
    dataset_drift: bool | None = None,
    summary: dict[str, Any] | None = None,
    results: tuple[tuple[str, str, float, bool], ...] = (),
) -> str:
    run_id = new_id()
    with store.db.write() as conn:
        conn.execute(
            t.monitor_runs.insert(),
            {
                "id": run_id,
                "monitor_id": monitor_id,
                "started_at": window_end,
                "finished_at": window_end + 500,
                "window_start": window_end - 3_600_000,
                "window_end": window_end,
                "status": status,
                "rows": rows,
                "dataset_drift": dataset_drift,
                "summary_json": json.dumps(summary or {}),
            },
        )
        for column, test, statistic, drifted in results:
            conn.execute(
                t.monitor_results.insert(),
                {
                    "run_id": run_id,
                    "monitor_id": monitor_id,
                    "column_name": column,
                    "test": test,
                    "kind": "drift",
                    "statistic": statistic,
                    "threshold": 0.2,
                    "drifted": drifted,
                    "window_end": window_end,
                },
            )
    return run_id


def add_alert(store: Store, monitor_id: str, rule: str, *, open_: bool) -> None:
    with store.db.write() as conn:
        conn.execute(
            t.alerts.insert(),
            {
                "id": new_id(),
                "monitor_id": monitor_id,
                "rule_key": rule,
                "open_key": rule if open_ else None,
                "status": "open" if open_ else "resolved",
                "threshold": 0.3,
                "message": "m",
                "occurrences": 1,
                "opened_at": 1,
                "last_seen_at": 1,
                "resolved_at": None if open_ else 2,
            },
        )


def labels(**pairs: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))


def test_gauges_come_from_each_monitors_latest_run(store: Store) -> None:
    churn = add_monitor(store, "churn-drift", "churn-api")
    add_run(  # older: none of its figures may show
        store,
        churn,
        window_end=1_000_000,
        dataset_drift=False,
        summary={"drift": {"share_drifted": 0.0}},
        results=(("input.age", "psi", 0.01, False),),
    )
    add_run(
        store,
        churn,
        window_end=2_000_000,
        rows=250,
        dataset_drift=True,
        summary={
            "drift": {"share_drifted": 0.5, "dataset_drift": True},
            "performance": {"metrics": {"accuracy": 0.81, "f1": 0.7}, "coverage": 0.4},
            "model_versions": ["churn/3"],
        },
        results=(("input.age", "psi", 0.31, True), ("input.age", "ks", 0.002, True)),
    )
    add_alert(store, churn, "drift_share>0.3", open_=True)
    add_alert(store, churn, "psi>0.2", open_=True)
    add_alert(store, churn, "accuracy<0.8", open_=False)

    got = samples(render(store))

    churn_labels = labels(monitor="churn-drift", deployment="churn-api")
    assert got == {
        (
            "loopwright_monitor_drift_statistic",
            labels(monitor="churn-drift", deployment="churn-api", column="input.age", test="ks"),
        ): 0.002,
        (
            "loopwright_monitor_drift_statistic",
            labels(monitor="churn-drift", deployment="churn-api", column="input.age", test="psi"),
        ): 0.31,
        (
            "loopwright_monitor_drifted",
            labels(monitor="churn-drift", deployment="churn-api", column="input.age", test="ks"),
        ): 1.0,
        (
            "loopwright_monitor_drifted",
            labels(monitor="churn-drift", deployment="churn-api", column="input.age", test="psi"),
        ): 1.0,
        ("loopwright_monitor_dataset_drift", churn_labels): 1.0,
        ("loopwright_monitor_drift_share", churn_labels): 0.5,
        (
            "loopwright_monitor_performance",
            labels(monitor="churn-drift", deployment="churn-api", metric="accuracy"),
        ): 0.81,
        (
            "loopwright_monitor_performance",
            labels(monitor="churn-drift", deployment="churn-api", metric="f1"),
        ): 0.7,
        (
            "loopwright_monitor_performance",
            labels(monitor="churn-drift", deployment="churn-api", metric="coverage"),
        ): 0.4,
        ("loopwright_monitor_rows", churn_labels): 250.0,
        ("loopwright_monitor_last_run_timestamp_seconds", churn_labels): 2000.5,
        ("loopwright_monitor_last_run_ok", churn_labels): 1.0,
        ("loopwright_alerts_open", churn_labels): 2.0,
    }


def test_a_latest_run_without_data_keeps_the_last_ok_figures(store: Store) -> None:
    fraud = add_monitor(store, "fraud-drift", "fraud-api")
    add_run(
        store,
        fraud,
        window_end=1_000_000,
        dataset_drift=False,
        summary={"share_drifted": 0.1},  # a flat summary is read too
        results=(("output.score", "psi", 0.05, False),),
    )
    add_run(store, fraud, window_end=2_000_000, status="no_data", rows=0)
    got = samples(render(store))
    who = labels(monitor="fraud-drift", deployment="fraud-api")
    assert got[("loopwright_monitor_rows", who)] == 0.0
    assert got[("loopwright_monitor_last_run_ok", who)] == 0.0
    assert got[("loopwright_monitor_last_run_timestamp_seconds", who)] == 2000.5
    assert got[("loopwright_monitor_drift_share", who)] == 0.1
    assert got[("loopwright_monitor_dataset_drift", who)] == 0.0
    statistic = labels(
        monitor="fraud-drift", deployment="fraud-api", column="output.score", test="psi"
    )
    assert got[("loopwright_monitor_drift_statistic", statistic)] == 0.05
    assert got[("loopwright_alerts_open", who)] == 0.0


def test_a_monitor_that_never_ran_only_counts_its_alerts(store: Store) -> None:
    add_monitor(store, "idle", "idle-api")
    got = samples(render(store))
    assert got == {("loopwright_alerts_open", labels(monitor="idle", deployment="idle-api")): 0.0}


def test_an_empty_store_renders_the_families_without_samples(store: Store) -> None:
    text = render(store)
    assert samples(text) == {}
    assert b"# TYPE loopwright_monitor_drift_statistic gauge" in text
    assert b"# TYPE loopwright_alerts_open gauge" in text


def test_the_text_written_without_prometheus_client_reads_the_same(store: Store) -> None:
    odd = add_monitor(store, 'we"ird\\name\nx', "api")
    add_run(
        store,
        odd,
        window_end=5_000,
        dataset_drift=True,
        summary={"drift": {"share_drifted": 1.0}, "performance": {"metrics": {"mae": 2.5}}},
        results=(
            ('input.a"b\\c\nd', "psi", math.inf, True),
            ("input.<script>", "psi", 0.5, True),
        ),
    )
    add_alert(store, odd, "drift_share>0.3", open_=True)
    with_client, own = render(store, use_client=True), render(store, use_client=False)
    got, mine = samples(with_client), samples(own)
    assert got == mine
    inf_key = (
        "loopwright_monitor_drift_statistic",
        labels(monitor='we"ird\\name\nx', deployment="api", column='input.a"b\\c\nd', test="psi"),
    )
    assert mine[inf_key] == math.inf
    assert len(mine) == 11


def test_the_own_text_writes_nan_and_infinities() -> None:
    family = _Family("lw_x", "help with \\ and\nnewline", ("k",))
    family.samples += [(("nan",), math.nan), (("up",), math.inf), (("down",), -math.inf)]
    got = samples(_text([family]))
    assert math.isnan(got.pop(("lw_x", (("k", "nan"),))))
    assert got == {("lw_x", (("k", "up"),)): math.inf, ("lw_x", (("k", "down"),)): -math.inf}


def test_a_summary_that_is_not_json_only_loses_its_figures(store: Store) -> None:
    broken = add_monitor(store, "broken", "api")
    add_run(store, broken, window_end=5_000, dataset_drift=True, rows=7)
    with store.db.write() as conn:
        conn.execute(t.monitor_runs.update().values(summary_json="{not json"))
    got = samples(render(store))
    who = labels(monitor="broken", deployment="api")
    assert got[("loopwright_monitor_rows", who)] == 7.0
    assert got[("loopwright_monitor_dataset_drift", who)] == 1.0
    assert ("loopwright_monitor_drift_share", who) not in got


def test_content_type_is_the_text_format() -> None:
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")
