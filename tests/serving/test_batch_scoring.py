"""Batch scoring: ``predict_batch`` / ``client.predict_batch`` / ``loopwright predict``.

Real files, a real registry, real worker processes and a real local Ray; no mocks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _batch_models import CountsLoads, SlowDouble, SlowToStartInWorkers, WaitsForAWorker
from _ray_cluster import ray_local  # noqa: F401  (the session fixture, used by name)
from _served_model import MODEL, train, training_frame
from typer.testing import CliRunner

from loopwright.cli.app import app
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import (
    AlreadyExists,
    ConfigError,
    InvalidInput,
    ModelFailed,
    NotFound,
    SignatureError,
    UntrustedModel,
)
from loopwright.registry.packaging.package import save_model
from loopwright.serving.batch import BatchResult, predict_batch

COLORS = np.array(["red", "blue", "green"])


def frame(rows: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(start)
    return pd.DataFrame(
        {
            "id": np.arange(start, start + rows),
            "a": rng.random(rows),
            "b": rng.random(rows) * 3,
            "color": COLORS[rng.integers(0, 3, rows)],
        }
    )


def write_parquet(path: Path, data: pd.DataFrame, row_group_size: int = 100) -> Path:
    pq.write_table(
        pa.Table.from_pandas(data, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


@pytest.fixture
def folder_model(tmp_path: Path) -> Path:
    """The serving tests' model as a package folder (no store needed)."""
    X, _ = training_frame()
    folder = tmp_path / "model"
    save_model(train(), folder, input_example=X[:3])
    return folder


