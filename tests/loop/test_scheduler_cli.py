"""``loopwright schedules`` and ``loopwright scheduler`` (once, and running until SIGTERM), and
``loopwright server --scheduler`` firing a schedule; bad arguments refused in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from _schedule_fixtures import add_version, client_on
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.loop.entities import Fire

WIDE = {"COLUMNS": "400"}
FLOW = """
from loopwright.pipelines import pipeline, step


@step
def double(x: int) -> int:
    return 2 * x


@pipeline
def flow(x: int = 1) -> int:
    return double(x)
"""


def lw(home: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["--home", str(home), "--user", "ada", *args], env=WIDE)


def ok(home: Path, *args: str) -> Any:
    result = lw(home, *args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def one_line_error(result: Any, *fragments: str) -> None:
    assert result.exit_code != 0, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def _code(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "cli_flow.py").write_text(textwrap.dedent(FLOW))
    return code


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPWRIGHT_")}
    return {**env, "LOOPWRIGHT_HOME": str(home), "COLUMNS": "400"}


def _wait_for_fire(client: Client, name: str, timeout: float = 120) -> Fire:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fires = client.schedules.fires(name)
        if fires and fires[0].status != "started":
            return fires[0]
        time.sleep(0.2)
    raise AssertionError(f"schedule {name!r} did not fire within {timeout} s")


def test_schedules_commands(tmp_path: Path) -> None:
    home, code = tmp_path / "home", _code(tmp_path)
    made = json.loads(
        ok(
            home, "schedules", "create", "nightly", "--pipeline", "cli_flow:flow",
            "--trigger", "cron:0 3 * * *", "--param", "x=4", "--cwd", str(code), "--json",
        ).stdout
    )  # fmt: skip
    assert made["trigger"] == "cron:0 3 * * *" and made["params"] == {"x": "4"}
    assert made["cwd"] == str(code) and made["enabled"] is True
    line = ok(
        home,
        "schedules",
        "create",
        "here",
        "--pipeline",
        "cli_flow:flow",
        "--trigger",
        "interval:6h",
    )
    assert "schedule 'here' created: interval:6h -> pipeline cli_flow:flow; next due" in line.stdout
    assert json.loads(ok(home, "schedules", "show", "here", "--json").stdout)["cwd"] == os.getcwd()
    ok(home, "schedules", "create", "loopy", "--loop", "churn-ct", "--trigger", "manual")

    listed = json.loads(ok(home, "schedules", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["here", "loopy", "nightly"]
    table = ok(home, "schedules", "list").stdout
    assert "cron:0 3 * * *" in table and "loop churn-ct" in table
    assert [
        s["name"]
        for s in json.loads(ok(home, "schedules", "list", "--target", "churn-ct", "--json").stdout)
    ] == ["loopy"]

    assert "schedule 'nightly' disabled" in ok(home, "schedules", "disable", "nightly").stdout
    assert json.loads(ok(home, "schedules", "show", "nightly", "--json").stdout)["enabled"] is False
    assert (
        "schedule 'nightly' enabled; next due" in ok(home, "schedules", "enable", "nightly").stdout
    )
    shown = ok(home, "schedules", "show", "nightly").stdout
    assert "Schedule nightly" in shown and "0 recent fire(s)" in shown and "x=4" in shown

    one_line_error(lw(home, "schedules", "delete", "nightly"), "add --yes")
    assert "deleted" in ok(home, "schedules", "delete", "nightly", "--yes").stdout
    one_line_error(lw(home, "schedules", "show", "nightly"), "schedule 'nightly' does not exist")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--trigger", "manual"], ["exactly one of --pipeline"]),
        (["--pipeline", "a:b", "--loop", "l", "--trigger", "manual"], ["exactly one of"]),
        (["--pipeline", "a:b", "--trigger", "hourly"], ["is not a trigger", "'manual'"]),
        (["--pipeline", "nocolon", "--trigger", "manual"], ["MODULE:FUNCTION"]),
        (["--pipeline", "a:b", "--trigger", "manual", "--param", "x"], ["NAME=VALUE"]),
        (["--loop", "l", "--trigger", "manual", "--param", "x=1"], ["--param and --cwd are for"]),
        (["--pipeline", "a:b", "--trigger", "manual", "--cwd", "/no/such/dir"], ["not a folder"]),
        (["--pipeline", "a:b", "--trigger", "drift:nope"], ["monitor 'nope' does not exist"]),
        (["--pipeline", "a:b", "--trigger", "cron:0 0 31 2 *"], ["never matches"]),
    ],
)
def test_bad_create_arguments(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    home = tmp_path / "home"
    ok(home, "init")
    one_line_error(lw(home, "schedules", "create", "s", *args), *fragments)
    assert json.loads(ok(home, "schedules", "list", "--json").stdout) == []


def test_reading_commands_on_a_missing_store_create_nothing(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    for args in (["schedules", "list"], ["schedules", "show", "x"], ["scheduler", "--once"]):
        result = lw(home, *args)
        assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert not home.exists()


def test_scheduler_once_runs_a_pipeline_on_a_new_dataset_version(tmp_path: Path) -> None:
    home, code = tmp_path / "home", _code(tmp_path)
    with client_on(home) as client:
        add_version(client, tmp_path, "tx", "a\n0\n")
        client.schedules.create(
            "on-data", target="cli_flow:flow", trigger="dataset:tx", params={"x": 5}, cwd=str(code)
        )
        assert json.loads(ok(home, "scheduler", "--once", "--json", "--no-loops").stdout) == []
        version = add_version(client, tmp_path, "tx", "a\n1\n")
    fired = json.loads(ok(home, "scheduler", "--once", "--json", "--no-loops").stdout)
    assert [(f["schedule"], f["event_key"], f["status"]) for f in fired] == [
        ("on-data", version, "succeeded")
    ]
    with client_on(home) as client:
        run = client.pipelines.get_run(fired[0]["pipeline_run_id"])
        assert run.status == "completed" and dict(run.params)["x"] == 5
        shown = ok(home, "schedules", "show", "on-data").stdout
        assert "1 recent fire(s)" in shown and "succeeded" in shown and run.id in shown


def test_the_scheduler_runs_until_sigterm(tmp_path: Path) -> None:
    home, code = tmp_path / "home", _code(tmp_path)
    with client_on(home) as client:
        add_version(client, tmp_path, "tx", "a\n0\n")
        client.schedules.create("on-data", target="ghost", trigger="dataset:tx", target_kind="loop")
        client.schedules.create(
            "train", target="cli_flow:flow", trigger="dataset:tx", cwd=str(code)
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopwright.cli", "scheduler", "--interval", "0.2",
             "--no-loops"],
            env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            version = add_version(client, tmp_path, "tx", "a\n1\n")
            fire = _wait_for_fire(client, "on-data")
            assert fire.event_key == version
            assert fire.status == "failed" and "ghost" in (fire.detail or "")  # no such loop
            trained = _wait_for_fire(client, "train")
            assert trained.status == "succeeded" and trained.pipeline_run_id is not None
            time.sleep(1.0)  # a tick or more: the scheduler prints the job's end
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "ticking every 0.2 s" in err
    assert "on-data: failed" in out
    assert "train: started" in out and "train: succeeded" in out  # the job, then its end


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_with_scheduler_fires_a_schedule(tmp_path: Path) -> None:
    home, code = tmp_path / "home", _code(tmp_path)
    port = _free_port()
    with client_on(home) as client:
        add_version(client, tmp_path, "tx", "a\n0\n")
        client.schedules.create(
            "on-data", target="cli_flow:flow", trigger="dataset:tx", params={"x": 2}, cwd=str(code)
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "loopwright.cli", "server", "--port", str(port),
             "--scheduler", "--scheduler-interval", "0.3"],
            env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            version = add_version(client, tmp_path, "tx", "a\n1\n")
            fire = _wait_for_fire(client, "on-data")
            assert fire.event_key == version and fire.status == "succeeded", fire.detail
            assert fire.pipeline_run_id is not None
            assert client.pipelines.get_run(fire.pipeline_run_id).status == "completed"
        finally:
            server.send_signal(signal.SIGTERM)
            _, err = server.communicate(timeout=60)
    assert "scheduler: on, every 0.3 s" in err


def test_a_bad_scheduler_interval_is_refused(tmp_path: Path) -> None:
    result = lw(tmp_path / "home", "scheduler", "--interval", "0")
    assert result.exit_code == 2 and "Traceback" not in result.stderr


def test_a_bad_server_scheduler_interval_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.config import resolve_settings
    from loopwright.errors import ConfigError
    from loopwright.server.app import create_app

    settings = resolve_settings(home=tmp_path / "home")
    with pytest.raises(ConfigError, match="LOOPWRIGHT_SERVER_SCHEDULER"):
        create_app(settings, scheduler=-1)
    monkeypatch.setenv("LOOPWRIGHT_SERVER_SCHEDULER", "often")
    with pytest.raises(ConfigError, match=r"'often'.*seconds between ticks"):
        create_app(settings)
