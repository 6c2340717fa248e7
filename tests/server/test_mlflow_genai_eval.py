"""MLflow 3's evaluation-dataset and scorer API against Loopwright's server, driven by the real
``mlflow`` client (``mlflow.genai.datasets``, ``Scorer.register``, ``mlflow.genai.evaluate``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conftest import LiveServer
from loopwright.client import Client

ROWS = [
    {"inputs": {"question": "2+2"}, "expectations": {"expected_response": "4"}},
    {"inputs": {"question": "3+3"}, "expectations": {"expected_response": "6"}},
]


def test_eval_datasets_through_mlflow_are_loopwright_dataset_versions(
    mlflow_client: Any, live_server: LiveServer
) -> None:
    mlflow = mlflow_client
    from mlflow.genai.datasets import create_dataset, delete_dataset, get_dataset, search_datasets

    experiment = mlflow.set_experiment("genai-eval")
    made = create_dataset(name="qa_set", experiment_id=[experiment.experiment_id], tags={"t": "a"})
    assert made.dataset_id.startswith("d-") and made.tags["t"] == "a"
    made.merge_records(ROWS)
    made.merge_records([{"inputs": {"question": "2+2"}, "expectations": {"note": "easy"}}])

    found = get_dataset(dataset_id=made.dataset_id)
    frame = found.to_df()
    assert sorted(row["question"] for row in frame["inputs"]) == ["2+2", "3+3"]
    merged = next(
        e
        for e, i in zip(frame["expectations"], frame["inputs"], strict=True)
        if i["question"] == "2+2"
    )
    assert merged == {"expected_response": "4", "note": "easy"}
    assert [d.name for d in search_datasets(experiment_ids=[experiment.experiment_id])] == [
        "qa_set"
    ]
    assert search_datasets(filter_string="name LIKE 'nothing%'") == []
    # An id given as a string: MLflow's client sends it split into characters.
    client = mlflow.MlflowClient()
    assert [d.name for d in client.search_datasets(experiment_ids=experiment.experiment_id)] == [
        "qa_set"
    ]
    assert [d.name for d in client.search_datasets(filter_string="tags.t = 'a'")] == ["qa_set"]

    with Client(live_server.settings) as client:  # the same store, read directly
        ours = client.evaluation.get_dataset("qa_set")
        assert ours.version == 2 and found.digest == (ours.digest or "")[:32]
        assert client.datasets.get("qa_set@v2").content_hash == ours.digest
    delete_dataset(dataset_id=made.dataset_id)
    with pytest.raises(mlflow.exceptions.MlflowException, match="not found"):
        get_dataset(dataset_id=made.dataset_id)


def test_scorers_register_list_get_delete(
    mlflow_client: Any, monkeypatch: pytest.MonkeyPatch, live_server: LiveServer
) -> None:
    mlflow = mlflow_client
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS", "true")  # the client's own guard
    from mlflow.genai.scorers import delete_scorer, get_scorer, list_scorers, scorer

    mlflow.set_experiment("genai-scorers")

    @scorer
    def exact(outputs: str, expectations: dict[str, str]) -> bool:
        return bool(outputs == expectations["expected_response"])

    exact.register(name="exact")
    assert [s.name for s in list_scorers()] == ["exact"]
    assert get_scorer(name="exact").name == "exact"
    with Client(live_server.settings) as client:
        experiment = client.tracking.get_experiment_by_name("genai-scorers")
        stored = client.evaluation.get_scorer("exact", scope=experiment.id)
        assert (stored.kind, stored.version) == ("mlflow", 1)
    delete_scorer(name="exact", version="all")
    assert list_scorers() == []
    with pytest.raises(mlflow.exceptions.MlflowException, match="not registered"):
        get_scorer(name="exact")


def test_malformed_calls_and_online_config(live_server: LiveServer) -> None:
    base = f"{live_server.url}/api/3.0/mlflow"
    bad_records = httpx.post(f"{base}/datasets/d-{'0' * 32}/records", json={"records": "[1"})
    assert bad_records.status_code == 400 and "JSON list" in bad_records.json()["message"]
    created = httpx.post(f"{base}/datasets/create", json={"name": "bad_input"}).json()
    path = f"{base}/datasets/{created['dataset']['dataset_id']}/records"
    wrong = httpx.post(path, json={"records": '[{"outputs": 1}]'})
    assert wrong.status_code == 400 and "no 'inputs'" in wrong.json()["message"]
    bad_filter = httpx.post(f"{base}/datasets/search", json={"filter_string": "name ~ 'x'"})
    assert bad_filter.status_code == 400 and "not supported" in bad_filter.json()["message"]
    missing = httpx.get(f"{base}/scorers/get", params={"name": "nope"})
    assert missing.status_code == 404
    online = httpx.put(f"{base}/scorers/online-config", json={"name": "x", "sample_rate": 1})
    assert online.status_code == 400 and online.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "trace monitor" in online.json()["message"]
    assert httpx.get(f"{base}/scorers/online-configs").json() == {"configs": []}


@pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning")
def test_mlflow_genai_evaluate_against_our_server(
    mlflow_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = mlflow_client
    monkeypatch.setenv("MLFLOW_GENAI_EVAL_MAX_WORKERS", "2")
    from mlflow.genai.datasets import create_dataset
    from mlflow.genai.scorers import scorer

    mlflow.set_experiment("genai-evaluate")
    dataset = create_dataset(name="evaluate_me")
    dataset.merge_records(ROWS)

    @scorer
    def exact(outputs: str, expectations: dict[str, str]) -> bool:
        return bool(outputs == expectations["expected_response"])

    result = mlflow.genai.evaluate(
        data=dataset, predict_fn=lambda question: str(eval(question)), scorers=[exact]
    )
    assert result.metrics["exact/mean"] == 1.0
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    traces = mlflow.search_traces(run_id=result.run_id, return_type="list")
    assert len(traces) == 2  # one trace per row, each with the scorer's assessment
    assert all(t.search_assessments(name="exact")[0].value is True for t in traces)