def leftovers(parent: Path) -> list[str]:
    """Staging folders or temporary files a job left behind."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --- what comes out ------------------------------------------------------------------------


def test_registered_model_scores_parquet_into_parts(
    client: Client, model: Any, tmp_path: Path
) -> None:
    data = frame(1000)
    source = write_parquet(tmp_path / "in.parquet", data)
    result = client.predict_batch(
        f"models:/{MODEL}/1",
        source,
        tmp_path / "out",
        batch_rows=128,
        keep_columns=["id"],
        outputs=["predict", "predict_proba"],
    )
    assert isinstance(result, BatchResult)
    assert (result.rows, result.model, result.model_version) == (1000, MODEL, 1)
    assert result.batches == 8  # batches of 128 rows span the row groups of 100
    out = pq.read_table(tmp_path / "out")
    assert out.column_names == ["id", "predict", "predict_proba", "model", "model_version"]
    assert out["id"].to_pylist() == list(range(1000))
    expected = model.predict(data[["a", "b", "color"]])
    assert out["predict"].to_numpy().tolist() == expected.tolist()
    proba = np.array(out["predict_proba"].to_pylist())
    np.testing.assert_allclose(proba, model.predict_proba(data[["a", "b", "color"]]))
    assert set(out["model"].to_pylist()) == {MODEL}
    assert set(out["model_version"].to_pylist()) == {1}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["part-00000.parquet"]
    assert leftovers(tmp_path) == []


def test_a_run_s_model_and_an_alias_score_too(client: Client, model: Any, tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "in.parquet", frame(20))
    version = client.registry.get_version(MODEL, 1)
    client.registry.set_alias(MODEL, "challenger", 1)
    by_alias = client.predict_batch(f"models:/{MODEL}@challenger", source, tmp_path / "a")
    assert (by_alias.model, by_alias.model_version) == (MODEL, 1)  # the alias, resolved once
    by_run = client.predict_batch(f"runs:/{version.run_id}/model", source, tmp_path / "b")
    assert (by_run.model, by_run.model_version) == ("model", None)
    assert pq.read_table(tmp_path / "a")["predict"].equals(pq.read_table(tmp_path / "b")["predict"])


def test_csv_folder_and_glob_score_like_parquet(folder_model: Path, tmp_path: Path) -> None:
    (tmp_path / "csv").mkdir()
    first, second = frame(300), frame(200, start=300)
    first.to_csv(tmp_path / "csv" / "a.csv", index=False)
    second.to_csv(tmp_path / "csv" / "b.csv", index=False)
    by_folder = predict_batch(
        None, str(folder_model), tmp_path / "csv", tmp_path / "out1", keep_columns=["id"]
    )
    by_glob = predict_batch(
        None, str(folder_model), str(tmp_path / "csv" / "*.csv"), tmp_path / "out2"
    )
    assert by_folder.rows == by_glob.rows == 500
    assert by_folder.parts == 2  # a unit per CSV file, in file order
    out = pq.read_table(tmp_path / "out1")
    assert out["id"].to_pylist() == list(range(500))
    assert out["model_version"].null_count == 500  # a folder has no registry version
    assert pq.read_table(tmp_path / "out2")["predict"].equals(out["predict"])
    in_processes = predict_batch(
        None, str(folder_model), tmp_path / "csv", tmp_path / "out3", executor="process", workers=8
    )
    assert in_processes.workers == 2  # no more processes than units (a CSV file is one)
    assert pq.read_table(tmp_path / "out3")["predict"].equals(out["predict"])


@pytest.mark.usefixtures("ray_local")
def test_process_and_ray_executors_write_what_local_writes(
    folder_model: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    write_parquet(source / "x.parquet", frame(3000), row_group_size=250)
    write_parquet(source / "y.parquet", frame(1000, start=3000), row_group_size=250)
    common: dict[str, Any] = {"keep_columns": ["id"], "batch_rows": 200}
    local = predict_batch(None, str(folder_model), source, tmp_path / "local", **common)
    process = predict_batch(
        None,
        str(folder_model),
        source,
        tmp_path / "process",
        executor="process",
        workers=2,
        **common,
    )
    ray = predict_batch(
        None, str(folder_model), source, tmp_path / "ray", executor="ray", workers=2, **common
    )
    assert local.rows == process.rows == ray.rows == 4000
    assert process.parts > 2 and ray.parts == process.parts  # row-group ranges, not files
    expected = pq.read_table(tmp_path / "local")
    for name in ("process", "ray"):
        got = pq.read_table(tmp_path / name)
        assert got["id"].to_pylist() == list(range(4000))  # part numbering keeps input order
        assert got.equals(expected)
    assert leftovers(tmp_path) == []


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("executor", ["process", "ray"])
def test_each_worker_process_loads_the_package_once(tmp_path: Path, executor: str) -> None:
    log = tmp_path / "loads.txt"
    example = pd.DataFrame({"a": [1.0]})
    save_model(CountsLoads(str(log)), tmp_path / "model", input_example=example)
    log.unlink(missing_ok=True)  # saving does not load; be sure
    data = pd.DataFrame({"a": np.arange(2000.0)})
    source = write_parquet(tmp_path / "in.parquet", data, row_group_size=250)
    result = predict_batch(
        None,
        str(tmp_path / "model"),
        source,
        tmp_path / "out",
        executor=executor,
        workers=2,
        batch_rows=100,
        trusted=True,
    )
    assert result.parts == 8  # more units than workers: each worker scores several
    pids = log.read_text().split()
    assert str(os.getpid()) in pids  # this process checks the input against the model
    assert len(pids) == len(set(pids)) and len(pids) >= 2  # once per process, never per unit
    assert pq.read_table(tmp_path / "out")["predict"].to_pylist() == list(data["a"] * 2)


@pytest.fixture
def store_client(db_uri: str, blob_uri: str, tmp_path: Path) -> Iterator[Client]:
    """A client on SQLite and PostgreSQL, a local and an S3 blob store, with the serving
    tests' model registered as ``clf`` version 1."""
    settings = resolve_settings(
        home=tmp_path / "home", db_uri=db_uri, blob_uri=blob_uri, user="ada"
    )
    with Client(settings) as client:
        X, _ = training_frame()
        with client.start_run(experiment="training") as run:
            run.log_model(train(), "model", input_example=X[:3], registered_model_name=MODEL)
        yield client


