"""``loopwright data`` as a new user meets it: pull writes the workspace, the global identifiers
are named, paths outside the repository are refused, the suite format is shown where one looks."""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _cli_checks import assert_clean_failure
from typer.testing import CliRunner

from conftest import WIDE
from loopwright.cli.app import app
from loopwright.cli.data import SUITE_EXAMPLE
from loopwright.data.validation import Suite

ROOT = Path(__file__).resolve().parents[2]


def _other_home(tmp_path: Path) -> Any:
    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, ["--home", str(tmp_path / "other"), *args], env=WIDE)

    return invoke


def test_pull_with_checkout_writes_the_pointer_data(lw: Any, lw_json: Any, tmp_path: Path) -> None:
    Path("data").mkdir()
    Path("data/a.csv").write_bytes(b"id\n1\n")
    Path("folder").mkdir()
    Path("folder/b.txt").write_bytes(b"bravo")
    lw_json("data", "add", "a", "data/a.csv")
    lw_json("data", "add", "f", "folder")
    lw_json("data", "push", "--remote", str(tmp_path / "remote"))
    Path("data/a.csv").unlink()
    Path("folder/b.txt").unlink()

    other = _other_home(tmp_path)
    pulled = other(
        "data", "pull", "data/a.csv.lw", "folder.lw", "--remote", str(tmp_path / "remote"),
        "--checkout", "--json",
    )  # fmt: skip
    assert pulled.exit_code == 0, (pulled.stdout, pulled.stderr)
    assert Path("data/a.csv").read_bytes() == b"id\n1\n"
    assert Path("folder/b.txt").read_bytes() == b"bravo"
    assert '"checked_out"' in pulled.stdout


def test_pull_checkout_needs_pointer_files(lw: Any, tmp_path: Path) -> None:
    result = lw("data", "pull", "ds", "--remote", str(tmp_path / "remote"), "--checkout")
    assert_clean_failure(result, "--checkout", "PATH.lw")


def test_the_global_identifiers_are_named(lw: Any) -> None:
    Path("a.txt").write_bytes(b"alpha")
    added = lw("data", "add", "ds", "a.txt")
    assert added.exit_code == 0, added.stderr
    assert re.search(
        r"id [0-9a-f]{32} \(the same on every machine; v1 is this store's\)", added.stdout
    )
    header = Path("a.txt.lw").read_text(encoding="utf-8")
    assert "id and content_hash name the version everywhere" in header
    assert "the version number is local to a store" in header


def _git_init(repo: Path) -> None:
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)


def test_add_refuses_a_path_outside_the_repository(
    lw: Any, lw_json: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git_init(tmp_path / "repo")
    outside = tmp_path / "elsewhere" / "a.txt"
    outside.parent.mkdir()
    outside.write_bytes(b"alpha")
    monkeypatch.chdir(tmp_path / "repo")
    result = lw("data", "add", "ds", str(outside))
    assert_clean_failure(result, "outside the Git repository", "--no-pointer")
    assert sorted(p.name for p in outside.parent.iterdir()) == ["a.txt"]
    assert lw_json("data", "list") == []
    root = lw("data", "add", "ds", str(tmp_path / "repo"))  # its pointer would be beside it
    assert_clean_failure(root, "outside the Git repository")
    # Inside the repository, or without a pointer, it is added.
    assert lw_json("data", "add", "ds", str(outside), "--no-pointer")["pointer"] is None
    Path("in.txt").write_bytes(b"inside")
    assert lw_json("data", "add", "ds2", "in.txt")["pointer"].endswith("in.txt.lw")


def _readme_suite() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    yaml_blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    blocks = [b for b in yaml_blocks if "expectations:" in b]  # gates have a YAML block too
    assert len(blocks) == 1, "the README shows one suite file"
    return str(blocks[0])


def test_the_suite_format_is_shown_in_the_readme_and_help_and_runs(lw: Any) -> None:
    assert _readme_suite() == SUITE_EXAMPLE
    shown = lw("data", "validate", "--help")
    help_lines = [line.strip() for line in shown.stdout.splitlines()]
    for line in SUITE_EXAMPLE.splitlines():
        assert line.strip() in help_lines, line

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    Path("checks.yaml").write_text(SUITE_EXAMPLE, encoding="utf-8")
    Path("t.csv").write_text(
        "id,amount,country,email,created_at\n"
        f"1,10.5,US,a@example.com,{now}\n"
        f"2,99.0,DE,b@example.com,{now}\n",
        encoding="utf-8",
    )
    assert lw("data", "add", "transactions", "t.csv").exit_code == 0
    checked = lw("data", "validate", "transactions", "--suite", "checks.yaml")
    assert checked.exit_code == 0, (checked.stdout, checked.stderr)
    assert f"{len(Suite.from_yaml(SUITE_EXAMPLE).expectations)}/" in checked.stdout
