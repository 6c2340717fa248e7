"""Features at inference: requests carrying entity keys, completed from the online store.

A real embedded feature store (definitions in the test's SQLite database, the online store in
SQLite under the home), a model registered from a run tagged with the feature service, served
by the app on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from _served_model import free_port, live, running, serve_command

from loopwright.client import Client
from loopwright.errors import InvalidInput
from loopwright.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    RequestSource,
    on_demand_feature_view,
    to_specs,
)
from loopwright.registry.packaging.signature import ColumnSpec, Signature
from loopwright.serving._feature_input import FeatureInput
from loopwright.serving.repository import ModelRepository
from loopwright.serving.server import ServeConfig, build_app
from loopwright.serving.sources import resolve_source

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

SERVICE = "driver_model"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
driver = Entity("driver", join_keys={"driver_id": "int64"})


@on_demand_feature_view(
    sources=["driver_stats", RequestSource("ride", [Field("distance", "float64")])],
    schema=[Field("conv_per_km", "float64")],
)
def conv_per_km(df: Any) -> Any:
    import pandas as pd

    return pd.DataFrame({"conv_per_km": df["conv_rate"].astype("float64") / df["distance"]})


def definitions(path: Path) -> list[dict[str, Any]]:
    stats = FeatureView(
        "driver_stats",
        entities=[driver],
        source=FileSource(str(path), timestamp_field="event_timestamp"),
        schema=[
            Field("conv_rate", "float32"),
            Field("trips", "int64", default=7),
            Field("acc_rate", "float64"),
        ],
    )
    return to_specs(
        [
            FeatureService(SERVICE, features=[stats, conv_per_km]),
            FeatureService("per_km", features=[conv_per_km]),  # its source view left out
        ]
    )


def stats_frame() -> Any:
    return pd.DataFrame(
        {
            "driver_id": np.array([1001, 1002, 1003, 1001], dtype="int64"),
            "event_timestamp": [T0, T0, T0, T0.replace(day=2)],
            "conv_rate": np.array([0.5, 0.25, 0.75, 0.625], dtype="float32"),
            "trips": np.array([10, 20, 30, 11], dtype="int64"),
            "acc_rate": [0.9, 0.8, 0.7, 0.95],
        }
    )


@pytest.fixture
def features(client: Client, tmp_path: Path) -> Client:
    """The service applied and materialized; driver 1004 has no online row."""
    path = tmp_path / "driver_stats.parquet"
    stats_frame().to_parquet(path)
    client.features.apply(definitions(path))
    client.features.materialize(end=datetime(2026, 12, 1, tzinfo=UTC))
    return client


@contextmanager
def _serving(features: Client, tmp_path: Path, grpc_address: str | None = None) -> Iterator[str]:
    """``drivers`` v1 trained on the service's columns, tagged with it, served by the app
    (the prediction log under ``tmp_path/log``)."""
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame(
        {
            "conv_rate": np.array([0.5, 0.25, 0.75], dtype="float32"),
            "trips": np.array([10, 20, 30], dtype="int64"),
            "conv_per_km": [0.1, 0.2, 0.3],
        }
    )
    model = LinearRegression().fit(X, [1.0, 2.0, 4.0])
    with features.start_run(experiment="features") as run:
        run.set_tag("loopwright.feature_service", f"{SERVICE}@v1")
        run.log_model(model, "model", input_example=X[:2], registered_model_name="drivers")
    version = features.registry.get_version("drivers", 1)
    assert version.tags["loopwright.feature_service"] == f"{SERVICE}@v1"
    source = resolve_source("models:/drivers/1", features)
    assert source.feature_service == f"{SERVICE}@v1"
    repository = ModelRepository([source], features=lambda: features.features)
    repository.load_all()
    config = ServeConfig(sources=(), log_root=str(tmp_path / "log"), grpc_address=grpc_address)
    with live(build_app(config, repository)) as url:
        yield url


@pytest.fixture
def served(features: Client, tmp_path: Path) -> Iterator[str]:
    with _serving(features, tmp_path) as url:
        yield url


def test_entity_keys_are_completed_over_oip_and_invocations(
    served: str, features: Client, tmp_path: Path
) -> None:
    body = {
        "inputs": [
            {"name": "driver_id", "shape": [2], "datatype": "INT64", "data": [1001, 1002]},
            {"name": "distance", "shape": [2], "datatype": "FP64", "data": [2.0, 5.0]},
        ]
    }
    oip = httpx.post(f"{served}/v2/models/drivers/infer", json=body, timeout=30)
    assert oip.status_code == 200, oip.text
    records = {"dataframe_records": [{"driver_id": 1001, "distance": 2.0}]}
    mlflow = httpx.post(f"{served}/invocations", json=records, timeout=30)
    assert mlflow.status_code == 200, mlflow.text
    # The same rows with the features as the online store holds them (1001: its newer row).
    model = features.load_model("models:/drivers/1")
    full = pd.DataFrame(
        {
            "conv_rate": np.array([0.625, 0.25], dtype="float32"),
            "trips": np.array([11, 20], dtype="int64"),
            "conv_per_km": [0.625 / 2.0, 0.25 / 5.0],
        }
    )
    expected = np.asarray(model.predict(full))
    assert oip.json()["outputs"][0]["data"] == expected.tolist()
    assert mlflow.json()["predictions"] == expected[:1].tolist()


def test_the_log_records_keys_request_data_and_features_served(
    features: Client, tmp_path: Path
) -> None:
    from loopwright.serving.predictions import read_predictions

    with _serving(features, tmp_path) as url:
        records = {"dataframe_records": [{"driver_id": 1003, "distance": 3.0}]}
        answer = httpx.post(f"{url}/invocations", json=records, timeout=30)
        assert answer.status_code == 200, answer.text
    logged = read_predictions(str(tmp_path / "log"), "drivers")
    assert logged["input.driver_id"].tolist() == [1003]
    assert logged["input.distance"].tolist() == [3.0]
    assert logged["input.conv_rate"].tolist() == [0.75]
    assert logged["input.trips"].tolist() == [30]
    assert logged["input.acc_rate"].tolist() == [0.7]  # served though the model takes none
    assert logged["input.conv_per_km"].tolist() == [0.25]


def test_a_missing_entity_is_refused_naming_it(served: str) -> None:
    records = {
        "dataframe_records": [
            {"driver_id": 1001, "distance": 1.0},
            {"driver_id": 1004, "distance": 1.0},
        ]
    }
    answer = httpx.post(f"{served}/invocations", json=records, timeout=30)
    assert answer.status_code == 400, answer.text
    message = answer.json()["message"]
    assert "driver_id=1004" in message and "'conv_rate'" in message and "row 1" in message
    assert "'trips'" not in message  # it has a default


def test_missing_entity_key_column_names_it(served: str) -> None:
    answer = httpx.post(
        f"{served}/invocations", json={"dataframe_records": [{"distance": 1.0}]}, timeout=30
    )
    assert answer.status_code == 400
    assert "entity key column 'driver_id'" in answer.json()["message"]


def test_a_request_with_every_feature_is_served_without_a_lookup(served: str) -> None:
    # Driver 1004 has no online row: a lookup would refuse it.
    columns = [
        ("driver_id", "INT64", [1004]),
        ("conv_rate", "FP32", [0.5]),
        ("trips", "INT64", [10]),
        ("conv_per_km", "FP64", [0.1]),
    ]
    body = {
        "inputs": [
            {"name": name, "shape": [1], "datatype": kind, "data": data}
            for name, kind, data in columns
        ]
    }
    answer = httpx.post(f"{served}/v2/models/drivers/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text


def _input(features: Client, signature: Signature) -> FeatureInput:
    return FeatureInput.load(features.features, f"{SERVICE}@v1", signature, "model 'm'")


def test_defaults_fill_and_optional_columns_stay_missing(features: Client) -> None:
    signature = Signature(
        inputs=(
            ColumnSpec("conv_rate", "float", required=False),
            ColumnSpec("trips", "long"),
            ColumnSpec("acc_rate", "double", required=False),
        )
    )
    step = _input(features, signature)
    completed = step.complete(pd.DataFrame({"driver_id": [1002, 1004], "distance": [1.0, 2.0]}))
    assert completed["trips"].tolist() == [20, 7]  # 1004: the declared default
    assert completed["conv_rate"].dtype == np.float32
    assert completed["conv_rate"].iloc[0] == np.float32(0.25)
    assert np.isnan(completed["conv_rate"].iloc[1]) and np.isnan(completed["acc_rate"].iloc[1])
    # The completed frame keeps the keys and request data (what the prediction log records).
    assert completed["driver_id"].tolist() == [1002, 1004]
    assert completed["distance"].tolist() == [1.0, 2.0]


def test_a_required_feature_without_value_is_refused(features: Client) -> None:
    signature = Signature(inputs=(ColumnSpec("conv_rate", "float"), ColumnSpec("trips", "long")))
    step = _input(features, signature)
    with pytest.raises(InvalidInput, match=r"driver_id=1004 \(row 0\): 'conv_rate' \(not_found\)"):
        step.complete(pd.DataFrame({"driver_id": [1004], "distance": [1.0]}))


def test_full_feature_names_follow_the_signature(features: Client) -> None:
    signature = Signature(inputs=(ColumnSpec("driver_stats__conv_rate", "float"),))
    step = _input(features, signature)
    assert step.full_feature_names
    completed = step.complete(pd.DataFrame({"driver_id": [1003], "distance": [1.0]}))
    assert completed["driver_stats__conv_rate"].tolist() == [0.75]


def test_grpc_completes_entity_keys_too(features: Client, tmp_path: Path) -> None:
    triton = pytest.importorskip("tritonclient.grpc")
    address = f"127.0.0.1:{free_port()}"
    with _serving(features, tmp_path, address):
        connection = triton.InferenceServerClient(address)
        try:
            keys = triton.InferInput("driver_id", [2], "INT64")
            keys.set_data_from_numpy(np.array([1003, 1002], dtype=np.int64))
            distance = triton.InferInput("distance", [2], "FP64")
            distance.set_data_from_numpy(np.array([3.0, 0.5]))
            answer = connection.infer("drivers", [keys, distance]).as_numpy("predict")
            with pytest.raises(Exception, match="driver_id=1004"):
                keys.set_data_from_numpy(np.array([1004, 1002], dtype=np.int64))
                connection.infer("drivers", [keys, distance])
        finally:
            connection.close()
    model = features.load_model("models:/drivers/1")
    full = pd.DataFrame(
        {
            "conv_rate": np.array([0.75, 0.25], dtype="float32"),
            "trips": np.array([30, 20], dtype="int64"),
            "conv_per_km": [0.75 / 3.0, 0.25 / 0.5],
        }
    )
    assert answer.tolist() == np.asarray(model.predict(full)).tolist()


def test_serve_through_a_server_reads_features_over_http(
    features: Client, store_settings: dict[str, str], tmp_path: Path
) -> None:
    """``loopwright serve --server URL``: the definitions and online lookups go to the
    server's feature store (its online store on the same home, materialized above)."""
    import sys

    with _serving(features, tmp_path):  # registers drivers v1 (the app itself is not used)
        pass

    def answering(url: str, path: str) -> Any:
        return lambda: httpx.get(f"{url}{path}", timeout=2).status_code == 200

    server_port, serve_port = free_port(), free_port()
    server_url, serve_url = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{serve_port}"
    server = [*serve_command(store_settings)[:-1], "server", "--port", str(server_port)]
    remote = [sys.executable, "-m", "loopwright.cli", "--home", str(tmp_path / "elsewhere")]
    serve = [*remote, "--server", server_url, "serve", "models:/drivers/1"]
    serving = [*serve, "--port", str(serve_port)]
    with (
        running(server, answering(server_url, "/health")),
        running(serving, answering(serve_url, "/v2/health/ready")),
    ):
        records = [{"driver_id": 1002, "distance": 0.5}, {"driver_id": 1004, "distance": 1}]
        scored = httpx.post(
            f"{serve_url}/invocations", json={"dataframe_records": records[:1]}, timeout=30
        )
        refused = httpx.post(
            f"{serve_url}/invocations", json={"dataframe_records": records}, timeout=30
        )
    assert scored.status_code == 200, scored.text
    model = features.load_model("models:/drivers/1")
    full = pd.DataFrame(
        {
            "conv_rate": np.array([0.25], dtype="float32"),
            "trips": np.array([20], dtype="int64"),
            "conv_per_km": [0.25 / 0.5],
        }
    )
    assert scored.json()["predictions"] == np.asarray(model.predict(full)).tolist()
    assert refused.status_code == 400 and "driver_id=1004" in refused.json()["message"]


