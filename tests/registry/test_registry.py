"""The registry service on real databases and a real blob store: models, versions, aliases,
stages, search, packages from folders and from runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _fake_package import make_package as fake_package
from blake3 import blake3

from loopwright.config import resolve_settings
from loopwright.data.service import DatasetService
from loopwright.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidModelPackage,
    NotFound,
    StageTransitionNotAllowed,
)
from loopwright.registry.entities import ApprovalPolicy, ApprovalRule, ModelVersion, Stage
from loopwright.registry.service import TRANSITIONS, RegistryService
from loopwright.store import schema as t
from loopwright.store.home import Store, open_store
from loopwright.tracking import TrackingService

OPEN = ApprovalPolicy(rules=())  # nothing needs approval


SIGNATURE = {"inputs": [{"name": "x", "type": "double"}]}


def make_package(folder: Path, payload: bytes = b"weights", **manifest: Any) -> Path:
    return fake_package(folder, payload, **{"signature": SIGNATURE, **manifest})


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ada")) as s:
        yield s


@pytest.fixture
def registry(store: Store) -> RegistryService:
    return RegistryService(store)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return make_package(tmp_path / "pkg")


def test_register_from_a_folder_stores_the_package_and_numbers_versions(
    registry: RegistryService, package: Path, tmp_path: Path
) -> None:
    first = registry.register("churn", package, description="first", tags={"team": "risk"})
    manifest = (package / "loopwright-model.json").read_bytes()
    assert (first.ref, first.flavor, first.status, first.stage) == (
        "models:/churn/1",
        "demo",
        "READY",
        Stage.NONE,
    )
    assert first.package_hash == blake3(manifest).hexdigest()
    assert first.signature == {
        "inputs": [{"name": "x", "type": "double", "shape": None, "required": True}],
        "outputs": None,
    }
    assert (first.created_by, first.source, first.tags) == ("ada", str(package), {"team": "risk"})
    assert registry.package_files(first) == [
        ("loopwright-model.json", first.package_hash, len(manifest)),
        ("model.bin", blake3(b"weights").hexdigest(), 7),
    ]
    second = registry.register("churn", package, metrics={"auc": 0.91})
    assert second.version == 2 and second.metrics == {"auc": 0.91}
    model = registry.get_model("churn")
    assert (model.latest_version, model.created_by, model.policy) == (2, "ada", ApprovalPolicy())

    out = registry.download_package(second, tmp_path / "out")
    assert (out / "model.bin").read_bytes() == b"weights"
    assert (out / "loopwright-model.json").read_bytes() == manifest
    with pytest.raises(InvalidInput, match="not an empty folder"):
        registry.download_package(second, out)


def test_register_from_a_run_shares_its_blobs_and_takes_its_metrics_and_inputs(
    store: Store, registry: RegistryService, package: Path, tmp_path: Path
) -> None:
    tracking = TrackingService(store, capture=False)
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n1,2\n")
    dataset = DatasetService(store).add("train", data)
    run = tracking.create_run(experiment="exp", name="r1")
    tracking.log_artifacts(run.id, package, "model")
    tracking.log_metrics(run.id, {"auc": 0.8, "loss": 0.3})
    tracking.use_dataset(run.id, dataset.id)
    tracking.flush()
    version = registry.register("churn", run_id=run.id)
    assert (version.source, version.run_id) == (f"runs:/{run.id}/model", run.id)
    assert version.metrics == {"auc": 0.8, "loss": 0.3}
    assert version.dataset_version_ids == (dataset.id,)
    run_files = {
        a.path.removeprefix("model/"): a.blob_hash for a in tracking.list_artifacts(run.id)
    }
    assert {path: blob for path, blob, _ in registry.package_files(version)} == run_files
    tracking.close()

    explicit = registry.register("churn", run_id=run.id, metrics={"f1": 1}, dataset_version_ids=[])
    assert explicit.metrics == {"f1": 1.0} and explicit.dataset_version_ids == ()
    with pytest.raises(InvalidModelPackage, match="no model package at 'elsewhere'"):
        registry.register("churn", run_id=run.id, artifact_path="elsewhere")
    with pytest.raises(NotFound, match="run 'nope' does not exist"):
        registry.register("churn", run_id="nope")
    with pytest.raises(NotFound, match="dataset versions missing do not exist"):
        registry.register("churn", package, dataset_version_ids=["missing"])


def test_a_run_artifact_that_differs_from_the_manifest_is_refused(
    store: Store, registry: RegistryService, tmp_path: Path
) -> None:
    tracking = TrackingService(store, capture=False)
    run = tracking.create_run(experiment="exp", name="r1")
    tracking.log_artifacts(run.id, make_package(tmp_path / "p"), "model")
    (tmp_path / "model.bin").write_bytes(b"tampered")
    tracking.log_artifact(run.id, tmp_path / "model.bin", "model")  # overwrites model/model.bin
    with pytest.raises(InvalidModelPackage, match=r"'model\.bin' does not match its manifest"):
        registry.register("churn", run_id=run.id)
    tracking.close()


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda p: (p / "model.bin").write_bytes(b"changed!"), "does not match its manifest"),
        (lambda p: (p / "model.bin").unlink(), "lacks 'model.bin'"),
        (lambda p: (p / "extra.txt").write_text("x"), "does not list: extra.txt"),
        (lambda p: (p / "loopwright-model.json").unlink(), "not a model package"),
        (lambda p: (p / "loopwright-model.json").write_text("[1]"), "must hold a JSON object"),
        (lambda p: (p / "loopwright-model.json").write_text("{"), "not valid UTF-8 JSON"),
    ],
    ids=["changed", "missing", "extra", "no-manifest", "not-object", "not-json"],
)
def test_a_spoilt_package_folder_is_refused(
    registry: RegistryService, package: Path, spoil: Any, message: str
) -> None:
    spoil(package)
    with pytest.raises(InvalidModelPackage, match=message):
        registry.register("churn", package)
    assert registry.list_models() == []


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"flavor": 3}, "'flavor' must be a string"),
        ({"signature": [1]}, "'signature' must be an object or null"),
        ({"files": {"../up": {"hash": "0" * 64, "size": 1}}}, "'../up' is unsafe"),
        ({"files": {"m": {"hash": "xyz", "size": 1}}}, "64 lowercase hex"),
        ({"files": {"m": {"hash": "0" * 64, "size": True}}}, "not an integer >= 0"),
        ({"files": []}, "'files' must be an object"),
    ],
)
def test_manifests_are_checked_as_untrusted_input(
    registry: RegistryService, tmp_path: Path, manifest: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidModelPackage, match=message):
        registry.register("churn", make_package(tmp_path / "p", **manifest))


def test_names_and_registration_arguments_are_validated(
    registry: RegistryService, package: Path
) -> None:
    for bad in ("", "a/b", "a:b", "x" * 257, " space"):
        with pytest.raises(InvalidInput, match="model name"):
            registry.register(bad, package)
    with pytest.raises(InvalidInput, match=r"package_dir .* or run_id"):
        registry.register("churn")
    with pytest.raises(InvalidInput, match="finite number"):
        registry.register("churn", package, metrics={"auc": float("nan")})
    registry.create_model("churn", description="d", tags={"a": "1"}, policy=OPEN)
    with pytest.raises(AlreadyExists, match="'churn' already exists"):
        registry.create_model("churn")


def test_lookups_name_what_exists(registry: RegistryService, package: Path) -> None:
    registry.register("churn", package)
    registry.register("churn", package)
    with pytest.raises(NotFound) as info:
        registry.get_version("churn", 3)
    assert str(info.value) == "registered model 'churn' has no version 3; versions: 1..2"
    for past_the_column in (2**31, 2**63):  # version is a 32-bit INTEGER on PostgreSQL
        with pytest.raises(NotFound, match=f"no version {past_the_column};"):
            registry.get_version("churn", past_the_column)
        with pytest.raises(NotFound, match=f"no version {past_the_column};"):
            registry.resolve("churn", str(past_the_column))
    with pytest.raises(NotFound, match="registered model 'nope' does not exist"):
        registry.get_model("nope")
    with pytest.raises(NotFound, match=r"has no alias 'gold'.*aliases: none"):
        registry.resolve("churn", "gold")
    v1 = registry.get_version("churn", 1)
    assert registry.get_version_by_id(v1.id) == v1


def test_resolve_takes_numbers_latest_stages_and_aliases(
    registry: RegistryService, package: Path
) -> None:
    registry.create_model("churn", policy=OPEN)
    for _ in range(3):
        registry.register("churn", package)
    registry.set_alias("churn", "candidate", 1)
    registry.transition_stage("churn", 2, "Staging")
    assert registry.resolve("churn", 2).version == 2
    assert registry.resolve("churn", "2").version == 2
    assert registry.resolve("churn", "latest").version == 3
    assert registry.resolve("churn", "staging").version == 2
    assert registry.resolve("churn", "candidate").version == 1
    with pytest.raises(NotFound, match="no version in Production"):
        registry.resolve("churn", "Production")
    registry.delete_version("churn", 3)
    assert registry.resolve("churn", "latest").version == 2
    with pytest.raises(Conflict, match="version 3 of model 'churn' is deleted"):
        registry.resolve("churn", 3)


def test_an_alias_moves_in_one_step(registry: RegistryService, package: Path) -> None:
    registry.create_model("churn", policy=OPEN)
    registry.register("churn", package)
    registry.register("churn", package)
    first = registry.set_alias("churn", "candidate", 1, comment="first pick")
    assert first.applied and first.request is None and first.version.aliases == ("candidate",)
    moved = registry.set_alias("churn", "candidate", 2)
    assert moved.applied and (moved.version.version, moved.version.aliases) == (2, ("candidate",))
    assert registry.get_version("churn", 1).aliases == ()
    assert registry.get_model("churn").aliases == {"candidate": 2}
    with registry.db.read() as conn:
        rows = conn.execute(sa.select(t.model_aliases)).all()
    assert len(rows) == 1
    registry.delete_alias("churn", "candidate")
    assert registry.get_model("churn").aliases == {}
    with pytest.raises(NotFound, match="has no alias 'candidate'; aliases: none"):
        registry.delete_alias("churn", "candidate")


@pytest.mark.parametrize("alias", ["3", "v3", "V3", "latest", "Latest", "a b", "x" * 101])
def test_alias_names_are_validated(registry: RegistryService, package: Path, alias: str) -> None:
    registry.register("churn", package)
    with pytest.raises(InvalidInput, match="alias"):
        registry.set_alias("churn", alias, 1)


@pytest.mark.parametrize("start", list(Stage))
@pytest.mark.parametrize("target", list(Stage))
def test_the_stage_table_decides_every_move(
    tmp_path: Path, package: Path, start: Stage, target: Stage
) -> None:
    settings = resolve_settings(home=tmp_path / "home", user="ada")
    with open_store(settings) as store:
        registry = RegistryService(store)
        registry.create_model("churn", policy=OPEN)
        registry.register("churn", package)
        with store.db.write() as conn:  # put the version in the starting stage directly
            conn.execute(t.model_versions.update().values(stage=start.value))
        if target in TRANSITIONS[start]:
            moved = registry.transition_stage("churn", 1, target)
            assert isinstance(moved, ModelVersion) and moved.stage is target
        else:
            allowed = ", ".join(s.value for s in TRANSITIONS[start])
            with pytest.raises(StageTransitionNotAllowed, match=f"can move to {allowed}$"):
                registry.transition_stage("churn", 1, target)
            assert registry.get_version("churn", 1).stage is start


def test_archive_existing_archives_the_stage_s_other_versions(
    registry: RegistryService, package: Path
) -> None:
    registry.create_model("churn", policy=OPEN)
    for _ in range(3):
        registry.register("churn", package)
    registry.transition_stage("churn", 1, Stage.PRODUCTION)
    registry.transition_stage("churn", 2, "production")
    registry.transition_stage("churn", 3, "Production", archive_existing=True)
    stages = [v.stage for v in registry.list_versions("churn")]
    assert stages == [Stage.ARCHIVED, Stage.ARCHIVED, Stage.PRODUCTION]
    with pytest.raises(InvalidInput, match="stage 'Live' is not one of"):
        registry.transition_stage("churn", 1, "Live")


def test_search_filters_models_and_versions(
    store: Store, registry: RegistryService, package: Path
) -> None:
    registry.create_model("churn-a", tags={"team": "risk"}, policy=OPEN)
    registry.create_model("Churn-b", tags={"team": "growth"})
    registry.create_model("fraud")
    names: Callable[[list[Any]], list[str]] = lambda found: [m.name for m in found]  # noqa: E731
    assert names(registry.search_models("name = 'fraud'")) == ["fraud"]
    assert names(registry.search_models("name LIKE 'churn%'")) == ["churn-a"]  # case-sensitive
    assert names(registry.search_models("name ILIKE 'churn%'")) == ["Churn-b", "churn-a"]
    assert names(registry.search_models("tags.team = 'risk'")) == ["churn-a"]
    assert names(registry.search_models("name ILIKE 'churn%' AND tags.team != 'risk'")) == [
        "Churn-b"
    ]
    assert len(registry.search_models("")) == 3

    tracking = TrackingService(store, capture=False)
    run = tracking.create_run(experiment="exp", name="r")
    tracking.close()
    registry.register("churn-a", package)
    registry.register("churn-a", package, run_id=run.id, tags={"k": "v"})
    registry.register("fraud", package)
    registry.transition_stage("churn-a", 2, "Staging")
    found: Callable[[str], list[str]] = lambda text: [  # noqa: E731
        v.ref for v in registry.search_versions(text)
    ]
    assert found("name = 'churn-a' AND version > 1") == ["models:/churn-a/2"]
    assert found(f"run_id = '{run.id}'") == ["models:/churn-a/2"]
    assert found("stage = 'staging'") == ["models:/churn-a/2"]
    assert found("tags.k = 'v'") == ["models:/churn-a/2"]
    assert found("version = 1") == ["models:/churn-a/1", "models:/fraud/1"]
    registry.delete_version("fraud", 1)
    assert found("version = 1") == ["models:/churn-a/1"]
    assert found("status = 'DELETED'") == ["models:/fraud/1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = fraud", "expected a quoted string for name"),
        ("owner = 'x'", "unknown column 'owner'"),
        ("name ~ 'x'", "unexpected '~'"),
        ("name = 'x' OR name = 'y'", "OR is not supported"),
        ("name = 'x' AND", "expected a clause after AND"),
        ("name = 'x", "unterminated string"),
        ("version > 'x'", "expected an integer version number"),
    ],
)
def test_bad_filters_say_where_and_what(registry: RegistryService, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        registry.search_versions(text)
    assert "^" in str(info.value)


def test_descriptions_tags_policies_and_cards_change(
    registry: RegistryService, package: Path
) -> None:
    registry.register("churn", package)
    assert registry.update_model("churn", description="churn model").description == "churn model"
    assert registry.set_model_tag("churn", "team", "risk").tags == {"team": "risk"}
    assert registry.delete_model_tag("churn", "team").tags == {}
    policy = ApprovalPolicy(rules=(), expires_after_s=60)
    assert registry.set_policy("churn", policy).policy == policy
    card = registry.set_card_info(
        "churn", intended_use="retention offers", limitations="EU only", owners=["ada"]
    ).card
    assert card == {"intended_use": "retention offers", "limitations": "EU only", "owners": ["ada"]}
    card = registry.set_card_info("churn", limitations=None).card
    assert card == {"intended_use": "retention offers", "owners": ["ada"]}
    with pytest.raises(InvalidInput, match="no field 'purpose'"):
        registry.set_card_info("churn", purpose="x")
    assert registry.update_version("churn", 1, description="v1").description == "v1"
    assert registry.set_version_tag("churn", 1, "ok", "yes").tags == {"ok": "yes"}
    assert registry.delete_version_tag("churn", 1, "ok").tags == {}
    with pytest.raises(InvalidInput, match="policy target 'stage:Live'"):
        registry.set_policy("churn", ApprovalPolicy(rules=(ApprovalRule("stage:Live"),)))


def test_deleted_versions_are_kept_but_cannot_be_used(
    registry: RegistryService, package: Path, tmp_path: Path
) -> None:
    registry.create_model("churn", policy=OPEN)
    registry.register("churn", package)
    registry.register("churn", package)
    registry.set_alias("churn", "candidate", 1)
    with pytest.raises(Conflict, match="has aliases candidate; move or delete them first"):
        registry.delete_version("churn", 1)
    registry.transition_stage("churn", 2, "Production")
    with pytest.raises(Conflict, match="is in Production; archive it"):
        registry.delete_version("churn", 2)
    registry.transition_stage("churn", 2, "Archived")
    deleted = registry.delete_version("churn", 2)
    assert deleted.status == "DELETED"
    assert [v.version for v in registry.list_versions("churn")] == [1]
    assert len(registry.list_versions("churn", include_deleted=True)) == 2
    with pytest.raises(Conflict, match="deleted"):
        registry.set_alias("churn", "candidate", 2)
    with pytest.raises(Conflict, match="deleted"):
        registry.transition_stage("churn", 2, "None")
    with pytest.raises(Conflict, match="deleted"):
        registry.download_package(deleted, tmp_path / "out")
    assert registry.register("churn", package).version == 3  # numbers are never reused


def test_a_model_is_deleted_only_once_nothing_points_at_it(
    store: Store, registry: RegistryService, package: Path
) -> None:
    registry.create_model("churn", policy=OPEN)
    registry.register("churn", package)
    registry.set_alias("churn", "candidate", 1)
    registry.transition_stage("churn", 1, "Production")
    with pytest.raises(Conflict, match=r"aliases candidate .* and versions 1 are in Production"):
        registry.delete_model("churn")
    registry.delete_alias("churn", "candidate")
    registry.transition_stage("churn", 1, "Archived")
    registry.delete_model("churn")
    with pytest.raises(NotFound):
        registry.get_model("churn")
    with store.db.read() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(t.artifacts.c.owner_type == "model_version")
        ).scalar_one()
    assert left == 0
