"""``--help`` of every command reads as Click's: no ``<bool>``/``<str>`` type placeholders."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from loopwright.cli.app import app

WIDE = {"COLUMNS": "400"}  # keep Rich from wrapping the lines the tests read
# What Typer prints beside a parameter: its Python type in angle brackets.
PLACEHOLDER = re.compile(r"<(bool|str|int|float|Path|datetime|UUID)[^>]*>")


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            found += _command_paths(sub, (*path, name))
    return found


COMMANDS = _command_paths(typer.main.get_command(app))


def _help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_every_command_is_walked() -> None:
    assert len(COMMANDS) > 40 and ("models", "stage") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "loopwright")
def test_help_shows_no_type_placeholders(path: tuple[str, ...]) -> None:
    text = _help(*path)
    assert not PLACEHOLDER.search(text), text


def test_flags_show_no_type_and_values_show_click_metavars() -> None:
    root = _help()
    assert re.search(r"--home\s+TEXT\s+Loopwright home folder", root), root
    assert re.search(r"--verbose\s+-v\s+Log debug messages", root), root
    assert re.search(r"--help\s+Show this message", root), root
    server = _help("server")
    assert re.search(r"--port\s+INTEGER \[1<=x<=65535\]", server), server
    stage = _help("models", "stage")
    assert re.search(r"version\s+Version number", stage), stage  # an argument: its name says it
