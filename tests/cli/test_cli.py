"""The ``loopwright`` command line: in-process with CliRunner, and as a real subprocess where
startup (imports, entry points, environment) is what is being tested."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import loopwright
from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.store.gc import referenced_hashes
from loopwright.store.migrate import HEAD_REVISION

BIN = Path(sys.executable).parent
LOOPWRIGHT = shutil.which("loopwright", path=str(BIN)) or str(BIN / "loopwright")
LW = shutil.which("lw", path=str(BIN)) or str(BIN / "lw")
HEAVY_MODULES = ("sqlalchemy", "pandas", "fsspec", "alembic", "pyarrow")
WIDE = {"COLUMNS": "400"}  # keep Rich from wrapping the lines the tests read

# Every command that lists or reports something; each must offer --json.
JSON_COMMANDS = [
    ("audit", "log"),
    ("audit", "verify"),
    ("experiments", "list"),
    ("runs", "list"),
    ("runs", "show"),
    ("runs", "compare"),
    ("config",),
    ("gc",),
    ("db", "current"),
    ("init",),
]
# Reporting commands that need a dataset to work on; tests/cli/test_data_commands.py checks
# their JSON.
DATA_JSON_COMMANDS = {
    ("data", name)
    for name in (
        "add",
        "list",
        "log",
        "show",
        "diff",
        "checkout",
        "status",
        "push",
        "pull",
        "validate",
    )
}
# Registry commands that need a registered model; tests/cli/test_model_commands.py checks them.
MODEL_JSON_COMMANDS: set[tuple[str, ...]] = {
    ("models", name)
    for name in (
        "list",
        "show",
        "versions",
        "register",
        "alias",
        "stage",
        "requests",
        "approve",
        "reject",
        "policy",
        "rename",
        "pin",
        "import-mlflow",
    )
} | {("users", "list"), ("tokens", "list")}
MODEL_JSON_COMMANDS |= {("predict",)}  # its JSON: tests/serving/test_batch_scoring.py
# Their JSON: tests/serving/test_prediction_log_cli.py.
MODEL_JSON_COMMANDS |= {("predictions", name) for name in ("list", "show", "compact", "prune")}
# Their JSON: tests/serving/test_deployments_cli.py.
MODEL_JSON_COMMANDS |= {
    ("deployments", name)
    for name in ("create", "list", "show", "set-traffic", "promote", "rollback", "history")
}
# Their JSON: tests/monitoring/test_cli.py.
MODEL_JSON_COMMANDS |= {("deployments", "compare"), ("labels", "import"), ("labels", "show")}
MODEL_JSON_COMMANDS |= {
    ("monitors", name)
    for name in ("create", "run", "run-due", "list", "show", "history", "alerts", "compare")
} | {("monitors", "references", "build"), ("monitors", "references", "list")}
MODEL_JSON_COMMANDS |= {("monitors", "backfill")}  # its JSON: tests/monitoring/test_ray.py
# Their JSON: tests/monitoring/test_llm_monitors_cli.py.
MODEL_JSON_COMMANDS |= {("monitors", "traces", n) for n in ("create", "show", "run", "history")}
# Their JSON: tests/pipelines/test_pipelines_cli.py and tests/loop/test_*_cli.py, test_lineage.py.
MODEL_JSON_COMMANDS |= {("pipelines", name) for name in ("run", "resume", "list", "show")}
MODEL_JSON_COMMANDS |= {("gates", "check"), ("gates", "results"), ("lineage",), ("scheduler",)}
MODEL_JSON_COMMANDS |= {("schedules", name) for name in ("create", "list", "show")}
MODEL_JSON_COMMANDS |= {
    ("loops", name)
    for name in ("create", "list", "show", "history", "pause", "resume", "trigger", "tick")
}
# Their JSON: tests/cli/test_features_cli.py.
MODEL_JSON_COMMANDS |= {
    ("features", name)
    for name in (
        "apply",
        "list",
        "show",
        "diff",
        "historical",
        "materialize",
        "materializations",
        "online",
        "freshness",
        "skew",
    )
}
# Their JSON: tests/tracing/test_traces_cli.py.
MODEL_JSON_COMMANDS |= {("traces", "list"), ("traces", "show")}
# Their JSON: tests/gateway/test_gateway_cli.py.
MODEL_JSON_COMMANDS |= {("gateway", "routes", n) for n in ("create", "update", "list", "show")}
MODEL_JSON_COMMANDS |= {
    ("gateway", "secrets", "set"),
    ("gateway", "secrets", "list"),
    ("gateway", "usage"),
}
# Their JSON: tests/evaluation/test_eval_cli.py.
MODEL_JSON_COMMANDS |= {
    ("eval", n) for n in ("datasets", "add", "records", "run", "results", "agreement")
} | {("eval", "scorers", n) for n in ("list", "request-approval", "approve")}
# Commands whose output is a document in a format of its own (Markdown, HTML, CycloneDX JSON).
DOCUMENT_COMMANDS = {("models", "card"), ("models", "sbom"), ("monitors", "report")}
DOCUMENT_COMMANDS |= {("traces", "export")}  # JSON Lines, one trace per line
# A unified diff and a filled-in template; the others' JSON: tests/prompts/test_prompts_cli.py.
DOCUMENT_COMMANDS |= {("prompts", "diff"), ("prompts", "format")}
MODEL_JSON_COMMANDS |= {
    ("prompts", n) for n in ("register", "list", "show", "versions", "set-alias", "requests")
}
# Commands that act rather than report, and so need no --json.
ACTION_COMMANDS = {
    ("deployments", "delete"),
    ("gateway", "routes", "delete"),
    ("gateway", "secrets", "delete"),
    ("monitors", "delete"),
    ("loops", "delete"),
    ("schedules", "delete"),
    ("schedules", "enable"),
    ("schedules", "disable"),
    ("server",),
    ("ui",),
    ("serve",),
    ("tokens", "create"),
    ("tokens", "revoke"),
    ("users", "add"),
    ("users", "set-role"),
    ("users", "disable"),
    ("data", "tag"),
    ("data", "alias"),
    ("db", "upgrade"),
    ("experiments", "create"),
    ("experiments", "rename"),
    ("experiments", "delete"),
    ("experiments", "restore"),
    ("runs", "delete"),
    ("runs", "restore"),
    ("prompts", "delete-alias"),
    ("prompts", "approve"),
    ("prompts", "reject"),
}


def _flat(text: str) -> str:
    """Text with whitespace runs folded to one space (Rich wraps long messages)."""
    return " ".join(text.split())


def invoke(args: Sequence[str], **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env={**WIDE, **env}, catch_exceptions=True)


def invoke_json(args: Sequence[str], **env: str) -> Any:
    result = invoke([*args, "--json"], **env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return _strict_json(result.stdout)


def _strict_json(text: str) -> Any:
    """Parse JSON as RFC 8259 defines it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    return json.loads(text, parse_constant=refuse)


