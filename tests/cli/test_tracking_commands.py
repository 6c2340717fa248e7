"""``loopwright experiments`` and ``loopwright runs``: search, show, compare, delete and restore,
run in-process against a real embedded home; and the sparklines they draw."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest

from loopwright._ids import now_ms
from loopwright.cli._charts import BARS, sparkline
from loopwright.cli.runs import metric_goal
from loopwright.client import Client
from loopwright.store import schema as t


def _flat(text: str) -> str:
    return " ".join(text.split())


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def _assert_clean_failure(result: Any, *fragments: str, code: int = 1) -> None:
    """Exit status ``code``, an error naming ``fragments``, and no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    message = _flat(result.stderr)
    assert message.startswith("error:"), message
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in result.stderr + result.stdout


def _log(
    client: Client,
    name: str,
    *,
    experiment: str = "churn",
    params: dict[str, object] | None = None,
    metrics: dict[str, Sequence[float]] | None = None,
) -> str:
    """A finished run; each metric is logged as a series at steps 0, 1, 2 …"""
    with client.start_run(experiment=experiment, name=name) as run:
        if params:
            run.log_params(params)
        for key, series in (metrics or {}).items():
            for step, value in enumerate(series):
                run.log_metric(key, value, step=step)
    return run.id


@pytest.fixture
def three_runs(client: Client) -> dict[str, str]:
    """rf-a, rf-b and gbm in 'churn'; names to ids."""
    return {
        "rf-a": _log(
            client,
            "rf-a",
            params={"model": "rf", "lr": 0.1},
            metrics={"auc": [0.7, 0.8], "loss": [0.9, 0.5, 0.3]},
        ),
        "rf-b": _log(
            client,
            "rf-b",
            params={"model": "rf", "lr": 0.01},
            metrics={"auc": [0.95], "loss": [0.8, 0.2]},
        ),
        "gbm": _log(
            client,
            "gbm",
            params={"model": "gbm", "lr": 0.1},
            metrics={"auc": [0.85], "loss": [0.4]},
        ),
    }


def _names(listing: dict[str, Any]) -> list[str]:
    return [run["name"] for run in listing["runs"]]


# --- sparkline ---------------------------------------------------------------------------------


def test_sparkline_scales_from_min_to_max() -> None:
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == BARS
    assert sparkline([8, 1]) == "█▁"
    assert sparkline([-1.0, 0.0, 1.0]) == "▁▅█"


def test_sparkline_of_a_constant_or_single_value_is_flat() -> None:
    assert sparkline([0.5] * 5) == "▄▄▄▄▄"
    assert sparkline([3.0]) == "▄"
    assert sparkline([]) == ""


def test_sparkline_shows_nan_as_a_space() -> None:
    assert sparkline([0.0, math.nan, 1.0]) == "▁ █"
    assert sparkline([math.nan, math.nan]) == "  "
    assert sparkline([math.nan, 2.0]) == " ▄"
    assert sparkline([0.0, math.inf, 1.0]) == "▁ █"


