"""Shared fixtures of the feature store's tests: stores and clients on SQLite and PostgreSQL.

Builders of the feature store add their fixtures below; keep each small and documented.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.features.definition_store import DefinitionStore
from loopwright.store.home import Store, open_store


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    """The metadata store, on SQLite and on PostgreSQL."""
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as opened:
        yield opened


@pytest.fixture
def definitions(store: Store) -> DefinitionStore:
    """The feature definitions of ``store``, applied as "ada"."""
    return DefinitionStore(store, actor="ada")


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    """An embedded client, on SQLite and on PostgreSQL."""
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user="ada"
    )
    with Client(settings) as opened:
        yield opened
