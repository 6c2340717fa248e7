"""Run context capture against real git repositories and a real store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from blake3 import blake3

import loopwright
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.store import schema as t
from loopwright.tracking import capture
from loopwright.tracking.capture import (
    CodeVersion,
    capture_code_version,
    capture_environment,
    current_code_version,
)

_GIT_IDENTITY = [
    "-c",
    "user.name=Test",
    "-c",
    "user.email=test@example.com",
    "-c",
    "commit.gpgsign=false",
]


@pytest.fixture(autouse=True)
def _no_parent_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Git must not find a repository above tmp_path (the "outside a repo" cases)."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *_GIT_IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "trunk")
    (root / "train.py").write_text("print('v1')\n", encoding="utf-8")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "h")) as client:
        yield client


# --- code version -------------------------------------------------------------------------------


def test_clean_repo_gives_commit_and_branch(repo: Path) -> None:
    code = capture_code_version(repo)
    assert code == CodeVersion(
        commit=git(repo, "rev-parse", "HEAD"), branch="trunk", dirty=False, diff=None
    )


def test_editing_a_tracked_file_makes_it_dirty_with_the_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2')\n", encoding="utf-8")
    code = capture_code_version(repo / "train.py")  # a file inside the repo works too
    assert code.dirty is True
    assert code.commit == git(repo, "rev-parse", "HEAD")
    assert code.diff is not None
    assert b"-print('v1')" in code.diff and b"+print('v2')" in code.diff


def test_staged_changes_count_untracked_files_do_not(repo: Path) -> None:
    (repo / "notes.txt").write_text("scratch\n", encoding="utf-8")
    assert capture_code_version(repo).dirty is False
    (repo / "model.py").write_text("x = 1\n", encoding="utf-8")
    git(repo, "add", "model.py")
    code = capture_code_version(repo)
    assert code.dirty is True
    assert code.diff is not None and b"+x = 1" in code.diff and b"scratch" not in code.diff


def test_detached_head_has_no_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    code = capture_code_version(repo)
    assert code.branch is None and code.commit == git(repo, "rev-parse", "HEAD")


def test_repo_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    code = capture_code_version(tmp_path)
    assert code == CodeVersion(commit=None, branch="main", dirty=False, diff=None)


def test_big_diff_is_truncated_with_a_marker(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "MAX_DIFF_BYTES", 300)
    (repo / "train.py").write_text("".join(f"print({i})\n" for i in range(200)), encoding="utf-8")
    diff = capture_code_version(repo).diff
    assert diff is not None and len(diff) == 300
    assert diff.rstrip().endswith(b"bytes") and b"diff truncated at 300 of" in diff


def test_outside_a_repo_everything_is_none(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert capture_code_version(plain) == CodeVersion(None, None, None, None)
    assert capture_code_version(tmp_path / "missing") == CodeVersion()


def test_without_git_everything_is_none(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert capture_code_version(repo) == CodeVersion()


def test_a_hanging_git_is_cut_off(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    # A child that keeps the output pipe open: the timeout must kill it as well.
    fake.write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(capture, "GIT_TIMEOUT_S", 0.3)
    started = time.monotonic()
    assert capture_code_version(repo) == CodeVersion()
    assert time.monotonic() - started < 5


def test_current_code_version_is_cached_for_its_ttl(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setattr(capture, "_code_root", lambda: str(repo))
    first = current_code_version()
    assert first.commit == git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("print('v3')\n", encoding="utf-8")
    assert current_code_version() is first
    assert current_code_version(max_age_s=0).dirty is True


# --- environment and entry point ----------------------------------------------------------------


def test_environment_is_cached_stable_and_lists_loopwright() -> None:
    # Read afresh: importing some packages adds to sys.path (ray puts its thirdparty_files
    # first, holding colorama's metadata), so a value cached before an earlier test imported
    # one lists fewer distributions than a read now.
    capture_environment.cache_clear()
    env = capture_environment()
    assert capture_environment() is env
    assert env.packages["loopwright"] == loopwright.__version__
    assert env.python_version == ".".join(map(str, sys.version_info[:3]))
    document = json.dumps(
        {"packages": env.packages, "python_version": env.python_version},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert env.id == blake3(document.encode()).hexdigest()
    capture_environment.cache_clear()
    try:
        assert capture_environment().id == env.id
    finally:
        capture_environment.cache_clear()


def _entry_point_of(*argv: str, cwd: Path) -> str:
    code = "from loopwright.tracking.capture import entry_point; print(entry_point())"
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LW_PROBE": code},
    )
    return done.stdout.strip()


def test_entry_point_names_the_script_or_module(tmp_path: Path) -> None:
    probe = "import os; exec(os.environ['LW_PROBE'])\n"
    (tmp_path / "train.py").write_text(probe, encoding="utf-8")
    package = tmp_path / "pipeline"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "__main__.py").write_text(probe, encoding="utf-8")
    (package / "step.py").write_text(probe, encoding="utf-8")
    assert _entry_point_of("train.py", cwd=tmp_path) == "train.py"
    assert _entry_point_of("-m", "pipeline", cwd=tmp_path) == "pipeline"
    assert _entry_point_of("-m", "pipeline.step", cwd=tmp_path) == "pipeline.step"
    assert _entry_point_of("-c", probe, cwd=tmp_path) == "<command>"


# --- persistence --------------------------------------------------------------------------------


def _run_row(client: Client, run_id: str) -> sa.Row[object]:
    with client.store.db.read() as conn:
        row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).one()
    return row


def test_runs_record_code_environment_and_diff(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = capture_environment()
    code = CodeVersion(commit="a" * 40, branch="main", dirty=True, diff=b"+changed\n")
    monkeypatch.setattr("loopwright.tracking.service.current_code_version", lambda: code)
    first = client.tracking.create_run(experiment="ctx")
    second = client.tracking.create_run(experiment="ctx")

    row = _run_row(client, first.id)
    assert (row.git_commit, row.git_branch, row.git_dirty) == ("a" * 40, "main", True)
    assert row.environment_id == env.id
    assert client.store.blobs.read_bytes(row.git_diff_blob) == b"+changed\n"
    with client.store.db.read() as conn:
        envs = conn.execute(sa.select(t.environments)).all()
        blob = conn.execute(
            sa.select(t.blobs).where(t.blobs.c.hash == row.git_diff_blob)
        ).one_or_none()
    assert [(e.id, json.loads(e.packages_json)) for e in envs] == [(env.id, env.packages)]
    assert blob is not None and blob.size == len(b"+changed\n")
    assert _run_row(client, second.id).git_diff_blob == row.git_diff_blob
    stored = client.get_run(first.id)
    assert (stored.git_commit, stored.git_dirty, stored.environment_id) == ("a" * 40, True, env.id)


def test_runs_outside_git_record_only_the_environment(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("loopwright.tracking.service.current_code_version", CodeVersion)
    run = client.tracking.create_run(experiment="ctx")
    row = _run_row(client, run.id)
    assert (row.git_commit, row.git_branch, row.git_dirty, row.git_diff_blob) == (None,) * 4
    assert row.environment_id == capture_environment().id
