"""The server the LLM end-to-end tests share (tests/loop, tests/monitoring): a real server with
auth on over SQLite or PostgreSQL, a stub OpenAI-compatible upstream on 127.0.0.1, and one
client per user (each with a token), so every step runs as the user it names."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "gateway"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "evaluation"))
from _judge_stub import serve_in_thread
from _llm_stub import Stub, run_stub

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings

W = TypeVar("W")


@contextmanager
def team_server(
    world: Callable[[str, Stub, dict[str, str], dict[str, Client]], W],
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_database: Callable[..., Any],
    users: tuple[tuple[str, str], ...],
) -> Iterator[W]:
    """``world(url, stub, tokens, clients)`` over a fresh store (``request.param``: ``sqlite`` or
    ``postgres``); the first of ``users`` must be an admin: it adds the others."""
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.server.app import create_app
    from loopwright.store.home import open_store

    admin = users[0][0]
    root = tmp_path_factory.mktemp("llm-team-server")
    with ExitStack() as stack:
        stub = stack.enter_context(run_stub())
        db_uri = (
            stack.enter_context(pg_database())
            if request.param == "postgres"
            else f"sqlite:///{root / 'store.db'}"
        )
        settings = resolve_settings(home=root / "home", db_uri=db_uri, user=admin)
        tokens = {}
        with open_store(settings) as store:
            for name, role in users:
                UserService(store, actor=admin).add(name, role)
                tokens[name] = TokenService(store, actor=admin).create(name).secret
        url = stack.enter_context(serve_in_thread(create_app(settings, auth=True)))
        clients = {
            name: stack.enter_context(lw.connect(url, home=root / name, token=tokens[name]))
            for name, _ in users
        }
        yield world(url, stub, tokens, clients)
