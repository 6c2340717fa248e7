"""Tracking end to end through ``Client``: on SQLite and PostgreSQL, local and S3 blobs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from blake3 import blake3

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import AlreadyExists, Conflict, InvalidInput, NotFound, UnsafePath
from loopwright.tracking import Metric, RunStatus


def _client(tmp_path: Path, db_uri: str, blob_uri: str | None = None) -> Client:
    home = tmp_path / "home"
    blob_uri = blob_uri or str(home / "blobs")
    return Client(resolve_settings(home=home, db_uri=db_uri, blob_uri=blob_uri))


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    """A client on each metadata store, with local blobs."""
    with _client(tmp_path, db_uri) as client:
        yield client


@pytest.fixture
def full_client(tmp_path: Path, db_uri: str, blob_uri: str) -> Iterator[Client]:
    """A client on each metadata store and each blob store."""
    with _client(tmp_path, db_uri, blob_uri) as client:
        yield client


def _blob_hashes(client: Client) -> set[str]:
    return {info.hash for info in client.store.blobs.iter_blobs()}


# --- run lifecycle -----------------------------------------------------------------------------


def test_a_run_that_completes_ends_finished(client: Client) -> None:
    with client.start_run(experiment="churn", name="rf-1") as run:
        assert client.get_run(run.id).status is RunStatus.RUNNING
        assert client.get_run(run.id).end_time is None
        run.log_param("n_estimators", 200)

    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FINISHED
    assert stored.name == "rf-1"
    assert stored.error is None
    assert stored.end_time is not None
    assert stored.duration_ms is not None and stored.duration_ms >= 0
    assert stored.params == {"n_estimators": "200"}
    assert stored.lifecycle_stage == "active"
    assert stored.parent_run_id is None
    assert client.tracking.get_experiment(stored.experiment_id).name == "churn"


def test_a_run_without_a_name_gets_one_from_its_id(client: Client) -> None:
    with client.start_run() as run:
        pass
    stored = client.get_run(run.id)
    assert stored.name == f"run-{run.id[-8:]}"
    assert client.tracking.get_experiment(stored.experiment_id).name == "Default"


def test_an_exception_fails_the_run_keeps_the_traceback_and_propagates(client: Client) -> None:
    def train() -> None:
        raise ValueError("learning rate exploded")

    with pytest.raises(ValueError, match="learning rate exploded"), client.start_run() as run:
        run.log_metric("loss", 1.0)
        train()

    stored = client.get_run(run.id)
    assert stored.status is RunStatus.FAILED
    assert stored.end_time is not None
    assert stored.error is not None
    assert stored.error.startswith("Traceback (most recent call last):")
    assert "in train" in stored.error
    assert stored.error.rstrip().endswith("ValueError: learning rate exploded")
    assert stored.metrics["loss"].value == 1.0


def test_keyboard_interrupt_kills_the_run(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), client.start_run() as run:
        raise KeyboardInterrupt

    stored = client.get_run(run.id)
    assert stored.status is RunStatus.KILLED
    assert stored.end_time is not None
    assert stored.error is not None and "KeyboardInterrupt" in stored.error


def test_end_run_needs_a_terminal_status(client: Client) -> None:
    run = client.tracking.create_run(experiment="e")
    with pytest.raises(InvalidInput, match="RUNNING"):
        client.tracking.end_run(run.id, RunStatus.RUNNING)
    assert client.get_run(run.id).status is RunStatus.RUNNING
    client.tracking.end_run(run.id, RunStatus.KILLED, error="stopped by hand")
    stored = client.get_run(run.id)
    assert (stored.status, stored.error) == (RunStatus.KILLED, "stopped by hand")


def test_active_run_info_reflects_what_was_logged(client: Client) -> None:
    with client.start_run(experiment="e", name="n") as run:
        run.log_params({"a": 1, "b": "x"})
        run.log_metrics({"m1": 0.5, "m2": 2}, step=3)
        run.set_tags({"stage": "dev"})
        info = run.info()
    assert info.id == run.id
    assert info.experiment_id == run.experiment_id
    assert info.params == {"a": "1", "b": "x"}
    latest = {k: (m.value, m.step) for k, m in info.metrics.items()}
    assert latest == {"m1": (0.5, 3), "m2": (2.0, 3)}
    assert info.tags == {"stage": "dev"}


# --- params ------------------------------------------------------------------------------------


def test_params_are_immutable(client: Client) -> None:
    with client.start_run() as run:
        run.log_params({"lr": 0.1, "depth": 6})
        run.log_param("lr", 0.1)  # the same value again is fine
        run.log_param("lr", "0.1")  # stored as text, so this is the same value too

        with pytest.raises(InvalidInput) as exc_info:
            run.log_param("lr", 0.2)
        assert "'lr'" in str(exc_info.value)
        assert "'0.1'" in str(exc_info.value)
        assert "'0.2'" in str(exc_info.value)

        # A batch with one conflicting key stores none of its keys.
        with pytest.raises(InvalidInput, match="depth"):
            run.log_params({"batch": 32, "depth": 7})

    assert client.get_run(run.id).params == {"lr": "0.1", "depth": "6"}


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "x" * 251])
def test_bad_param_keys_are_refused(client: Client, key: str) -> None:
    with client.start_run() as run, pytest.raises(InvalidInput):
        run.log_param(key, 1)
    assert client.get_run(run.id).params == {}


# --- metrics -----------------------------------------------------------------------------------


def test_metric_history_is_ordered_by_step(client: Client) -> None:
    with client.start_run() as run:
        for step, value in [(2, 0.3), (0, 0.9), (1, 0.5)]:
            run.log_metric("loss", value, step=step, timestamp=1_000 + step)
        run.log_metric("other", 7.0)

    history = client.get_metric_history(run.id, "loss")
    assert history == [
        Metric("loss", 0.9, 0, 1_000),
        Metric("loss", 0.5, 1, 1_001),
        Metric("loss", 0.3, 2, 1_002),
    ]
    assert client.get_metric_history(run.id, "missing") == []


def test_exact_duplicate_points_are_ignored(client: Client) -> None:
    run = client.tracking.create_run()
    point = Metric("acc", 0.75, 4, 1_700_000_000_000)
    client.tracking.log_metric_points(run.id, [point])
    client.tracking.log_metric_points(run.id, [point, point])
    # Same step and time but another value is a distinct point.
    client.tracking.log_metric_points(run.id, [Metric("acc", 0.8, 4, 1_700_000_000_000)])

    history = client.get_metric_history(run.id, "acc")
    assert len(history) == 2
    assert sorted(m.value for m in history) == [0.75, 0.8]


def test_latest_metric_follows_the_highest_step_even_when_logged_out_of_order(
    client: Client,
) -> None:
    with client.start_run() as run:
        run.log_metric("loss", 0.1, step=10, timestamp=5_000)
        run.log_metric("loss", 0.9, step=3, timestamp=9_000)  # later, but an earlier step
        run.log_metric("loss", 0.8, step=4, timestamp=9_500)

    latest = client.get_run(run.id).metrics["loss"]
    assert (latest.value, latest.step, latest.timestamp) == (0.1, 10, 5_000)
    assert [m.step for m in client.get_metric_history(run.id, "loss")] == [3, 4, 10]


def test_latest_metric_in_one_batch_and_ties_on_step(client: Client) -> None:
    run = client.tracking.create_run()
    client.tracking.log_metric_points(
        run.id,
        [Metric("m", 5.0, 7, 100), Metric("m", 6.0, 7, 200), Metric("m", 1.0, 2, 900)],
    )
    assert client.get_run(run.id).metrics["m"] == Metric("m", 6.0, 7, 200)
    # Same step, older timestamp: does not replace the latest.
    client.tracking.log_metric_points(run.id, [Metric("m", 9.0, 7, 150)])
    assert client.get_run(run.id).metrics["m"] == Metric("m", 6.0, 7, 200)
    # Higher step wins.
    client.tracking.log_metric_points(run.id, [Metric("m", -1.0, 8, 1)])
    assert client.get_run(run.id).metrics["m"] == Metric("m", -1.0, 8, 1)


def test_nan_and_infinities_round_trip(client: Client) -> None:
    with client.start_run() as run:
        run.log_metric("nan", math.nan, step=0)
        run.log_metric("inf", math.inf, step=0)
        run.log_metric("ninf", -math.inf, step=0)
        run.log_metric("nan", 0.0, step=1)  # a real 0.0 after a NaN must stay 0.0
        run.log_metric("zero_then_nan", 0.0, step=0)
        run.log_metric("zero_then_nan", math.nan, step=1)

    metrics = client.get_run(run.id).metrics
    assert metrics["nan"].value == 0.0
    assert math.isnan(metrics["zero_then_nan"].value)
    assert metrics["inf"].value == math.inf
    assert metrics["ninf"].value == -math.inf

    history = client.get_metric_history(run.id, "nan")
    assert math.isnan(history[0].value)
    assert history[1].value == 0.0 and not math.isnan(history[1].value)


@pytest.mark.parametrize("value", ["abc", None, object(), [1.0], {"v": 1}])
def test_non_numeric_metric_values_are_refused(client: Client, value: object) -> None:
    with client.start_run() as run:
        with pytest.raises(InvalidInput) as exc_info:
            run.log_metric("auc", value)  # type: ignore[arg-type]
        assert "'auc'" in str(exc_info.value)
        # A bad value anywhere in a batch stores nothing from it.
        with pytest.raises(InvalidInput):
            run.log_metrics({"ok": 1.0, "auc": value})  # type: ignore[dict-item]
    assert client.get_run(run.id).metrics == {}
    assert client.get_metric_history(run.id, "ok") == []


def test_numeric_metric_values_of_other_types_are_converted(client: Client) -> None:
    with client.start_run() as run:
        run.log_metric("int", 3)
        run.log_metric("big", 2**40)
    metrics = client.get_run(run.id).metrics
    assert metrics["int"].value == 3.0 and isinstance(metrics["int"].value, float)
    assert metrics["big"].value == float(2**40)


def test_an_explicit_timestamp_is_stored_as_given(client: Client) -> None:
    with client.start_run() as run:
        run.log_metric("a", 1.0, step=0, timestamp=1_234)
        run.log_metric("b", 1.0, step=0, timestamp=0)  # the epoch is a timestamp too
    assert client.get_metric_history(run.id, "a")[0].timestamp == 1_234
    assert client.get_metric_history(run.id, "b")[0].timestamp == 0


# --- tags, nesting, experiments, listing -------------------------------------------------------


def test_tags_are_upserted(client: Client) -> None:
    with client.start_run(tags={"team": "fraud", "stage": "dev"}) as run:
        run.set_tag("stage", "prod")
        run.set_tags({"owner": "ana", "attempt": 2})
        run.set_tag("attempt", 3)
    assert client.get_run(run.id).tags == {
        "team": "fraud",
        "stage": "prod",
        "owner": "ana",
        "attempt": "3",
    }


def test_nested_runs_point_at_their_parent(client: Client) -> None:
    with client.start_run(experiment="tune", name="sweep") as parent:
        with client.start_run(experiment="tune", name="trial-1", parent_run_id=parent.id) as child:
            pass
        assert client.get_run(child.id).status is RunStatus.FINISHED
        assert client.get_run(parent.id).status is RunStatus.RUNNING
    assert client.get_run(child.id).parent_run_id == parent.id
    assert client.get_run(parent.id).parent_run_id is None


def test_an_unknown_parent_is_not_found_and_creates_no_run(client: Client) -> None:
    missing = "0" * 32
    with pytest.raises(NotFound) as exc_info:
        client.start_run(experiment="tune", parent_run_id=missing)
    assert missing in str(exc_info.value)
    assert client.list_runs() == []


def test_experiments_get_or_create_and_duplicates(client: Client) -> None:
    first = client.tracking.get_or_create_experiment("churn")
    again = client.tracking.get_or_create_experiment("churn")
    assert again.id == first.id
    assert first.lifecycle_stage == "active"

    created = client.tracking.create_experiment("fraud", description="card fraud")
    assert created.description == "card fraud"
    with pytest.raises(AlreadyExists) as exc_info:
        client.tracking.create_experiment("fraud")
    assert "'fraud'" in str(exc_info.value)

    assert [e.name for e in client.list_experiments()] == ["churn", "fraud"]
    assert client.tracking.find_experiment("nope") is None
    with pytest.raises(NotFound, match="'nope'"):
        client.tracking.get_experiment_by_name("nope")
    with pytest.raises(NotFound):
        client.tracking.get_experiment("0" * 32)


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_experiment_names_are_refused(client: Client, name: str) -> None:
    with pytest.raises(InvalidInput):
        client.tracking.create_experiment(name)
    assert client.list_experiments() == []


def test_list_runs_is_newest_first_and_filters_by_experiment(client: Client) -> None:
    ids = []
    for index, experiment in enumerate(["a", "b", "a", "b", "a"]):
        with client.start_run(experiment=experiment, name=f"r{index}") as run:
            ids.append(run.id)

    assert [r.id for r in client.list_runs()] == ids[::-1]
    assert [r.name for r in client.list_runs("a")] == ["r4", "r2", "r0"]
    assert [r.name for r in client.list_runs("b")] == ["r3", "r1"]
    assert [r.id for r in client.list_runs(limit=2)] == ids[::-1][:2]
    with pytest.raises(NotFound, match="'c'"):
        client.list_runs("c")


# --- artifacts ---------------------------------------------------------------------------------


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "data" / "sub" / "deeper").mkdir(parents=True)
    (root / "model.bin").write_bytes(b"\x00weights\xff" * 100)
    (root / "data" / "train.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (root / "data" / "sub" / "test.csv").write_text("a,b\n3,4\n", encoding="utf-8")
    (root / "data" / "sub" / "deeper" / "notes.txt").write_text("deep", encoding="utf-8")
    (root / "data" / "sub" / "empty.txt").write_bytes(b"")
    return root


def test_artifacts_round_trip(full_client: Client, sources: Path, tmp_path: Path) -> None:
    client = full_client
    with client.start_run(experiment="art") as run:
        model = run.log_artifact(sources / "model.bin", "models/best")
        plain = run.log_artifact(sources / "model.bin")
        logged = run.log_artifacts(sources / "data", "inputs")

    content = (sources / "model.bin").read_bytes()
    assert model.path == "models/best/model.bin"
    assert plain.path == "model.bin"
    assert model.size == len(content)
    assert model.blob_hash == blake3(content).hexdigest() == plain.blob_hash
    assert [a.path for a in logged] == [
        "inputs/sub/deeper/notes.txt",
        "inputs/sub/empty.txt",
        "inputs/sub/test.csv",
        "inputs/train.csv",
    ]

    listed = client.list_artifacts(run.id)
    assert [a.path for a in listed] == sorted(
        ["model.bin", "models/best/model.bin", *(a.path for a in logged)]
    )
    assert {a.path: a.size for a in listed}["inputs/sub/empty.txt"] == 0
    assert [a.path for a in client.list_artifacts(run.id, "inputs/sub")] == [
        "inputs/sub/deeper/notes.txt",
        "inputs/sub/empty.txt",
        "inputs/sub/test.csv",
    ]
    assert client.list_artifacts(run.id, "inputs/su") == []  # a prefix is not a folder
    assert [a.path for a in client.list_artifacts(run.id, "./models//best/")] == [
        "models/best/model.bin"
    ]

    everything = client.download_artifacts(run.id, tmp_path / "everything")
    assert everything == tmp_path / "everything"
    downloaded = sorted(
        p.relative_to(everything).as_posix() for p in everything.rglob("*") if p.is_file()
    )
    assert downloaded == [a.path for a in listed]
    assert (everything / "models" / "best" / "model.bin").read_bytes() == content
    for src in (sources / "data").rglob("*"):
        if src.is_file():
            rel = src.relative_to(sources / "data")
            assert (everything / "inputs" / rel).read_bytes() == src.read_bytes()

    part = client.download_artifacts(run.id, tmp_path / "part", "inputs/sub")
    files = sorted(p.relative_to(part).as_posix() for p in part.rglob("*") if p.is_file())
    assert files == ["inputs/sub/deeper/notes.txt", "inputs/sub/empty.txt", "inputs/sub/test.csv"]

    with pytest.raises(NotFound, match="nothing/here"):
        client.download_artifacts(run.id, tmp_path / "none", "nothing/here")


def test_relogging_an_artifact_path_replaces_its_content(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "metrics.json"
    with client.start_run() as run:
        source.write_text('{"v": 1}', encoding="utf-8")
        run.log_artifact(source, "eval")
        source.write_text('{"v": 2}', encoding="utf-8")
        run.log_artifact(source, "eval")

    assert [a.path for a in client.list_artifacts(run.id)] == ["eval/metrics.json"]
    out = client.download_artifacts(run.id, tmp_path / "out")
    assert (out / "eval" / "metrics.json").read_text(encoding="utf-8") == '{"v": 2}'


@pytest.mark.parametrize("artifact_path", ["../x", "a/../../x", "/abs", "a\\b", "~root/x"])
def test_unsafe_artifact_paths_are_refused_and_nothing_is_stored(
    client: Client, sources: Path, artifact_path: str
) -> None:
    with client.start_run() as run:
        before = _blob_hashes(client)  # the run's own captured context may hold a git diff
        with pytest.raises(UnsafePath) as exc_info:
            run.log_artifact(sources / "model.bin", artifact_path)
        assert isinstance(exc_info.value, InvalidInput)
        assert "artifact path" in str(exc_info.value)
        with pytest.raises(UnsafePath):
            run.log_artifacts(sources / "data", artifact_path)

    assert client.list_artifacts(run.id) == []
    assert _blob_hashes(client) == before


def test_an_unsafe_file_name_inside_a_logged_folder_stores_nothing(
    client: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "fine.txt").write_text("ok", encoding="utf-8")
    (folder / "back\\slash.txt").write_text("bad", encoding="utf-8")

    with client.start_run() as run, pytest.raises(UnsafePath, match="backslash"):
        before = _blob_hashes(client)  # the run's own captured context may hold a git diff
        run.log_artifacts(folder)

    assert client.list_artifacts(run.id) == []
    assert _blob_hashes(client) == before


def test_logging_a_missing_file_or_folder_is_invalid(client: Client, tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with client.start_run() as run:
        with pytest.raises(InvalidInput, match=r"nope\.bin"):
            run.log_artifact(missing)
        with pytest.raises(InvalidInput, match=r"nope\.bin"):
            run.log_artifacts(missing)
        folder = tmp_path / "a-folder"
        folder.mkdir()
        with pytest.raises(InvalidInput, match="a-folder"):
            run.log_artifact(folder)
    assert client.list_artifacts(run.id) == []


# --- missing runs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        "get_run",
        "log_params",
        "log_metrics",
        "set_tags",
        "end_run",
        "metric_history",
        "log_artifact",
        "log_artifacts",
        "list_artifacts",
        "download_artifacts",
    ],
)
def test_logging_to_a_missing_run_is_not_found(
    client: Client, sources: Path, tmp_path: Path, operation: str
) -> None:
    missing = "f" * 32
    tracking = client.tracking
    calls: dict[str, Callable[[], object]] = {
        "get_run": lambda: tracking.get_run(missing),
        "log_params": lambda: tracking.log_params(missing, {"a": 1}),
        "log_metrics": lambda: tracking.log_metrics(missing, {"a": 1.0}),
        "set_tags": lambda: tracking.set_tags(missing, {"a": "b"}),
        "end_run": lambda: tracking.end_run(missing),
        "metric_history": lambda: tracking.metric_history(missing, "a"),
        "log_artifact": lambda: tracking.log_artifact(missing, sources / "model.bin"),
        "log_artifacts": lambda: tracking.log_artifacts(missing, sources / "data"),
        "list_artifacts": lambda: tracking.list_artifacts(missing),
        "download_artifacts": lambda: tracking.download_artifacts(missing, tmp_path / "dl"),
    }
    with pytest.raises(NotFound) as exc_info:
        calls[operation]()
    assert isinstance(exc_info.value, LookupError)
    assert exc_info.value.code == "RESOURCE_DOES_NOT_EXIST"
    assert repr(missing) in str(exc_info.value)
    assert _blob_hashes(client) == set()


def test_an_experiment_renamed_or_deleted_elsewhere_is_not_used_from_a_stale_cache(
    tmp_path: Path,
) -> None:
    settings = resolve_settings(home=tmp_path / "shared")
    first, second = Client(settings), Client(settings)  # two processes, two caches
    first.tracking.create_run(experiment="x")
    second.tracking.rename_experiment("x", "y")
    second.tracking.create_experiment("x")

    moved = first.tracking.create_run(experiment="x")
    assert moved.experiment_id == second.tracking.get_experiment_by_name("x").id

    second.tracking.set_experiment_lifecycle("x", "deleted")
    with pytest.raises(Conflict, match="deleted"):
        first.tracking.create_run(experiment="x")
    assert [r.experiment_id for r in first.search_runs()] == [
        second.tracking.get_experiment_by_name("y").id
    ]
    first.close()
    second.close()


def test_search_results_convert_to_a_dataframe_with_mlflow_columns(client: Client) -> None:
    for n, model in enumerate(["rf", "lr"]):
        with client.start_run(experiment="frame", name=model, tags={"team": "risk"}) as run:
            run.log_params({"model": model})
            run.log_metrics({"auc": 0.8 + n / 10})
    found = client.search_runs("tags.team = 'risk'", order_by=["metrics.auc DESC"])
    frame = found.to_pandas()
    assert list(frame["run_name"]) == ["lr", "rf"]
    assert list(frame["params.model"]) == ["lr", "rf"]
    assert frame["metrics.auc"].tolist() == pytest.approx([0.9, 0.8])
    assert set(frame["status"]) == {"FINISHED"}
    assert str(frame["start_time"].dtype).startswith("datetime64")
    assert found.next_page_token is None


def test_names_keys_and_values_a_column_cannot_hold_are_refused_with_invalid_input(
    client: Client,
) -> None:
    """Issue 10 (validation once) and 11 (size caps): these passed the embedded API and became
    raw driver errors on PostgreSQL, or were stored whole (a 100 MB param)."""
    tracking = client.tracking
    with pytest.raises(InvalidInput, match=r"run name .* limit is 250"):
        tracking.create_run(experiment="limits", name="r" * 300)
    with pytest.raises(InvalidInput, match=r"experiment name .* limit is 256"):
        tracking.create_experiment("e" * 400)
    with pytest.raises(InvalidInput, match=r"experiment name .* limit is 256"):
        tracking.create_run(experiment="e" * 400)
    run = tracking.create_run(experiment="limits", name="r" * 250)
    for kind, log in (("param", tracking.log_params), ("tag", tracking.set_tags)):
        with pytest.raises(InvalidInput, match=rf"{kind} key .* NUL"):
            log(run.id, {"a\x00b": "v"})
        with pytest.raises(InvalidInput, match=rf"{kind} key .* lone surrogate"):
            log(run.id, {"k\ud800": "v"})
    with pytest.raises(InvalidInput, match="limit is 6000"):
        tracking.log_params(run.id, {"big": "x" * 100_000_000})
    with pytest.raises(InvalidInput, match="limit is 8000"):
        tracking.set_tags(run.id, {"big": "x" * 8001})
    with pytest.raises(InvalidInput, match=r"experiment name .* NUL"):
        tracking.rename_experiment("limits", "a\x00b")
    tracking.log_params(run.id, {"edge": "x" * 6000})
    tracking.set_tags(run.id, {"edge": "x" * 8000})
    stored = tracking.get_run(run.id)
    assert len(stored.params["edge"]) == 6000 and len(stored.tags["edge"]) == 8000
    assert len(stored.name) == 250
