"""External model versions (registered by source URI alone, as MLflow allows) on real databases:
recorded and marked, readable with a run id that names no run, refused by loading and
downloading until pinned, and pinned only from files that check out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _fake_package import make_package
from blake3 import blake3

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import (
    Conflict,
    InvalidInput,
    InvalidModelPackage,
    LimitExceeded,
    NotFound,
    UnsafePath,
    UnverifiedSource,
)
from loopwright.governance.audit import AuditLog
from loopwright.registry.loading import load_model
from loopwright.registry.service import RegistryService

pytestmark = pytest.mark.filterwarnings("ignore")  # MLflow's own warnings when it saves a model


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ada")) as c:
        yield c


@pytest.fixture
def registry(client: Client) -> RegistryService:
    service = client.registry
    assert isinstance(service, RegistryService)
    service.create_model("churn")
    return service


def _mlflow_folder(folder: Path) -> Path:
    from mlflow import sklearn as mlflow_sklearn
    from sklearn.linear_model import LinearRegression

    mlflow_sklearn.save_model(
        LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]),
        str(folder),
        serialization_format="skops",
    )
    return folder


def test_an_external_version_keeps_its_source_and_a_run_id_that_names_no_run(
    registry: RegistryService,
) -> None:
    version = registry._register_external(
        "churn", "s3://bucket/models/churn", run_id="run_id", description="d", tags={"k": "v"}
    )
    assert version.external and version.source_kind == "external"
    assert (version.version, version.source, version.run_id) == (
        1,
        "s3://bucket/models/churn",
        "run_id",
    )
    assert (version.package_hash, version.flavor, version.signature) == (None, None, None)
    assert registry.package_files(version) == []
    # Every read works with the run id that names no run: get, list, search by run id, lineage.
    assert registry.get_version("churn", 1) == version
    assert registry.get_version_by_id(version.id) == version
    assert registry.list_versions("churn") == [version]
    assert registry.search_versions("run_id = 'run_id'") == [version]
    assert registry.search_versions("source_path = 's3://bucket/models/churn'") == [version]
    assert registry.resolve("churn", "latest") == version
    created = [e for e in AuditLog(registry.store).events() if e.action == "model_version.create"]
    assert created[-1].after["source_kind"] == "external"
    assert created[-1].after["run_id"] == "run_id"


def test_an_external_version_of_a_stored_run_links_the_run(client: Client) -> None:
    registry = client.registry
    assert isinstance(registry, RegistryService)
    with client.start_run(experiment="e") as run:
        run.log_metric("auc", 0.9)
    version = registry._register_external(
        "churn", f"runs:/{run.id}/model", run_id=run.id, description=None, tags={}
    )
    assert version.run_id == run.id and version.external
    assert registry.search_versions(f"run_id = '{run.id}'") == [version]


def test_a_run_id_too_long_to_keep_is_refused(registry: RegistryService) -> None:
    with pytest.raises(InvalidInput, match="at most 100"):
        registry._register_external(
            "churn", "s3://b/m", run_id="r" * 101, description=None, tags={}
        )


def test_loading_or_downloading_an_external_version_is_refused_naming_the_fix(
    client: Client, registry: RegistryService, tmp_path: Path
) -> None:
    version = registry._register_external(
        "churn", "s3://b/m", run_id=None, description=None, tags={}
    )
    fix = r"loopwright models pin churn 1"
    with pytest.raises(UnverifiedSource, match=fix):
        load_model("models:/churn/1", client=client)
    with pytest.raises(UnverifiedSource, match=fix):
        load_model("models:/churn/latest", client=client, trusted=True)  # trust is no bypass
    with pytest.raises(UnverifiedSource, match="external, unverified source") as refused:
        registry.download_package(version, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert refused.value.code == "UNVERIFIED_SOURCE" and isinstance(refused.value, Conflict)


def test_pinning_from_a_folder_attaches_a_verified_package(
    client: Client, registry: RegistryService, tmp_path: Path
) -> None:
    package = make_package(tmp_path / "pkg", b"weights")
    registry._register_external("churn", "s3://b/m", run_id="run_id", description=None, tags={})
    pinned = registry.pin_source("churn", 1, package)
    assert not pinned.external and pinned.flavor == "demo"
    assert (pinned.source, pinned.run_id) == ("s3://b/m", "run_id")  # what MLflow shows, unchanged
    assert [path for path, _, _ in registry.package_files(pinned)] == [
        "loopwright-model.json",
        "model.bin",
    ]
    assert pinned.package_hash == registry.package_files(pinned)[0][1]
    out = registry.download_package(pinned, tmp_path / "out")
    assert (out / "model.bin").read_bytes() == b"weights"
    pin = [e for e in AuditLog(registry.store).events() if e.action == "model_version.pin"]
    assert pin[-1].actor == "ada"
    assert pin[-1].before == {"source_kind": "external", "source": "s3://b/m"}
    assert pin[-1].after["pinned_from"] == str(package.resolve())
    with pytest.raises(Conflict, match="already a verified package"):
        registry.pin_source("churn", 1, package)


@pytest.mark.parametrize("as_uri", [False, True])
def test_pinning_fetches_a_local_source_and_converts_an_mlflow_model(
    client: Client, registry: RegistryService, tmp_path: Path, as_uri: bool
) -> None:
    folder = _mlflow_folder(tmp_path / "mlflow model")
    source = folder.as_uri() if as_uri else str(folder)
    registry._register_external("churn", source, run_id=None, description=None, tags={})
    pinned = registry.pin_source("churn", 1)
    assert pinned.flavor == "sklearn" and pinned.source == source
    model = load_model("models:/churn/1", client=client)
    assert list(model.predict([[2.0]])) == pytest.approx([2.0])
    # The MLflow folder itself is kept only for versions MLflow's API registered.
    mlmodel = blake3((folder / "MLmodel").read_bytes()).hexdigest()
    assert not registry.store.blobs.exists(mlmodel)


def test_pinning_fetches_a_runs_source_stored_here(
    client: Client, registry: RegistryService, tmp_path: Path
) -> None:
    make_package(tmp_path / "pkg", b"from the run")
    with client.start_run(experiment="e") as run:
        run.log_artifacts(tmp_path / "pkg", "model")
    registry._register_external(
        "churn", f"runs:/{run.id}/model", run_id=run.id, description=None, tags={}
    )
    pinned = registry.pin_source("churn", 1)
    assert registry.download_package(pinned, tmp_path / "out").joinpath(
        "model.bin"
    ).read_bytes() == (b"from the run")


def test_pinning_refuses_files_that_do_not_check_out(
    registry: RegistryService, tmp_path: Path
) -> None:
    registry._register_external("churn", "s3://b/m", run_id=None, description=None, tags={})
    tampered = make_package(tmp_path / "pkg", b"weights")
    (tampered / "model.bin").write_bytes(b"swapped")
    with pytest.raises(InvalidModelPackage, match="does not match its manifest"):
        registry.pin_source("churn", 1, tampered)
    neither = tmp_path / "neither"
    neither.mkdir()
    (neither / "model.pkl").write_bytes(b"x")
    with pytest.raises(InvalidModelPackage, match="neither a Loopwright package"):
        registry.pin_source("churn", 1, neither)
    assert registry.get_version("churn", 1).external  # nothing was attached


def test_pinning_a_source_that_cannot_be_read_here_says_how(
    registry: RegistryService, tmp_path: Path
) -> None:
    for source in ("nosuchscheme://host/m", "file://otherhost/m"):
        registry._register_external("churn", source, run_id=None, description=None, tags={})
    registry._register_external(
        "churn", str(tmp_path / "gone"), run_id=None, description=None, tags={}
    )
    registry._register_external("churn", "runs:/0123/model", run_id=None, description=None, tags={})
    how = r"pin_source\(name, version, folder\)"
    with pytest.raises(InvalidInput, match=how):
        registry.pin_source("churn", 1)
    with pytest.raises(InvalidInput, match="another host"):
        registry.pin_source("churn", 2)
    with pytest.raises(NotFound, match="does not exist here"):
        registry.pin_source("churn", 3)
    with pytest.raises(NotFound, match="holds no files in this store"):
        registry.pin_source("churn", 4)


def test_pinning_refuses_a_verified_or_deleted_version(
    registry: RegistryService, tmp_path: Path
) -> None:
    registry.register("churn", make_package(tmp_path / "pkg"))
    with pytest.raises(Conflict, match="already a verified package"):
        registry.pin_source("churn", 1, tmp_path / "pkg")
    registry._register_external("churn", "s3://b/m", run_id=None, description=None, tags={})
    registry.delete_version("churn", 2)
    with pytest.raises(Conflict, match="deleted"):
        registry.pin_source("churn", 2, tmp_path / "pkg")


def test_a_version_copied_from_an_external_one_waits_for_that_one(
    registry: RegistryService, tmp_path: Path
) -> None:
    registry._register_external("churn", "s3://b/m", run_id=None, description=None, tags={})
    registry._register_external("churn", "models:/churn/1", run_id=None, description=None, tags={})
    with pytest.raises(Conflict, match="pin that one first"):
        registry.pin_source("churn", 2)
    registry.pin_source("churn", 1, make_package(tmp_path / "pkg", b"w1"))
    copied = registry.pin_source("churn", 2)
    assert copied.package_hash == registry.get_version("churn", 1).package_hash


def test_pinning_fetches_an_fsspec_url_and_keeps_its_files_inside(
    client: Client, registry: RegistryService, tmp_path: Path
) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    package = make_package(tmp_path / "pkg", b"from a bucket")
    for file in package.iterdir():
        memory.pipe(f"/bucket/churn/{file.name}", file.read_bytes())
    registry._register_external(
        "churn", "memory://bucket/churn", run_id=None, description=None, tags={}
    )
    pinned = registry.pin_source("churn", 1)
    out = registry.download_package(pinned, tmp_path / "out")
    assert (out / "model.bin").read_bytes() == b"from a bucket"
    # A key that climbs out of the folder is refused, not written beside it.
    memory.pipe("/evil/churn/model.bin", b"x")
    memory.store["/evil/churn/a/../../../escaped.bin"] = memory.store["/evil/churn/model.bin"]
    registry._register_external(
        "churn", "memory://evil/churn", run_id=None, description=None, tags={}
    )
    with pytest.raises(UnsafePath):
        registry.pin_source("churn", 2)
    assert not list(tmp_path.parent.rglob("escaped.bin"))
    memory.rm("/bucket", recursive=True)
    memory.rm("/evil", recursive=True)


def test_pinning_copies_at_most_max_upload_bytes_from_a_url_or_a_runs_folder(
    tmp_path: Path, db_uri: str
) -> None:
    import fsspec

    from loopwright.tracking.artifact_locations import ArtifactRoots, run_artifact_folder

    settings = resolve_settings(
        home=tmp_path / "home",
        db_uri=db_uri,
        user="ada",
        max_upload_bytes=1000,
        default_artifact_root=str(tmp_path / "artifacts"),
    )
    package = make_package(tmp_path / "pkg", b"w" * 2000)
    memory = fsspec.filesystem("memory")
    for file in package.iterdir():
        memory.pipe(f"/big/churn/{file.name}", file.read_bytes())
    with Client(settings) as client:
        registry = client.registry
        assert isinstance(registry, RegistryService)
        registry.create_model("churn")
        registry._register_external(
            "churn", "memory://big/churn", run_id=None, description=None, tags={}
        )
        with pytest.raises(LimitExceeded, match="max_upload_bytes"):
            registry.pin_source("churn", 1)
        # The run's local folder a server reads from is held to the same bound.
        location = str(tmp_path / "artifacts" / "e")
        client.tracking._create_experiment("e", artifact_location=location)  # type: ignore[attr-defined]
        run = client.tracking.create_run(experiment="e")
        folder = run_artifact_folder(ArtifactRoots.from_settings(settings), location, run.id)
        (folder / "model").mkdir(parents=True)
        for file in package.iterdir():
            (folder / "model" / file.name).write_bytes(file.read_bytes())
        registry._register_external(
            "churn", str(folder / "model"), run_id=run.id, description=None, tags={}
        )
        with pytest.raises(LimitExceeded, match=f"run {run.id}"):
            registry._pin_stored_source("churn", 2, trusted=False)
        assert (
            registry.get_version("churn", 1).external and registry.get_version("churn", 2).external
        )
        # Files the caller hands over as a folder are not fetched: no cap applies.
        assert not registry.pin_source("churn", 1, package).external
    memory.rm("/big", recursive=True)