def test_sparkline_downsampling_keeps_the_range_and_the_shape() -> None:
    ramp = sparkline(list(range(1000)), width=40)
    assert len(ramp) == 40
    assert ramp[0] == "▁"
    assert ramp[-1] == "█"
    assert list(ramp) == sorted(ramp), "a rising series must not dip once downsampled"

    spike = [0.0] * 1000
    spike[517] = 10.0
    line = sparkline(spike, width=40)
    assert line.count("█") == 1, "a one-point spike survives downsampling"
    assert set(line) == {"▁", "█"}

    wave = [math.sin(i / 1000 * 2 * math.pi) for i in range(1000)]  # up, then down
    line = sparkline(wave, width=20)
    assert len(line) <= 20
    assert "█" in line[: len(line) // 2]
    assert "▁" in line[len(line) // 2 :]

    gap = [1.0] * 500 + [math.nan] * 500 + [2.0] * 500
    assert " " in sparkline(gap, width=10), "a long run of NaN stays visible"
    assert len(sparkline(list(range(100)), width=1)) == 1


def test_sparkline_refuses_a_zero_width() -> None:
    with pytest.raises(ValueError, match="width"):
        sparkline([1.0], width=0)


@pytest.mark.parametrize(
    ("key", "goal"),
    [
        ("auc", "max"),
        ("accuracy", "max"),
        ("loss", "min"),
        ("val_loss", "min"),
        ("train/logloss", "min"),
        ("rmse", "min"),
        ("error_rate", "min"),
        ("inference_latency_ms", "min"),
    ],
)
def test_metric_goal_guesses_from_the_name(key: str, goal: str) -> None:
    assert metric_goal(key) == goal


def test_metric_goal_can_be_overridden() -> None:
    assert metric_goal("loss", maximize=["loss"]) == "max"
    assert metric_goal("auc", minimize=["auc"]) == "min"


# --- experiments -------------------------------------------------------------------------------


def test_experiments_create_list_rename(lw: Any, lw_json: Any) -> None:
    created = lw("experiments", "create", "fraud", "--description", "card fraud")
    assert created.exit_code == 0, created.stderr
    assert "Created experiment fraud" in created.stdout
    listed = lw_json("experiments", "list")
    assert [(e["name"], e["description"], e["lifecycle_stage"]) for e in listed] == [
        ("fraud", "card fraud", "active")
    ]
    assert set(listed[0]) == {
        "id",
        "name",
        "description",
        "lifecycle_stage",
        "created_at",
        "updated_at",
        "tags",
    }

    renamed = lw("experiments", "rename", "fraud", "fraud-v2")
    assert renamed.exit_code == 0, renamed.stderr
    assert "Renamed experiment fraud to fraud-v2" in renamed.stdout
    again = lw_json("experiments", "list")
    assert [(e["id"], e["name"]) for e in again] == [(listed[0]["id"], "fraud-v2")]


def test_experiment_name_collisions_fail_clearly(lw: Any) -> None:
    assert lw("experiments", "create", "fraud").exit_code == 0
    assert lw("experiments", "create", "churn").exit_code == 0
    _assert_clean_failure(
        lw("experiments", "create", "fraud"), "experiment 'fraud' already exists", "pick another"
    )
    _assert_clean_failure(
        lw("experiments", "rename", "fraud", "churn"),
        "experiment 'churn' already exists",
        "RESOURCE_ALREADY_EXISTS",
    )
    _assert_clean_failure(lw("experiments", "rename", "nope", "x"), "'nope' does not exist")
    _assert_clean_failure(lw("experiments", "rename", "fraud", " "), "must not be blank")


def test_experiment_delete_and_restore_hide_and_bring_back_its_runs(
    client: Client, lw: Any, lw_json: Any
) -> None:
    kept = _log(client, "kept", experiment="churn")
    hidden = _log(client, "hidden", experiment="fraud")

    deleted = lw("experiments", "delete", "fraud")
    assert deleted.exit_code == 0, deleted.stderr
    assert "Deleted experiment fraud" in deleted.stdout
    assert "loopwright experiments restore fraud" in deleted.stdout
    assert [e["name"] for e in lw_json("experiments", "list")] == ["churn"]
    every = lw_json("experiments", "list", "--all")
    assert {e["name"]: e["lifecycle_stage"] for e in every} == {
        "churn": "active",
        "fraud": "deleted",
    }
    table = lw("experiments", "list", "--all")
    assert "deleted" in table.stdout

    # Its runs are kept but hidden, unless asked for by name or with --all.
    assert [r["id"] for r in lw_json("runs", "list")["runs"]] == [kept]
    assert [r["id"] for r in lw_json("runs", "list", "-e", "fraud")["runs"]] == [hidden]
    assert {r["id"] for r in lw_json("runs", "list", "--all")["runs"]} == {kept, hidden}
    shown = lw("runs", "show", hidden)
    assert "fraud (deleted)" in shown.stdout

    again = lw("experiments", "delete", "fraud")
    assert again.exit_code == 0
    assert "already deleted" in again.stdout

    restored = lw("experiments", "restore", "fraud")
    assert restored.exit_code == 0, restored.stderr
    assert "Restored experiment fraud" in restored.stdout
    assert {r["id"] for r in lw_json("runs", "list")["runs"]} == {kept, hidden}
    _assert_clean_failure(lw("experiments", "delete", "nope"), "'nope' does not exist")


# --- runs list ---------------------------------------------------------------------------------


def test_runs_list_filters_orders_and_picks_experiments(
    client: Client, three_runs: dict[str, str], lw: Any, lw_json: Any
) -> None:
    other = _log(client, "other", experiment="fraud", metrics={"auc": [0.99]})
    listing = lw_json("runs", "list")
    assert set(listing) == {"runs", "next_page_token"}
    assert listing["next_page_token"] is None
    assert set(_names(listing)) == {"rf-a", "rf-b", "gbm", "other"}
    first = next(r for r in listing["runs"] if r["name"] == "rf-a")
    assert first["id"] == three_runs["rf-a"]
    assert first["status"] == first["display_status"] == "FINISHED"
    assert first["lifecycle_stage"] == "active"
    assert first["params"] == {"model": "rf", "lr": "0.1"}
    assert first["metrics"]["loss"]["value"] == 0.3
    assert first["metrics"]["loss"]["step"] == 2
    assert first["duration_ms"] == first["end_time"] - first["start_time"]

    by_auc = lw_json("runs", "list", "--order-by", "metrics.auc DESC")
    assert _names(by_auc) == ["other", "rf-b", "gbm", "rf-a"]
    rf = lw_json(
        "runs", "list", "-f", "metrics.auc > 0.75 and params.model = 'rf'", "--order-by", "run_name"
    )
    assert _names(rf) == ["rf-a", "rf-b"]
    two = lw_json("runs", "list", "-e", "churn", "-e", "fraud", "--order-by", "metrics.auc")
    assert _names(two) == ["rf-a", "gbm", "rf-b", "other"]
    assert _names(lw_json("runs", "list", "--experiment", "fraud")) == ["other"]
    assert other in lw("runs", "list").stdout

    # The table shows the columns the filter names, and the status.
    table = lw("runs", "list", "-f", "params.model = 'gbm'")
    assert table.exit_code == 0, table.stderr
    assert "params.model" in table.stdout
    assert "gbm" in table.stdout
    assert "FINISHED" in table.stdout
    assert "rf-a" not in table.stdout


def test_runs_list_is_newest_first_even_within_one_millisecond(
    client: Client, lw_json: Any
) -> None:
    created = [client.tracking.create_run(experiment="burst").id for _ in range(20)]
    listed = [r["id"] for r in lw_json("runs", "list")["runs"]]
    assert listed == created[::-1]
    paged = lw_json("runs", "list", "--limit", "15")
    rest = lw_json("runs", "list", "--limit", "15", "--page-token", paged["next_page_token"])
    assert [r["id"] for r in paged["runs"] + rest["runs"]] == created[::-1]


def test_runs_list_pages_with_the_token_it_prints(
    three_runs: dict[str, str], lw: Any, lw_json: Any
) -> None:
    args = ["runs", "list", "--order-by", "metrics.auc DESC", "--limit", "2"]
    page = lw_json(*args)
    assert _names(page) == ["rf-b", "gbm"]
    token = page["next_page_token"]
    assert token
    rest = lw_json(*args, "--page-token", token)
    assert _names(rest) == ["rf-a"]
    assert rest["next_page_token"] is None

    table = lw(*args)
    assert table.exit_code == 0, table.stderr
    assert f"--page-token {token}" in _flat(table.stdout)
    assert "--page-token" not in lw(*args, "--page-token", token).stdout

    _assert_clean_failure(lw(*args, "--page-token", "garbage"), "page_token")
    other_search = lw("runs", "list", "--limit", "2", "--page-token", token)
    _assert_clean_failure(other_search, "page_token belongs to a search with other arguments")


@pytest.mark.parametrize(
    ("option", "text", "pointed"),
    [
        ("--filter", "metrics.auc >> 0.9", "found '>>' at character 13"),
        ("--filter", "metrics.auc > 0.9 and params.model = rf", "found 'rf' at character 38"),
        ("--filter", "metrcs.auc > 1", "unknown entity 'metrcs'"),
        ("--order-by", "metrics.auc DOWN", "found 'DOWN' at character 13"),
    ],
)
def test_a_malformed_filter_points_at_the_bad_token(
    three_runs: dict[str, str], lw: Any, option: str, text: str, pointed: str
) -> None:
    for extra in ([], ["--json"]):
        result = lw("runs", "list", option, text, *extra)
        _assert_clean_failure(result, pointed, "INVALID_PARAMETER_VALUE")
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error: invalid")
        assert lines[0].endswith("(INVALID_PARAMETER_VALUE)"), "the code stays on the first line"
        # The offending text, then a caret under its first bad character.
        snippet, caret = lines[-2], lines[-1]
        assert snippet.strip() == text
        column = int(pointed.rsplit(" ", 1)[-1]) - 1 if "character" in pointed else 0
        assert caret.index("^") == snippet.index(text) + column


def test_runs_list_refuses_deleted_with_all(lw: Any) -> None:
    _assert_clean_failure(lw("runs", "list", "--deleted", "--all"), "cannot be combined", code=2)


def test_runs_list_and_show_call_a_silent_running_run_stale(client: Client, lw: Any) -> None:
    live = client.tracking.create_run(experiment="churn", name="live")
    zombie = client.tracking.create_run(experiment="churn", name="zombie")
    with client.store.db.write() as conn:
        conn.execute(
            t.runs.update()
            .where(t.runs.c.id == zombie.id)
            .values(heartbeat_at=now_ms() - 10 * 60_000)
        )
    listing = {r["name"]: r for r in _strict_json(lw("runs", "list", "--json").stdout)["runs"]}
    assert listing["zombie"]["status"] == listing["zombie"]["display_status"] == "STALE"
    assert listing["live"]["display_status"] == "RUNNING"
    table = lw("runs", "list").stdout
    zombie_line = next(line for line in table.splitlines() if zombie.id in line)
    assert "STALE" in zombie_line
    assert "STALE" not in next(line for line in table.splitlines() if live.id in line)
    assert "status STALE" in lw("runs", "show", zombie.id).stdout


# --- runs show ---------------------------------------------------------------------------------


def test_runs_show_draws_metric_history(client: Client, lw: Any, lw_json: Any) -> None:
    run_id = _log(
        client,
        "curve",
        params={"lr": 0.1},
        metrics={"loss": [4.0, 3.0, math.nan, 1.0], "auc": [0.9]},
    )
    with client.store.db.write() as conn:  # as a run started in a git checkout records it
        conn.execute(
            t.runs.update()
            .where(t.runs.c.id == run_id)
            .values(git_commit="0123456789abcdef0123", git_branch="main", git_dirty=True)
        )
    shown = lw("runs", "show", run_id)
    assert shown.exit_code == 0, shown.stderr
    loss = next(line for line in shown.stdout.splitlines() if "loss" in line)
    assert "█▆ ▁" in loss
    assert _flat(loss).split("│")[1:6] == [" loss ", " 1 ", " 3 ", " 1 ", " 4 "]
    auc = next(line for line in shown.stdout.splitlines() if "auc" in line)
    assert not set(auc) & set(BARS), "a single point has no history to draw"
    assert "git 0123456789ab on main (uncommitted changes)" in shown.stdout
    assert "environment " in shown.stdout

    plain = lw_json("runs", "show", run_id)
    assert "history" not in plain
    assert plain["git_commit"] == "0123456789abcdef0123"
    assert plain["git_dirty"] is True
    assert plain["environment_id"]
    assert plain["metrics"]["loss"] == {
        "value": 1.0,
        "step": 3,
        "timestamp": plain["metrics"]["loss"]["timestamp"],
    }
    full = lw_json("runs", "show", run_id, "--history")
    assert [p["value"] for p in full["history"]["loss"]] == [4.0, 3.0, None, 1.0]
    assert [p["step"] for p in full["history"]["loss"]] == [0, 1, 2, 3]
    assert set(full["history"]["loss"][0]) == {"step", "value", "timestamp"}
    assert [p["value"] for p in full["history"]["auc"]] == [0.9]


def test_unknown_runs_fail_clearly(lw: Any) -> None:
    assert lw("init").exit_code == 0
    _assert_clean_failure(lw("runs", "show", "nope"), "run 'nope' does not exist")
    _assert_clean_failure(lw("runs", "show", "nope", "--json", "--history"), "'nope'")


# --- runs compare ------------------------------------------------------------------------------


def test_compare_highlights_differing_params_and_best_metrics(
    three_runs: dict[str, str], lw: Any, lw_json: Any
) -> None:
    ids = [three_runs["rf-a"], three_runs["rf-b"], three_runs["gbm"]]
    compared = lw_json("runs", "compare", *ids)
    assert set(compared) >= {"runs", "params", "metrics", "differing_params", "best"}
    assert [r["id"] for r in compared["runs"]] == ids
    assert [r["name"] for r in compared["runs"]] == ["rf-a", "rf-b", "gbm"]
    assert compared["runs"][0]["experiment"] == "churn"
    assert compared["runs"][0]["display_status"] == "FINISHED"
    assert compared["params"] == {"lr": ["0.1", "0.01", "0.1"], "model": ["rf", "rf", "gbm"]}
    assert compared["differing_params"] == ["lr", "model"]
    assert compared["metrics"] == {"auc": [0.8, 0.95, 0.85], "loss": [0.3, 0.2, 0.4]}
    assert compared["best"] == {
        "auc": {"goal": "max", "run_ids": [three_runs["rf-b"]]},
        "loss": {"goal": "min", "run_ids": [three_runs["rf-b"]]},
    }

    same_model = lw_json("runs", "compare", three_runs["rf-a"], three_runs["rf-b"])
    assert same_model["differing_params"] == ["lr"]
    flipped = lw_json("runs", "compare", *ids, "--maximize", "loss", "--minimize", "auc")
    assert flipped["best"] == {
        "auc": {"goal": "min", "run_ids": [three_runs["rf-a"]]},
        "loss": {"goal": "max", "run_ids": [three_runs["gbm"]]},
    }

    table = lw("runs", "compare", *ids)
    assert table.exit_code == 0, table.stderr
    for text in ("rf-a", "rf-b", "gbm", "lr", "0.01", "auc", "0.95", *ids):
        assert text in table.stdout
    assert "█" in table.stdout, "the loss histories are drawn under the loss row"


def test_compare_marks_missing_values_and_skips_ties(client: Client, lw_json: Any) -> None:
    a = _log(client, "a", params={"model": "rf"}, metrics={"auc": [0.9], "f1": [0.5]})
    b = _log(client, "b", params={"model": "rf", "depth": 3}, metrics={"auc": [0.9]})
    c = _log(client, "c", params={"model": "rf"}, metrics={"auc": [math.nan]})
    compared = lw_json("runs", "compare", a, b, c)
    assert compared["params"] == {"depth": [None, "3", None], "model": ["rf", "rf", "rf"]}
    assert compared["differing_params"] == ["depth"]
    assert compared["metrics"] == {"auc": [0.9, 0.9, None], "f1": [0.5, None, None]}
    assert compared["best"] == {}, "no best among equal values or a single value"


def test_compare_needs_two_existing_runs(three_runs: dict[str, str], lw: Any) -> None:
    one = three_runs["rf-a"]
    _assert_clean_failure(lw("runs", "compare", one), "at least two", code=2)
    _assert_clean_failure(lw("runs", "compare", one, one), "at least two", code=2)
    _assert_clean_failure(lw("runs", "compare", one, "nope", "--json"), "run 'nope' does not exist")
    missing = lw("runs", "compare", one, "x1", "x2")
    _assert_clean_failure(missing, "runs 'x1', 'x2' do not exist")


# --- runs delete / restore ---------------------------------------------------------------------


def test_runs_delete_and_restore_round_trip(
    three_runs: dict[str, str], lw: Any, lw_json: Any
) -> None:
    rf_a, rf_b, gbm = three_runs["rf-a"], three_runs["rf-b"], three_runs["gbm"]
    deleted = lw("runs", "delete", rf_a, rf_b)
    assert deleted.exit_code == 0, deleted.stderr
    assert f"Deleted run {rf_a} (rf-a)" in deleted.stdout
    assert f"Deleted run {rf_b} (rf-b)" in deleted.stdout
    assert "loopwright runs restore" in deleted.stdout

    assert [r["id"] for r in lw_json("runs", "list")["runs"]] == [gbm]
    gone = lw_json("runs", "list", "--deleted")["runs"]
    assert {r["id"] for r in gone} == {rf_a, rf_b}
    assert {r["lifecycle_stage"] for r in gone} == {"deleted"}
    everything = lw_json("runs", "list", "--all")["runs"]
    assert {r["id"]: r["lifecycle_stage"] for r in everything} == {
        rf_a: "deleted",
        rf_b: "deleted",
        gbm: "active",
    }
    assert "deleted" in lw("runs", "list", "--all").stdout
    assert lw_json("runs", "show", rf_a)["lifecycle_stage"] == "deleted"
    assert "(deleted)" in lw("runs", "show", rf_a).stdout

    again = lw("runs", "delete", rf_a)
    assert again.exit_code == 0
    assert "already deleted" in again.stdout

    restored = lw("runs", "restore", rf_a, rf_b, rf_a)
    assert restored.exit_code == 0, restored.stderr
    assert _flat(restored.stdout).count("Restored run") == 2
    assert {r["id"] for r in lw_json("runs", "list")["runs"]} == {rf_a, rf_b, gbm}
    assert lw_json("runs", "list", "--deleted")["runs"] == []
    assert "already active" in lw("runs", "restore", gbm).stdout


def test_runs_delete_changes_nothing_when_an_id_is_unknown(
    three_runs: dict[str, str], lw: Any, lw_json: Any
) -> None:
    result = lw("runs", "delete", three_runs["gbm"], "nope")
    _assert_clean_failure(result, "run 'nope' does not exist", "RESOURCE_DOES_NOT_EXIST")
    assert len(lw_json("runs", "list")["runs"]) == 3
    _assert_clean_failure(lw("runs", "restore", "nope"), "run 'nope' does not exist")
