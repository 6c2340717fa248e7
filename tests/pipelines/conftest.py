"""Pipeline test fixtures: a client on a fresh embedded store, and project modules on disk.

Steps and pipelines live in module files written by the test (``project.write``), as a user's
project would hold them: the code fingerprint reads their source, ``resume`` imports them by
reference, and rewriting a file is how a test changes the code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pipeline_project import Project

import loopwright as lw
from loopwright import _active
from loopwright.client import Client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with lw.connect(home=tmp_path / "home") as c:
        yield c


@pytest.fixture
def db_client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    """A client on SQLite and on PostgreSQL (for tests where the records matter)."""
    with lw.connect(db_uri, home=tmp_path / "home") as c:
        yield c


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    made = Project(folder)
    yield made
    for name in made.names:
        sys.modules.pop(name, None)


@pytest.fixture
def default_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The client ``lw.start_run`` and ``Pipeline.__call__`` use, on a fresh store."""
    monkeypatch.setattr(_active, "_default_client", None)
    made = _active.default_client(tmp_path / "default-home")
    yield made
    made.close()
    _active._default_client = None
