"""``loopwright loops``: create (with a gates file, triggers, canary settings), list, show, trigger,
tick to the canary, history, pause/resume, delete; bad arguments refused in one line. And the
loop driven through a real server: a remote client runs the same iteration to promotion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from _loop_fixtures import (
    DEPLOYMENT,
    HOUR_MS,
    MODEL,
    PIPELINE,
    World,
    gates,
    serve,
    world,
)
from typer.testing import CliRunner

import loopwright as lw_api
from loopwright._ids import now_ms
from loopwright.cli.app import app
from loopwright.config import resolve_settings
from loopwright.errors import PermissionDenied
from loopwright.governance.tokens import TokenService
from loopwright.governance.users import UserService
from loopwright.loop.driver import advance
from loopwright.store.home import open_store
from test_public_api import live_server

WIDE = {"COLUMNS": "400"}


@pytest.fixture
def w(tmp_path: Path, sqlite_uri: str) -> Iterator[World]:
    made = world(tmp_path, sqlite_uri, approval=False)
    yield made
    made.client.close()
    made.approver.close()


def _options(w: World) -> list[str]:
    return ["--home", str(w.home), "--db-uri", w.db_uri, "--user", "loop-bot"]


def lw(w: World, *args: str) -> Any:
    return CliRunner().invoke(app, [*_options(w), *args], env=WIDE)


def ok(w: World, *args: str) -> Any:
    result = lw(w, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def one_line_error(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def _create(w: World, tmp_path: Path, *extra: str) -> Any:
    spec = tmp_path / "gates.yaml"
    spec.write_text(yaml.safe_dump(gates()))
    return ok(
        w, "loops", "create", "ct", "--deployment", DEPLOYMENT, "--pipeline", PIPELINE,
        "--gates", str(spec), "--trigger", "manual", "--trigger", "interval:6h",
        "--canary", "20%", "--canary-window", "30m", "--margin", "0.05", "--min-samples", "300",
        "--no-approval", "--param", "quality=good", "--param", "seed=3", "--cwd", str(w.code),
        *extra,
    )  # fmt: skip


def test_create_show_trigger_tick_history(w: World, tmp_path: Path) -> None:
    made = json.loads(_create(w, tmp_path, "--json").stdout)
    assert made["gates"]["rules"] == ["metrics.accuracy >= 0.7"]
    assert (made["canary_percent"], made["canary_window_ms"]) == (20.0, 30 * 60_000)
    assert made["params"] == {"quality": "good", "seed": "3"}
    assert made["triggers"] == ["manual", "interval:6h"] and not made["require_approval"]
    assert "loop:ct:1" in ok(w, "schedules", "list").stdout
    listed = ok(w, "loops", "list").stdout
    assert "ct" in listed and "interval:6h" in listed
    shown = ok(w, "loops", "show", "ct").stdout
    assert "no iteration yet" in shown and "20% for 30 min" in shown
    started = json.loads(ok(w, "loops", "trigger", "ct", "--detail", "by hand", "--json").stdout)
    assert (started["number"], started["state"]) == (1, "triggered")
    one_line_error(lw(w, "loops", "trigger", "ct"), "in flight")
    ticked = ok(w, "loops", "tick", "ct").stdout
    assert "ct #1: canary" in ticked
    shown = ok(w, "loops", "show", "ct").stdout
    assert "Iteration 1: canary" in shown and "gate result" in shown and "model version" in shown
    state = json.loads(ok(w, "loops", "show", "ct", "--json").stdout)
    assert state["iteration"]["state"] == "canary" and state["iteration"]["model_version"] == 2
    history = ok(w, "loops", "history", "ct").stdout
    assert "triggered → training → gating → canary" in history
    assert ok(w, "loops", "tick").stdout.strip() == "ct #1: canary"  # the window is open
    one_line_error(lw(w, "loops", "delete", "ct"), "in flight")


def test_pause_resume_delete(w: World, tmp_path: Path) -> None:
    _create(w, tmp_path)
    assert "paused" in ok(w, "loops", "pause", "ct").stdout
    assert not json.loads(ok(w, "schedules", "show", "loop:ct:1", "--json").stdout)["enabled"]
    one_line_error(lw(w, "loops", "trigger", "ct"), "paused", "loops resume ct")
    assert "active" in ok(w, "loops", "resume", "ct").stdout
    ok(w, "loops", "delete", "ct")
    one_line_error(lw(w, "loops", "show", "ct"), "loop 'ct' does not exist")
    assert ok(w, "loops", "tick").stdout.strip() == "no iteration in flight"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--canary", "lots"], ["--canary", "percentage"]),
        (["--canary", "150%"], ["canary_percent"]),
        (["--canary-window", "soon"], ["--canary-window", "duration"]),
        (["--param", "novalue"], ["NAME=VALUE"]),
        (["--trigger", "whenever"], ["whenever"]),
        (["--gates", "missing.yaml"], ["missing.yaml"]),
    ],
)
def test_bad_arguments_one_line(w: World, args: list[str], fragments: list[str]) -> None:
    result = lw(
        w, "loops", "create", "ct", "--deployment", DEPLOYMENT, "--pipeline", PIPELINE,
        "--no-approval", *args,
    )  # fmt: skip
    one_line_error(result, *fragments)


def test_approval_is_refused_without_a_traffic_rule(w: World) -> None:
    result = lw(w, "loops", "create", "ct", "--deployment", DEPLOYMENT, "--pipeline", PIPELINE)
    one_line_error(result, "no 'traffic' rule", "loopwright models policy churn")


def test_the_loop_through_a_server(tmp_path: Path, db_uri: str) -> None:
    """A remote client creates the loop and drives it; records land in the server's store."""
    local = world(tmp_path, db_uri, approval=False)
    settings = resolve_settings(home=local.home, db_uri=db_uri)
    with open_store(settings) as store:
        UserService(store, actor="root").add("loop-bot", "editor")
        UserService(store, actor="root").add("vic", "viewer")
        secret = TokenService(store, actor="root").create("loop-bot").secret
        viewer_secret = TokenService(store, actor="root").create("vic").secret
    t0 = int(now_ms() - 2 * HOUR_MS)
    with (
        live_server(settings) as url,
        lw_api.connect(url, token=secret, home=tmp_path / "bot-home") as remote,
    ):
        remote.loops.create(
            "ct", deployment=DEPLOYMENT, pipeline=PIPELINE, gates=gates(), margin=0.05,
            min_samples=500, require_approval=False, params={"seed": 3}, cwd=str(local.code),
        )  # fmt: skip
        it = remote.loops.start_iteration("ct")
        it = advance(remote, it.id, owner="remote-driver", now_ms=t0)
        assert it.state == "canary", it.reason
        # Traffic lands in the server's log (written here as its serving processes would).
        serve(local.client, variant="primary", version=1, start_ms=t0, seed=11)
        serve(local.client, variant="canary", version=2, start_ms=t0, seed=12)
        it = advance(remote, it.id, owner="remote-driver", now_ms=t0 + HOUR_MS + 1)
        assert it.state == "promoted", it.reason
        assert remote.loops.iterations("ct")[0] == it
        assert remote.loops.get("ct") == local.client.loops.get("ct")
        with lw_api.connect(url, token=viewer_secret, home=tmp_path / "vic-home") as vic:
            assert [loop.name for loop in vic.loops.list()] == ["ct"]
            assert vic.loops.get_iteration(it.id) == it
            with pytest.raises(PermissionDenied):
                vic.loops.start_iteration("ct")
            with pytest.raises(PermissionDenied):
                vic.loops.lease(it.id, owner="vic", ttl=timedelta(minutes=1))
    assert local.client.loops.get_iteration(it.id) == it
    assert local.client.gates.get(it.gate_result_id or "").created_by == "loop-bot"
    primary = local.client.deployments.get(DEPLOYMENT).variants[0]
    assert primary.model_uri == f"models:/{MODEL}/2"
    local.client.close()
    local.approver.close()