def test_missing_request_data_of_an_on_demand_view_is_refused(features: Client) -> None:
    signature = Signature(inputs=(ColumnSpec("conv_per_km", "double"),))
    step = _input(features, signature)
    with pytest.raises(InvalidInput, match="distance"):
        step.complete(pd.DataFrame({"driver_id": [1002]}))


def test_a_version_naming_an_unknown_service_does_not_load(features: Client) -> None:
    from sklearn.linear_model import LinearRegression

    from loopwright.errors import NotFound

    X = pd.DataFrame({"conv_rate": np.array([0.5, 0.25], dtype="float32")})
    with features.start_run(experiment="features") as run:
        run.set_tag("loopwright.feature_service", "no_such_service@v3")
        run.log_model(LinearRegression().fit(X, [1.0, 2.0]), "model", registered_model_name="x")
    source = resolve_source("models:/x/1", features)
    repository = ModelRepository([source], features=lambda: features.features)
    with pytest.raises(NotFound, match="no_such_service"):
        repository.load_all()


def test_a_deployment_and_its_shadow_complete_entity_keys(features: Client, tmp_path: Path) -> None:
    """``serve --deployment``: the variants' models get the feature store too; a shadow copy
    is completed (it holds the features already) and logged like the primary's answer."""
    from loopwright.cli._serve_deployment import load_deployment
    from loopwright.registry.entities import ApprovalPolicy
    from loopwright.serving.entities import SHADOW, Variant
    from loopwright.serving.predictions import read_predictions

    with _serving(features, tmp_path):  # registers drivers v1
        pass
    features.registry.set_policy("drivers", ApprovalPolicy(rules=()))  # no traffic approval
    features.deployments.create("rides", "models:/drivers/1")
    features.deployments.set_traffic(
        "rides",
        [
            Variant("primary", "models:/drivers/1", 1.0),
            Variant("copy", "models:/drivers/1", 1.0, role=SHADOW),
        ],
    )
    root = str(tmp_path / "deployment-log")
    config = ServeConfig(sources=(), deployment="rides", log_root=root)
    repository, watcher = load_deployment(config, features.settings)
    with live(build_app(config, repository, watcher)) as url:
        records = {"dataframe_records": [{"driver_id": 1003, "distance": 3.0}]}
        answer = httpx.post(f"{url}/invocations", json=records, timeout=30)
        assert answer.status_code == 200, answer.text
        time.sleep(0.5)  # the shadow copy runs after the answer
    logged = read_predictions(root, "rides")
    assert sorted(logged["variant"]) == ["copy", "primary"]
    assert logged["input.conv_rate"].tolist() == [0.75, 0.75]
    assert logged["input.driver_id"].tolist() == [1003, 1003]


def test_an_on_demand_view_alone_takes_the_keys_of_its_source_views(features: Client) -> None:
    signature = Signature(inputs=(ColumnSpec("conv_per_km", "double"),))
    step = FeatureInput.load(features.features, "per_km@v1", signature, "model 'm'")
    assert step.join_keys == ("driver_id",) and step.request_fields == ("distance",)
    completed = step.complete(pd.DataFrame({"driver_id": [1002], "distance": [0.5]}))
    assert completed["conv_per_km"].tolist() == [0.5]
    assert "conv_rate" not in completed  # fetched for the on-demand view only
