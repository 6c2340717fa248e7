"""``loopwright prompts``: register from a file or text, list, show, versions, diff, aliases
(a protected one opens a request that another user approves), format; errors in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.config import resolve_settings
from loopwright.governance.users import UserService
from loopwright.store.home import open_store

WIDE = {"COLUMNS": "200"}


def _cli(home: Path, *args: str, user: str = "ada") -> Any:
    return CliRunner().invoke(app, ["--home", str(home), "--user", user, *args], env=WIDE)


def _json(home: Path, *args: str, user: str = "ada") -> Any:
    result = _cli(home, *args, "--json", user=user)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


def test_the_prompt_commands_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with open_store(resolve_settings(home=home)) as store:
        users = UserService(store, actor="root")
        users.add("ada", "editor")
        users.add("bea", "approver")
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps([{"role": "user", "content": "Hi {{ name }}"}]))
    one = _json(
        home,
        "prompts",
        "register",
        "greet",
        "--template",
        "Hello {{ name }}",
        "-m",
        "first",
        "--model-config",
        '{"temperature": 0.1}',
        "-t",
        "team=care",
    )
    assert (one["uri"], one["variables"], one["tags"]) == (
        "prompts:/greet/1",
        ["name"],
        {"team": "care"},
    )
    two = _json(home, "prompts", "register", "greet", "--file", str(chat))
    assert two["kind"] == "chat" and two["version"] == 2
    assert [p["name"] for p in _json(home, "prompts", "list")] == ["greet"]
    assert [v["version"] for v in _json(home, "prompts", "versions", "greet")] == [1, 2]
    assert _json(home, "prompts", "show", "prompts:/greet/1")["model_config"] == {
        "temperature": 0.1
    }
    diff = _cli(home, "prompts", "diff", "greet", "1", "2")
    assert diff.exit_code == 0 and "-Hello {{ name }}" in diff.stdout

    moved = _json(home, "prompts", "set-alias", "greet", "beta", "1")
    assert moved["applied"] is True
    formatted = _cli(home, "prompts", "format", "prompts:/greet@beta", "--var", "name=Ada")
    assert formatted.stdout == "Hello Ada\n"

    asked = _json(home, "prompts", "set-alias", "greet", "production", "2")
    assert asked["applied"] is False
    request = asked["request"]["id"]
    assert [r["id"] for r in _json(home, "prompts", "requests")] == [request]
    approved = _cli(home, "prompts", "approve", request, user="bea")
    assert approved.exit_code == 0 and "approved" in approved.stdout
    assert _json(home, "prompts", "show", "greet")["aliases"] == {"beta": 1, "production": 2}
    deleted = _cli(home, "prompts", "delete-alias", "greet", "beta")
    assert deleted.exit_code == 0


def test_errors_are_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _json(home, "prompts", "register", "greet", "--template", "Hello {{ name }}")
    cases = [
        (["prompts", "format", "prompts:/greet/1", "--var", "nmae=x"], "has no variable 'nmae'"),
        (["prompts", "format", "prompts:/greet/1"], "needs a value for 'name'"),
        (["prompts", "show", "prompts:/greet@prod"], "has no alias 'prod'"),
        (["prompts", "register", "a/b", "--template", "x"], "prompt name 'a/b'"),
        (["prompts", "register", "greet"], "--file PATH or --template TEXT"),
        (["prompts", "register", "greet", "--template", "x", "--model-config", "{"], "not JSON"),
    ]
    for args, fragment in cases:
        result = _cli(home, *args)
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert fragment in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.stderr
