"""The public API as a contract, run against both backends.

Every test takes ``team``: two clients, ``ada`` and ``bob`` (both approvers), on the same
stores, either embedded (``lw.connect(db_uri, user=...)``) or remote (``lw.connect(url,
token=...)`` against a real uvicorn server with authentication on, so identity comes from the
tokens). The same assertions must hold for both, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import loopwright as lw
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import (
    AlreadyExists,
    ApprovalNotAllowed,
    ConfigError,
    Conflict,
    InvalidInput,
    LoopwrightError,
    NotFound,
    PermissionDenied,
)
from loopwright.registry.entities import ApprovalRequest, ModelVersion, Stage
from loopwright.tracking import RunStatus


@dataclass
class Team:
    kind: str
    ada: Client
    bob: Client


def _add_users(settings: Settings) -> dict[str, str]:
    """Users ada and bob (approvers, so only separation of duties stops ada approving her own
    requests), vic (a viewer) and their tokens, made on the store."""
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    with open_store(settings) as store:
        users = UserService(store, actor="root")
        users.add("root", "admin")
        for name, role in (("ada", "approver"), ("bob", "approver"), ("vic", "viewer")):
            users.add(name, role)
        tokens = TokenService(store, actor="root")
        return {name: tokens.create(name).secret for name in ("ada", "bob", "vic")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """A real uvicorn server over ``settings`` on a free loopback port, auth on."""
    import uvicorn

    from loopwright.server.app import create_app

    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, auth=True),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="lw-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(params=["embedded", "remote"])
def team(request: pytest.FixtureRequest, tmp_path: Path, db_uri: str) -> Iterator[Team]:
    settings = resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs")
    )
    tokens = _add_users(settings)
    if request.param == "embedded":
        with (
            Client(resolve_settings(**_embedded(settings), user="ada")) as ada,
            Client(resolve_settings(**_embedded(settings), user="bob")) as bob,
        ):
            yield Team("embedded", ada, bob)
        return
    with (
        live_server(settings) as url,
        lw.connect(url, token=tokens["ada"], home=tmp_path / "ada-home") as ada,
        lw.connect(url, token=tokens["bob"], home=tmp_path / "bob-home") as bob,
    ):
        yield Team("remote", ada, bob)


def _embedded(settings: Settings) -> dict[str, Any]:
    return {"home": settings.home, "db_uri": settings.db_uri, "blob_uri": settings.blob_uri}


# --- runs, params, metrics, tags ---------------------------------------------------------------


def test_a_run_round_trips_params_metrics_and_tags(team: Team) -> None:
    client = team.ada
    with client.start_run(experiment="churn", name="rf-1", tags={"team": "risk"}) as run:
        run.log_param("n_estimators", 200)
        run.log_params({"max_depth": 8, "criterion": "gini"})
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"auc": 0.91, "f1": 0.84})
        run.log_metric("diverged", math.nan)
        run.set_tag("stage", "dev")
        run.set_tags({"owner": "ada"})
        assert run.info().status is RunStatus.RUNNING
    stored = client.get_run(run.id)
    assert stored.name == "rf-1"
    assert stored.status is RunStatus.FINISHED and stored.end_time is not None
    assert stored.user == "ada"
    assert stored.params == {"n_estimators": "200", "max_depth": "8", "criterion": "gini"}
    assert stored.metrics["auc"].value == 0.91
    assert stored.metrics["loss"].value == 0.2 and stored.metrics["loss"].step == 4
    assert math.isnan(stored.metrics["diverged"].value)
    assert stored.tags == {"team": "risk", "stage": "dev", "owner": "ada"}
    assert stored.host and stored.entry_point  # where the client ran
    history = client.get_metric_history(run.id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert [r.id for r in client.list_runs("churn")] == [run.id]
    assert "churn" in [e.name for e in client.list_experiments()]


def test_log_batch_and_run_states(team: Team) -> None:
    client = team.ada
    with pytest.raises(ValueError, match="boom"), client.start_run(experiment="e") as failed:
        raise ValueError("boom")
    assert client.get_run(failed.id).status is RunStatus.FAILED
    assert "boom" in (client.get_run(failed.id).error or "")
    run = client.start_run(experiment="e", name="batch")
    run.log_batch(
        metrics=[lw.Metric("acc", 0.5, 1, 1000), lw.Metric("acc", 0.75, 2, 2000)],
        params={"lr": 0.1},
        tags={"kind": "batch"},
    )
    with client.start_run(experiment="e", nested=True) as child:
        child.log_metric("inner", 1.0)
    assert client.get_run(child.id).parent_run_id == run.id
    run.end(RunStatus.KILLED)
    stored = client.get_run(run.id)
    assert stored.status is RunStatus.KILLED
    assert stored.params == {"lr": "0.1"} and stored.tags["kind"] == "batch"
    assert [m.value for m in client.get_metric_history(run.id, "acc")] == [0.5, 0.75]


def test_errors_are_the_same_classes(team: Team) -> None:
    client = team.ada
    with pytest.raises(NotFound, match="does not exist"):
        client.get_run("0" * 32)
    with pytest.raises(LookupError):
        client.get_metric_history("0" * 32, "loss")
    with client.start_run(experiment="errors") as run:
        run.log_param("lr", 0.1)
        with pytest.raises(InvalidInput, match="immutable"):
            run.log_param("lr", 0.2)
        with pytest.raises(InvalidInput, match="must be numbers"):
            run.log_metric("auc", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        client.search_runs("metrics.auc >>> 1")
    with pytest.raises(NotFound):
        client.search_runs("", experiments=["no-such-experiment"])
    with pytest.raises(NotFound):
        client.registry.get_model("no-such-model")


def test_module_shortcuts_use_the_default_client(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright import _active

    monkeypatch.setattr(_active, "_default_client", team.ada)
    with lw.start_run(experiment="shortcuts", name="short") as run:
        lw.log_param("p", 1)
        lw.log_params({"q": "x"})
        lw.log_metric("m", 0.5, step=3)
        lw.log_metrics({"n": 1.5})
        lw.set_tag("t", "v")
        assert lw.active_run() is run
    assert lw.active_run() is None
    stored = team.ada.get_run(run.id)
    assert stored.params == {"p": "1", "q": "x"} and stored.tags == {"t": "v"}
    assert (stored.metrics["m"].step, stored.metrics["n"].value) == (3, 1.5)


# --- search --------------------------------------------------------------------------------------


def test_search_filters_orders_and_pages(team: Team) -> None:
    client = team.ada
    ids = {}
    for n, auc in ((100, 0.80), (200, 0.95), (300, 0.91)):
        with client.start_run(experiment="sweep", tags={"team": "risk"}) as run:
            run.log_params({"n_estimators": n})
            run.log_metrics({"auc": auc})
        ids[n] = run.id
    best = client.search_runs(
        "metrics.auc > 0.85 and tags.team = 'risk'",
        experiments=["sweep"],
        order_by=["metrics.auc DESC"],
    )
    assert [r.id for r in best] == [ids[200], ids[300]]
    assert best.next_page_token is None
    first = client.search_runs(order_by=["params.n_estimators ASC"], max_results=2)
    assert [r.id for r in first] == [ids[100], ids[200]]
    assert first.next_page_token is not None
    rest = client.search_runs(
        order_by=["params.n_estimators ASC"], max_results=2, page_token=first.next_page_token
    )
    assert [r.id for r in rest] == [ids[300]]
    assert list(best.to_pandas()["metrics.auc"]) == [0.95, 0.91]


# --- artifacts -----------------------------------------------------------------------------------


def test_artifacts_round_trip(team: Team, tmp_path: Path) -> None:
    client = team.ada
    source = tmp_path / "src"
    (source / "plots" / "deep").mkdir(parents=True)
    (source / "plots" / "roc.txt").write_text("roc")
    (source / "plots" / "deep" / "pr curve é.txt").write_text("pr")
    big = os.urandom(3 * (1 << 20) + 17)  # several chunks each way
    (source / "weights.bin").write_bytes(big)
    with client.start_run(experiment="art") as run:
        one = run.log_artifact(source / "weights.bin", "model")
        many = run.log_artifacts(source / "plots", "plots")
    assert one.path == "model/weights.bin" and one.size == len(big)
    assert sorted(a.path for a in many) == ["plots/deep/pr curve é.txt", "plots/roc.txt"]
    listed = client.list_artifacts(run.id)
    assert [a.path for a in listed] == [
        "model/weights.bin",
        "plots/deep/pr curve é.txt",
        "plots/roc.txt",
    ]
    assert [a.path for a in client.list_artifacts(run.id, "plots/deep")] == [
        "plots/deep/pr curve é.txt"
    ]
    out = client.download_artifacts(run.id, tmp_path / "out")
    assert (out / "model" / "weights.bin").read_bytes() == big
    assert (out / "plots" / "deep" / "pr curve é.txt").read_text() == "pr"
    client.download_artifacts(run.id, tmp_path / "only", "plots")
    assert sorted(p.name for p in (tmp_path / "only" / "plots").iterdir()) == ["deep", "roc.txt"]
    with pytest.raises(NotFound):
        client.download_artifacts(run.id, tmp_path / "none", "missing")


# --- registry ------------------------------------------------------------------------------------


def test_register_approve_with_separation_of_duties_and_load(team: Team, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    ada, bob = team.ada, team.bob
    table = tmp_path / "iris.csv"
    x.assign(target=y).to_csv(table, index=False)
    data = ada.datasets.add("iris-data", table, message="the iris table")
    assert (data.ref, data.file_count, data.created_by) == ("iris-data@v1", 1, "ada")
    assert [f.path for f in bob.datasets.files(bob.datasets.get("iris-data@v1"))] == ["iris.csv"]
    with ada.start_run(experiment="iris") as run:
        run.use_dataset(data.id)
        model = LogisticRegression(max_iter=500).fit(x, y)
        run.log_metric("accuracy", float(model.score(x, y)))
        info = run.log_model(model, input_example=x[:5])
    version = ada.registry.register("iris", run_id=run.id)
    assert isinstance(version, ModelVersion)
    assert (version.ref, version.created_by, version.run_id) == ("models:/iris/1", "ada", run.id)
    assert version.package_hash == info.package_hash
    assert version.metrics["accuracy"] > 0.9
    assert version.dataset_version_ids == (data.id,)  # lineage: the run's inputs

    moved = ada.registry.set_alias("iris", "candidate", 1)  # unprotected: applied at once
    assert moved.applied and moved.request is None and moved.version.aliases == ("candidate",)
    pending = ada.registry.set_alias("iris", "champion", 1, comment="best so far")
    assert not pending.applied and pending.version.version == 1  # the version it would move to
    request = pending.request
    assert isinstance(request, ApprovalRequest) and request.status == "pending"
    assert request.requested_by == "ada"
    with pytest.raises(ApprovalNotAllowed, match="separation of duties"):
        ada.registry.approve(request.id)
    assert [r.id for r in bob.registry.requests(model="iris")] == [request.id]
    approved = bob.registry.approve(request.id, comment="looks good")
    assert approved.status == "approved"
    assert [(d.actor, d.decision) for d in approved.decisions] == [("bob", "approve")]
    assert ada.registry.resolve("iris", "champion").version == 1
    assert ada.registry.get_model("iris").aliases == {"candidate": 1, "champion": 1}

    staged = ada.registry.transition_stage("iris", 1, Stage.STAGING)
    assert isinstance(staged, ModelVersion) and staged.stage is Stage.STAGING

    champion = ada.load_model("models:/iris@champion")
    assert list(champion.predict(x[:3])) == list(model.predict(x[:3]))
    from_run = bob.load_model(info.model_uri)
    assert list(from_run.predict(x[:3])) == list(model.predict(x[:3]))


def test_users_validation_lineage_and_registering_from_log_model(
    team: Team, tmp_path: Path
) -> None:
    pytest.importorskip("sklearn")
    from sklearn.tree import DecisionTreeClassifier

    from loopwright.data.validation import Suite

    ada = team.ada
    assert {u.name: u.role for u in ada.users.list()}["bob"] == "approver"
    assert ada.users.actor == "ada"
    found = ada.users.find("bob")
    assert found is not None and found.role == "approver"
    assert ada.users.find("nobody") is None
    with pytest.raises(PermissionDenied):  # ada is no admin
        ada.users.add("eve", "admin")
    table = tmp_path / "t.csv"
    table.write_text("x,y\n1,0\n2,1\n3,0\n4,1\n", encoding="utf-8")
    data = ada.datasets.add("tiny", table)
    assert data.schema is not None and data.profile is not None  # profiled where it is stored
    report = ada.datasets.validate(data, Suite("tiny-checks").not_null("x").in_set("y", [0, 1]))
    assert report.success
    failing = ada.datasets.validate(data, Suite("strict").between("x", min=0, max=2))
    assert not failing.success
    assert [r["suite"] for r in ada.datasets.validation_results(data)][:2] == [
        "strict",
        "tiny-checks",
    ]
    with ada.start_run() as run:
        run.use_dataset(data.id)
        model = DecisionTreeClassifier().fit([[1], [2], [3], [4]], [0, 1, 0, 1])
        info = run.log_model(model, registered_model_name="tiny-tree")
    assert ada.datasets.runs_using(data) == [run.id]
    assert info.registered_version is not None
    assert info.registered_version.ref == "models:/tiny-tree/1"
    assert team.bob.registry.get_version("tiny-tree", 1).created_by == "ada"


def test_rejection_and_registry_errors(team: Team) -> None:
    pytest.importorskip("sklearn")
    from sklearn.dummy import DummyClassifier

    ada, bob = team.ada, team.bob
    with ada.start_run(experiment="dummy") as run:
        info = run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
    ada.registry.register("dummy", run_id=run.id, tags={"team": "risk"})
    by_uri = ada.registry.register("dummy-uri", info.model_uri)  # as MLflow's register_model
    again_by_uri = bob.registry.register("dummy-uri", model_uri=info.model_uri)
    assert (by_uri.version, again_by_uri.version) == (1, 2)
    assert by_uri.run_id == run.id and by_uri.package_hash == info.package_hash
    with pytest.raises(InvalidInput, match="runs:/"):
        ada.registry.register("dummy-uri", "models:/dummy/1")
    with pytest.raises(InvalidInput, match="give one"):
        ada.registry.register("dummy-uri", model_uri=info.model_uri, run_id=run.id)
    request = ada.registry.transition_stage("dummy", 1, "Production")
    assert isinstance(request, ApprovalRequest)
    with pytest.raises(InvalidInput, match="comment"):
        bob.registry.reject(request.id, "")
    rejected = bob.registry.reject(request.id, "not yet")
    assert rejected.status == "rejected"
    assert ada.registry.get_version("dummy", 1).stage is Stage.NONE
    with pytest.raises(Conflict):
        bob.registry.approve(request.id)
    with pytest.raises(NotFound):
        ada.registry.resolve("dummy", "champion")
    with pytest.raises(NotFound):
        ada.registry.get_version("dummy", 7)
    again = bob.registry.transition_stage("dummy", 1, "Production")
    assert isinstance(again, ApprovalRequest) and again.requested_by == "bob"
    with pytest.raises(PermissionDenied, match="registered version 1"):
        ada.registry.approve(again.id)
    with pytest.raises(NotFound):
        bob.registry.approve("0" * 32)
    assert [v.version for v in ada.registry.search_versions("name = 'dummy'")] == [1]
    assert ada.registry.get_model("dummy").latest_version == 1


# --- audit ---------------------------------------------------------------------------------------


def test_audit_records_the_callers_and_verifies(team: Team) -> None:
    ada, bob = team.ada, team.bob
    experiment = ada.tracking.create_experiment("audited")
    ada.tracking.rename_experiment("audited", "audited-2")
    bob.tracking.set_experiment_lifecycle("audited-2", "deleted")
    trail = ada.audit_events(subject_id=experiment.id)
    assert [(e.actor, e.action) for e in trail] == [
        ("ada", "experiment.create"),
        ("ada", "experiment.rename"),
        ("bob", "experiment.delete"),
    ]
    assert len(ada.audit_events(subject_id=experiment.id, limit=1)) == 1
    assert ada.audit.events(subject_id=experiment.id, actor="bob") == trail[2:]
    report = bob.verify_audit()
    assert report.ok and report.checked >= 3
    assert bob.audit.verify() == report


# --- changes MLflow's API needs too: run updates, tag and artifact clean-up ----------------------


def test_update_runs_delete_tags_and_forget_artifacts(team: Team, tmp_path: Path) -> None:
    tracking = team.ada.tracking
    run = tracking.create_run(experiment="edits", name="first", tags={"a/b": "1", "keep": "2"})
    tracking.delete_tag(run.id, "a/b")  # a key with a slash travels as one path segment
    with pytest.raises(NotFound, match="a/b"):
        tracking.delete_tag(run.id, "a/b")
    tracking.log_metrics(run.id, {"loss": 0.5})
    tracking.update_run(run.id, name="renamed")
    stored = team.bob.get_run(run.id)
    assert (stored.name, stored.tags, stored.status) == (
        "renamed",
        {"keep": "2"},
        RunStatus.RUNNING,
    )
    tracking.update_run(run.id, status=RunStatus.KILLED, end_time=stored.start_time + 5)
    stored = team.bob.get_run(run.id)  # another client: the buffered point was sent first
    assert (stored.status, stored.end_time) == (RunStatus.KILLED, stored.start_time + 5)
    assert stored.metrics["loss"].value == 0.5

    (tmp_path / "out" / "sub").mkdir(parents=True)
    (tmp_path / "out" / "keep.txt").write_text("keep")
    (tmp_path / "out" / "sub" / "drop.txt").write_text("drop")
    other = tracking.create_run(experiment="edits")
    tracking.log_artifacts(other.id, tmp_path / "out", "files")
    assert tracking.delete_artifacts(other.id, "files/sub") == 1
    assert [a.path for a in team.bob.list_artifacts(other.id)] == ["files/keep.txt"]
    assert tracking.delete_artifacts(other.id) == 1
    assert tracking.delete_artifacts(other.id, "files") == 0
    assert team.bob.list_artifacts(other.id) == []

    experiment = tracking.get_experiment_by_name("edits")
    tracking.set_experiment_tags(experiment.id, {"owner": "ada", "team": "risk"})
    tracking.delete_experiment_tag(experiment.id, "team")
    assert team.bob.tracking.get_experiment(experiment.id).tags == {"owner": "ada"}
    with pytest.raises(NotFound):
        tracking.delete_experiment_tag(experiment.id, "team")
    with pytest.raises(NotFound):
        tracking.set_experiment_tags("0" * 32, {"x": "y"})


# --- datasets: labels, tables, validation options ---------------------------------------------


def test_dataset_labels_tables_pointers_and_validation_options(team: Team, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from loopwright.data.pointer import Pointer
    from loopwright.data.validation import Suite

    ada, bob = team.ada, team.bob
    ada.datasets.create_empty("labels")
    with pytest.raises(AlreadyExists):
        bob.datasets.create_empty("labels")
    ada.datasets.describe("labels", "hand-labelled rows")
    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0, 1, 0]})
    table = ada.datasets.add("labels", frame, table_name="rows.parquet", message="v1")
    assert [f.path for f in bob.datasets.files(table)] == ["rows.parquet"]
    assert table.schema is not None  # profiled where it is stored
    assert [d.description for d in bob.datasets.list_datasets()] == ["hand-labelled rows"]

    folder = tmp_path / "more"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.csv").write_text(f"x,y\n{index},1\n", encoding="utf-8")
    done: list[int] = []
    files = ada.datasets.add("labels", folder, progress=done.append)
    assert sum(done) == 3 and files.number == 2

    tagged = ada.datasets.tag("labels@v1", "quality", "gold")
    assert tagged.tags == {"quality": "gold"}
    with pytest.raises(InvalidInput, match="250"):  # the column's width, on every database
        ada.datasets.tag("labels@v1", "k" * 251, "x")
    moved = bob.datasets.set_alias("labels@v1", "golden")
    assert moved.aliases == ("golden",) and ada.datasets.get("labels@golden").id == table.id
    out = bob.datasets.download(files, tmp_path / "down")
    assert sorted(p.name for p in out.iterdir()) == ["0.csv", "1.csv", "2.csv"]

    suite = Suite("labels-checks").not_null("x")
    unsaved = ada.datasets.validate(table, suite, save=False)
    assert unsaved.success and unsaved.suite_version is None
    assert ada.datasets.validation_results(table) == []  # nothing stored
    saved = ada.datasets.validate("labels@golden", suite)
    assert saved.suite_version == 1 and len(ada.datasets.validation_results(table)) == 1
    by_name = bob.datasets.validate(table, "labels-checks@1", save=False)  # the stored suite
    assert by_name.success and by_name.results == saved.results

    pointer = Pointer("labels", 1, "0" * 32, table.content_hash, "rows.parquet")
    assert ada.datasets.resolve_pointer(pointer).id == table.id  # another store's id: by content
    with pytest.raises(NotFound):
        ada.datasets.resolve_pointer(Pointer("labels", 9, "0" * 32, "f" * 64, "x"))
    forged = Pointer("labels", 1, table.id, files.content_hash, "rows.parquet")
    with pytest.raises(InvalidInput, match="edited"):
        ada.datasets.resolve_pointer(forged)


# --- deployments -------------------------------------------------------------------------------


def _request_id(error: BaseException) -> str:
    """The approval request id a refused deployment change names."""
    return str(error).split("request ")[1].split(")")[0].split(" ")[0]


def test_deployments_follow_the_registrys_traffic_approvals(team: Team) -> None:
    pytest.importorskip("sklearn")
    from sklearn.dummy import DummyClassifier

    from loopwright.serving.entities import SHADOW, Variant

    ada, bob = team.ada, team.bob
    with ada.start_run(experiment="deploy") as run:
        run.log_model(DummyClassifier().fit([[0], [1]], [0, 1]))
    for _ in range(3):
        ada.registry.register("scorer", run_id=run.id)  # the default policy guards traffic
    with pytest.raises(PermissionDenied, match="run the command again once approved") as refused:
        ada.deployments.create("scorer-api", "models:/scorer/1", description="scores")
    first = _request_id(refused.value)
    request = bob.registry.get_request(first)
    assert (request.action, request.target, request.version) == ("traffic", "traffic", 1)
    with pytest.raises(ApprovalNotAllowed, match="separation of duties"):
        ada.registry.approve(first)
    bob.registry.approve(first)
    created = ada.deployments.create("scorer-api", "models:/scorer/1", description="scores")
    assert (created.strategy, created.revision, created.created_by) == ("primary", 1, "ada")
    assert bob.deployments.get("scorer-api") == created
    assert [d.name for d in bob.deployments.list()] == ["scorer-api"]

    canary = [
        Variant("primary", "models:/scorer/1", 1),
        Variant("canary", "models:/scorer/2", 0.25),
    ]
    with pytest.raises(PermissionDenied, match="scorer version 2") as refused:
        ada.deployments.set_traffic("scorer-api", canary)
    bob.registry.approve(_request_id(refused.value))
    shadow = Variant("copy", "models:/scorer/3", 0.5, SHADOW)  # shadows need no approval
    changed = ada.deployments.set_traffic("scorer-api", [*canary, shadow])
    assert changed.strategy == "canary" and changed.revision == 2
    assert [(v.name, v.weight) for v in changed.variants] == [
        ("primary", 0.75),
        ("canary", 0.25),
        ("copy", 0.5),
    ]
    promoted = bob.deployments.promote("scorer-api")
    assert promoted.variants == (Variant("primary", "models:/scorer/2", 1.0), shadow)
    assert promoted.updated_by == "bob"
    back = ada.deployments.rollback("scorer-api", to_revision=1)
    assert back.revision == 4 and back.variants == created.variants
    history = bob.deployments.history("scorer-api")
    assert [(r.revision, r.action) for r in history] == [
        (1, "create"),
        (2, "set-traffic"),
        (3, "promote"),
        (4, "rollback"),
    ]
    seen = ada.deployments.heartbeat("scorer-api", "http://127.0.0.1:9001", 4242, "box")
    assert bob.deployments.instances("scorer-api") == [seen]

    with pytest.raises(NotFound, match="no version 9"):
        ada.deployments.set_traffic("scorer-api", [Variant("primary", "models:/scorer/9", 1)])
    with pytest.raises(InvalidInput, match="sticky header"):
        ada.deployments.set_traffic(
            "scorer-api", [Variant("primary", "models:/scorer/1", 1)], sticky_header="X-User"
        )
    with pytest.raises(AlreadyExists):
        ada.deployments.create("scorer-api", "models:/scorer/1")
    with pytest.raises(Conflict, match="no canary"):
        ada.deployments.promote("scorer-api")
    # A read-modify-write names the revision it read: a change made meanwhile is not lost.
    one = [Variant("primary", "models:/scorer/1", 1)]
    with pytest.raises(Conflict, match=r"revision 3 → 4"):
        bob.deployments.set_traffic("scorer-api", one, expect_revision=3)
    assert ada.deployments.set_traffic("scorer-api", one, expect_revision=4).revision == 5
    ada.deployments.delete("scorer-api")
    with pytest.raises(NotFound, match="does not exist"):
        bob.deployments.get("scorer-api")


def test_the_prediction_log_reads_the_same_on_both_backends(team: Team, tmp_path: Path) -> None:
    """What `loopwright serve` logged on this store (both backends share its blob store)."""
    from datetime import UTC, datetime

    from loopwright.serving.prediction_log import PredictionLog, PredictionRecord

    at = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
    with PredictionLog(str(tmp_path / "blobs" / "predictions")) as log:
        for i, variant in enumerate(["primary", "primary", "canary"]):
            log.append(
                PredictionRecord(
                    request_id=f"r{i}",
                    deployment="scorer-api",
                    variant=variant,
                    model="scorer",
                    model_version=1 + (variant == "canary"),
                    timestamp=at,
                    latency_ms=2.0,
                    status=200,
                    inputs={"x": [float(i)]},
                    outputs={"predict": [i % 2]},
                )
            )
    read = team.ada.predictions("scorer-api")
    assert read["request_id"].tolist() == ["r0", "r1", "r2"]
    assert read["variant"].tolist() == ["primary", "primary", "canary"]
    assert read["input.x"].tolist() == [0.0, 1.0, 2.0]
    assert read["output.predict"].tolist() == [0, 1, 0]
    (logged,) = team.bob.prediction_log.deployments()
    assert (logged.name, logged.rows) == ("scorer-api", 3)
    with pytest.raises(InvalidInput, match="deployment name"):
        team.ada.predictions("../scorer-api")


def test_monitoring_reads_the_same_on_both_backends(team: Team, tmp_path: Path) -> None:
    """A monitor on what `loopwright serve` logged: a shifted hour flags its column and opens
    an alert; late labels join the log; each read by the other user equals what was written."""
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd

    from loopwright.serving.prediction_log import PredictionLog, PredictionRecord

    rng = np.random.default_rng(11)
    (tmp_path / "ref").mkdir()
    pd.DataFrame({"x": rng.normal(size=1000)}).to_parquet(tmp_path / "ref" / "part.parquet")
    team.ada.datasets.add("ref", tmp_path / "ref")
    at = datetime(2026, 12, 5, 10, tzinfo=UTC)
    with PredictionLog(str(tmp_path / "blobs" / "predictions")) as log:
        for i in range(40):
            x = rng.normal(2.0, 1.0, 5)
            log.append(
                PredictionRecord(
                    request_id=f"r{i}",
                    deployment="scorer-api",
                    variant="primary",
                    model="scorer",
                    model_version=1,
                    timestamp=at + timedelta(minutes=i),
                    latency_ms=2.0,
                    status=200,
                    inputs={"x": x},
                    outputs={"predict": (x > 2.0).astype(np.int64)},
                )
            )
    ada, bob = team.ada.monitoring, team.bob.monitoring
    created = ada.create(
        "scorer-drift",
        deployment="scorer-api",
        reference="ref@v1",
        tests=["psi"],
        columns=["input.x"],
        alerts=["drift_share>0.5"],
    )
    assert bob.get("scorer-drift") == created and created.created_by == "ada"
    run = ada.run("scorer-drift", at=at + timedelta(hours=1))
    assert run.status == "ok" and run.drift is not None
    assert run.drift.drifted_columns == ("input.x",) and run.rows == 200
    assert bob.get_run(run.id) == run and bob.history("scorer-drift") == [run]
    (alert,) = bob.alerts(status="open")
    assert (alert.rule, alert.monitor, run.alerts) == (
        "drift_share>0.5",
        "scorer-drift",
        (alert.id,),
    )

    labelled = team.ada.log_labels("scorer-api", {f"r{i}": 1 for i in range(20)})
    assert (labelled.rows, labelled.updated) == (20, 0)
    assert len(bob.labels("scorer-api")) == 20
    quality = bob.performance("scorer-api", since=at, until=at + timedelta(hours=1))
    assert (quality.rows, quality.predictions) == (20, 200)

    with pytest.raises(NotFound, match="nope"):
        bob.get("nope")
    with pytest.raises(InvalidInput, match="bad name"):
        ada.create("bad name!", deployment="scorer-api")
    ada.delete("scorer-drift")
    assert bob.list() == [] and bob.alerts() == []


# --- pipelines ---------------------------------------------------------------------------------


def test_pipeline_records_read_the_same_on_both_backends(team: Team) -> None:
    """A pipeline run and its steps as the engine records them (tests/pipelines has the rest)."""
    from loopwright.pipelines.entities import ArtifactRef

    ada, bob = team.ada.pipelines, team.bob.pipelines
    run = ada.start_run("flows.train:training", params={"n": 3}, executor="process")
    step = ada.start_step(
        run.id, invocation="load", step="load", cache_key="k1", cache_reason="no earlier run"
    )
    output = ArtifactRef("output", "ab" * 32, "json", step.run_id, "outputs/output.json", 9)
    done = ada.finish_step(step.id, "completed", outputs=[output])
    served = ada.record_served(
        run.id, invocation="load#2", step="load", cache_key="k1", cache_reason="hit", source=done
    )
    finished = ada.finish_run(run.id, "completed", result=output)
    assert finished.created_by == "ada" and finished.params == {"n": 3}
    assert [s.id for s in finished.steps] == [done.id, served.id]
    assert bob.get_run(run.id) == finished and bob.list_runs() == [
        ada.list_runs(pipeline="flows.train:training")[0]
    ]
    assert bob.find_cached("k1") == done == bob.previous_step("flows.train:training", "load")
    nested = team.bob.tracking.get_run(done.run_id or "")
    assert nested.parent_run_id == finished.run_id and nested.status == RunStatus.FINISHED
    with pytest.raises(NotFound, match="pipeline run 'nope'"):
        bob.get_run("nope")
    with pytest.raises(Conflict, match="is completed"):
        ada.heartbeat(run.id)


# --- feature store -----------------------------------------------------------------------------


def test_prompts_load_format_and_approve_the_same_on_both_backends(team: Team) -> None:
    ada, bob = team.ada, team.bob
    one = ada.prompts.register(
        "qa", "Answer {{ q }}", commit_message="first", model_config={"temperature": 0.1}
    )
    ada.prompts.register("qa", [{"role": "user", "content": "{{ q }}"}])
    assert (one.uri, one.created_by, one.variables) == ("prompts:/qa/1", "ada", ("q",))
    assert bob.prompts.load("prompts:/qa@latest").kind == "chat"
    assert bob.prompts.get_version("qa", 1).model_config == {"temperature": 0.1}
    change = ada.prompts.set_alias("qa", "production", 1, comment="eval passed")
    assert change.request is not None and change.request.subject_kind == "prompt"
    with pytest.raises(ApprovalNotAllowed, match="separation of duties"):
        ada.prompts.approve(change.request.id)
    assert bob.prompts.approve(change.request.id).status == "approved"
    assert bob.prompts.format("prompts:/qa@production", q="why") == "Answer why"
    with pytest.raises(NotFound, match="no alias 'prod'"):
        bob.prompts.load("prompts:/qa@prod")
    with pytest.raises(InvalidInput, match="has no variable 'x'"):
        bob.prompts.format("prompts:/qa/1", x=1)
    assert "-Answer {{ q }}" in bob.prompts.diff("qa", 1, 2)


def test_feature_definitions_and_online_lookups_read_the_same(team: Team, tmp_path: Path) -> None:
    """Definitions applied by one user, read and served to another (tests/features has more)."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from loopwright.features.definitions import (
        DatasetSource,
        Entity,
        FeatureView,
        Field,
        FileSource,
        to_specs,
    )

    now = datetime.now(UTC).replace(microsecond=0)
    rows = {"driver_id": [1, 2], "event_timestamp": [now, now], "conv_rate": [0.25, 0.5]}
    team.ada.datasets.add("driver-stats", pd.DataFrame(rows))
    driver = Entity("driver", join_keys={"driver_id": "int64"})
    local = FileSource(str(tmp_path / "stats.parquet"), timestamp_field="event_timestamp")
    on_disk = FeatureView(
        "stats", entities=[driver], source=local, schema=[Field("conv_rate", "float64")]
    )
    if team.kind == "remote":  # a local file is the server's disk: not an approver's to read
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            team.ada.features.apply(to_specs([driver, on_disk]))
    source = DatasetSource("driver-stats", timestamp_field="event_timestamp")
    view = FeatureView(
        "stats", entities=[driver], source=source, schema=[Field("conv_rate", "float64")]
    )
    applied = team.ada.features.apply(to_specs([driver, view]))
    assert [c.to_version for c in applied.changes] == [1, 1]
    assert team.bob.features.get("stats@v1").created_by == "ada"
    (loaded,) = team.bob.features.materialize(end=now + timedelta(seconds=1))
    assert loaded.rows == 2 and loaded.created_by == "bob"
    found = team.ada.features.get_online_features([{"driver_id": 2}], ["stats:conv_rate"])
    assert found.values == {"driver_id": [2], "conv_rate": [0.5]}
    with pytest.raises(NotFound, match="ghost"):
        team.bob.features.get("ghost")


