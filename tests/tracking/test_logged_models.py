"""MLflow 3's logged models as a domain service, used without the server."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from loopwright.config import resolve_settings
from loopwright.errors import Conflict, InvalidInput, NotFound
from loopwright.store import schema
from loopwright.store.artifact_trees import LOGGED_MODEL, files_under, put_file
from loopwright.store.home import open_store
from loopwright.tracking import TrackingService
from loopwright.tracking.logged_models import (
    UNLINKED_SOURCE_RUN_TAG,
    LoggedModelService,
    Lookup,
    ModelMetric,
    logged_model_ref,
)

_lm = schema.logged_models.c


def test_logged_models_live_in_the_tracking_domain(tmp_path: Path) -> None:
    store = open_store(resolve_settings(home=tmp_path / "home"))
    tracking = TrackingService(store)
    try:
        experiment = tracking.get_or_create_experiment("lm")
        models = LoggedModelService(store)
        with pytest.raises(NotFound, match="experiment id"):
            models.create("0" * 32)
        first = models.create(experiment.id, name="a", params={"lr": "0.1"})
        second = models.create(experiment.id, name="b", model_type="sklearn")
        assert first.status == "PENDING" and first.params == {"lr": "0.1"}
        with pytest.raises(Conflict, match=r"already '0\.1'"):
            models.log_params(first.id, {"lr": "0.2"})
        assert models.finalize(first.id, "READY").status == "READY"

        ready = models.search(
            [experiment.id], matches=lambda get: get("attributes", "status") == "READY"
        )
        assert [m.name for m in ready] == ["a"]
        by_name = models.search([experiment.id], order_by=[("name", False)])
        assert [m.name for m in by_name] == ["b", "a"]

        models.log_metrics([(second.id, ModelMetric("acc", 0.9, 1, 5))])
        assert models.get(second.id).metrics[0].value == 0.9
        with pytest.raises(NotFound, match=logged_model_ref("f" * 32)):
            models.log_metrics([("f" * 32, ModelMetric("acc", 0.9, 1, 5))])

        (tmp_path / "MLmodel").write_text("flavors: {}\n")
        put_file(store, LOGGED_MODEL, second.id, "MLmodel", tmp_path / "MLmodel")
        assert models.delete_files(second.id) == 1
        assert files_under(store.db, LOGGED_MODEL, second.id) == []

        models.delete(second.id)
        with pytest.raises(NotFound, match=logged_model_ref(second.id)):
            models.get(second.id)
        assert models.get(second.id, allow_deleted=True).lifecycle_stage == "deleted"
    finally:
        tracking.close()


def test_a_source_run_this_store_lacks_is_kept_unlinked(tmp_path: Path) -> None:
    """As in MLflow, a logged model may name a source run the store does not have."""
    store = open_store(resolve_settings(home=tmp_path / "home"))
    tracking = TrackingService(store)
    try:
        experiment = tracking.get_or_create_experiment("lm")
        run = tracking.create_run(experiment="lm")
        models = LoggedModelService(store)
        elsewhere = models.create(experiment.id, source_run_id="123", tags={"team": "risk"})
        here = models.create(experiment.id, source_run_id=run.id)
        assert models.get(elsewhere.id).source_run_id == "123"
        assert models.get(elsewhere.id).tags == {"team": "risk"}  # the reserved tag stays hidden
        assert models.get(here.id).source_run_id == run.id
        found = models.search(
            [experiment.id], matches=lambda get: get("attributes", "source_run_id") == "123"
        )
        assert [m.id for m in found] == [elsewhere.id]
        with store.db.read() as conn:
            linked = dict(conn.execute(sa.select(_lm.id, _lm.source_run_id)).all())
        assert linked == {elsewhere.id: None, here.id: run.id}  # the column links only real runs

        for change in (
            lambda: models.create(experiment.id, tags={UNLINKED_SOURCE_RUN_TAG: "x"}),
            lambda: models.set_tags(here.id, {UNLINKED_SOURCE_RUN_TAG: "x"}),
            lambda: models.delete_tag(elsewhere.id, UNLINKED_SOURCE_RUN_TAG),
        ):
            with pytest.raises(InvalidInput, match="reserved"):
                change()
        assert models.get(elsewhere.id).source_run_id == "123"
    finally:
        tracking.close()


def test_search_on_datasets_sees_only_their_metrics(tmp_path: Path) -> None:
    store = open_store(resolve_settings(home=tmp_path / "home"))
    tracking = TrackingService(store)
    try:
        experiment = tracking.get_or_create_experiment("lm")
        models = LoggedModelService(store)
        a, b, c = (models.create(experiment.id, name=n) for n in "abc")
        models.log_metrics(
            [
                (a.id, ModelMetric("acc", 0.9, 0, 1, None, "eval", "d1")),
                (b.id, ModelMetric("acc", 0.5, 0, 1, None, "eval", "d2")),
                (b.id, ModelMetric("acc", 0.95, 1, 1, None, "train", "d3")),
                (c.id, ModelMetric("acc", 0.99, 0, 1)),
            ]
        )

        def names(datasets: list[tuple[str, str | None]], least: float | None = None) -> list[str]:
            def matches(get: Lookup) -> bool:
                return least is None or (get("metrics", "acc") or 0) >= least

            found = models.search([experiment.id], matches=matches, datasets=datasets)
            return sorted(m.name for m in found)

        assert names([("eval", None)]) == ["a", "b"]
        assert names([("eval", "d1")]) == ["a"]
        assert names([("eval", "nope")]) == []
        assert names([("eval", None)], least=0.8) == ["a"]  # b's 0.95 is on "train"
        assert names([], least=0.8) == ["a", "b", "c"]
        full = models.search([experiment.id], datasets=[("eval", "d2")])
        assert len(full[0].metrics) == 2  # found by its "eval" metric, returned whole
    finally:
        tracking.close()
