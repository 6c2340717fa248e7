"""``loopwright features``: apply prints the plan and diffs and needs --force for a breaking
change; the reads answer JSON; the online store loads and serves; bad arguments fail in one
line without a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.config import resolve_settings
from loopwright.governance.tokens import TokenService
from loopwright.governance.users import UserService
from loopwright.store.home import open_store
from test_public_api import live_server

WIDE = {"COLUMNS": "400"}
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)

DEFINITIONS = """
from datetime import timedelta

from loopwright.features.definitions import Entity, FeatureService, FeatureView, Field, FileSource

driver = Entity("driver", join_keys={{"driver_id": "int64"}})
stats = FeatureView(
    "driver_stats",
    entities=[driver],
    source=FileSource({source!r}, timestamp_field="event_timestamp"),
    schema=[Field("conv_rate", "float64"), Field("trips", {trips!r})],
    ttl=timedelta(days={ttl}),
)
model = FeatureService("driver_model", features=[stats])
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder holding features.py over a Parquet file; the current directory."""
    folder = tmp_path / "project"
    folder.mkdir()
    pd.DataFrame(
        {
            "driver_id": [1, 2, 1],
            "event_timestamp": [T0, T0, T0 + timedelta(hours=1)],
            "conv_rate": [0.1, 0.2, 0.5],
            "trips": [10, 20, 11],
        }
    ).to_parquet(folder / "stats.parquet", index=False)
    write_definitions(folder)
    monkeypatch.chdir(folder)
    return folder


def write_definitions(folder: Path, *, trips: str = "int64", ttl: float = 2) -> None:
    text = DEFINITIONS.format(source=str(folder / "stats.parquet"), trips=trips, ttl=ttl)
    (folder / "features.py").write_text(text)


def lw(repo: Path, *args: str) -> Any:
    home = ["--home", str(repo.parent / "home"), "--user", "ada"]
    return CliRunner().invoke(app, [*home, "features", *args], env=WIDE)


def ok(repo: Path, *args: str) -> Any:
    result = lw(repo, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(repo: Path, *args: str) -> Any:
    return json.loads(ok(repo, *args, "--json").stdout)


def failure(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_apply_plans_diffs_and_guards_breaking_changes(repo: Path) -> None:
    first = ok(repo, "apply")  # ./features.py by default
    assert "driver_stats" in first.stdout and "add" in first.stdout
    assert "applied 3 change(s)" in first.stdout
    assert "+++" not in first.stdout and "timestamp_field" not in first.stdout  # adds: no diff
    assert "no changes" in ok(repo, "apply").stdout

    write_definitions(repo, ttl=3)
    dry = ok(repo, "apply", "--dry-run")
    assert "ttl_seconds" in dry.stdout and "v1 -> v2" in dry.stdout
    assert "+++ driver_stats@v2" in dry.stdout  # an update shows its diff
    assert "nothing applied" in dry.stdout
    assert as_json(repo, "show", "driver_stats")["version"] == 1

    write_definitions(repo, trips="float64")
    failure(lw(repo, "apply"), "breaking changes", "--force", "trips")
    assert as_json(repo, "show", "driver_stats")["version"] == 1
    forced = as_json(repo, "apply", "--force")
    assert forced["applied"] and as_json(repo, "show", "driver_stats")["version"] == 2
    assert "float64" in ok(repo, "diff", "driver_stats", "1", "2").stdout
    assert "float64" in as_json(repo, "diff", "driver_stats")["diff"]

    listed = as_json(repo, "list", "--kind", "feature_service")
    assert [(d["name"], d["version"]) for d in listed] == [("driver_model", 2)]
    assert "driver_stats" in ok(repo, "list").stdout


def test_training_sets_and_the_online_store(repo: Path) -> None:
    ok(repo, "apply", str(repo / "features.py"))
    pd.DataFrame(
        {"driver_id": [1, 2, 3], "event_timestamp": [T0 + timedelta(hours=2)] * 3}
    ).to_parquet(repo / "entities.parquet", index=False)
    out = repo / "out" / "train.parquet"
    made = as_json(
        repo,
        "historical",
        "--entities",
        "entities.parquet",
        "--service",
        "driver_model",
        "--out",
        str(out),
    )
    assert made["rows"] == 3 and made["path"] == str(out)
    assert pd.read_parquet(out)["trips"].tolist()[:2] == [11, 20]

    loaded = as_json(repo, "materialize", "--end", (T0 + timedelta(hours=3)).isoformat())
    assert [(m["view"], m["rows"]) for m in loaded] == [("driver_stats", 2)]
    served = as_json(
        repo,
        "online",
        "--entity",
        "driver_id=1",
        "--entity",
        "driver_id=9",
        "--features",
        "driver_stats:conv_rate",
    )
    assert served["values"]["conv_rate"] == [0.5, None]
    table = ok(repo, "online", "--entity", "driver_id=9", "--service", "driver_model").stdout
    assert "not_found" in table
    assert [(f["view"], f["stale"]) for f in as_json(repo, "freshness")] == [
        ("driver_stats", False)
    ]
    assert "stale:" not in ok(repo, "freshness").stdout
    write_definitions(repo, ttl=0.5)  # 12 h: the newest event (T0 + 1 h) is ~23 h old
    ok(repo, "apply")
    stale = ok(repo, "freshness").stdout  # stale is reported, not an error: exit 0
    header, row = (line for line in stale.splitlines() if "┃ view" in line or "│ driver" in line)
    assert header.split("┃")[-2].strip() == "stale" and row.split("│")[-2].strip() == "yes"
    assert "stale: feature view 'driver_stats'" in stale and "past its TTL of 43,200 s" in stale
    assert [f["stale"] for f in as_json(repo, "freshness")] == [True]
    assert [m["mode"] for m in as_json(repo, "materializations")] == ["window"]
    again = as_json(repo, "materialize", "--incremental")
    assert [m["mode"] for m in again] == ["incremental"]


def test_bad_arguments_fail_in_one_line(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(repo, "apply")
    failure(lw(repo, "online", "--entity", "driver_id=1"), "--service", "--features")
    failure(lw(repo, "online", "--entity", "=1", "--service", "driver_model"), "KEY=VALUE")
    failure(lw(repo, "list", "--kind", "table"), "feature_view")
    failure(lw(repo, "show", "ghost"), "ghost")
    failure(lw(repo, "materialize", "--incremental", "--start", "1d"), "--start")
    failure(lw(repo, "apply", str(tmp_path / "missing.py")), "missing.py")
    failure(
        lw(repo, "historical", "--entities", "no/such.parquet", "--service", "s", "--out", "o"),
        "no/such.parquet",
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    failure(lw(repo, "apply"), "no feature definitions", "features.py")


def test_commands_work_through_a_server(repo: Path, tmp_path: Path) -> None:
    settings = resolve_settings(home=tmp_path / "server-home")
    with open_store(settings) as store:
        UserService(store, actor="root").add("root", "admin")
        # Local file sources read the server's disk: an administrator applies them.
        token = TokenService(store, actor="root").create("root").secret
    with live_server(settings) as url:
        remote = ["--home", str(tmp_path / "client-home"), "--server", url, "--token", token]

        def run(*args: str) -> Any:
            result = CliRunner().invoke(app, [*remote, "features", *args], env=WIDE)
            assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
            return result

        assert "applied 3 change(s)" in run("apply").stdout
        listed = json.loads(run("list", "--json").stdout)
        assert [d["created_by"] for d in listed] == ["root"] * 3
        run("materialize", "--end", (T0 + timedelta(hours=3)).isoformat())
        served = json.loads(
            run("online", "--entity", "driver_id=2", "--service", "driver_model", "--json").stdout
        )
        assert served["values"]["trips"] == [20]
        failed = CliRunner().invoke(app, [*remote, "features", "skew", "ghost"], env=WIDE)
        failure(failed, "ghost")
