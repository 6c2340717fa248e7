"""``loopwright monitors``, ``labels`` and ``deployments compare``: each command embedded, a few
through ``--server``, and bad arguments refused in one line without a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_api import AT, DEPLOYMENT, add_reference, fill_log, serving
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings

WIDE = {"COLUMNS": "400"}
SPAN = ["--since", "2026-12-05T08", "--until", "2026-12-05T12"]  # the log's two hours


@pytest.fixture
def store(tmp_path: Path) -> list[str]:
    """The global options of a store holding dataset ``ref`` v1 and two hours of
    ``scorer-api``'s log (the second shifted)."""
    home, blobs = tmp_path / "home", tmp_path / "blobs"
    with Client(resolve_settings(home=home, blob_uri=str(blobs), user="ada")) as client:
        add_reference(client, tmp_path / "ref")
    fill_log(blobs)
    return ["--home", str(home), "--blob-uri", str(blobs)]


def lw(options: list[str], *args: str) -> Any:
    return CliRunner().invoke(app, [*options, "--user", "ada", *args], env=WIDE)


def ok(options: list[str], *args: str) -> Any:
    result = lw(options, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(options: list[str], *args: str) -> Any:
    return json.loads(ok(options, *args, "--json").stdout)


def one_line_error(result: Any, *fragments: str, code: int = 1) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


CREATE = [
    "monitors",
    "create",
    "mon",
    "--deployment",
    DEPLOYMENT,
    "--reference",
    "ref@v1",
    "--window",
    "1h",
    "--every",
    "15m",
    "--tests",
    "psi,ks",
    "--columns",
    "input.x,input.c",
    "--threshold",
    "psi=0.2",
    "--threshold",
    "ks:input.x=0.1",
    "--alert",
    "drift_share>0.3",
    "--webhook",
    "http://127.0.0.1:9/hook",
    "--slack",
]


def test_monitor_commands_embedded(store: list[str], tmp_path: Path) -> None:
    created = as_json(store, *CREATE)
    assert (created["window_s"], created["every_s"]) == (3600, 900)
    assert created["tests"] == ["psi", "ks"] and created["columns"] == ["input.x", "input.c"]
    assert created["thresholds"] == {"psi": 0.2, "ks:input.x": 0.1}
    assert created["alerts"] == ["drift_share>0.3"] and created["webhook_format"] == "slack"
    one_line_error(lw(store, *CREATE), "mon")  # exists

    calm = ok(store, "monitors", "run", "mon", "--at", AT.isoformat())
    assert "no dataset drift" in calm.stdout and "Drifted" not in calm.stdout
    shifted = as_json(store, "monitors", "run", "mon", "--at", "2026-12-05T11")
    assert shifted["status"] == "ok" and "input.x" in shifted["drift"]["drifted_columns"]
    table = ok(store, "monitors", "run", "mon", "--at", "2026-12-05T11:00:00+00:00").stdout
    assert "Drifted" in table and "input.x" in table and "psi" in table

    listed = ok(store, "monitors", "list").stdout
    assert "mon" in listed and DEPLOYMENT in listed and "15m" in listed
    assert [m["name"] for m in as_json(store, "monitors", "list", "--deployment", "x")] == []
    assert "drift_share>0.3" in ok(store, "monitors", "show", "mon").stdout
    assert as_json(store, "monitors", "show", "mon")["reference_id"] is not None

    runs = as_json(store, "monitors", "history", "mon")
    assert runs[1]["id"] == shifted["id"] and len(runs) == 3  # newest first
    assert len(as_json(store, "monitors", "history", "mon", "--limit", "1")) == 1
    assert "3 run(s)" in ok(store, "monitors", "history", "mon", "--since", "1000d").stdout

    page = tmp_path / "report.html"
    ok(store, "monitors", "report", "mon", "--output", str(page))
    HTMLParser().feed(page.read_text(encoding="utf-8"))
    assert "<svg" in page.read_text(encoding="utf-8")
    summary = json.loads(ok(store, "monitors", "report", "mon", "--format", "json").stdout)
    older = ok(store, "monitors", "report", "mon", "--run", runs[-1]["id"], "--format", "json")
    assert json.loads(older.stdout) != summary

    alerts = as_json(store, "monitors", "alerts", "--monitor", "mon", "--status", "open")
    assert [a["rule"] for a in alerts] == ["drift_share>0.3"]
    assert alerts[0]["delivery"] is not None  # the dead webhook was tried and recorded
    assert "drift_share>0.3" in ok(store, "monitors", "alerts").stdout
    assert as_json(store, "monitors", "alerts", "--status", "resolved") == []

    assert [r["source"] for r in as_json(store, "monitors", "references", "list")] == [
        "dataset:ref@v1"
    ]
    one_line_error(lw(store, "monitors", "delete", "mon"), "--yes")
    assert "deleted" in ok(store, "monitors", "delete", "mon", "--yes").stdout
    one_line_error(lw(store, "monitors", "show", "mon"), "mon")


def test_run_due_and_references_build(store: list[str]) -> None:
    built = as_json(store, "monitors", "references", "build", "ref@v1", "--name", "ref-one")
    assert (built["name"], built["rows"]) == ("ref-one", 2000)
    assert "ref-one" in ok(store, "monitors", "references", "list").stdout
    assert "no monitor was due" in ok(store, "monitors", "run-due").stdout
    ok(store, *CREATE[:5], "--reference", "ref@v1", "--every", "1h", "--columns", "input.x")
    (due,) = as_json(store, "monitors", "run-due")
    assert due["monitor"] == "mon"
    assert as_json(store, "monitors", "run-due") == []


def test_labels_and_deployments_compare(store: list[str], tmp_path: Path) -> None:
    ids = [f"r0-{i}" for i in range(60)]
    parquet, csv = tmp_path / "labels.parquet", tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ids[:30], "label": [i % 2 for i in range(30)]}).to_parquet(parquet)
    pd.DataFrame({"request_id": ids[30:], "row": 0, "label": 1}).to_csv(csv, index=False)
    assert as_json(store, "labels", "import", str(parquet), "--deployment", DEPLOYMENT) == {
        "deployment": DEPLOYMENT,
        "rows": 30,
        "updated": 0,
    }
    stored = ok(store, "labels", "import", str(csv), "--deployment", DEPLOYMENT).stdout
    assert "30 label(s) stored" in stored
    shown = as_json(store, "labels", "show", DEPLOYMENT, "--limit", "100")
    assert len(shown) == 60 and {r["request_id"] for r in shown} == set(ids)
    assert "r0-59" in ok(store, "labels", "show", DEPLOYMENT).stdout
    assert as_json(store, "labels", "show", DEPLOYMENT, "--since", "0s") == []

    compared = as_json(store, "deployments", "compare", DEPLOYMENT, *SPAN, "--min-samples", "10")
    assert compared["baseline"]["variant"] == "primary"
    assert compared["decision"] in ("promote", "rollback", "continue")
    table = ok(store, "deployments", "compare", DEPLOYMENT, "--metric", "latency_ms", *SPAN).stdout
    assert "primary" in table and "canary" in table and "decision:" in table and "CI" in table


