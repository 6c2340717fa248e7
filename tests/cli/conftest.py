"""Fixtures shared by the CLI tests: a home, a client on it, and the CLI invoked on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings

WIDE = {"COLUMNS": "400"}  # keep Rich from wrapping the lines the tests read


def strict_json(text: str) -> Any:
    """Parse JSON, refusing NaN/Infinity (other tools reject them)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def client(home: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=home)) as client:
        yield client


@pytest.fixture
def lw(home: Path) -> Any:
    """Run ``loopwright --home <home> ARGS`` in the working directory; returns the result."""

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, ["--home", str(home), *args], env=WIDE)

    return invoke


@pytest.fixture
def lw_json(lw: Any) -> Any:
    """Like ``lw`` with ``--json``: asserts success and returns the parsed output."""

    def invoke(*args: str) -> Any:
        result = lw(*args, "--json")
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return strict_json(result.stdout)

    return invoke
