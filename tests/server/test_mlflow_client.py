"""The real ``mlflow`` client against a live ``loopwright server``: tracking, artifacts, search,
autologging, logged models and the registry, then the same data through Loopwright's own API.

MLflow warns about many things (pickle, missing signatures, git); the suite runs with
``-W error``, so these tests ignore warnings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import loopwright as lw

pytestmark = pytest.mark.filterwarnings("ignore")

LiveServer = Any  # tests/server/conftest.py: .url, .home, .db_uri, .settings, .tokens


def _loopwright(server: LiveServer) -> lw.Client:
    """A Loopwright client on the server's own store (same database, same blobs)."""
    return lw.connect(server.db_uri, home=server.home)


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    return features, target


def test_runs_params_metrics_batches_and_tags(mlflow_client: Any, live_server: LiveServer) -> None:
    mlflow = mlflow_client
    from mlflow.entities import Metric, Param, RunTag

    experiment = mlflow.set_experiment("churn")
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment.experiment_id}"
    with mlflow.start_run(run_name="rf-1", tags={"team": "risk"}) as run:
        mlflow.log_param("n_estimators", 200)
        mlflow.log_params({"max_depth": 8, "criterion": "gini"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"auc": 0.91, "f1": 0.84})
        mlflow.set_tags({"stage": "dev", "owner": "ada"})
        client = mlflow.MlflowClient()
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", 0.5 + i / 10, 1_700_000_000_000 + i, i) for i in range(3)],
            params=[Param("seed", "42")],
            tags=[RunTag("batch", "yes")],
        )
        client.delete_tag(run.info.run_id, "stage")
    assert run.info.artifact_uri == (
        f"mlflow-artifacts:/{experiment.experiment_id}/{run.info.run_id}/artifacts"
    )

    got = mlflow.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "rf-1"
    assert got.info.end_time >= got.info.start_time
    assert got.data.params == {
        "n_estimators": "200",
        "max_depth": "8",
        "criterion": "gini",
        "seed": "42",
    }
    assert got.data.metrics == {"loss": 0.2, "auc": 0.91, "f1": 0.84, "acc": pytest.approx(0.7)}
    assert got.data.tags["team"] == "risk"
    assert got.data.tags["batch"] == "yes"
    assert "stage" not in got.data.tags
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]

    # The same run through Loopwright's own API.
    with _loopwright(live_server) as native:
        same = native.get_run(run.info.run_id)
        assert same.name == "rf-1"
        assert same.status.value == "FINISHED"
        assert same.params["seed"] == "42"
        assert same.metrics["auc"].value == 0.91
        assert same.tags["owner"] == "ada"
        assert [m.value for m in native.get_metric_history(run.info.run_id, "loss")][-1] == 0.2
        assert native.list_experiments()[-1].name == "churn"


def test_runs_without_experiment_land_in_default(
    mlflow_client: Any, live_server: LiveServer
) -> None:
    mlflow = mlflow_client
    with mlflow.start_run() as run:  # MLflow's experiment "0"
        mlflow.log_metric("x", 1.0)
    default = mlflow.get_experiment("0")
    assert default.name == "Default"
    assert mlflow.get_run(run.info.run_id).info.experiment_id == default.experiment_id
    with _loopwright(live_server) as native:
        assert native.get_run(run.info.run_id).experiment_id == default.experiment_id