def test_compare_two_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.csv"
    pd.DataFrame({"a": rng.normal(size=800), "b": rng.choice(["x", "y"], 800)}).to_parquet(ref)
    shifted = pd.DataFrame({"a": rng.normal(1, 1, 800), "b": rng.choice(["x", "y"], 800)})
    shifted.to_csv(cur, index=False)
    page = tmp_path / "drift.html"
    result = CliRunner().invoke(
        app, ["monitors", "compare", str(ref), str(cur), "--report", str(page)], env=WIDE
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "Drifted" in result.stdout and "a" in result.stdout
    assert "<svg" in page.read_text(encoding="utf-8")
    found = json.loads(
        CliRunner()
        .invoke(app, ["monitors", "compare", str(ref), str(cur), "--tests", "psi", "--json"])
        .stdout
    )
    assert found["drifted_columns"] == ["a"] and {t["test"] for t in found["tests"]} >= {"psi"}
    missing = CliRunner().invoke(app, ["monitors", "compare", str(ref), "nope.parquet"], env=WIDE)
    one_line_error(missing, "nope.parquet", "no such file")
    text = tmp_path / "x.txt"
    text.write_text("a\n1\n", encoding="utf-8")
    one_line_error(
        CliRunner().invoke(app, ["monitors", "compare", str(ref), str(text)], env=WIDE),
        ".parquet or .csv",
    )
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    one_line_error(
        CliRunner().invoke(app, ["monitors", "compare", str(ref), str(bad)], env=WIDE),
        "cannot read it as Parquet",
    )


BAD_ARGUMENTS: list[tuple[list[str], tuple[str, ...]]] = [
    (["monitors", "create", "m", "--deployment", "d", "--window", "soon"], ("--window",)),
    (["monitors", "create", "m", "--deployment", "d", "--every", "1x"], ("--every",)),
    (["monitors", "create", "m", "--deployment", "d", "--threshold", "psi"], ("psi",)),
    (["monitors", "create", "m", "--deployment", "d", "--threshold", "psi=x"], ("TEST=",)),
    (["monitors", "create", "m", "--deployment", "d", "--task", "rank"], ("--task",)),
    (["monitors", "create", "m", "--deployment", "d", "--alert", "big"], ("METRIC OP",)),
    (["monitors", "create", "m", "--deployment", "d", "--tests", "nope"], ("nope",)),
    (["monitors", "run", "nope"], ("nope",)),
    (["monitors", "run", "nope", "--at", "noon"], ("--at",)),
    (["monitors", "report", "nope", "--format", "pdf"], ("--format",)),
    (["monitors", "alerts", "--status", "closed"], ("--status",)),
    (["labels", "import", "missing.csv", "--deployment", "d"], ("missing.csv",)),
    (["deployments", "compare", DEPLOYMENT, "--confidence", "1.5"], ("confidence",)),
]


def test_bad_arguments_are_one_line(store: list[str]) -> None:
    for args, fragments in BAD_ARGUMENTS:
        one_line_error(lw(store, *args), *fragments)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[list[str], Client]]:
    """A server with auth over a store like ``store``'s, the editor ``ed``'s options for it,
    and an embedded client on the same stores."""
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    settings = resolve_settings(home=tmp_path / "server", blob_uri=str(tmp_path / "blobs"))
    with Client(resolve_settings(home=settings.home, blob_uri=settings.blob_uri)) as local:
        UserService(local.store, actor="root").add("root", "admin")
        UserService(local.store, actor="root").add("ed", "editor")
        token = TokenService(local.store, actor="root").create("ed").secret
        add_reference(local, tmp_path / "ref")
        fill_log(tmp_path / "blobs")
        with serving(settings) as url:
            yield ["--server", url, "--token", token, "--home", str(tmp_path / "ed")], local


