"""``loopwright gateway`` on an embedded store: routes from JSON and YAML files, secrets from
stdin or the environment (never echoed), usage, and --json everywhere it reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from loopwright.cli.app import app

WIDE = {"COLUMNS": "400"}
VALUE = "sk-cli-secret-0123456789abcdefghij"


def _run(home: Path, *args: str, stdin: str | None = None, **env: str) -> Any:
    result = CliRunner().invoke(
        app, ["--home", str(home), *args], input=stdin, env={**WIDE, **env},
        catch_exceptions=False,
    )  # fmt: skip
    return result


def _json(home: Path, *args: str, **kwargs: Any) -> Any:
    result = _run(home, *args, "--json", **kwargs)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_routes_secrets_and_usage_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run(home, "init").exit_code == 0
    stored = _json(home, "gateway", "secrets", "set", "key", "--stdin", stdin=VALUE + "\n")
    assert stored["mask"] == "****ghij"
    from_env = _run(home, "gateway", "secrets", "set", "env-key", "--from-env", "MY_KEY",
                    MY_KEY=VALUE)  # fmt: skip
    assert from_env.exit_code == 0 and VALUE not in from_env.stdout
    config = tmp_path / "route.json"
    config.write_text(json.dumps({"targets": [
        {"name": "primary", "base_url": "http://127.0.0.1:9/v1", "model": "m", "secret": "key"}
    ], "guardrails": [{"check": "pii", "mode": "annotate"}]}))  # fmt: skip
    created = _json(home, "gateway", "routes", "create", "chat", "--config", str(config))
    assert created["revision"] == 1 and created["config"]["targets"][0]["secret"] == "key"
    yaml_config = tmp_path / "route.yaml"
    yaml_config.write_text(
        "targets:\n  - {name: primary, base_url: 'http://127.0.0.1:9/v1', model: m2}\nretries: 0\n"
    )
    updated = _json(home, "gateway", "routes", "update", "chat", "-c", str(yaml_config),
                    "--expect-revision", "1")  # fmt: skip
    assert updated["revision"] == 2 and updated["config"]["retries"] == 0
    shown = _run(home, "gateway", "routes", "show", "chat")
    assert shown.exit_code == 0 and "m2" in shown.stdout and "revision 2" in shown.stdout
    listed = _run(home, "gateway", "routes", "list")
    assert "chat" in listed.stdout and "primary=m2 100%" in listed.stdout
    secrets = _run(home, "gateway", "secrets", "list")
    assert "****ghij" in secrets.stdout and VALUE not in secrets.stdout
    assert _json(home, "gateway", "usage") == []
    assert _run(home, "gateway", "routes", "delete", "chat").exit_code == 0
    assert _run(home, "gateway", "secrets", "delete", "key").exit_code == 0
    assert [s["name"] for s in _json(home, "gateway", "secrets", "list")] == ["env-key"]


def test_bad_input_fails_cleanly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run(home, "init").exit_code == 0
    config = tmp_path / "bad.json"
    config.write_text("{nope")
    result = _run(home, "gateway", "routes", "create", "chat", "--config", str(config))
    assert result.exit_code == 1 and "not JSON" in result.stderr
    config.write_text(json.dumps({"targets": []}))
    result = _run(home, "gateway", "routes", "create", "chat", "--config", str(config))
    assert result.exit_code == 1 and "at least one target" in result.stderr
    missing = _run(home, "gateway", "routes", "show", "ghost")
    assert missing.exit_code == 1 and "gateway routes create" in missing.stderr
    unset = _run(home, "gateway", "secrets", "set", "k", "--from-env", "NOT_SET_ANYWHERE")
    assert unset.exit_code == 1 and "NOT_SET_ANYWHERE" in unset.stderr
