"""MLflow 3's logged models as a domain service, used without the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwright.config import resolve_settings
from loopwright.errors import Conflict, NotFound
from loopwright.store.artifact_trees import LOGGED_MODEL, files_under, put_file
from loopwright.store.home import open_store
from loopwright.tracking import TrackingService
from loopwright.tracking.logged_models import LoggedModelService, ModelMetric, logged_model_ref


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
