"""Prompt registry fixtures: a store on SQLite and PostgreSQL with users of every role, a
settable clock, and a service per acting user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _prompt_world import AsUser, Clock

from loopwright.config import resolve_settings
from loopwright.governance.users import UserService
from loopwright.prompts.service import PromptService
from loopwright.store.home import Store, open_store


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        users = UserService(s, actor="root")
        users.add("root", "admin")
        for name, role in [
            ("ada", "editor"),  # registers versions and asks for moves
            ("bea", "approver"),
            ("cyd", "approver"),
            ("dan", "viewer"),
            ("eve", "approver"),
            ("fay", "admin"),
        ]:
            users.add(name, role)
        users.disable("eve")
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def as_user(store: Store, clock: Clock) -> AsUser:
    return lambda name: PromptService(store, actor=name, clock=clock)


@pytest.fixture
def prompts(as_user: AsUser) -> PromptService:
    ada: PromptService = as_user("ada")  # mypy reads the bare-name helper import as Any
    return ada