def test_gateway_routes_and_secrets_read_the_same(team: Team) -> None:
    """Routes made by one user, read and changed by another; the secret shown masked."""
    target = {"name": "primary", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    if team.kind == "remote":  # an approver is no admin: only admins hold upstream keys
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            team.ada.gateway.set_secret("key", "sk-0123456789abcdefghijkl")
    else:
        assert team.ada.gateway.set_secret("key", "sk-0123456789abcdefghijkl").mask == "****ijkl"
        assert [s.mask for s in team.bob.gateway.list_secrets()] == ["****ijkl"]
    route = team.ada.gateway.create_route("chat", {"targets": [target], "retries": 1})
    assert (route.revision, route.created_by) == (1, "ada")
    changed = team.bob.gateway.update_route("chat", {"targets": [target]}, expect_revision=1)
    assert (changed.revision, changed.updated_by, changed.config.retries) == (2, "bob", 2)
    with pytest.raises(Conflict, match="revision 2"):
        team.ada.gateway.update_route("chat", {"targets": [target]}, expect_revision=1)
    with pytest.raises(AlreadyExists):
        team.ada.gateway.create_route("chat", {"targets": [target]})
    with pytest.raises(InvalidInput, match="unknown field"):
        team.ada.gateway.create_route("other", {"targets": [target], "oops": 1})
    assert [r.name for r in team.bob.gateway.list_routes()] == ["chat"]
    assert team.bob.gateway.usage() == []
    team.bob.gateway.delete_route("chat")
    with pytest.raises(NotFound, match="gateway route 'chat' does not exist"):
        team.ada.gateway.get_route("chat")


# --- one surface -------------------------------------------------------------------------------
# The signatures of both backends are compared with the protocols in tests/test_service_parity.py.


def test_store_only_dataset_work_says_so_remotely(team: Team, tmp_path: Path) -> None:
    from loopwright.data.workspace import checkout

    version = team.ada.datasets.add("local", _one_file(tmp_path))
    if team.kind == "embedded":
        assert checkout(team.ada.datasets, version, tmp_path / "co") == ["a.txt"]
        return
    with pytest.raises(ConfigError, match="local store"):
        checkout(team.ada.datasets, version, tmp_path / "co")


def _one_file(tmp_path: Path) -> Path:
    path = tmp_path / "a.txt"
    path.write_text("a", encoding="utf-8")
    return path


def test_a_server_uri_makes_a_remote_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPWRIGHT_SERVER_URI", "http://127.0.0.1:9")
    client = lw.connect()
    try:
        assert client.is_remote
        assert "127.0.0.1:9" in repr(client)
        with pytest.raises(LoopwrightError, match="cannot reach"):
            client.list_experiments()
        with pytest.raises(AttributeError, match="holds the stores"):
            client.store.db  # noqa: B018
    finally:
        client.close()


def test_traces_record_search_and_assess_the_same_on_both_backends(team: Team) -> None:
    """One user records a trace with usage and links; another finds and assesses it
    (tests/tracing and tests/server/test_otlp.py have more)."""
    from loopwright.tracing.entities import Span, TraceLinks

    trace_id, root, child = "a" * 32, "1" * 16, "2" * 16
    start = time.time_ns()
    spans = [
        Span(trace_id, root, None, "answer", "AGENT", start, start + 5_000_000,
             attributes={"lw.inputs": {"q": "why"}, "lw.outputs": "because"}),
        Span(trace_id, child, root, "llm", "LLM", start + 1_000_000, start + 4_000_000,
             attributes={"gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 3}),
    ]  # fmt: skip
    assert team.ada.tracing.record(spans, tags={"team": "qa"}, links=TraceLinks(run_id=None)) == [
        trace_id
    ]
    found = team.bob.tracing.search(filter="tags.team = 'qa'")
    assert [t.trace_id for t in found.traces] == [trace_id]
    trace = team.bob.tracing.get(trace_id)
    assert [s.name for s in trace.spans] == ["answer", "llm"]
    assert trace.state == "OK" and trace.tags["team"] == "qa"
    team.bob.tracing.log_assessment(trace_id, "helpful", True, source_type="HUMAN", source_id="bob")
    assert [(a.name, a.value) for a in team.ada.tracing.assessments(trace_id)] == [
        ("helpful", True)
    ]
    with pytest.raises(NotFound):
        team.bob.tracing.get("b" * 32)


def test_evaluations_record_the_same_on_both_backends(team: Team) -> None:
    """An evaluation dataset made by one user, evaluated by another with a built-in scorer:
    the run, its aggregates and the dataset's content hash agree (tests/evaluation has more)."""
    from loopwright.evaluation import builtins

    team.ada.evaluation.create_dataset("sky")
    added = team.ada.evaluation.upsert_records("sky", [
        {"inputs": {"q": "colour?"}, "expectations": {"expected_response": "blue"}},
        {"inputs": {"q": "grass?"}, "expectations": {"expected_response": "red"}},
    ])  # fmt: skip
    result = team.bob.evaluation.evaluate(lambda q: "blue", "sky", [builtins.exact_match()])
    assert result.aggregates["exact_match/mean"] == 0.5
    assert result.dataset_digest == added["digest"]
    assert team.ada.tracking.get_run(result.run_id).status is RunStatus.FINISHED