def test_artifacts_upload_list_download(
    mlflow_client: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    mlflow = mlflow_client
    report = tmp_path / "report.txt"
    report.write_text("accuracy 0.9\n")
    plots = tmp_path / "plots"
    (plots / "deep").mkdir(parents=True)
    (plots / "a.csv").write_text("x,y\n1,2\n")
    (plots / "deep" / "b.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(report))
        mlflow.log_artifacts(str(plots), artifact_path="plots")
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"a": 1}, "config.json")

    listed = mlflow.artifacts.list_artifacts(run_id=run.info.run_id)
    assert {(f.path, f.is_dir) for f in listed} == {
        ("report.txt", False),
        ("plots", True),
        ("notes", True),
        ("config.json", False),
    }
    inner = mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots")
    assert {(f.path, f.file_size) for f in inner} == {("plots/a.csv", 8), ("plots/deep", None)}
    out = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=tmp_path / "d"))
    assert (out / "report.txt").read_text() == "accuracy 0.9\n"
    assert (out / "plots" / "deep" / "b.bin").read_bytes() == bytes(range(256)) * 4096
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/config.json") == {"a": 1}

    with _loopwright(live_server) as native:
        paths = {a.path for a in native.list_artifacts(run.info.run_id)}
        assert paths == {
            "report.txt",
            "plots/a.csv",
            "plots/deep/b.bin",
            "notes/hello.txt",
            "config.json",
        }
        copied = native.download_artifacts(run.info.run_id, tmp_path / "native", "plots")
        assert (copied / "plots" / "a.csv").read_text() == "x,y\n1,2\n"


def test_search_runs_filters_order_and_pages(mlflow_client: Any) -> None:
    mlflow = mlflow_client
    experiment_id = mlflow.create_experiment("sweep")
    client = mlflow.MlflowClient()
    for i in range(7):
        kind = "odd" if i % 2 else "even"
        run = client.create_run(experiment_id, run_name=f"r{i}", tags={"kind": kind})
        client.log_param(run.info.run_id, "lr", str(i / 10))
        client.log_metric(run.info.run_id, "auc", 0.5 + i / 20)
        client.set_terminated(run.info.run_id, "FINISHED" if i < 6 else "FAILED")

    found = mlflow.search_runs(
        [experiment_id],
        filter_string="metrics.auc > 0.6 and tags.kind = 'odd'",
        order_by=["metrics.auc DESC"],
    )
    assert list(found["tags.mlflow.runName"]) == ["r5", "r3"]
    failed = client.search_runs([experiment_id], "attributes.status = 'FAILED'")
    assert [r.info.run_name for r in failed] == ["r6"]
    by_param = client.search_runs([experiment_id], "params.lr = '0.2'")
    assert [r.info.run_name for r in by_param] == ["r2"]
    by_name = client.search_runs(
        [experiment_id], "attributes.run_name LIKE 'r%'", order_by=["attributes.run_name ASC"]
    )
    assert [r.info.run_name for r in by_name] == [f"r{i}" for i in range(7)]

    first = client.search_runs([experiment_id], order_by=["metrics.auc ASC"], max_results=3)
    assert [r.info.run_name for r in first] == ["r0", "r1", "r2"]
    assert first.token
    second = client.search_runs(
        [experiment_id], order_by=["metrics.auc ASC"], max_results=3, page_token=first.token
    )
    assert [r.info.run_name for r in second] == ["r3", "r4", "r5"]

    client.delete_run(first[0].info.run_id)
    assert len(client.search_runs([experiment_id])) == 6
    from mlflow.entities import ViewType

    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_name for r in deleted] == ["r0"]
    client.restore_run(first[0].info.run_id)
    assert len(client.search_runs([experiment_id])) == 7
    assert [e.name for e in mlflow.search_experiments(filter_string="name = 'sweep'")] == ["sweep"]


def test_nan_and_repeated_points(mlflow_client: Any) -> None:
    mlflow = mlflow_client
    client = mlflow.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", float("nan"), step=0)
        client.log_metric(run.info.run_id, "acc", 0.5, timestamp=1000, step=1)
        client.log_metric(run.info.run_id, "acc", 0.5, timestamp=1000, step=1)  # ignored
    assert math.isnan(mlflow.get_run(run.info.run_id).data.metrics["loss"])
    assert len(client.get_metric_history(run.info.run_id, "acc")) == 1


