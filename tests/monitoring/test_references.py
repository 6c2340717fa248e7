"""References on real stores (SQLite and PostgreSQL): built once per pinned source, from a
dataset version or a model version's lineage, outputs scored when the package loads safely, and a
corrupted sketch refused with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from _deployment_log import DATASET, MODEL, Clock, register, training_frame

from loopwright.config import resolve_settings
from loopwright.data.service import DatasetService
from loopwright.errors import AlreadyExists, InvalidInput, NotFound
from loopwright.monitoring._references import ReferenceBook
from loopwright.monitoring.service import MonitoringService
from loopwright.monitoring.sketch import ReferenceSketch
from loopwright.serving.predictions import PredictionService
from loopwright.store import schema as t
from loopwright.store.audit import events
from loopwright.store.home import Store, open_store


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri)
    with open_store(settings) as s:
        yield s


@pytest.fixture
def monitoring(store: Store, tmp_path: Path) -> MonitoringService:
    return MonitoringService(store, PredictionService(tmp_path / "log"), clock=Clock())


@pytest.fixture
def registered(store: Store, tmp_path: Path) -> Any:
    pytest.importorskip("sklearn")
    return register(store, tmp_path)


def test_model_reference_follows_lineage_and_sketches_outputs(
    monitoring: MonitoringService, registered: Any
) -> None:
    _, version, dataset = registered
    reference = monitoring.build_reference(f"models:/{MODEL}/1")
    assert reference.source == f"model:{MODEL}/1"
    assert reference.dataset_version_id == dataset.id
    assert reference.model_version_id == version.id
    assert reference.rows == len(training_frame())
    # Inputs renamed as the log names them, the target left out, the outputs scored.
    assert reference.columns == (
        "input.age", "input.income", "input.plan", "output.predict",
        "output.predict_proba[0]", "output.predict_proba[1]",  # as the log's list expands
    )  # fmt: skip
    assert reference.note is not None and "churned" in reference.note
    sketch = monitoring._references().sketch(reference)
    assert set(sketch.columns) == set(reference.columns)
    assert sketch.rows == reference.rows


def test_same_source_gives_the_stored_reference(
    monitoring: MonitoringService, registered: Any, store: Store
) -> None:
    first = monitoring.build_reference(f"models:/{MODEL}/1")
    again = monitoring.build_reference(f"models:/{MODEL}/latest")  # pins to the same version
    assert again == first
    with store.db.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(t.monitor_references))
        assert count.scalar_one() == 1
    assert [r.id for r in monitoring.references()] == [first.id]
    assert [e.action for e in events(store.db, subject_id=first.id)] == ["monitor_reference.create"]


def test_dataset_reference_pins_the_version_and_drops_a_tagged_target(
    monitoring: MonitoringService, registered: Any, store: Store
) -> None:
    DatasetService(store).tag(f"{DATASET}@v1", "target", "churned")
    reference = monitoring.build_reference(f"{DATASET}@latest", name="train-v1")
    assert reference.name == "train-v1"
    assert reference.source == f"dataset:{DATASET}@v1"
    assert reference.model_version_id is None
    assert reference.columns == ("input.age", "input.income", "input.plan")
    with pytest.raises(AlreadyExists, match="train-v1"):
        monitoring.build_reference(f"models:/{MODEL}/1", name="train-v1")


def test_a_package_that_does_not_load_safely_gives_a_reference_without_outputs(
    monitoring: MonitoringService, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sklearn")
    register(store, tmp_path)
    from loopwright.errors import UntrustedModel
    from loopwright.registry import loading

    def refuse(uri: str, *, trusted: bool = False, client: Any = None) -> Any:
        assert trusted is False  # references never ask for trust
        raise UntrustedModel(f"package {uri} unpickles; load it with trusted=True")

    monkeypatch.setattr(loading, "load_model", refuse)
    reference = monitoring.build_reference(f"models:/{MODEL}/1")
    assert not any(c.startswith("output.") for c in reference.columns)
    assert reference.note is not None
    assert "outputs not sketched" in reference.note and "UntrustedModel" in reference.note


def test_a_model_without_lineage_is_refused_naming_the_fix(
    monitoring: MonitoringService, store: Store, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    register(store, tmp_path, lineage=False)
    with pytest.raises(InvalidInput, match="names no training data in its lineage"):
        monitoring.build_reference(f"models:/{MODEL}/1")


@pytest.mark.parametrize(
    "source",
    ["auto", "", "churn", "models:/churn", "models:/a/b/c", "x" * 700, "a@b@c"],
)
def test_bad_sources_are_refused(monitoring: MonitoringService, source: str) -> None:
    with pytest.raises(InvalidInput, match="NAME@VERSION"):
        monitoring.build_reference(source)


def test_unknown_sources_are_not_found(monitoring: MonitoringService, registered: Any) -> None:
    with pytest.raises(NotFound):
        monitoring.build_reference("nope@v1")
    with pytest.raises(NotFound):
        monitoring.build_reference(f"models:/{MODEL}/9")
    with pytest.raises(InvalidInput, match="reference name"):
        monitoring.build_reference(f"{DATASET}@v1", name="bad name")


def test_a_corrupted_sketch_blob_gives_a_clear_error(
    monitoring: MonitoringService, registered: Any, store: Store
) -> None:
    reference = monitoring.build_reference(f"{DATASET}@v1")
    junk = store.blobs.put_bytes(b"not a sketch at all")
    with store.db.write() as conn:
        conn.execute(
            t.monitor_references.update()
            .where(t.monitor_references.c.id == reference.id)
            .values(sketch_blob=junk.hash)
        )
    book: ReferenceBook = monitoring._references()
    stored = book.get_by_id(reference.id)
    with pytest.raises(InvalidInput, match=f"reference {reference.name!r}.*build the reference"):
        book.sketch(stored)


def test_an_empty_dataset_is_refused(monitoring: MonitoringService, store: Store) -> None:
    empty = pa.table({"age": pa.array([], pa.float64())})
    DatasetService(store).add("empty", empty)
    with pytest.raises(InvalidInput, match="no rows"):
        monitoring.build_reference("empty@v1")


def test_sketch_round_trip_of_a_stored_reference(
    monitoring: MonitoringService, registered: Any, store: Store
) -> None:
    reference = monitoring.build_reference(f"{DATASET}@v1")
    sketch = ReferenceSketch.from_bytes(store.blobs.read_bytes(reference.sketch_blob))
    assert sketch.rows == reference.rows == len(training_frame())
    assert "input.churned" in sketch.columns  # no target declared: every column is a feature


def test_concurrent_builds_of_one_source_store_one_reference(
    monitoring: MonitoringService, registered: Any, store: Store
) -> None:
    import threading

    built: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def build() -> None:
        try:
            start.wait()
            built.append(monitoring.build_reference(f"models:/{MODEL}/1").id)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(built) == 3 and len(set(built)) == 1
    with store.db.read() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(t.monitor_references))
        assert count.scalar_one() == 1
