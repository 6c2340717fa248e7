"""``loopwright deployments``: every command, its JSON, its tables and its refusals."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.registry.entities import ApprovalPolicy

pytest.importorskip("sklearn")

WIDE = {"COLUMNS": "400"}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A home with model ``m`` v1..v3 (no approvals) registered by ada."""
    from sklearn.dummy import DummyClassifier

    home = tmp_path / "home"
    with Client(resolve_settings(home=home, user="ada")) as client:
        client.registry.create_model("m", policy=ApprovalPolicy(rules=()))
        with client.start_run(experiment="cli") as run:
            run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
        for _ in range(3):
            client.registry.register("m", run_id=run.id)
        client.registry.set_alias("m", "prod", 1)
    yield home


def lw(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--home", str(home), "--user", "ada", *args], env=WIDE)


def lw_json(home: Path, *args: str) -> Any:
    result = lw(home, *args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_create_set_traffic_promote_rollback_history_delete(home: Path) -> None:
    created = lw_json(home, "deployments", "create", "api", "models:/m@prod", "--description", "d")
    assert (created["strategy"], created["revision"], created["created_by"]) == (
        "primary",
        1,
        "ada",
    )
    canary = lw_json(
        home, "deployments", "set-traffic", "api",
        "--primary", "models:/m@prod", "--canary", "models:/m/2", "--percent", "20",
    )  # fmt: skip
    assert [(v["name"], v["weight"]) for v in canary["variants"]] == [
        ("primary", 0.8),
        ("canary", 0.2),
    ]
    shadowed = lw_json(
        home,
        "deployments",
        "set-traffic",
        "api",
        "--shadow",
        "models:/m/3",
        "--shadow-percent",
        "5",
    )
    assert shadowed["strategy"] == "canary"  # the live variants are kept
    assert shadowed["variants"][-1] == {
        "name": "shadow", "model_uri": "models:/m/3", "weight": 0.05, "role": "shadow"
    }  # fmt: skip
    shown = lw_json(home, "deployments", "show", "api")
    assert shown["resolved"] == {"primary": "m/1", "canary": "m/2", "shadow": "m/3"}
    assert (shown["instances"], shown["live"]) == ([], None)
    promoted = lw_json(home, "deployments", "promote", "api")
    assert promoted["variants"][0] == {
        "name": "primary", "model_uri": "models:/m@prod", "weight": 1.0, "role": "live"
    }  # fmt: skip
    assert lw_json(home, "deployments", "show", "api")["resolved"]["primary"] == "m/2"
    ab = lw_json(
        home, "deployments", "set-traffic", "api", "--variant", "a=models:/m/1:60",
        "--variant", "b=models:/m/2:40", "--sticky-header", "X-User-Id", "--no-shadow",
    )  # fmt: skip
    assert (ab["strategy"], ab["sticky_header"], len(ab["variants"])) == ("ab", "X-User-Id", 2)
    back = lw_json(home, "deployments", "rollback", "api", "--to", "2")
    assert back["revision"] == 6 and back["strategy"] == "canary"
    history = lw_json(home, "deployments", "history", "api")
    assert [r["action"] for r in history] == [
        "create", "set-traffic", "set-traffic", "promote", "set-traffic", "rollback"
    ]  # fmt: skip
    assert [d["name"] for d in lw_json(home, "deployments", "list")] == ["api"]

    table = lw(home, "deployments", "history", "api")
    assert table.exit_code == 0 and "rollback" in table.stdout
    listed = lw(home, "deployments", "list")
    assert "primary=models:/m@prod 80%" in listed.stdout
    refused = lw(home, "deployments", "delete", "api")
    assert refused.exit_code != 0 and "--yes" in refused.stderr
    assert "keep the last policy until stopped" in refused.stderr  # what deleting does not do
    assert lw(home, "deployments", "delete", "api", "--yes").exit_code == 0
    gone = lw(home, "deployments", "show", "api")
    assert gone.exit_code == 1 and "does not exist" in gone.stderr


def test_show_lists_instances_and_says_which_could_not_be_read(home: Path) -> None:
    lw_json(home, "deployments", "create", "api", "models:/m/1")
    url = f"http://127.0.0.1:{_closed_port()}"
    with Client(resolve_settings(home=home, user="ada")) as client:
        client.deployments.heartbeat("api", url, 4242, "box")
    shown = lw(home, "deployments", "show", "api", "--interval", "0")
    assert shown.exit_code == 0, shown.stderr
    assert "m/1" in shown.stdout and url in shown.stdout and "4242" in shown.stdout
    assert f"instance {url} not read" in shown.stdout
    assert "no live numbers: no listed instance could be read" in shown.stdout
    assert "p99 ms" not in shown.stdout  # no empty table that reads as "no traffic"
    data = lw_json(home, "deployments", "show", "api", "--interval", "0")
    assert data["live"]["unreachable"][0]["url"] == url


def test_show_says_when_the_instances_have_served_nothing_yet(home: Path) -> None:
    from _served_model import live

    from loopwright.serving.repository import ModelRepository
    from loopwright.serving.server import ServeConfig, build_app

    lw_json(home, "deployments", "create", "api", "models:/m/1")
    serving = build_app(ServeConfig(sources=()), ModelRepository([]))
    with live(serving) as url, Client(resolve_settings(home=home, user="ada")) as client:
        client.deployments.heartbeat("api", url, 4242, "box")
        shown = lw(home, "deployments", "show", "api", "--interval", "0")
    assert shown.exit_code == 0, shown.stderr
    assert "instances read (1 of 1) have answered no request of deployment 'api'" in shown.stdout
    assert "not read" not in shown.stdout and "p99 ms" not in shown.stdout


def test_rollback_after_a_promote_says_the_alias_was_not_rolled_back(home: Path) -> None:
    """The promote moved m@prod to v2; restoring revision 1's policy (primary m@prod) still
    serves v2, and rollback says so, with the version each variant serves now."""
    lw_json(home, "deployments", "create", "api", "models:/m@prod")
    lw_json(home, "deployments", "set-traffic", "api", "--canary", "models:/m/2", "--percent", "10")
    assert lw_json(home, "deployments", "promote", "api")["variants"][0]["model_uri"] == (
        "models:/m@prod"
    )
    back = lw(home, "deployments", "rollback", "api", "--to", "1")
    assert back.exit_code == 0, back.stderr
    assert "m/2" in back.stdout  # version now
    assert "aliases and stages are not rolled back: models:/m@prod" in back.stdout
    data = lw_json(home, "deployments", "rollback", "api", "--to", "2")
    assert data["resolved"] == {"primary": "m/2", "canary": "m/2"}
    for uri in ("models:/m/1", "models:/m/3"):  # revisions 6 and 7, pinned
        assert lw(home, "deployments", "set-traffic", "api", "--primary", uri).exit_code == 0
    again = lw(home, "deployments", "rollback", "api", "--to", "6")
    assert again.exit_code == 0 and "not rolled back" not in again.stdout, again.stdout


def test_a_canary_alone_keeps_the_current_primary(home: Path) -> None:
    """As the README writes it: set-traffic NAME --canary URI --percent P."""
    lw_json(home, "deployments", "create", "api", "models:/m@prod")
    changed = lw_json(
        home, "deployments", "set-traffic", "api", "--canary", "models:/m/2", "--percent", "20"
    )
    assert [(v["name"], v["model_uri"], v["weight"]) for v in changed["variants"]] == [
        ("primary", "models:/m@prod", 0.8),
        ("canary", "models:/m/2", 0.2),
    ]
    again = lw_json(
        home, "deployments", "set-traffic", "api", "--canary", "models:/m/3", "--percent", "5"
    )
    assert [(v["name"], v["model_uri"]) for v in again["variants"]] == [
        ("primary", "models:/m@prod"),
        ("canary", "models:/m/3"),
    ]
    lw_json(home, "deployments", "set-traffic", "api", "--variant", "a=models:/m/1:1",
            "--variant", "b=models:/m/2:1")  # fmt: skip
    refused = lw(home, "deployments", "set-traffic", "api", "--canary", "models:/m/3",
                 "--percent", "5")  # fmt: skip
    assert refused.exit_code != 0
    assert "strategy 'ab' and no primary" in refused.stderr and "--primary" in refused.stderr
    assert lw_json(home, "deployments", "show", "api", "--interval", "0")["revision"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--primary", "models:/m/1", "--canary", "models:/m/2"], "go together"),
        ([], "nothing to change"),
        (["--variant", "a=models:/m/1"], "NAME=URI:WEIGHT"),
        (["--variant", "a=models:/m/1:1", "--primary", "models:/m/1"], "leave out --primary"),
        (["--shadow", "models:/m/3"], "go together"),
        (["--primary", "models:/m/1", "--canary", "models:/m/2", "--percent", "100"], "between"),
        (["--primary", "models:/m/9"], "no version 9"),
        (["--variant", "a=models:/m/1:1", "--variant", "a=models:/m/2:1"], "twice"),
    ],
)
def test_set_traffic_refusals_name_the_fix(home: Path, args: list[str], message: str) -> None:
    lw_json(home, "deployments", "create", "api", "models:/m/1")
    result = lw(home, "deployments", "set-traffic", "api", *args)
    assert result.exit_code != 0
    assert message in result.stdout + result.stderr
    assert lw_json(home, "deployments", "show", "api", "--interval", "0")["revision"] == 1


def test_the_commands_work_through_a_server(home: Path, tmp_path: Path) -> None:
    """``--server``: the same commands over HTTP (a real uvicorn on 127.0.0.1, auth on)."""
    import threading
    import time

    import uvicorn

    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.server.app import create_app
    from loopwright.store.home import open_store

    settings = resolve_settings(home=home)
    with open_store(settings) as store:
        UserService(store, actor="root").add("root", "admin")
        UserService(store, actor="root").add("vic", "viewer")
        UserService(store, actor="root").add("ed", "editor")
        tokens = {u: TokenService(store, actor="root").create(u).secret for u in ("ed", "vic")}
    port = _closed_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, auth=True), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.02)
    try:
        elsewhere = tmp_path / "elsewhere"

        def remote(user: str, *args: str) -> Any:
            url = f"http://127.0.0.1:{port}"
            argv = ["--home", str(elsewhere), "--server", url, "--token", tokens[user], *args]
            return CliRunner().invoke(app, argv, env=WIDE)

        created = remote("ed", "deployments", "create", "api", "models:/m/1", "--json")
        assert created.exit_code == 0, created.stderr
        assert json.loads(created.stdout)["created_by"] == "ed"
        refused = remote("vic", "deployments", "set-traffic", "api", "--primary", "models:/m/2")
        assert refused.exit_code == 1 and "PERMISSION_DENIED" in refused.stderr
        shown = remote("vic", "deployments", "show", "api", "--interval", "0")
        assert shown.exit_code == 0 and "m/1" in shown.stdout
        changed = remote("ed", "deployments", "set-traffic", "api", "--primary", "models:/m/2")
        assert changed.exit_code == 0 and "revision 2" in changed.stdout
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_show_prints_live_statistics_per_variant(home: Path) -> None:
    """A real serving app's /metrics, filled with known latencies, read back by ``show``."""
    from _served_model import live

    from loopwright.serving.repository import ModelRepository
    from loopwright.serving.server import ServeConfig, build_app
    from loopwright.serving.sources import load_source, resolve_source

    lw_json(home, "deployments", "create", "api", "models:/m/1")
    serving = build_app(ServeConfig(sources=()), ModelRepository([]))
    with Client(resolve_settings(home=home, user="ada")) as client:
        served = load_source(resolve_source("models:/m/1", client))
        meter = serving.state.metrics.meter(served, "api", "primary")
        for ms in range(1, 101):
            if ms % 20 == 0:
                meter.failed(500, ms / 1000)
            else:
                meter.observe(ms / 1000)
        with live(serving) as url:
            client.deployments.heartbeat("api", url, 4242, "box")
            data = lw_json(home, "deployments", "show", "api", "--interval", "0")
            table = lw(home, "deployments", "show", "api", "--interval", "0")
    (stats,) = data["live"]["variants"]
    assert (stats["variant"], stats["model"], stats["version"]) == ("primary", "m", "1")
    assert (stats["requests"], stats["errors"], stats["error_rate"]) == (100, 5, 0.05)
    assert 35 <= stats["p50_ms"] <= 65 and stats["p50_ms"] < stats["p95_ms"] <= stats["p99_ms"]
    assert data["live"]["unreachable"] == []
    assert table.exit_code == 0, table.stderr
    assert "p99 ms" in table.stdout and "5.00%" in table.stdout


def test_models_policy_takes_a_traffic_rule(home: Path) -> None:
    policy = lw_json(home, "models", "policy", "m", "--require", "traffic=2:approver")
    assert policy["rules"] == [{"target": "traffic", "approvals": 2, "role": "approver"}]
    refused = lw(home, "models", "policy", "m", "--require", "traffics=1:approver")
    assert refused.exit_code != 0
