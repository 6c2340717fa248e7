"""``loopwright predictions list|show|compact|prune`` on an embedded home, and through a real
server (``--server``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.config import resolve_settings
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location
from test_public_api import live_server

WIDE = {"COLUMNS": "400"}
OLD = (datetime.now(UTC) - timedelta(days=3)).replace(minute=1, second=0, microsecond=0)
RECENT = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=1, second=0, microsecond=0)


def _fill(location: str) -> None:
    for i, at in enumerate([OLD, OLD + timedelta(minutes=1), RECENT]):
        with PredictionLog(location, flush_interval=3600) as log:
            log.append(
                PredictionRecord(
                    request_id=f"r{i}",
                    deployment="churn",
                    variant="canary" if i == 2 else "primary",
                    model="churn-rf",
                    model_version=2 + (i == 2),
                    timestamp=at,
                    latency_ms=1.25,
                    status=200,
                    inputs={"age": [40 + i]},
                    outputs={"predict_proba": [[0.25, 0.75]]},
                )
            )


@pytest.fixture
def lw(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    _fill(log_location(resolve_settings(home=home)))

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, ["--home", str(home), "predictions", *args], env=WIDE)

    return invoke


def test_list_and_show(lw: Any, tmp_path: Path) -> None:
    listed = lw("list")
    assert listed.exit_code == 0, listed.output
    # The log is files beside the store: reading it creates no store.
    assert not (tmp_path / "home" / "loopwright.db").exists()
    assert "churn" in listed.stdout and OLD.strftime("%Y-%m-%d %H:%M:%S") in listed.stdout
    (entry,) = json.loads(lw("list", "--json").stdout)
    assert (entry["name"], entry["rows"], entry["files"]) == ("churn", 3, 3)
    shown = lw("show", "churn")
    assert shown.exit_code == 0, shown.output
    assert "churn: 3 rows" in shown.stdout
    assert "input.age" in shown.stdout and "[0.25, 0.75]" in shown.stdout
    recent = json.loads(lw("show", "churn", "--since", "1d", "--json").stdout)
    assert [(r["request_id"], r["variant"], r["input.age"]) for r in recent] == [
        ("r2", "canary", 42)
    ]
    picked = json.loads(
        lw("show", "churn", "--columns", "request_id", "--limit", "2", "--json").stdout
    )
    assert picked == [{"request_id": "r1"}, {"request_id": "r2"}]
    hour = OLD.strftime("%Y-%m-%dT%H")
    window = json.loads(lw("show", "churn", "--until", hour, "--json").stdout)
    assert window == []  # until excludes: nothing before the old hour began
    assert "no logged rows" in lw("show", "nobody").stderr


def test_compact_then_prune(lw: Any) -> None:
    done = json.loads(lw("compact", "--json").stdout)
    assert done == {"hours": 1, "files_merged": 2, "rows": 2}
    assert "compacted 0 hour(s)" in lw("compact", "churn").stdout
    assert json.loads(lw("list", "--json").stdout)[0]["files"] == 2
    pruned = lw("prune", "--older-than", "1d")
    assert pruned.exit_code == 0 and "pruned 1 hour(s), 1 file(s)" in pruned.stdout
    rows = json.loads(lw("show", "churn", "--json").stdout)
    assert [r["request_id"] for r in rows] == ["r2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("prune", "--older-than", "a month"), "is not a duration"),
        (("show", "churn", "--since", "yesterday"), "neither a duration"),
        (("show", "../x"), "deployment name"),
        (("show", "churn", "--columns", "input.nope"), "input.nope"),
        (("compact", "--before", "soon"), "neither a duration"),
    ],
)
def test_bad_arguments_fail_with_one_line(lw: Any, args: tuple[str, ...], message: str) -> None:
    result = lw(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert message in result.stderr


def test_through_a_server(tmp_path: Path) -> None:
    settings = resolve_settings(home=tmp_path / "server-home")
    _fill(log_location(settings))
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    with open_store(settings) as store:
        UserService(store, actor="root").add("vic", "viewer")
        token = TokenService(store, actor="root").create("vic").secret
    with live_server(settings) as url:
        laptop = ["--home", str(tmp_path / "laptop"), "--server", url, "--token", token]
        result = CliRunner().invoke(app, [*laptop, "predictions", "show", "churn"], env=WIDE)
        assert result.exit_code == 0, result.output
        assert "churn: 3 rows" in result.stdout
        refused = CliRunner().invoke(app, [*laptop, "predictions", "compact"], env=WIDE)
        assert refused.exit_code == 1 and "PERMISSION_DENIED" in refused.stderr


def test_spans_past_what_time_can_hold_are_refused_or_bound_nothing(lw: Any) -> None:
    for args in (
        ("prune", "--older-than", "99999999999d"),
        ("show", "churn", "--since", "99999999999d"),
    ):
        done = lw(*args)
        assert done.exit_code != 0
        assert "longer than a time span can be" in done.output, done.output
        assert "unexpected" not in done.output
    # Within a time span but before year 1: no hour ended that long ago, none starts before.
    assert lw("prune", "--older-than", "900000000d").exit_code == 0
    compacted = lw("compact", "--before", "900000000d", "--json")
    assert compacted.exit_code == 0, compacted.output
    assert json.loads(compacted.output)["hours"] == 0
    shown = lw("show", "churn", "--since", "900000000d", "--json")
    assert shown.exit_code == 0, shown.output
    assert len(json.loads(shown.output)) == 3
