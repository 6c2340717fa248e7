"""A client on each metadata store for the tracing tests (span builders: _trace_spans.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    """An embedded client on SQLite and on PostgreSQL."""
    home = tmp_path / "home"
    settings = resolve_settings(home=home, db_uri=db_uri, blob_uri=str(home / "blobs"))
    with Client(settings) as found:
        yield found