def _assert_clean_failure(result: Any, *fragments: str) -> None:
    """Exit status 1, a one-line error naming ``fragments``, and no traceback."""
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    message = _flat(result.stderr)
    assert message.startswith("error:"), message
    for fragment in fragments:
        assert fragment in message
    assert "Traceback" not in result.stderr + result.stdout


def run_cli(
    args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None, exe: str = LOOPWRIGHT
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **WIDE, **(env or {})}
    return subprocess.run(
        [exe, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "lw-home"


@pytest.fixture
def client(home: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=home)) as client:
        yield client


@pytest.fixture
def logged_run(client: Client, tmp_path: Path) -> str:
    """A finished run with params, metrics, tags and an artifact; returns its id."""
    artifact = tmp_path / "model.txt"
    artifact.write_text("weights", encoding="utf-8")
    with client.start_run(experiment="churn", name="rf-1", tags={"team": "risk"}) as run:
        run.log_params({"n_estimators": 200, "max_depth": 6})
        run.log_metric("auc", 0.5, step=0)
        run.log_metric("auc", 0.91, step=1)
        run.log_artifact(artifact, "model")
    return run.id


# --- the installed commands (subprocesses) -----------------------------------------------------


def test_init_then_config_from_a_subfolder_shows_a_working_home(tmp_path: Path) -> None:
    project = tmp_path / "project"
    nested = project / "src" / "pkg"
    nested.mkdir(parents=True)

    created = run_cli(["init", "--json"], cwd=project)
    assert created.returncode == 0, created.stderr
    init = _strict_json(created.stdout)
    home = project.resolve() / ".loopwright"
    assert init["home"] == str(home)
    assert init["created"] is True
    assert init["schema_revision"] == HEAD_REVISION

    shown = run_cli(["config", "--json"], cwd=nested)
    assert shown.returncode == 0, shown.stderr
    config = _strict_json(shown.stdout)
    assert config["home"] == {"value": str(home), "source": "default"}
    assert config["db_uri"] == {
        "value": f"sqlite:///{home / 'loopwright.db'}",
        "source": "default (inside home)",
    }
    assert config["blob_uri"] == {"value": str(home / "blobs"), "source": "default (inside home)"}
    assert config["log_level"] == {"value": "WARNING", "source": "default"}
    assert config["config_file"] is None
    assert home.is_dir()
    assert (home / "loopwright.db").is_file()
    assert (home / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"

    again = run_cli(["init", "--json"], cwd=nested)
    assert again.returncode == 0, again.stderr
    assert _strict_json(again.stdout)["created"] is False
    assert _strict_json(again.stdout)["home"] == str(home)


def test_the_lw_alias_runs_the_same_program(tmp_path: Path) -> None:
    result = run_cli(["--version"], cwd=tmp_path, exe=LW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"loopwright {loopwright.__version__}"

    env = {"LOOPWRIGHT_LOG_LEVEL": "info"}
    config = run_cli(["config", "--json"], cwd=tmp_path, exe=LW, env=env)
    assert config.returncode == 0, config.stderr
    assert _strict_json(config.stdout)["log_level"] == {
        "value": "INFO",
        "source": "environment LOOPWRIGHT_LOG_LEVEL",
    }


def _imported_modules(importtime_stderr: str) -> set[str]:
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["runs", "--help"], ["experiments", "--help"], ["config"]]
)
def test_light_commands_import_no_heavy_module(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(args, cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    modules = _imported_modules(result.stderr)
    assert "loopwright.cli.app" in modules  # the profile really covers the command
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY_MODULES)
    assert heavy == []


def test_import_loopwright_is_light_until_a_client_connects(tmp_path: Path) -> None:
    code = (
        "import sys, json, loopwright\n"
        f"heavy = {HEAVY_MODULES!r}\n"
        "def loaded(): return sorted({m.split('.')[0] for m in sys.modules} & set(heavy))\n"
        "before = loaded()\n"
        "loopwright.connect(home='lw-home')\n"
        "print(json.dumps({'before': before, 'after': loaded()}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["before"] == []
    assert "sqlalchemy" in report["after"]  # the check above can see a heavy import
    assert "pandas" not in report["after"]


def test_a_bad_environment_setting_fails_in_one_line_naming_the_variable(tmp_path: Path) -> None:
    result = run_cli(["config"], cwd=tmp_path, env={"LOOPWRIGHT_DB_URI": "mysql://u@h/db"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = _flat(result.stderr)
    assert message.startswith("error:")
    assert "LOOPWRIGHT_DB_URI" in message
    assert "mysql" in message
    assert "INVALID_CONFIG" in message
    assert result.stdout == ""


# --- in-process commands -----------------------------------------------------------------------


def test_init_creates_database_and_blob_store(home: Path) -> None:
    report = invoke_json(["--home", str(home), "init"])
    assert report["created"] is True
    assert report["home"] == str(home.resolve())
    assert (home / "loopwright.db").is_file()
    assert Path(report["blob_uri"]).is_dir(), "init reports a blob store folder it did not create"


def test_config_reports_arguments_and_the_toml(tmp_path: Path) -> None:
    toml = Path.cwd() / "loopwright.toml"
    toml.write_text('[loopwright]\ntoken = "secret-token-123"\n', encoding="utf-8")
    config = invoke_json(["--home", str(tmp_path / "h"), "config"])
    assert config["home"] == {"value": str((tmp_path / "h").resolve()), "source": "argument"}
    assert config["token"] == {"value": "secr…", "source": f"file {toml.resolve()}"}
    assert config["config_file"] == str(toml.resolve())

    table = invoke(["config"])
    assert table.exit_code == 0, table.stderr
    assert "secret-token-123" not in table.stdout
    assert "Loopwright settings" in table.stdout


def test_runs_list_and_show_as_json(home: Path, logged_run: str, client: Client) -> None:
    listing = invoke_json(["--home", str(home), "runs", "list"])
    assert listing["next_page_token"] is None
    runs = listing["runs"]
    assert [r["id"] for r in runs] == [logged_run]
    listed = runs[0]
    assert listed["name"] == "rf-1"
    assert listed["status"] == "FINISHED"
    assert listed["params"] == {"n_estimators": "200", "max_depth": "6"}
    assert listed["tags"] == {"team": "risk"}
    assert listed["metrics"]["auc"]["value"] == 0.91
    assert listed["metrics"]["auc"]["step"] == 1
    assert listed["end_time"] >= listed["start_time"]

    shown = invoke_json(["--home", str(home), "runs", "show", logged_run])
    assert shown["id"] == logged_run
    assert shown["experiment"] == "churn"
    assert shown["experiment_id"] == client.get_run(logged_run).experiment_id
    assert shown["artifacts"] == [{"path": "model/model.txt", "size": len("weights")}]
    assert shown["error"] is None

    with client.start_run(experiment="other", name="o-1"):
        pass
    both = invoke_json(["--home", str(home), "runs", "list"])["runs"]
    assert [r["name"] for r in both] == ["o-1", "rf-1"]
    only = invoke_json(["--home", str(home), "runs", "list", "--experiment", "churn"])["runs"]
    assert [r["name"] for r in only] == ["rf-1"]
    limited = invoke_json(["--home", str(home), "runs", "list", "--limit", "1"])
    assert [r["name"] for r in limited["runs"]] == ["o-1"]
    assert limited["next_page_token"]


def test_experiments_list_as_json(home: Path, logged_run: str, client: Client) -> None:
    client.tracking.create_experiment("fraud", description="card fraud")
    experiments = invoke_json(["--home", str(home), "experiments", "list"])
    assert [e["name"] for e in experiments] == ["churn", "fraud"]
    assert experiments[1]["description"] == "card fraud"
    assert experiments[0]["id"] == client.get_run(logged_run).experiment_id


def test_tables_show_the_logged_run(home: Path, logged_run: str) -> None:
    listed = invoke(["--home", str(home), "runs", "list"])
    assert listed.exit_code == 0, listed.stderr
    assert logged_run in listed.stdout
    assert "rf-1" in listed.stdout
    assert "0.91" in listed.stdout

    shown = invoke(["--home", str(home), "runs", "show", logged_run])
    assert shown.exit_code == 0, shown.stderr
    for text in ("rf-1", "churn", "FINISHED", "n_estimators", "200", "model/model.txt"):
        assert text in shown.stdout

    experiments = invoke(["--home", str(home), "experiments", "list"])
    assert experiments.exit_code == 0, experiments.stderr
    assert "churn" in experiments.stdout


def test_a_failed_run_shows_its_error(home: Path, client: Client) -> None:
    with pytest.raises(RuntimeError), client.start_run(name="broken") as run:
        raise RuntimeError("disk full")
    shown = invoke_json(["--home", str(home), "runs", "show", run.id])
    assert shown["status"] == "FAILED"
    assert "RuntimeError: disk full" in shown["error"]
    table = invoke(["--home", str(home), "runs", "show", run.id])
    assert "RuntimeError: disk full" in table.stdout


def test_json_output_stays_valid_json_with_nan_metrics(home: Path, client: Client) -> None:
    with client.start_run(name="diverged") as run:
        run.log_metric("loss", math.nan)
    result = invoke(["--home", str(home), "runs", "show", run.id, "--json"])
    assert result.exit_code == 0, result.stderr
    shown = _strict_json(result.stdout)
    assert shown["metrics"]["loss"]["value"] in (None, "NaN")


def test_showing_a_missing_run_fails_clearly(home: Path) -> None:
    assert invoke(["--home", str(home), "init"]).exit_code == 0
    result = invoke(["--home", str(home), "runs", "show", "missing-id"])
    _assert_clean_failure(result, "run 'missing-id' does not exist", "RESOURCE_DOES_NOT_EXIST")
    result = invoke(["--home", str(home), "runs", "show", "missing-id", "--json"])
    _assert_clean_failure(result, "missing-id")
    assert result.stdout == ""


def test_listing_runs_of_a_missing_experiment_fails_clearly(home: Path) -> None:
    assert invoke(["--home", str(home), "init"]).exit_code == 0
    result = invoke(["--home", str(home), "runs", "list", "--experiment", "nope"])
    _assert_clean_failure(result, "experiment 'nope' does not exist")


@pytest.mark.parametrize("run_id", ["[/x]", "[bold]abc", "[red]"])
def test_error_messages_print_user_text_literally(home: Path, run_id: str) -> None:
    """Rich markup in an error message must be shown, not interpreted (or crash the CLI)."""
    assert invoke(["--home", str(home), "init"]).exit_code == 0
    result = invoke(["--home", str(home), "runs", "show", run_id])
    _assert_clean_failure(result, f"run {run_id!r} does not exist")


def test_a_config_error_with_brackets_is_printed_literally(tmp_path: Path) -> None:
    (Path.cwd() / "loopwright.toml").write_text('loopwright = "yes"\n', encoding="utf-8")
    result = invoke(["config"])
    _assert_clean_failure(result, "[loopwright] must be a table", "INVALID_CONFIG")


def test_tables_print_user_text_literally(home: Path, client: Client) -> None:
    with client.start_run(experiment="[/exp]", name="[/oops] [bold]x") as run:
        run.log_param("p", "[red]v")
    listed = invoke(["--home", str(home), "runs", "list"])
    assert listed.exit_code == 0, listed.exception
    assert "[/oops] [bold]x" in listed.stdout
    shown = invoke(["--home", str(home), "runs", "show", run.id])
    assert shown.exit_code == 0, shown.exception
    assert "[/oops] [bold]x" in shown.stdout
    assert "[red]v" in shown.stdout
    experiments = invoke(["--home", str(home), "experiments", "list"])
    assert experiments.exit_code == 0, experiments.exception
    assert "[/exp]" in experiments.stdout


def test_a_bad_setting_fails_every_command_cleanly(tmp_path: Path) -> None:
    for args in (["config"], ["runs", "list"], ["experiments", "list"], ["gc"], ["init"]):
        result = invoke(args, LOOPWRIGHT_SERVER_URI="ftp://nowhere")
        _assert_clean_failure(result, "server_uri", "LOOPWRIGHT_SERVER_URI")


# --- gc ----------------------------------------------------------------------------------------


def test_gc_lists_then_deletes_orphans_and_keeps_artifacts(
    home: Path, client: Client, logged_run: str, tmp_path: Path
) -> None:
    artifact_hash = client.list_artifacts(logged_run)[0].blob_hash
    orphan = client.store.blobs.put_bytes(b"nobody points at me")
    args = ["--home", str(home), "gc", "--grace-minutes", "0"]

    young = invoke_json(["--home", str(home), "gc"])  # the default grace keeps a fresh orphan
    assert young["blobs"] == []
    assert young["kept_young"] == 1

    dry = invoke_json(args)
    assert dry["deleted"] is False
    assert dry["blobs"] == [{"hash": orphan.hash, "size": orphan.size}]
    assert dry["bytes"] == orphan.size
    # The artifact, plus the git diff a run captures when the working tree is dirty.
    assert dry["referenced"] == len(referenced_hashes(client.store)) >= 1
    assert client.store.blobs.exists(orphan.hash)

    text = invoke(args)
    assert text.exit_code == 0, text.stderr
    assert "1 unreferenced blob(s)" in text.stdout
    assert "dry run" in text.stdout

    done = invoke_json([*args, "--yes"])
    assert done["deleted"] is True
    assert done["blobs"] == [{"hash": orphan.hash, "size": orphan.size}]
    assert not client.store.blobs.exists(orphan.hash)
    assert client.store.blobs.exists(artifact_hash)
    out = client.download_artifacts(logged_run, tmp_path / "out")
    assert (out / "model" / "model.txt").read_text(encoding="utf-8") == "weights"

    assert invoke_json(args)["blobs"] == []


def test_gc_refuses_a_negative_grace(home: Path) -> None:
    result = invoke(["--home", str(home), "gc", "--grace-minutes", "-1"])
    assert result.exit_code == 2


# --- db ----------------------------------------------------------------------------------------


def _alembic_heads() -> list[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import loopwright.store.migrate as migrate

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).parent / "migrations"))
    return list(ScriptDirectory.from_config(config).get_heads())


def test_db_current_reports_head_on_an_embedded_home(home: Path, client: Client) -> None:
    report = invoke_json(["--home", str(home), "db", "current"])
    assert report["revision"] == report["head"] == HEAD_REVISION
    assert _alembic_heads() == [HEAD_REVISION]
    assert report["db"] == client.store.db.url

    text = invoke(["--home", str(home), "db", "current"])
    assert text.exit_code == 0, text.stderr
    assert "up to date" in text.stdout


def test_db_upgrade_on_a_fresh_database(db_uri: str, tmp_path: Path) -> None:
    base = ["--home", str(tmp_path / "h"), "--db-uri", db_uri]
    before = invoke_json([*base, "db", "current"])
    assert before["revision"] is None
    assert before["head"] == HEAD_REVISION
    assert "needs `loopwright db upgrade`" in invoke([*base, "db", "current"]).stdout

    upgraded = invoke([*base, "db", "upgrade"])
    assert upgraded.exit_code == 0, (upgraded.stderr, upgraded.exception)
    assert f"(empty) -> {HEAD_REVISION}" in _flat(upgraded.stdout)

    after = invoke_json([*base, "db", "current"])
    assert after["revision"] == after["head"] == HEAD_REVISION

    again = invoke([*base, "db", "upgrade"])
    assert again.exit_code == 0, again.stderr
    assert f"{HEAD_REVISION} -> {HEAD_REVISION}" in _flat(again.stdout)


# --- every reporting command speaks JSON -------------------------------------------------------


def _leaf_commands() -> dict[tuple[str, ...], Any]:
    def walk(command: Any, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        children = getattr(command, "commands", None)
        if children is None:
            yield prefix, command
            return
        for name, child in children.items():
            yield from walk(child, (*prefix, name))

    return dict(walk(typer.main.get_command(app), ()))


def test_every_reporting_command_offers_json() -> None:
    commands = _leaf_commands()
    with_json = {
        path
        for path, command in commands.items()
        if any("--json" in getattr(param, "opts", ()) for param in command.params)
    }
    classified = (
        set(JSON_COMMANDS)
        | DATA_JSON_COMMANDS
        | MODEL_JSON_COMMANDS
        | DOCUMENT_COMMANDS
        | ACTION_COMMANDS
    )
    assert set(commands) == classified, "classify the new command"
    assert with_json == set(JSON_COMMANDS) | DATA_JSON_COMMANDS | MODEL_JSON_COMMANDS


@pytest.mark.parametrize("command", JSON_COMMANDS, ids=" ".join)
def test_json_commands_print_only_json(
    home: Path, client: Client, logged_run: str, command: tuple[str, ...]
) -> None:
    extra = [logged_run] if command in (("runs", "show"), ("runs", "compare")) else []
    if command == ("runs", "compare"):
        with client.start_run(name="second") as second:
            pass
        extra.append(second.id)
    data = invoke_json(["--home", str(home), *command, *extra])
    assert isinstance(data, list | dict)
    assert data  # every command has something to report for a home with one run
