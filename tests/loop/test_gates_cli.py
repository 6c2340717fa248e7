"""``loopwright gates``: ``check`` exits 0 when the gate passes and 1 when it fails, printing
each rule's value, threshold and verdict with the reason; ``results`` lists what was recorded;
bad specs and models are refused in one line without a traceback; ``--server`` works."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _gate_fixtures import MODEL, populate
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from test_public_api import _add_users, live_server

pytest.importorskip("sklearn")

WIDE = {"COLUMNS": "400"}
SPEC = """\
name: churn-release
dataset: churn-holdout
target: churned
sensitive: [gender]
rules:
  - metrics.auc >= 0.85
  - fairness.demographic_parity_ratio >= 0.8
  - latency.p95_ms <= 10000
"""


@pytest.fixture
def store(tmp_path: Path) -> list[str]:
    """Global options of a store with ``churn`` versions 1 (good) and 2 (a coin)."""
    home, blobs = tmp_path / "home", tmp_path / "blobs"
    with Client(resolve_settings(home=home, blob_uri=str(blobs), user="ada")) as client:
        populate(client, only=2)
    return ["--home", str(home), "--blob-uri", str(blobs)]


@pytest.fixture
def gates_yaml(tmp_path: Path) -> str:
    path = tmp_path / "gates.yaml"
    path.write_text(SPEC)
    return str(path)


def lw(options: list[str], *args: str) -> Any:
    return CliRunner().invoke(app, [*options, "--user", "ada", *args], env=WIDE)


def test_check_passes_fails_and_lists_results(store: list[str], gates_yaml: str) -> None:
    passed = lw(store, "gates", "check", gates_yaml, "--model", f"models:/{MODEL}/1")
    assert passed.exit_code == 0, passed.output
    assert "metrics.auc >= 0.85" in passed.output and ">= 0.85" in passed.output
    assert "pass" in passed.output and "gate churn-release passed" in passed.output

    failed = lw(store, "gates", "check", gates_yaml, "--model", f"models:/{MODEL}/2")
    assert failed.exit_code == 1, failed.output
    assert "FAIL" in failed.output
    assert "gate churn-release failed: metrics.auc >= 0.85 failed (0." in failed.output

    as_json = lw(store, "gates", "check", gates_yaml, "--model", f"models:/{MODEL}/2", "--json")
    assert as_json.exit_code == 1
    data = json.loads(as_json.output)
    assert data["passed"] is False and data["version"] == 2
    assert [o["rule"] for o in data["outcomes"]] == [
        "metrics.auc >= 0.85",
        "fairness.demographic_parity_ratio >= 0.8",
        "latency.p95_ms <= 10000",
    ]

    listed = lw(store, "gates", "results", "--model", MODEL, "--json")
    assert listed.exit_code == 0, listed.output
    assert [(r["version"], r["passed"]) for r in json.loads(listed.output)] == [
        (2, False),
        (2, False),
        (1, True),
    ]
    one = lw(store, "gates", "results", "--model", MODEL, "--version", "1")
    assert one.exit_code == 0 and "passed" in one.output and "churn-holdout@v1" in one.output


@pytest.mark.parametrize(
    ("spec", "model", "message"),
    [
        ("name: g\ndataset: churn-holdout\ntarget: churned\nrules: [metrics.auc >= x]\n", None,
         "the threshold 'x' is not a finite number"),
        ("name: g\nrules: [\n", None, "is not valid YAML"),
        ("name: g\ndataset: nope\ntarget: churned\nrules: [metrics.f1 > 0]\n", None, "nope"),
        ("name: g\ndataset: churn-holdout\ntarget: label\nrules: [metrics.f1 > 0]\n", None,
         "has no column 'label'"),
        (SPEC, "models:/churn/9", "has no version 9"),
        (SPEC, "churn", "models:/NAME/N or models:/NAME@ALIAS"),
    ],
)  # fmt: skip
def test_bad_specs_and_models_are_one_line_errors(
    store: list[str], tmp_path: Path, spec: str, model: str | None, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(spec)
    result = lw(store, "gates", "check", str(path), "--model", model or f"models:/{MODEL}/1")
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert json.loads(lw(store, "gates", "results", "--json").output) == []


def test_a_missing_spec_file_and_a_bad_version_option(store: list[str], tmp_path: Path) -> None:
    result = lw(store, "gates", "check", str(tmp_path / "no.yaml"), "--model", "models:/churn/1")
    assert result.exit_code == 1 and "does not exist" in result.output
    result = lw(store, "gates", "results", "--version", "1")
    assert result.exit_code == 1 and "needs model=NAME too" in result.output


def test_results_on_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    result = lw(["--home", str(tmp_path / "typo")], "gates", "results")
    assert result.exit_code != 0
    assert not (tmp_path / "typo").exists()


def test_check_through_a_server(tmp_path: Path, gates_yaml: str) -> None:
    settings = resolve_settings(home=tmp_path / "server", blob_uri=str(tmp_path / "blobs"))
    tokens = _add_users(settings)
    with Client(resolve_settings(home=settings.home, blob_uri=settings.blob_uri)) as client:
        populate(client, only=2)
    with live_server(settings) as url:
        options = ["--server", url, "--token", tokens["ada"]]
        passed = CliRunner().invoke(
            app, [*options, "gates", "check", gates_yaml, "--model", "models:/churn/1"], env=WIDE
        )
        assert passed.exit_code == 0, passed.output
        viewer = ["--server", url, "--token", tokens["vic"]]
        refused = CliRunner().invoke(
            app, [*viewer, "gates", "check", gates_yaml, "--model", "models:/churn/1"], env=WIDE
        )
        assert refused.exit_code == 1 and "Traceback" not in refused.output
        listed = CliRunner().invoke(app, [*viewer, "gates", "results", "--json"], env=WIDE)
        assert listed.exit_code == 0
        assert [r["created_by"] for r in json.loads(listed.output)] == ["ada"]
