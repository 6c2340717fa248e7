"""Fixtures of the serving tests: a fresh store with the model registered as ``clf`` v1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _served_model import MODEL, live, train, training_frame

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source


@pytest.fixture
def store_settings(tmp_path: Path) -> dict[str, str]:
    """``--home``, ``--db-uri`` and ``--blob-uri`` of a fresh store (also for the CLI)."""
    return {
        "home": str(tmp_path / "home"),
        "db_uri": f"sqlite:///{tmp_path / 'home' / 'lw.db'}",
        "blob_uri": str(tmp_path / "blobs"),
    }


@pytest.fixture
def client(store_settings: dict[str, str]) -> Iterator[Client]:
    settings = resolve_settings(
        home=store_settings["home"],
        db_uri=store_settings["db_uri"],
        blob_uri=store_settings["blob_uri"],
        user="ada",
    )
    with Client(settings) as client:
        yield client


@pytest.fixture
def model(client: Client) -> Any:
    """The trained model, registered as ``clf`` version 1."""
    pytest.importorskip("sklearn")
    X, _ = training_frame()
    fitted = train()
    with client.start_run(experiment="serving") as run:
        run.log_model(fitted, "model", input_example=X[:3], registered_model_name=MODEL)
    return fitted


@pytest.fixture
def url(client: Client, model: Any) -> Iterator[str]:
    """The REST app serving ``clf`` v1 in this process (a test file may define its own)."""
    repository = ModelRepository([resolve_source(f"models:/{MODEL}/1", client)])
    repository.load_all()
    with live(build_app(ServeConfig(sources=()), repository)) as url:
        yield url
