"""``loopwright eval``: datasets from a records file, a run with a target and scorers, results,
judge agreement, and judge approval, through the CLI (JSON and tables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _judge_stub import JudgeStub
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.evaluation import Judge

WIDE = {"COLUMNS": "400"}


def lw(home: Path, *args: str, user: str = "ada") -> Any:
    env = {**WIDE, "LOOPWRIGHT_HOME": str(home), "LOOPWRIGHT_USER": user}
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)


def lw_json(home: Path, *args: str, user: str = "ada") -> Any:
    result = lw(home, *args, "--json", user=user)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "calc_target.py").write_text(
        "def answer(question):\n    return str(eval(question))\n"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def test_add_run_results(home: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"inputs": {"question": "2+2"}, "expectations": {"expected_response": "4"}}\n'
        '{"inputs": {"question": "1/0"}, "expectations": {"expected_response": "x"}}\n'
    )
    added = lw_json(home, "eval", "add", "qa", str(rows))
    assert (added["inserted"], added["version"]) == (2, "qa@v1")
    assert [d["name"] for d in lw_json(home, "eval", "datasets")] == ["qa"]
    assert len(lw_json(home, "eval", "records", "qa")) == 2

    run = lw_json(
        home,
        "eval",
        "run",
        "qa",
        "--scorer",
        "builtin:exact_match",
        "--target",
        "calc_target:answer",
    )
    assert run["aggregates"]["exact_match/mean"] == 1.0 and run["failed_rows"] == 1
    assert run["dataset_digest"] == added["digest"]
    listed = lw_json(home, "eval", "results")
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    one = lw_json(home, "eval", "results", run["run_id"])
    assert one["aggregates"]["rows"] == 2.0
    table = lw(home, "eval", "results", run["run_id"])
    assert table.exit_code == 0 and "exact_match/mean" in table.stdout


def test_clean_failures(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"outputs": 1}\n')
    result = lw(home, "eval", "add", "qa", str(bad))
    assert result.exit_code == 1 and "no 'inputs'" in " ".join(result.stderr.split())
    result = lw(home, "eval", "run", "nope", "--scorer", "builtin:json_valid")
    assert result.exit_code == 1 and "not found" in result.stderr
    result = lw(home, "eval", "run", "qa", "--scorer", "x", "--target", "no_colon")
    assert result.exit_code == 1 and "module:function" in result.stderr


def test_agreement_and_approval(home: Path, tmp_path: Path, judge_stub: JudgeStub) -> None:
    judge_stub.decide = lambda prompt: '{"score": "yes"}' if "good" in prompt else '{"score": "no"}'
    rows = tmp_path / "labels.json"
    rows.write_text(
        json.dumps(
            [
                {"inputs": {"q": "a"}, "outputs": "good", "expectations": {"ok": True}},
                {"inputs": {"q": "b"}, "outputs": "bad", "expectations": {"ok": False}},
                {"inputs": {"q": "c"}, "outputs": "good", "expectations": {"ok": False}},
            ]
        )
    )
    lw_json(home, "eval", "add", "labels", str(rows))
    with Client(resolve_settings(home=home, user="ada")) as client:
        judge = Judge("ok", rubric="{outputs}", model="m", endpoint=judge_stub.base, output="bool")
        client.evaluation.register_scorer(judge)
        client.users.add("ada", "editor")  # no admin exists yet: anyone may add users
        client.users.add("bob", "approver")
    measured = lw_json(home, "eval", "agreement", "ok", "labels")
    assert measured["n"] == 3 and measured["metrics"]["accuracy"] == pytest.approx(2 / 3)
    asked = lw_json(home, "eval", "scorers", "request-approval", "ok", "1")
    assert asked["approval_requested_by"] == "ada"
    refused = lw(home, "eval", "scorers", "approve", "ok", "1")
    assert refused.exit_code == 1 and "separation of duties" in " ".join(refused.stderr.split())
    approved = lw_json(home, "eval", "scorers", "approve", "ok", "1", user="bob")
    assert approved["approved"] is True and approved["agreement"]["n"] == 3
    assert [s["name"] for s in lw_json(home, "eval", "scorers", "list")] == ["ok"]
