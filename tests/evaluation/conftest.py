"""Evaluation's fixtures: a client per backend (embedded and through a real server) on SQLite
and PostgreSQL, shared by a module (tests use their own dataset and scorer names), and the judge
stub."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack

import pytest
from _judge_stub import JudgeStub, run_judge_stub, serve_in_thread

from loopwright.client import Client
from loopwright.config import resolve_settings


@pytest.fixture(
    scope="module",
    params=[
        "embedded-sqlite",
        pytest.param("embedded-postgres", marks=pytest.mark.postgres),
        "remote-sqlite",
        pytest.param("remote-postgres", marks=pytest.mark.postgres),
    ],
)
def client(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Iterator[Client]:
    """A client over a fresh store: embedded, or remote through a live server (no auth)."""
    kind, db = str(request.param).split("-")
    root = tmp_path_factory.mktemp(f"eval-{kind}-{db}")
    with ExitStack() as stack:
        if db == "sqlite":
            db_uri = f"sqlite:///{root / 'store.db'}"
        else:
            db_uri = stack.enter_context(pg_database())
        settings = resolve_settings(home=root / "home", db_uri=db_uri, user="ada")
        if kind == "remote":
            from loopwright.server.app import create_app

            url = stack.enter_context(serve_in_thread(create_app(settings, auth=False)))
            settings = resolve_settings(home=root / "client", server_uri=url, user="ada")
        opened = stack.enter_context(Client(settings))
        yield opened


@pytest.fixture(scope="module")
def judge_stub() -> Iterator[JudgeStub]:
    with run_judge_stub() as stub:
        yield stub


@pytest.fixture
def name() -> str:
    """A fresh dataset/scorer name for one test (the client is shared by the module)."""
    return f"ds-{uuid.uuid4().hex[:10]}"
