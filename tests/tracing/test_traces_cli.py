"""``loopwright traces list|show|export``: tables, a span tree, JSON, JSON Lines, and a clear
error for an unknown trace or a store that does not exist."""

from __future__ import annotations

import json
from pathlib import Path

from _trace_spans import span, trace_id
from typer.testing import CliRunner, Result

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.tracing.entities import TraceLinks

WIDE = {"COLUMNS": "300"}


def _invoke(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--home", str(home), "traces", *args], env=WIDE)


def _recorded(home: Path) -> None:
    with Client(resolve_settings(home=home)) as client:
        client.tracing.record(
            [
                span(1, 0, kind="AGENT", lw__inputs="what is 42?", gen_ai__usage__input_tokens=9),
                span(1, 1, 0, kind="RETRIEVER", start_ms=1_001, end_ms=1_004),
                span(1, 2, 1, kind="RERANKER", start_ms=1_002, end_ms=1_003),
                span(2, 0, kind="LLM", start_ms=2_000, end_ms=2_001),
            ],
            links=TraceLinks(prompt_versions=("qa/2",)),
        )
        client.tracing.log_assessment(trace_id(1), "helpful", True, source_type="HUMAN")


def test_list_show_and_export(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _recorded(home)
    listed = _invoke(home, "list")
    assert listed.exit_code == 0, listed.output
    assert trace_id(1) in listed.output and "what is 42?" in listed.output
    as_json = json.loads(_invoke(home, "list", "--json", "--limit", "1").output)
    assert [t["trace_id"] for t in as_json] == [trace_id(2)]  # newest first
    shown = _invoke(home, "show", trace_id(1))
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    tree = [line for line in lines if "step-" in line]
    assert [line.split("step-")[1][:1] for line in tree] == ["0", "1", "2"]
    assert tree[2].index("step-2") > tree[1].index("step-1")  # nested one level deeper
    assert "link prompt_version: qa/2" in shown.output and "helpful = true" in shown.output
    detail = json.loads(_invoke(home, "show", trace_id(1), "--json").output)
    assert len(detail["spans"]) == 3 and detail["assessments"][0]["name"] == "helpful"
    out = tmp_path / "traces.jsonl"
    exported = _invoke(home, "export", "--output", str(out))
    assert exported.exit_code == 0 and "wrote 2 trace(s)" in exported.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["trace_id"]: len(r["spans"]) for r in rows} == {trace_id(1): 3, trace_id(2): 1}


def test_unknown_traces_and_missing_stores_fail_clearly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _recorded(home)
    missing = _invoke(home, "show", "0" * 32)
    assert missing.exit_code != 0 and "does not exist" in missing.output
    bad_filter = _invoke(home, "list", "--filter", "nonsense.x = 1")
    assert bad_filter.exit_code != 0
    nowhere = _invoke(tmp_path / "no-such-home", "list")
    assert nowhere.exit_code != 0
    assert not (tmp_path / "no-such-home").exists()  # a reading command creates nothing