def test_commands_work_through_a_server(server: tuple[list[str], Client], tmp_path: Path) -> None:
    options, local = server
    created = as_json(options, *CREATE[:5], "--reference", "ref@v1")  # every logged column
    assert created["created_by"] == "ed"
    ran = as_json(options, "monitors", "run", "mon", "--at", "2026-12-05T11")
    assert {"input.x", "input.c"} <= set(ran["drift"]["drifted_columns"])
    assert local.monitoring.get_run(ran["id"]).drift is not None
    assert "col DRIFT" in ok(options, "monitors", "history", "mon").stdout
    assert "<svg" in ok(options, "monitors", "report", "mon").stdout
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["r1-0", "r1-1"], "label": [1, 0]}).to_csv(labels, index=False)
    ok(options, "labels", "import", str(labels), "--deployment", DEPLOYMENT)
    assert len(local.monitoring.labels(DEPLOYMENT)) == 2
    again = ok(options, "monitors", "run", "mon", "--at", "2026-12-05T11").stdout
    assert "Performance (classification)" in again and "2 of 600 labelled" in again
    compared = as_json(
        options,
        "deployments",
        "compare",
        DEPLOYMENT,
        "--metric",
        "latency_ms",
        "--min-samples",
        "10",
        *SPAN,
    )
    assert compared["enough_data"] is True and compared["metric"] == "latency_ms"
    one_line_error(lw(options, "monitors", "show", "nope"), "nope")
    assert as_json(options, "monitors", "show", "mon")["window_s"] == 3600
    assert [m["name"] for m in as_json(options, "monitors", "list")] == ["mon"]
    assert as_json(options, "monitors", "alerts") == [] == as_json(options, "monitors", "run-due")
    (reference,) = as_json(options, "monitors", "references", "list")
    assert reference["source"] == "dataset:ref@v1"
    assert {r["label"] for r in as_json(options, "labels", "show", DEPLOYMENT)} == {0, 1}
    ok(options, "monitors", "delete", "mon", "--yes")
    assert local.monitoring.list() == []
