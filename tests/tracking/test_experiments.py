"""Experiments in the tracking service (SQLite and PostgreSQL): the Default experiment's id and
the artifact location new experiments get from the settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.store import schema as t


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as client:
        yield client


def test_the_default_experiment_gets_mlflows_id_0(client: Client) -> None:
    run = client.tracking.create_run(name="first")
    assert run.experiment_id == "0"
    assert client.tracking.get_experiment("0").name == "Default"
    assert client.tracking.get_experiment("0").artifact_location is None
    other = client.tracking.create_experiment("other")
    assert len(other.id) == 32 and other.id != "0"


def test_when_0_is_taken_the_default_experiment_gets_a_new_id(client: Client) -> None:
    """An older store's Default, renamed, keeps "0"; a new Default gets a fresh id."""
    client.tracking.get_or_create_experiment("Default")
    client.tracking.rename_experiment("Default", "renamed")
    again = client.tracking.get_or_create_experiment("Default")
    assert again.id != "0" and len(again.id) == 32
    assert client.tracking.get_experiment("0").name == "renamed"


def test_with_a_folder_as_default_root_new_experiments_live_below_it(
    tmp_path: Path, db_uri: str
) -> None:
    root = tmp_path / "mlruns"
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, default_artifact_root=str(root)
    )
    source = tmp_path / "model.txt"
    source.write_text("m")
    with Client(settings) as client:
        experiment = client.tracking.create_experiment("below-root")
        assert experiment.artifact_location == (root / experiment.id).as_uri()
        run = client.tracking.create_run(experiment="below-root")
        client.tracking.log_artifact(run.id, source, "m")
        assert (root / experiment.id / run.id / "artifacts" / "m" / "model.txt").read_text() == "m"
        # The blob store keeps the file as for every run.
        assert [a.path for a in client.tracking.list_artifacts(run.id)] == ["m/model.txt"]
        with client.store.db.read() as conn:
            stored = conn.execute(
                sa.select(t.experiments.c.artifact_location).where(
                    t.experiments.c.id == experiment.id
                )
            ).scalar()
        assert stored == experiment.artifact_location
