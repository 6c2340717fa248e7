"""Prompt registry fixtures: a store on SQLite and PostgreSQL with users of every role, a
settable clock, and a service per acting user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopwright.config import resolve_settings
from loopwright.governance.users import UserService
from loopwright.prompts.service import PromptService
from loopwright.store.home import Store, open_store

AsUser = Callable[[str], PromptService]


class Clock:
    """A settable clock in milliseconds, shared by the services of one test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


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
    return as_user("ada")
