"""``loopwright monitors traces``: create, show, run and history of a trace monitor embedded
(the same store the tracing service recorded into), its rollback seen in ``prompts``, and
bad arguments refused in one line without a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _trace_monitor_world import BAD, GOOD, HOUR_MS, T0, record_calls
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.registry.entities import ApprovalPolicy
from loopwright.tracing.service import TracingService

WIDE = {"COLUMNS": "400"}


@pytest.fixture
def options(tmp_path: Path) -> list[str]:
    """A store with prompt 'support' (production: 1 then 2) and an hour of good traffic
    followed by an hour of bad, as the gateway records it."""
    home = tmp_path / "home"
    with Client(resolve_settings(home=home, user="ada")) as client:
        client.prompts.create("support", policy=ApprovalPolicy(rules=()))
        client.prompts.register("support", "Answer briefly: {{ question }}")
        client.prompts.register("support", "Answer: {{ question }}")
        client.prompts.set_alias("support", "production", 1)
        client.prompts.set_alias("support", "production", 2)
        tracing = TracingService(client.store)
        record_calls(tracing, start_ms=T0, answers=GOOD)
        record_calls(tracing, start_ms=T0 + HOUR_MS, answers=BAD, latency_ms=4_000)
    return ["--home", str(home), "--user", "ada"]


def lw(options: list[str], *args: str) -> Any:
    return CliRunner().invoke(app, [*options, *args], env=WIDE)


def as_json(options: list[str], *args: str) -> Any:
    result = lw(options, *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_create_run_show_history_and_rollback(options: list[str]) -> None:
    created = as_json(
        options, "monitors", "traces", "create", "support-quality",
        "--prompt", "support@production", "--scorer", 'builtin:max_length:{"limit": 60}',
        "--baseline", f"window:{T0}/{T0 + HOUR_MS}", "--tests", "psi,ks",
        "--alert", "score.max_length<0.5", "--rollback-on", "score.max_length<0.5",
    )  # fmt: skip
    assert created["selection"]["prompt"] == "support@production"
    assert created["actions"] == [
        {"kind": "rollback", "on": "score.max_length<0.5", "alias": "production"}
    ]
    shown = as_json(options, "monitors", "traces", "show", "support-quality")
    assert shown == created
    calm = as_json(
        options, "monitors", "traces", "run", "support-quality", "--at", _iso(T0 + HOUR_MS)
    )
    assert calm["status"] == "ok" and calm["actions"] == [] and calm["traces"] == 40
    bad = lw(
        options, "monitors", "traces", "run", "support-quality", "--at", _iso(T0 + 2 * HOUR_MS)
    )
    assert bad.exit_code == 0, (bad.stdout, bad.stderr)
    assert "action rollback" in bad.stdout and "applied" in bad.stdout, bad.stdout
    assert "scoring: 40 trace(s) scored" in bad.stdout
    versions = as_json(options, "prompts", "show", "support")
    assert versions["aliases"]["production"] == 1
    passes = as_json(options, "monitors", "traces", "history", "support-quality")
    assert passes[0]["actions"][0]["status"] == "applied" and passes[0]["dataset_drift"]
    table = lw(options, "monitors", "traces", "history", "support-quality")
    assert "rollback:applied" in table.stdout
    # The common monitor commands list it and its alert.
    listed = as_json(options, "monitors", "list")
    assert [m["name"] for m in listed] == ["support-quality"]
    alerts = as_json(options, "monitors", "alerts", "--monitor", "support-quality")
    assert [a["rule"] for a in alerts] == ["score.max_length<0.5"]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--scorer", "builtin:json_valid"], "needs a selection"),
        (["--route", "r", "--baseline", "window:0/1"], "non-empty list"),
        (["--route", "r", "--scorer", "builtin:json_valid", "--sample-rate", "3"], "sample_rate"),
        (["--route", "r", "--scorer", "builtin:json_valid", "--window", "soon"], "--window"),
        (["--route", "r", "--scorer", "builtin:json_valid", "--rollback"], "by prompt"),
        (["--route", "r", "--scorer", "builtin:json_valid", "--model", "m"], "--reevaluate"),
        (["--prompt", "p@a", "--scorer", "nobody"], "not registered"),
    ],
)
def test_bad_arguments_fail_in_one_line(options: list[str], args: list[str], fragment: str) -> None:
    result = lw(options, "monitors", "traces", "create", "m", *args)
    assert result.exit_code != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and fragment in " ".join(lines), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_monitor(options: list[str]) -> None:
    result = lw(options, "monitors", "traces", "show", "ghost")
    assert result.exit_code == 1 and "ghost" in result.stderr
