"""``loopwright models pin``: an external version refused by load until pinned from a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopwright.client import Client
from loopwright.registry.packaging.package import save_model
from loopwright.registry.service import RegistryService

pytest.importorskip("sklearn")


def test_pin_attaches_the_folder_and_the_version_loads(
    client: Client, lw: Any, lw_json: Any, tmp_path: Path
) -> None:
    from sklearn.dummy import DummyClassifier

    registry = client.registry
    assert isinstance(registry, RegistryService)
    registry._register_external("churn", "s3://b/churn", run_id="gone", description=None, tags={})
    shown = lw_json("models", "versions", "churn")
    assert shown[0]["source_kind"] == "external"
    package = tmp_path / "pkg"
    save_model(DummyClassifier().fit([[0.0], [1.0]], [0, 1]), package)
    missing = lw("models", "pin", "churn", "1")
    assert missing.exit_code != 0 and "pin_source(name, version, folder)" in missing.output
    pinned = lw_json("models", "pin", "churn", "1", "--from", str(package))
    assert (pinned["source_kind"], pinned["run_id"], pinned["source"]) == (
        "package",
        "gone",
        "s3://b/churn",
    )
    assert list(client.load_model("models:/churn/1").predict([[0.5]])) in ([0], [1])
    again = lw("models", "pin", "churn", "1", "--from", str(package))
    assert again.exit_code != 0 and "already a verified package" in again.output
