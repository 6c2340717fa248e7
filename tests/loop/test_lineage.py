"""Lineage end to end, on both backends: from a logged prediction to the deployment, the model
version, the loop iteration and its trigger, the pipeline run and its steps, the commit, the gate
result and the dataset versions; from a model version, a run, a pipeline run and a dataset
version; unknown subjects refused naming what was tried; the CLI's tree and --json."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

import loopwright as lw
from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import InvalidInput, NotFound, PermissionDenied
from loopwright.loop.entities import GateRule, GateSpec, RuleOutcome
from loopwright.loop.lineage import LineageGraph, lineage
from loopwright.serving.prediction_log import PredictionLog, PredictionRecord, log_location
from test_public_api import _add_users, live_server

MODEL, DEPLOYMENT, LOOP, DATA = "lin", "lin-api", "lin-loop", "lin-data"
REQUEST = "req-lineage-1"

PIPELINE_SOURCE = '''
"""A two-step pipeline for the lineage tests: read a dataset version, train and register."""

import loopwright as lw
from loopwright.pipelines import pipeline, step


@step
def load(dataset_version_id: str, rows: int) -> list:
    run = lw.active_run()
    run.use_dataset(dataset_version_id)
    return [[float(i % 7), float(i % 3)] for i in range(rows)]


@step
def train(data: list) -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array(data)
    model = LogisticRegression().fit(x, (x[:, 0] > 3).astype(int))
    info = lw.active_run().log_model(
        model, "model", registered_model_name="lin", input_example=x[:3]
    )
    return info.registered_version.version


@pipeline
def make(dataset_version_id: str, rows: int = 40) -> str:
    return f"models:/lin/{train(load(dataset_version_id, rows))}"
'''


@dataclass
class World:
    client: Client
    settings: Settings  # the store's (the server's, remotely)
    home: Path
    pipeline_run_id: str
    dataset_version_id: str
    iteration_id: str
    gate_result_id: str
    train_run_id: str
    predicted_at: datetime


def _data(rows: int, seed: int) -> pd.DataFrame:
    return pd.DataFrame({"a": [float((i * seed) % 5) for i in range(rows)], "b": range(rows)})


def _build(client: Client, bob: Client, settings: Settings, tmp_path: Path, home: Path) -> World:
    from loopwright.pipelines import load_pipeline

    first = client.datasets.add(DATA, _data(20, 1))
    second = client.datasets.add(DATA, _data(20, 2))  # v2, derived from v1
    project = tmp_path / "project"
    project.mkdir()
    (project / "lin_pipeline.py").write_text(textwrap.dedent(PIPELINE_SOURCE))
    made = load_pipeline("lin_pipeline:make", cwd=str(project)).run(
        client=client, params={"dataset_version_id": second.id}
    )
    assert made.status == "completed", made.error
    run = client.pipelines.get_run(made.id)
    train = next(s for s in run.steps if s.step == "train")
    assert train.run_id is not None
    with pytest.raises(PermissionDenied):  # live traffic needs an approved version
        client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")
    (asked,) = client.registry.requests(model=MODEL)
    bob.registry.approve(asked.id, "looks fine")
    client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")
    client.loops.create(
        LOOP,
        deployment=DEPLOYMENT,
        pipeline="lin_pipeline:make",
        model=MODEL,
        triggers=(f"dataset:{DATA}",),
        require_approval=False,
        cwd=str(project),
    )
    # what the scheduler does when the loop's dataset trigger sees a new version
    (schedule,) = client.schedules.list(target=LOOP)
    fire = client.schedules.claim(
        schedule.name, event_key=second.id, due_at=second.created_at, owner="test"
    )
    assert fire is not None
    iteration = client.loops.start_iteration(
        LOOP, trigger=f"dataset:{DATA}", detail=f"dataset {second.ref}"
    )
    client.schedules.finish(fire.id, "succeeded", iteration_id=iteration.id)
    client.loops.transition(
        iteration.id, expect="triggered", to="training", pipeline_run_id=made.id
    )
    spec = GateSpec(
        name="lin-release",
        dataset=f"{DATA}@v1",
        target="a",
        rules=(GateRule("metrics", "accuracy", ">=", 0.5, "metrics.accuracy >= 0.5"),),
    )
    gate = client.gates.record(
        spec,
        model=MODEL,
        version=1,
        dataset_version_id=first.id,
        outcomes=[RuleOutcome("metrics.accuracy >= 0.5", 0.93, True)],
        pipeline_run_id=made.id,
    )
    client.loops.transition(iteration.id, expect="training", to="gating", model_version=1)
    client.loops.transition(
        iteration.id, expect="gating", to="canary", gate_result_id=gate.id, canary_revision=2
    )
    at = datetime.now(UTC)  # after the deployment's revision 1
    with PredictionLog(log_location(settings)) as log:
        for n, request in enumerate(["req-other", REQUEST]):
            log.append(
                PredictionRecord(
                    request_id=request,
                    deployment=DEPLOYMENT,
                    variant="primary",
                    model=MODEL,
                    model_version=1,
                    timestamp=at + timedelta(minutes=n),
                    latency_ms=1.5,
                    status=200,
                    inputs={"x0": [1.0, 5.0], "x1": [0.0, 2.0]},
                    outputs={"predict": [0, 1]},
                )
            )
    return World(
        client, settings, home, made.id, second.id, iteration.id, gate.id, train.run_id, at
    )


@pytest.fixture(params=["embedded", "remote"])
def world(request: pytest.FixtureRequest, tmp_path: Path, db_uri: str) -> Iterator[World]:
    settings = resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs")
    )
    tokens = _add_users(settings)
    if request.param == "embedded":
        embedded: dict[str, Any] = {
            "home": settings.home,
            "db_uri": settings.db_uri,
            "blob_uri": settings.blob_uri,
        }
        with (
            Client(resolve_settings(**embedded, user="ada")) as client,
            Client(resolve_settings(**embedded, user="bob")) as bob,
        ):
            yield _build(client, bob, settings, tmp_path, settings.home)
        return
    with (
        live_server(settings) as url,
        lw.connect(url, token=tokens["ada"], home=tmp_path / "ada-home") as client,
        lw.connect(url, token=tokens["bob"], home=tmp_path / "bob-home") as bob,
    ):
        yield _build(client, bob, settings, tmp_path, tmp_path / "ada-home")


def _kinds(graph: LineageGraph) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for node in graph.nodes:
        kinds.setdefault(node.kind, []).append(node.label)
    return kinds


def _related(graph: LineageGraph, node_id: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for edge, node in graph.out(node_id):
        out.setdefault(edge.relation, []).append(node.id)
    return out


def test_a_prediction_walks_to_the_model_iteration_trigger_pipeline_commit_and_data(
    world: World,
) -> None:
    client = world.client
    graph = lineage(client, REQUEST)
    assert graph.root == f"prediction:{REQUEST}"
    prediction = graph.node(graph.root)
    assert prediction.attrs["rows"] == 2 and prediction.attrs["variant"] == "primary"
    assert _related(graph, graph.root) == {
        "served_by": [f"deployment:{DEPLOYMENT}"],
        "predicted_by": [f"model_version:{MODEL}/1"],
    }
    deployment = graph.node(f"deployment:{DEPLOYMENT}")
    assert deployment.attrs["revision_at_prediction"] == 1
    assert deployment.attrs["variants_at_prediction"][0]["model_uri"] == f"models:/{MODEL}/1"

    version = _related(graph, f"model_version:{MODEL}/1")
    iteration = f"iteration:{world.iteration_id}"
    assert version["produced_by"] == [iteration]
    assert version["gated_by"] == [f"gate_result:{world.gate_result_id}"]
    (approval,) = version["approval"]
    assert graph.node(approval).attrs["status"] == "approved"
    assert graph.node(approval).attrs["decisions"][0]["actor"] == "bob"
    (train_step,) = version["trained_in"]
    assert graph.node(train_step).kind == "step"
    assert graph.node(train_step).attrs["run_id"] == world.train_run_id

    links = _related(graph, iteration)
    assert graph.node(iteration).attrs["state"] == "canary"
    (trigger,) = links["triggered_by"]
    assert graph.node(trigger).label == f"dataset:{DATA}"
    assert graph.node(trigger).attrs["detail"] == f"dataset {DATA}@v2"
    assert graph.node(trigger).attrs["event_key"] == world.dataset_version_id
    assert _related(graph, trigger)["new_version"] == [
        f"dataset_version:{world.dataset_version_id}"
    ]
    assert links["trained_by"] == [f"pipeline_run:{world.pipeline_run_id}"]
    assert links["gate"] == [f"gate_result:{world.gate_result_id}"]

    pipeline = _related(graph, f"pipeline_run:{world.pipeline_run_id}")
    steps = [graph.node(s).attrs["invocation"] for s in pipeline["ran"]]
    assert steps == ["load", "train"]
    load_step = pipeline["ran"][0]
    used = _related(graph, load_step)["used"]
    assert used == [f"dataset_version:{world.dataset_version_id}"]
    assert _related(graph, train_step)["registered"] == [f"model_version:{MODEL}/1"]
    # v2 of the data came after v1: its parent
    assert graph.node(used[0]).label == f"{DATA}@v2"
    (parent,) = _related(graph, used[0])["derived_from"]
    assert graph.node(parent).label == f"{DATA}@v1"
    # the gate's holdout is a dataset version too
    gate = _related(graph, f"gate_result:{world.gate_result_id}")
    assert gate["evaluated_on"] == [parent]

    commit = client.tracking.get_run(world.train_run_id).git_commit
    if commit is not None:  # the suite runs inside a git checkout, or from an sdist
        assert _related(graph, train_step)["code"] == [f"commit:{commit}"]
    # every edge joins nodes of the graph; the JSON form carries the same
    ids = {node.id for node in graph.nodes}
    assert all(edge.src in ids and edge.dst in ids for edge in graph.edges)
    document = json.loads(json.dumps(graph.to_dict()))
    assert document["root"] == graph.root and len(document["nodes"]) == len(graph.nodes)


def test_model_versions_runs_pipeline_runs_and_datasets_are_subjects(world: World) -> None:
    client = world.client
    for subject in (f"{MODEL}@1", f"models:/{MODEL}/1", f"{MODEL}@v1"):
        graph = lineage(client, subject)
        assert graph.root == f"model_version:{MODEL}/1", subject
        assert f"iteration:{world.iteration_id}" in _related(graph, graph.root)["produced_by"]

    by_run = lineage(client, world.train_run_id)
    root = by_run.node(by_run.root)
    assert (root.kind, root.attrs["invocation"]) == ("step", "train")
    assert _related(by_run, by_run.root)["registered"] == [f"model_version:{MODEL}/1"]

    by_pipeline = lineage(client, world.pipeline_run_id)
    assert by_pipeline.root == f"pipeline_run:{world.pipeline_run_id}"
    assert len(_related(by_pipeline, by_pipeline.root)["ran"]) == 2

    by_data = lineage(client, f"{DATA}@v2")
    assert by_data.root == f"dataset_version:{world.dataset_version_id}"
    (reader,) = _related(by_data, by_data.root)["used_by"]
    assert by_data.node(reader).attrs["invocation"] == "load"
    forced = lineage(client, f"{DATA}@v1", kind="dataset_version")
    assert forced.node(forced.root).label == f"{DATA}@v1"


def test_unknown_subjects_are_refused_naming_what_was_tried(world: World) -> None:
    client = world.client
    with pytest.raises(NotFound, match=r"no prediction with request id 'req-nope'.*--since"):
        lineage(client, "req-nope")
    with pytest.raises(NotFound, match="no prediction"):  # logged before the window
        lineage(client, REQUEST, since=world.predicted_at + timedelta(minutes=2))
    assert lineage(client, REQUEST, deployment=DEPLOYMENT).root == f"prediction:{REQUEST}"
    with pytest.raises(NotFound, match="has nothing in the prediction log"):
        lineage(client, REQUEST, deployment="other-api")
    with pytest.raises(NotFound, match="no model version and no dataset version"):
        lineage(client, "nothing@v9")
    with pytest.raises(NotFound, match="no run id, pipeline run id, trace id or logged request id"):
        lineage(client, "0" * 32)
    with pytest.raises(NotFound):
        lineage(client, "0" * 32, kind="run")
    with pytest.raises(InvalidInput, match="not one of"):
        lineage(client, REQUEST, kind="feature_view")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="needs a subject"):
        lineage(client, "  ")


def test_the_cli_prints_the_tree_and_the_json(world: World) -> None:
    runner = CliRunner()
    if world.client.is_remote:
        base = ["--server", world.client.settings.server_uri or ""]
        env = {"LOOPWRIGHT_TOKEN": world.client.settings.token or ""}
    else:
        base = ["--home", str(world.home), "--db-uri", world.settings.db_uri]
        base += ["--blob-uri", world.settings.blob_uri]
        env = {}
    shown = runner.invoke(app, [*base, "lineage", REQUEST], env={**env, "COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    text = shown.output
    for expected in (
        f"prediction {REQUEST}",
        f"model version models:/{MODEL}/1",
        "iteration lin-loop #1: canary",
        f"trigger dataset:{DATA}",
        "step load (completed)",
        f"dataset version {DATA}@v2",
        "gate result lin-release: passed",
    ):
        assert expected in text, (expected, text)
    assert text.index("iteration") < text.index("pipeline run") < text.index("step train")
    # Lines read as sentences: no word twice, the trigger's event not repeated on its line.
    (asked,) = world.client.registry.requests(status=None, model=MODEL)
    sentence = (
        f"approval request {asked.id} (traffic for version 1): approved by bob; opened by ada"
    )
    assert sentence in text, text
    assert "approval approval" not in text and "gate gate" not in text
    (trigger_line,) = [line for line in text.splitlines() if f"trigger dataset:{DATA}" in line]
    assert " fired " in trigger_line and " by schedule loop:lin-loop:1" in trigger_line
    assert f"dataset {DATA}@v2" not in trigger_line  # the new_version node below says it

    as_json = runner.invoke(app, [*base, "lineage", f"{MODEL}@1", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    document: dict[str, Any] = json.loads(as_json.stdout)
    assert document["root"] == f"model_version:{MODEL}/1"
    assert {"iteration", "pipeline_run", "step", "gate_result"} <= {
        n["kind"] for n in document["nodes"]
    }

    missing = runner.invoke(app, [*base, "lineage", "req-nope", "--since", "1d"], env=env)
    assert missing.exit_code == 1 and "no prediction" in missing.output
    bad = runner.invoke(app, [*base, "lineage", REQUEST, "--since", "soon"], env=env)
    assert bad.exit_code == 1 and "--since" in bad.output
    kind = runner.invoke(app, [*base, "lineage", REQUEST, "--kind", "thing"], env=env)
    assert kind.exit_code == 1 and "--kind" in kind.output


def test_a_walk_past_its_bound_stops_and_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwright.loop import _lineage_walk

    monkeypatch.setattr(_lineage_walk, "MAX_NODES", 4)
    graph = lineage(world.client, REQUEST)
    assert len(graph.nodes) == 4
    assert graph.notes == ["the walk stopped at 4 records; start from a narrower subject"]
    ids = {node.id for node in graph.nodes}
    assert all(edge.src in ids and edge.dst in ids for edge in graph.edges)