def test_dataset_version_in_registered_version_out_with_lineage(
    store_client: Client, tmp_path: Path
) -> None:
    client = store_client
    write_parquet(tmp_path / "customers.parquet", frame(400))
    customers = client.datasets.add("customers", tmp_path / "customers.parquet", message="q3")
    client.datasets.set_alias(customers.ref, "golden")
    result = client.predict_batch(
        f"models:/{MODEL}/latest",
        "customers@golden",
        tmp_path / "scores",
        keep_columns=["id"],
        register="customer-scores",
    )
    assert result.input_version == customers.ref
    scores = client.datasets.get("customer-scores@v1")
    assert result.dataset_version is not None and result.dataset_version.id == scores.id
    # The chain back from the output: the producing run, its model and its input.
    assert scores.produced_by_run_id == result.run_id
    assert scores.produced_by_run_id is not None
    run = client.get_run(scores.produced_by_run_id)
    experiment = client.tracking.get_experiment(run.experiment_id)
    assert experiment.name == "batch-scoring"
    assert run.status.value == "FINISHED"
    version = client.registry.get_version(MODEL, 1)
    assert run.tags["loopwright.model_version_id"] == version.id
    assert client.registry.get_version_by_id(run.tags["loopwright.model_version_id"]) == version
    assert run.tags["loopwright.model_run_id"] == version.run_id
    assert run.params["model_version"] == "1" and run.params["input"] == customers.ref
    assert client.datasets.runs_using(customers) == [run.id]
    assert scores.tags["model"] == f"models:/{MODEL}/1"
    assert scores.tags["input"] == customers.ref
    assert run.metrics["rows"].value == 400
    assert [f.path for f in client.datasets.files(scores)] == ["part-00000.parquet"]
    assert leftovers(tmp_path) == []  # the downloaded input is gone too