def test_autolog_log_model_register_alias_and_load(
    mlflow_client: Any, live_server: LiveServer
) -> None:
    mlflow = mlflow_client
    from mlflow import sklearn as mlflow_sklearn
    from sklearn.linear_model import LogisticRegression

    x, y = _iris()
    mlflow.set_experiment("iris")
    mlflow_sklearn.autolog()
    try:
        with mlflow.start_run() as trained:
            model = LogisticRegression(max_iter=500).fit(x, y)
    finally:
        mlflow_sklearn.autolog(disable=True)
    autologged = mlflow.get_run(trained.info.run_id)
    assert autologged.data.params["max_iter"] == "500"
    assert autologged.data.metrics["training_accuracy_score"] > 0.9
    assert autologged.data.tags["estimator_class"].endswith("LogisticRegression")
    assert autologged.inputs.dataset_inputs  # the training set, as MLflow describes it
    assert len(autologged.outputs.model_outputs) == 1  # autolog's model

    with mlflow.start_run() as run:
        mlflow.log_param("max_iter", 500)
        info = mlflow_sklearn.log_model(model, name="model", input_example=x[:5])
    logged = mlflow.MlflowClient().get_logged_model(info.model_id)
    assert logged.status.to_proto() == 2  # LOGGED_MODEL_READY
    assert logged.source_run_id == run.info.run_id
    assert logged.artifact_location.endswith(f"/models/{info.model_id}/artifacts")

    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "iris-clf")
    assert version.version == "1"
    assert version.run_id == run.info.run_id
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("iris-clf", "candidate", version.version)
    client.set_model_version_tag("iris-clf", "1", "validated", "yes")
    assert client.get_model_version_by_alias("iris-clf", "candidate").version == "1"
    assert client.get_registered_model("iris-clf").aliases == {"candidate": "1"}
    uri = client.get_model_version_download_uri("iris-clf", "1")
    assert uri.startswith("mlflow-artifacts:/model-versions/")

    loaded = mlflow.pyfunc.load_model("models:/iris-clf@candidate")
    assert list(loaded.predict(x[:5])) == list(model.predict(x[:5]))
    latest = mlflow.pyfunc.load_model("models:/iris-clf/latest")
    assert list(latest.predict(x[:3])) == list(model.predict(x[:3]))
    found = client.search_model_versions("name = 'iris-clf'")
    assert [v.version for v in found] == ["1"]

    # The MLflow version is an ordinary Loopwright version of a converted package.
    with _loopwright(live_server) as native:
        same = native.registry.get_version("iris-clf", 1)
        assert same.run_id == run.info.run_id
        assert same.flavor == "sklearn"
        assert same.aliases == ("candidate",)
        assert same.tags["validated"] == "yes"
        assert same.source == f"models:/{info.model_id}"
        assert same.signature is not None
        assert native.get_run(trained.info.run_id).params["max_iter"] == "500"
        champion = native.load_model("models:/iris-clf@candidate", trusted=True)
        assert list(champion.predict(x[:5])) == list(model.predict(x[:5]))


