"""Evaluation gates: rules and specs parsed or refused naming the fix, and ``evaluate_gate`` on
real sklearn models and a real holdout dataset version (SQLite and PostgreSQL): a good model
passes, a worse one fails with the reason, latency, fairness and the champion are measured,
and the result is recorded with its lineage (the holdout version, the model version, a tag)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _gate_fixtures import HOLDOUT, MODEL, populate, spec

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.loop.entities import GateRule
from loopwright.loop.gates import evaluate_gate, load_gate_spec, parse_rule

pytest.importorskip("sklearn")


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user="ada"
    )
    with Client(settings) as client:
        yield client


@pytest.fixture
def holdout_id(client: Client) -> str:
    return str(populate(client))


# --- rules and specs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("metrics.auc >= 0.85", GateRule("metrics", "auc", ">=", 0.85, "metrics.auc >= 0.85")),
        ("latency.p95_ms<=20", GateRule("latency", "p95_ms", "<=", 20.0, "latency.p95_ms<=20")),
        (
            " fairness.demographic_parity_ratio >= 0.8 ",
            GateRule(
                "fairness",
                "demographic_parity_ratio",
                ">=",
                0.8,
                "fairness.demographic_parity_ratio >= 0.8",
            ),
        ),
        (
            "vs_champion.auc >= -0.005",
            GateRule("vs_champion", "auc", ">=", -0.005, "vs_champion.auc >= -0.005"),
        ),
        ("metrics.rmse < 1e3", GateRule("metrics", "rmse", "<", 1000.0, "metrics.rmse < 1e3")),
    ],
)
def test_rules_parse(text: str, rule: GateRule) -> None:
    assert parse_rule(text) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("score.auc >= 0.8", "unknown namespace 'score'; use one of metrics, latency"),
        ("metrics.aucc >= 0.8", "metrics has no metric 'aucc'; known: accuracy, auc"),
        ("latency.p42_ms <= 3", "latency has no metric 'p42_ms'"),
        ("fairness.accuracy >= 0.8", "fairness has no metric 'accuracy'"),
        ("metrics.auc => 0.8", "is not NAMESPACE.METRIC OP NUMBER"),
        ("metrics.auc != 0.8", "is not NAMESPACE.METRIC OP NUMBER"),
        ("metrics.auc >= high", "the threshold 'high' is not a finite number"),
        ("metrics.auc >= nan", "the threshold 'nan' is not a finite number"),
        ("metrics.auc >= 0.8 and 0.9", "is not NAMESPACE.METRIC OP NUMBER"),
        ("auc >= 0.8", "is not NAMESPACE.METRIC OP NUMBER"),
    ],
)
def test_bad_rules_are_refused_naming_the_fix(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_rule(text)


def test_a_yaml_spec_loads(tmp_path: Path) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(
        "name: churn-release\n"
        "dataset: churn-holdout@v2\n"
        "target: churned\n"
        "sensitive: [gender]\n"
        "champion: models:/churn@best\n"
        "rules:\n"
        "  - metrics.auc >= 0.85\n"
        "  - fairness.demographic_parity_ratio >= 0.8\n"
    )
    loaded = load_gate_spec(path)
    assert (loaded.name, loaded.dataset, loaded.target) == (
        "churn-release",
        "churn-holdout@v2",
        "churned",
    )
    assert loaded.sensitive == ("gender",) and loaded.champion == "models:/churn@best"
    assert [r.text for r in loaded.rules] == [
        "metrics.auc >= 0.85",
        "fairness.demographic_parity_ratio >= 0.8",
    ]
    assert load_gate_spec(str(path)) == loaded
    assert load_gate_spec(loaded.to_dict()) == loaded  # what a server or a loop stores


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("name: x\nrules: [\n", InvalidInput, "is not valid YAML"),
        ("- metrics.auc >= 0.8\n", InvalidInput, "must be a YAML mapping"),
        ("", InvalidInput, "must be a YAML mapping"),
        ("name: g\ndataset: d\nrules: [metrics.auc >= 0.8]\n", InvalidInput, "lacks target"),
        (
            "name: g\ndataset: d\ntarget: y\nrules: [metrics.auc >= 0.8]\nthreshold: 3\n",
            InvalidInput,
            "unknown keys ['threshold']",
        ),
        (
            "name: g\ndataset: d\ntarget: y\nrules: metrics.auc >= 0.8\n",
            InvalidInput,
            "a non-empty",
        ),
        ("name: g\ndataset: d\ntarget: y\nrules: [metrics.f2 >= 0.8]\n", InvalidInput, "'f2'"),
        (
            "name: g\ndataset: d\ntarget: y\nrules: [fairness.demographic_parity_ratio >= 0.8]\n",
            InvalidInput,
            "no sensitive columns; add 'sensitive: [COLUMN]'",
        ),
        (
            "name: g\ndataset: d\ntarget: y\nchampion: churn\nrules: [metrics.auc >= 0.8]\n",
            InvalidInput,
            "champion 'churn' must be models:/NAME@ALIAS",
        ),
        (
            "name: 'bad name'\ndataset: d\ntarget: y\nrules: [metrics.auc > 0]\n",
            InvalidInput,
            "gate name 'bad name' must be 1-100 letters",
        ),
        (
            "name: g\ndataset: d\ntarget: y\nlatency_rows: 0\nrules: [latency.p95_ms < 9]\n",
            InvalidInput,
            "latency_rows 0 must be 1-10000",
        ),
    ],
)
def test_bad_specs_are_refused(tmp_path: Path, text: str, error: type, message: str) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    with pytest.raises(error, match=re.escape(message)):
        load_gate_spec(path)


def test_a_missing_spec_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"gate spec file .*nope\.yaml' does not exist"):
        load_gate_spec(tmp_path / "nope.yaml")
    with pytest.raises(InvalidInput, match="a YAML file path or a mapping, not int"):
        load_gate_spec(3)  # type: ignore[arg-type]


# --- evaluation ---------------------------------------------------------------------------------


def test_a_good_model_passes_and_a_worse_one_fails_with_the_reason(
    client: Client, holdout_id: str
) -> None:
    gate = load_gate_spec(spec("metrics.auc >= 0.85", "metrics.accuracy >= 0.8"))
    good = evaluate_gate(gate, f"models:/{MODEL}/1", client=client)
    assert good.passed and good.reason == ""
    assert (good.model, good.version, good.gate) == (MODEL, 1, "churn-release")
    assert good.dataset_version_id == holdout_id and good.dataset == f"{HOLDOUT}@v1"
    assert good.outcomes[0].value is not None and good.outcomes[0].value > 0.9
    assert good.created_by == "ada" and good.spec["rules"] == [r.text for r in gate.rules]

    worse = evaluate_gate(gate, f"models:/{MODEL}/2", client=client)
    assert not worse.passed
    assert worse.reason.startswith("metrics.auc >= 0.85 failed (0.")
    assert "metrics.accuracy >= 0.8 failed (" in worse.reason
    assert [o.passed for o in worse.outcomes] == [False, False]

    # lineage: the verdicts are on the versions, the results listed by model and version
    assert client.registry.get_version(MODEL, 1).tags["loopwright.gate.churn-release"] == "passed"
    assert client.registry.get_version(MODEL, 2).tags["loopwright.gate.churn-release"] == "failed"
    assert [r.id for r in client.gates.results(model=MODEL)] == [worse.id, good.id]
    assert [r.id for r in client.gates.results(model=MODEL, version=1)] == [good.id]
    assert client.gates.get(good.id) == good
    events = [e for e in client.audit.events() if e.action == "gate.check"]
    assert [(e.subject_id, e.actor) for e in events] == [(good.id, "ada"), (worse.id, "ada")]


def test_an_alias_and_the_holdouts_alias_resolve_to_versions(client: Client) -> None:
    populate(client, only=1)
    client.datasets.set_alias(f"{HOLDOUT}@v1", "frozen")
    client.registry.set_alias(MODEL, "candidate", 1)
    gate = load_gate_spec(spec("metrics.f1 >= 0.5", dataset=f"{HOLDOUT}@frozen"))
    result = evaluate_gate(gate, f"models:/{MODEL}@candidate", client=client)
    assert result.passed and result.version == 1 and result.dataset == f"{HOLDOUT}@v1"


def test_latency_is_measured_and_an_absurd_threshold_fails(client: Client) -> None:
    populate(client, only=1)
    gate = load_gate_spec(
        spec("latency.p95_ms <= 10000", "latency.p50_ms <= 0.000001", latency_rows=30)
    )
    result = evaluate_gate(gate, f"models:/{MODEL}/1", client=client)
    relaxed, absurd = result.outcomes
    assert relaxed.passed and relaxed.value is not None and 0 < relaxed.value < 10000
    assert relaxed.detail == "30 predict calls of one row each"
    assert not absurd.passed and absurd.value is not None and absurd.value > 0.000001
    assert result.reason.startswith("latency.p50_ms <= 0.000001 failed (")


def test_fairness_fails_a_biased_model(client: Client) -> None:
    populate(client, only=3)
    gate = load_gate_spec(spec("fairness.demographic_parity_ratio >= 0.8", sensitive=["gender"]))
    fair = evaluate_gate(gate, f"models:/{MODEL}/1", client=client)
    assert fair.passed, fair.reason
    biased = evaluate_gate(gate, f"models:/{MODEL}/3", client=client)
    assert not biased.passed
    (outcome,) = biased.outcomes
    assert outcome.value is not None and outcome.value < 0.2
    assert outcome.detail == "worst over 'gender'"


def test_vs_champion_with_no_champion_an_alias_champion_and_the_champion_itself(
    client: Client,
) -> None:
    populate(client, only=2)
    rules = ("vs_champion.auc >= -0.005", "vs_champion.accuracy >= 0")
    default = load_gate_spec(spec(*rules))
    first = evaluate_gate(default, f"models:/{MODEL}/2", client=client)
    assert first.passed and first.champion_version is None
    assert first.outcomes[0].value is None
    assert first.outcomes[0].detail.startswith("no champion yet (models:/churn@champion")

    client.registry.set_alias(MODEL, "best", 1)
    against = load_gate_spec(spec(*rules, champion=f"models:/{MODEL}@best"))
    worse = evaluate_gate(against, f"models:/{MODEL}/2", client=client)
    assert not worse.passed and worse.champion_version == 1
    delta = worse.outcomes[0].value
    assert delta is not None and delta < -0.3  # a coin against a ~0.95 AUC
    assert "vs champion v1" in worse.outcomes[0].detail

    itself = evaluate_gate(against, f"models:/{MODEL}/1", client=client)
    assert itself.passed and itself.champion_version == 1
    assert [o.value for o in itself.outcomes] == [0.0, 0.0]
    assert itself.outcomes[0].detail.startswith("candidate is the champion")


def test_a_rule_that_cannot_be_measured_fails_saying_why(client: Client) -> None:
    populate(client)
    gate = load_gate_spec(spec("metrics.auc >= 0.5", "metrics.rmse <= 1", "metrics.f1 >= 0.5"))
    result = evaluate_gate(gate, f"models:/{MODEL}/4", client=client)  # no predict_proba
    auc, rmse, f1 = result.outcomes
    assert not auc.passed and auc.value is None and "has no predict_proba" in auc.detail
    assert not rmse.passed and "rmse is not a classification metric" in rmse.detail
    assert f1.passed
    assert "metrics.auc >= 0.5 failed (not measured: models:/churn/4 has no" in result.reason


def test_a_model_that_cannot_read_the_holdout_fails_the_gate(client: Client) -> None:
    import pandas as pd

    populate(client, only=1)
    frame = pd.DataFrame({"x1": [0.1, -0.2, 1.0], "churned": [1, 0, 1]})  # no x2
    client.datasets.add("thin", frame, table_name="thin.parquet")
    gate = load_gate_spec(spec("metrics.accuracy >= 0.5", "latency.p95_ms <= 100", dataset="thin"))
    result = evaluate_gate(gate, f"models:/{MODEL}/1", client=client)
    assert not result.passed
    assert all("could not predict on the holdout" in o.detail for o in result.outcomes)

    holes = pd.DataFrame({"x1": [0.1, None, 1.0], "x2": [0.0, 1.0, 2.0], "churned": [1, 0, 1]})
    client.datasets.add("holes", holes, table_name="holes.parquet")  # sklearn refuses NaN
    gate = load_gate_spec(spec("metrics.accuracy >= 0.5", dataset="holes"))
    result = evaluate_gate(gate, f"models:/{MODEL}/1", client=client)
    assert not result.passed
    assert "models:/churn/1 failed on the holdout (ValueError: " in result.outcomes[0].detail


def test_bad_holdouts_and_models_are_refused(client: Client, tmp_path: Path) -> None:
    populate(client, only=1)
    uri = f"models:/{MODEL}/1"
    with pytest.raises(NotFound, match="nope"):
        evaluate_gate(load_gate_spec(spec("metrics.f1 > 0", dataset="nope")), uri, client=client)
    with pytest.raises(InvalidInput, match="has no column 'label' named by gate 'churn-release'"):
        evaluate_gate(load_gate_spec(spec("metrics.f1 > 0", target="label")), uri, client=client)
    with pytest.raises(InvalidInput, match="has no column 'region'"):
        gate = spec("fairness.demographic_parity_ratio > 0", sensitive=["region"])
        evaluate_gate(load_gate_spec(gate), uri, client=client)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "readme.txt").write_text("not a table")
    client.datasets.add("notes", notes)
    with pytest.raises(InvalidInput, match="holds no Parquet or CSV files"):
        evaluate_gate(load_gate_spec(spec("metrics.f1 > 0", dataset="notes")), uri, client=client)
    gate = load_gate_spec(spec("metrics.f1 > 0"))
    with pytest.raises(NotFound, match="has no version 9"):
        evaluate_gate(gate, f"models:/{MODEL}/9", client=client)
    with pytest.raises(InvalidInput, match="must be a registered version"):
        evaluate_gate(gate, str(tmp_path), client=client)
    with pytest.raises(InvalidInput, match="needs a client"):
        evaluate_gate(gate, uri)
    assert client.gates.results() == []  # nothing recorded by a refusal


def test_a_regression_gate(client: Client) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=300)})
    frame["y"] = 3 * frame["x"] + rng.normal(scale=0.1, size=300)
    client.datasets.add("prices", frame.iloc[200:], table_name="p.parquet")
    with client.start_run(experiment="prices") as run:
        run.log_model(LinearRegression().fit(frame[["x"]][:200], frame["y"][:200]))
    client.registry.register("prices", run_id=run.id)
    gate = load_gate_spec(
        {
            "name": "prices",
            "dataset": "prices",
            "target": "y",
            "rules": ["metrics.rmse <= 0.2", "metrics.r2 >= 0.99", "metrics.auc >= 0.5"],
        }
    )
    result = evaluate_gate(gate, "models:/prices/1", client=client)
    rmse, r2, auc = result.outcomes
    assert rmse.passed and r2.passed
    assert not auc.passed and "auc is not a regression metric" in auc.detail


def test_lw_evaluate_gate_uses_the_default_client(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright import _active

    populate(client, only=1)
    monkeypatch.setattr(_active, "_default_client", client)
    result = lw.evaluate_gate(load_gate_spec(spec("metrics.f1 >= 0.5")), f"models:/{MODEL}/1")
    assert result.passed and client.gates.get(result.id) == result
    from_mapping = lw.evaluate_gate(spec("metrics.f1 >= 0.99"), f"models:/{MODEL}/1")
    assert not from_mapping.passed  # a mapping (or a YAML path) is read by load_gate_spec
    with pytest.raises(InvalidInput, match="lacks target"):
        lw.evaluate_gate({"name": "g", "dataset": HOLDOUT, "rules": ["metrics.f1 > 0"]}, "x")


def test_a_holdout_of_several_csv_files_is_read_as_one_table(
    client: Client, tmp_path: Path
) -> None:
    from _gate_fixtures import frames

    populate(client, only=1)
    _, holdout = frames()
    folder = tmp_path / "parts"
    folder.mkdir()
    holdout.iloc[:150].to_csv(folder / "a.csv", index=False)
    holdout.iloc[150:].to_csv(folder / "b.csv", index=False)
    (folder / "README.txt").write_text("not data")
    client.datasets.add("csv-holdout", folder)
    gate = load_gate_spec(spec("metrics.auc >= 0.85", dataset="csv-holdout"))
    from_csv = evaluate_gate(gate, f"models:/{MODEL}/1", client=client)
    from_parquet = evaluate_gate(
        load_gate_spec(spec("metrics.auc >= 0.85")), f"models:/{MODEL}/1", client=client
    )
    assert from_csv.passed and from_csv.dataset == "csv-holdout@v1"
    assert from_csv.outcomes[0].value == pytest.approx(from_parquet.outcomes[0].value)


def test_the_default_champion_is_the_models_champion_alias(client: Client) -> None:
    populate(client, only=2)
    moved = client.registry.set_alias(MODEL, "champion", 1)
    # the default (protective) policy guards champion: another user approves the move
    from loopwright.governance.users import UserService

    assert not moved.applied and moved.request is not None
    UserService(client.store, actor="root").add("bob", "approver")
    with Client(resolve_settings(**_same_stores(client), user="bob")) as bob:
        bob.registry.approve(moved.request.id)
    assert client.registry.resolve(MODEL, "@champion").version == 1
    result = evaluate_gate(spec("vs_champion.auc >= -0.005"), f"models:/{MODEL}/2", client=client)
    assert not result.passed and result.champion_version == 1
    assert result.outcomes[0].value is not None and result.outcomes[0].value < -0.3


def _same_stores(client: Client) -> dict[str, Any]:
    settings = client.settings
    return {"home": settings.home, "db_uri": settings.db_uri, "blob_uri": settings.blob_uri}