def test_through_a_server_the_same_job_and_lineage(tmp_path: Path) -> None:
    """A remote client: the model and the input come over HTTP, the output goes back."""
    import threading

    import uvicorn
    from _served_model import free_port

    from loopwright import connect
    from loopwright.config import resolve_settings
    from loopwright.server.app import create_app

    home = tmp_path / "server"
    settings = resolve_settings(home=home, db_uri=f"sqlite:///{home / 'lw.db'}", user="ops")
    port = free_port()
    config = uvicorn.Config(create_app(settings, auth=False), port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        with connect(f"http://127.0.0.1:{port}", home=tmp_path / "client") as client:
            X, _ = training_frame()
            with client.start_run(experiment="training") as run:
                run.log_model(train(), "model", input_example=X[:3], registered_model_name=MODEL)
            customers = client.datasets.add(
                "customers", write_parquet(tmp_path / "c.parquet", frame(300))
            )
            result = client.predict_batch(
                f"models:/{MODEL}/1", customers.ref, tmp_path / "out", register="scores"
            )
            assert result.rows == 300 and result.dataset_version is not None
            scores = client.datasets.get("scores@v1")
            assert scores.produced_by_run_id == result.run_id
            assert client.datasets.runs_using(customers) == [result.run_id]
            assert result.run_id is not None
            produced = client.get_run(result.run_id)
            version = client.registry.get_version(MODEL, 1)
            assert produced.tags["loopwright.model_version_id"] == version.id
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_registered_job_inside_a_run_is_its_child(
    client: Client, model: Any, tmp_path: Path
) -> None:
    source = write_parquet(tmp_path / "in.parquet", frame(30))
    with client.start_run(experiment="pipeline") as pipeline:
        result = client.predict_batch(f"models:/{MODEL}/1", source, tmp_path / "out", register="s")
        pipeline.log_metric("scored", result.rows)  # the pipeline's run is still the active one
    scoring = client.get_run(str(result.run_id))
    assert scoring.parent_run_id == pipeline.id and scoring.status.value == "FINISHED"
    assert client.get_run(pipeline.id).metrics["scored"].value == 30


def test_a_failed_registered_job_leaves_a_failed_run(
    client: Client, model: Any, tmp_path: Path
) -> None:
    data = frame(30)
    data.loc[3, "color"] = "purple"
    source = write_parquet(tmp_path / "in.parquet", data)
    with pytest.raises(ModelFailed):
        client.predict_batch(f"models:/{MODEL}/1", source, tmp_path / "out", register="s")
    (run,) = client.list_runs("batch-scoring")
    assert run.status.value == "FAILED" and "ModelFailed" in str(run.error)
    assert "s" not in {dataset.name for dataset in client.datasets.list_datasets()}


def test_bounded_memory_on_an_input_larger_than_the_budget(tmp_path: Path) -> None:
    """A 1.2M x 12 float64 input (115 MB as arrays) scored with a 48 MB peak-RSS budget."""
    from sklearn.linear_model import LinearRegression

    columns = [f"f{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    sample = pd.DataFrame(rng.random((200, 12)), columns=columns)
    save_model(
        LinearRegression().fit(sample, sample.sum(axis=1)),
        tmp_path / "model",
        input_example=sample[:3],
    )
    big = tmp_path / "big.parquet"
    rows, chunk = 1_200_000, 100_000
    schema = pa.schema([(name, pa.float64()) for name in columns])
    with pq.ParquetWriter(big, schema, compression="none") as writer:
        for _ in range(0, rows, chunk):
            block = rng.random((chunk, 12))
            writer.write_table(
                pa.table({n: block[:, i] for i, n in enumerate(columns)}, schema=schema),
                row_group_size=20_000,
            )
    budget = 48 << 20
    assert big.stat().st_size > 2 * budget
    write_parquet(tmp_path / "small.parquet", sample)
    script = textwrap.dedent(
        f"""
        import json
        from loopwright.serving.batch import predict_batch
        # A small job first: imports, the model load and the writer's set-up are not the input.
        predict_batch(None, {str(tmp_path / "model")!r}, {str(tmp_path / "small.parquet")!r},
                      {str(tmp_path / "warm")!r})
        def status(key):
            with open("/proc/self/status") as lines:
                line = next(line for line in lines if line.startswith(key + ":"))
            return int(line.split()[1]) * 1024
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # the peak (VmHWM) starts again from the current size
        before = status("VmRSS")
        result = predict_batch(None, {str(tmp_path / "model")!r}, {str(big)!r},
                               {str(tmp_path / "out")!r}, batch_rows=10_000)
        after = status("VmHWM")
        print(json.dumps({{"growth": after - before, "rows": result.rows,
                          "batches": result.batches}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["rows"] == rows
    assert report["batches"] == rows // 10_000  # streamed: never more than a batch at once
    assert report["growth"] < budget, report


# --- what goes wrong -----------------------------------------------------------------------


def test_missing_input_and_unknown_model_and_dataset(
    client: Client, model: Any, folder_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match=r"input .*nowhere.parquet' does not exist"):
        predict_batch(None, str(folder_model), tmp_path / "nowhere.parquet", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match="holds no files"):
        predict_batch(None, str(folder_model), tmp_path / "empty", tmp_path / "o")
    source = write_parquet(tmp_path / "in.parquet", frame(10))
    with pytest.raises(NotFound, match="ghost"):
        client.predict_batch("models:/ghost/1", source, tmp_path / "o")
    with pytest.raises(NotFound, match=r"dataset 'customers'|customers"):
        client.predict_batch(f"models:/{MODEL}/1", "customers@v1", tmp_path / "o")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match=r"neither Parquet .* nor CSV"):
        predict_batch(None, str(folder_model), tmp_path / "notes.txt", tmp_path / "o")
    assert not (tmp_path / "o").exists() and leftovers(tmp_path) == []


def test_dataset_versions_are_scored_by_their_data_files(
    client: Client, model: Any, folder_model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    write_parquet(folder / "rows.parquet", frame(50))
    (folder / "README.md").write_text("customers, Q3")  # not data: left out, not refused
    client.datasets.add("customers", folder)
    result = client.predict_batch(str(folder_model), "customers@v1", tmp_path / "out")
    assert result.rows == 50 and result.input_version == "customers@v1"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("no data here")
    client.datasets.add("notes", tmp_path / "notes")
    with pytest.raises(InvalidInput, match=r"notes@v1 holds no Parquet or CSV files \(a.txt\)"):
        client.predict_batch(str(folder_model), "notes@v1", tmp_path / "out2")
    with pytest.raises(InvalidInput, match="names a dataset version, which needs a store"):
        predict_batch(None, str(folder_model), "customers@v1", tmp_path / "out3")
    with pytest.raises(InvalidInput, match="inside the input folder"):
        predict_batch(None, str(folder_model), folder, folder / "scores")
    assert leftovers(tmp_path) == []


def test_wrong_columns_are_refused_before_any_scoring(folder_model: Path, tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "in.parquet", frame(50).drop(columns=["b"]))
    with pytest.raises(SignatureError, match=r"in.parquet.*'b'") as caught:
        predict_batch(None, str(folder_model), source, tmp_path / "out")
    assert any("b" in problem for problem in caught.value.problems)
    with pytest.raises(InvalidInput, match="no column 'user' to keep; its columns: id, a, "):
        predict_batch(
            None,
            str(folder_model),
            tmp_path / "in.parquet",
            tmp_path / "out",
            keep_columns=["user"],
        )
    with pytest.raises(InvalidInput, match="'predict' would clash"):
        predict_batch(None, str(folder_model), source, tmp_path / "out", keep_columns=["predict"])
    with pytest.raises(InvalidInput, match="has no output 'scores'; outputs: predict"):
        predict_batch(None, str(folder_model), source, tmp_path / "out", outputs=["scores"])
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_a_bad_batch_names_its_rows_and_column_and_leaves_no_output(
    folder_model: Path, tmp_path: Path
) -> None:
    data = frame(1000)
    data.loc[437, "a"] = np.nan  # the model's logistic regression refuses missing values
    source = write_parquet(tmp_path / "in.parquet", data)
    with pytest.raises(InvalidInput, match=r"rows 400-499 of .*in.parquet: .*column 'a'.*\[37\]"):
        predict_batch(None, str(folder_model), source, tmp_path / "out", batch_rows=100)
    mixed = tmp_path / "mixed.csv"
    frame(5).to_csv(mixed, index=False)
    with mixed.open("a") as out:
        out.write("5,not-a-number,1.0,red\n")
    with pytest.raises(InvalidInput, match=r"cannot read .*mixed.csv as CSV: .*'not-a-number'"):
        predict_batch(None, str(folder_model), mixed, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_a_model_that_raises_names_the_rows(folder_model: Path, tmp_path: Path) -> None:
    data = frame(300)
    data.loc[250, "color"] = "purple"  # the encoder never saw it: the model raises
    source = write_parquet(tmp_path / "in.parquet", data)
    with pytest.raises(ModelFailed, match=r"rows 200-299 of .*in.parquet: model 'model' failed"):
        predict_batch(
            None,
            str(folder_model),
            source,
            tmp_path / "out",
            executor="process",
            workers=2,
            batch_rows=100,
        )
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_an_existing_output_is_refused_unless_overwrite(folder_model: Path, tmp_path: Path) -> None:
    source = write_parquet(tmp_path / "in.parquet", frame(100))
    predict_batch(None, str(folder_model), source, tmp_path / "out")
    with pytest.raises(AlreadyExists, match=r"out' exists; .*--overwrite"):
        predict_batch(None, str(folder_model), source, tmp_path / "out")
    write_parquet(source, frame(60))
    again = predict_batch(None, str(folder_model), source, tmp_path / "out", overwrite=True)
    assert again.rows == 60 and pq.read_table(tmp_path / "out").num_rows == 60
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(InvalidInput, match="not a batch-scoring output"):
        predict_batch(None, str(folder_model), source, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    assert leftovers(tmp_path) == []


def test_an_output_that_appears_while_scoring_is_never_replaced(
    folder_model: Path, tmp_path: Path
) -> None:
    """Another job (here: the first progress report) writes the output meanwhile: without
    overwrite this job fails and leaves that output as it is; with overwrite it replaces it."""
    source = write_parquet(tmp_path / "in.parquet", frame(300))
    target = tmp_path / "out"

    def another_job(rows: int, total: int | None) -> None:
        if not target.exists():
            target.mkdir()
            (target / "part-00000.parquet").write_text("theirs")

    with pytest.raises(AlreadyExists, match=r"out' appeared while this job scored"):
        predict_batch(None, str(folder_model), source, target, batch_rows=100, progress=another_job)
    assert [p.read_text() for p in target.iterdir()] == ["theirs"]
    assert leftovers(tmp_path) == []
    (target / "part-00000.parquet").unlink()
    target.rmdir()
    replaced = predict_batch(
        None,
        str(folder_model),
        source,
        target,
        batch_rows=100,
        overwrite=True,
        progress=another_job,
    )
    assert replaced.rows == pq.read_table(target).num_rows == 300
    assert leftovers(tmp_path) == []


def test_a_short_job_does_not_wait_for_workers_still_starting(tmp_path: Path) -> None:
    example = pd.DataFrame({"a": [1.0, 2.0]})
    save_model(SlowToStartInWorkers(60.0), tmp_path / "model", input_example=example)
    data = pd.DataFrame({"a": np.arange(2000.0)})
    source = write_parquet(tmp_path / "in.parquet", data, row_group_size=250)
    started = time.monotonic()
    result = predict_batch(
        None,
        str(tmp_path / "model"),
        source,
        tmp_path / "out",
        executor="process",
        workers=2,
        batch_rows=250,
        trusted=True,
    )
    # This process scored it all (~0.3 s) and stopped the worker, still loading for a minute.
    assert time.monotonic() - started < 5
    assert (result.rows, result.parts, result.workers) == (2000, 8, 2)
    assert pq.read_table(tmp_path / "out")["predict"].to_pylist() == list(data["a"] * 2)
    assert leftovers(tmp_path) == []


def test_an_overwrite_killed_between_its_renames_loses_no_output(
    folder_model: Path, tmp_path: Path
) -> None:
    """The old output was moved aside and the job died before the new one took its place:
    the next job puts the old one back (and refuses to replace it without overwrite)."""
    import socket

    source = write_parquet(tmp_path / "in.parquet", frame(100))
    predict_batch(None, str(folder_model), source, tmp_path / "out")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".out.{socket.gethostname()}.{dead.pid}.old"
    (tmp_path / "out").rename(aside)
    with pytest.raises(AlreadyExists, match=r"out' exists"):
        predict_batch(None, str(folder_model), source, tmp_path / "out")
    assert pq.read_table(tmp_path / "out").num_rows == 100 and leftovers(tmp_path) == []
    shutil.copytree(tmp_path / "out", aside)  # both there: the output stands, the copy goes
    again = predict_batch(None, str(folder_model), source, tmp_path / "out", overwrite=True)
    assert again.rows == 100 and leftovers(tmp_path) == []


def test_a_crashing_worker_process_fails_the_job_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    example = pd.DataFrame({"a": [1.0, 2.0]})
    save_model(WaitsForAWorker(str(log), crash=True), tmp_path / "model", input_example=example)
    source = write_parquet(
        tmp_path / "in.parquet", pd.DataFrame({"a": np.arange(2000.0)}), row_group_size=250
    )
    with pytest.raises(UntrustedModel):
        predict_batch(None, str(tmp_path / "model"), source, tmp_path / "out")
    log.write_text("")
    with pytest.raises(
        ModelFailed, match=r"a process worker died while scoring one of: rows \d+-\d+ of .*in.parq"
    ):
        predict_batch(
            None,
            str(tmp_path / "model"),
            source,
            tmp_path / "out",
            executor="process",
            workers=2,
            batch_rows=250,
            trusted=True,
        )
    assert str(os.getpid()) in log.read_text().split()  # this process scored beside it
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_this_process_scores_units_beside_the_workers(tmp_path: Path) -> None:
    """This process starts scoring while the workers start up, taking units from the same
    counter: both score, and the parts keep the input's order whoever scored them."""
    log = tmp_path / "calls.txt"
    example = pd.DataFrame({"a": [1.0, 2.0]})
    save_model(WaitsForAWorker(str(log)), tmp_path / "model", input_example=example)
    data = pd.DataFrame({"a": np.arange(2000.0)})
    source = write_parquet(tmp_path / "in.parquet", data, row_group_size=250)
    log.write_text("")
    seen: list[int] = []
    result = predict_batch(
        None,
        str(tmp_path / "model"),
        source,
        tmp_path / "out",
        executor="process",
        workers=2,
        batch_rows=125,
        trusted=True,
        progress=lambda rows, total: seen.append(rows),
    )
    assert (result.rows, result.parts, result.batches, result.workers) == (2000, 8, 16, 2)
    callers = set(log.read_text().split())
    assert str(os.getpid()) in callers and len(callers) == 2
    assert sum(seen) == 2000 and len(seen) == 16  # every batch reported, the workers' too
    out = pq.read_table(tmp_path / "out")
    assert out["predict"].to_pylist() == list(data["a"] * 2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"part-{i:05d}.parquet" for i in range(8)
    ]
    assert leftovers(tmp_path) == []


def test_a_killed_job_leaves_no_output_and_the_next_one_cleans_up(tmp_path: Path) -> None:
    save_model(SlowDouble(), tmp_path / "model", input_example=pd.DataFrame({"a": [1.0]}))
    source = write_parquet(tmp_path / "in.parquet", pd.DataFrame({"a": np.arange(400.0)}))
    command = [sys.executable, "-m", "loopwright.cli", "predict", str(tmp_path / "model")]
    command += [str(source), "-o", str(tmp_path / "out"), "--trusted"]
    job = subprocess.Popen([*command, "--batch-rows", "10"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".parquet.tmp") for p in tmp_path.glob(".out.*/*")):
            assert job.poll() is None and time.monotonic() < deadline, "the job did not start"
            time.sleep(0.05)
        time.sleep(0.3)  # a few batches into the part
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    assert not (tmp_path / "out").exists()
    assert len(list(tmp_path.glob(".out.*.partial"))) == 1  # hidden, and never the output
    done = subprocess.run([*command, "--batch-rows", "100"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "out")["predict"].to_pylist() == list(np.arange(400.0) * 2)
    assert leftovers(tmp_path) == []


def test_the_workers_of_a_killed_job_stop(tmp_path: Path) -> None:
    """A SIGKILLed caller runs no cleanup: its worker processes notice and exit by themselves
    (after at most the unit in hand), rather than scoring on or waiting forever."""
    psutil = pytest.importorskip("psutil")
    save_model(SlowDouble(), tmp_path / "model", input_example=pd.DataFrame({"a": [1.0]}))
    source = write_parquet(tmp_path / "in.parquet", pd.DataFrame({"a": np.arange(4000.0)}))
    command = [sys.executable, "-m", "loopwright.cli", "predict", str(tmp_path / "model")]
    command += [str(source), "-o", str(tmp_path / "out"), "--trusted", "--batch-rows", "10"]
    job = subprocess.Popen([*command, "--executor", "process", "--workers", "2"])
    workers: list[Any] = []
    try:
        deadline = time.monotonic() + 120
        while not workers:
            assert job.poll() is None and time.monotonic() < deadline, "no worker started"
            workers = psutil.Process(job.pid).children()
            time.sleep(0.05)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=60)
    assert alive == [] and gone
    assert not (tmp_path / "out").exists()


def test_parameters_are_checked(
    folder_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_parquet(tmp_path / "in.parquet", frame(10))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"needs Ray: pip install 'loopwright\[ray\]'"):
        predict_batch(None, str(folder_model), source, tmp_path / "o", executor="ray")
    monkeypatch.undo()
    with pytest.raises(InvalidInput, match="executor 'spark' is unknown"):
        predict_batch(None, str(folder_model), source, tmp_path / "o", executor="spark")
    with pytest.raises(InvalidInput, match="batch_rows must be at least 1"):
        predict_batch(None, str(folder_model), source, tmp_path / "o", batch_rows=0)
    with pytest.raises(InvalidInput, match="'scores' needs a store"):
        predict_batch(None, str(folder_model), source, tmp_path / "o", register="scores")


# --- the command ---------------------------------------------------------------------------


def test_cli_predict_scores_and_registers(
    store_settings: dict[str, str], model: Any, folder_model: Path, tmp_path: Path
) -> None:
    source = write_parquet(tmp_path / "in.parquet", frame(500))
    runner = CliRunner()
    # A package folder over files needs no store at all.
    plain = runner.invoke(
        app,
        [
            "--home",
            str(tmp_path / "nohome"),
            "predict",
            str(folder_model),
            str(source),
            "-o",
            str(tmp_path / "plain"),
            "--keep-columns",
            "id",
        ],
    )
    assert plain.exit_code == 0, plain.output
    assert "scored 500 rows" in plain.output and "1 part" in plain.output
    assert not (tmp_path / "nohome").exists()
    store = [
        "--home",
        store_settings["home"],
        "--db-uri",
        store_settings["db_uri"],
        "--blob-uri",
        store_settings["blob_uri"],
    ]
    registered = runner.invoke(
        app,
        [
            *store,
            "predict",
            f"models:/{MODEL}/1",
            str(source),
            "-o",
            str(tmp_path / "out"),
            "--keep-columns",
            "id",
            "--outputs",
            "predict,predict_proba",
            "--register",
            "scores",
            "--json",
        ],
    )
    assert registered.exit_code == 0, registered.output
    report = json.loads(registered.output)
    assert report["rows"] == 500 and report["model_version"] == 1
    assert report["dataset_version"] == "scores@v1" and report["run_id"]
    exists = runner.invoke(
        app, [*store, "predict", f"models:/{MODEL}/1", str(source), "-o", str(tmp_path / "out")]
    )
    assert exists.exit_code == 1
    assert "exists" in exists.output and "--overwrite" in exists.output
    assert "Traceback" not in exists.output