def test_protected_alias_opens_an_approval_request(
    mlflow_client: Any, live_server: LiveServer
) -> None:
    mlflow = mlflow_client
    from mlflow import sklearn as mlflow_sklearn
    from mlflow.exceptions import MlflowException
    from sklearn.tree import DecisionTreeClassifier

    from loopwright.errors import UntrustedModel

    x, y = _iris()
    tree = DecisionTreeClassifier(max_depth=2).fit(x, y)
    with mlflow.start_run():
        info = mlflow_sklearn.log_model(
            tree,
            name="tree",
            serialization_format="cloudpickle",
            registered_model_name="iris-tree",
        )
    assert str(info.registered_model_version) == "1"
    client = mlflow.MlflowClient()
    with pytest.raises(MlflowException) as refused:
        client.set_registered_model_alias("iris-tree", "champion", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "approval request" in refused.value.message
    assert client.get_registered_model("iris-tree").aliases == {}
    with pytest.raises(MlflowException, match="approval request"):
        client.transition_model_version_stage("iris-tree", "1", "Production")

    with _loopwright(live_server) as native:
        pending = native.registry.requests(status="pending")
        assert {(r.action, r.target) for r in pending} == {
            ("alias", "champion"),
            ("stage", "Production"),
        }
        # A pickled MLflow model stays pickled: Loopwright loads it only when trusted.
        with pytest.raises(UntrustedModel):
            native.load_model("models:/iris-tree/1")
        trusted = native.load_model("models:/iris-tree/1", trusted=True)
        assert list(trusted.predict(x[:4])) == list(tree.predict(x[:4]))


def test_register_a_model_logged_as_run_artifacts(
    mlflow_client: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    """MLflow 2's way: the model folder among the run's artifacts, registered by runs:/ URI."""
    mlflow = mlflow_client
    from mlflow import sklearn as mlflow_sklearn
    from sklearn.linear_model import LinearRegression

    x, y = _iris()
    model = LinearRegression().fit(x, y)
    folder = tmp_path / "saved"
    mlflow_sklearn.save_model(model, str(folder), serialization_format="skops")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="exported")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/exported", "linear")
    loaded = mlflow.pyfunc.load_model(f"models:/linear/{version.version}")
    assert loaded.predict(x[:2]) == pytest.approx(model.predict(x[:2]))
    with _loopwright(live_server) as native:
        same = native.registry.get_version("linear", 1)
        assert same.run_id == run.info.run_id
        # The client resolves runs:/ to the run's served artifact URI before registering.
        assert same.source == f"{run.info.artifact_uri}/exported"
        assert native.load_model("models:/linear/1").predict(x[:2]) == pytest.approx(
            model.predict(x[:2])
        )


def test_logged_model_lifecycle(mlflow_client: Any) -> None:
    mlflow = mlflow_client
    from mlflow.entities import LoggedModelStatus

    client = mlflow.MlflowClient()
    experiment_id = client.create_experiment("agents")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        model = mlflow.initialize_logged_model(name="agent", model_type="agent", tags={"v": "1"})
        assert model.status == LoggedModelStatus.PENDING
        client.log_model_params(model.model_id, {"temperature": "0.2"})
        client.set_logged_model_tags(model.model_id, {"owner": "ada"})
        mlflow.log_metric("quality", 0.8, model_id=model.model_id)
        ready = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.status == LoggedModelStatus.READY
    got = client.get_logged_model(model.model_id)
    assert got.tags["owner"] == "ada" and got.tags["v"] == "1"
    assert got.params == {"temperature": "0.2"}
    assert [(m.key, m.value, m.run_id) for m in got.metrics] == [("quality", 0.8, run.info.run_id)]
    found = mlflow.search_logged_models(
        experiment_ids=[experiment_id], filter_string="name = 'agent'", output_format="list"
    )
    assert [m.model_id for m in found] == [model.model_id]
    client.delete_logged_model_tag(model.model_id, "owner")
    assert "owner" not in client.get_logged_model(model.model_id).tags
    client.delete_logged_model(model.model_id)
    assert mlflow.search_logged_models(experiment_ids=[experiment_id], output_format="list") == []


def test_calls_act_as_the_token_holder(
    auth_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    import mlflow.tracking.fluent as fluent
    from mlflow.exceptions import MlflowException

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", auth_server.tokens["ada"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", auth_server.url)
    mlflow.set_tracking_uri(auth_server.url)
    try:
        client = mlflow.MlflowClient()
        experiment_id = client.create_experiment("audited")
        run = client.create_run(experiment_id)  # the client claims its OS user
        client.log_param(run.info.run_id, "a", "1")
        assert client.get_run(run.info.run_id).info.user_id == "ada"
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", auth_server.tokens["vic"])
        assert client.get_run(run.info.run_id).data.params == {"a": "1"}
        with pytest.raises(MlflowException) as refused:
            client.log_param(run.info.run_id, "b", "2")
        assert refused.value.error_code == "PERMISSION_DENIED"
    finally:
        fluent._active_experiment_id = None
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it
    from loopwright.store.audit import events, verify_chain

    with lw.connect(auth_server.db_uri, home=auth_server.home) as native:
        created = [e for e in events(native.store.db) if e.action == "experiment.create"]
        assert [e.actor for e in created] == ["ada"]
        assert verify_chain(native.store.db).ok
