"""Pipeline records over the REST API: a real server (uvicorn on 127.0.0.1, auth on) read and
written through the remote client gives the same entities as the embedded service on the same
stores; viewers read, editors record; errors come back as the same classes; bad bodies are 400s
naming the field."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopwright as lw
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from loopwright.pipelines.entities import ArtifactRef
from test_public_api import live_server

REF = "flows.train:training"


@dataclass
class Api:
    url: str
    tokens: dict[str, str]
    local: Client  # embedded, on the server's stores
    ed: Client  # remote, an editor
    vic: Client  # remote, a viewer

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        url = f"{self.url}/api/v1/pipelines{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def _settings(tmp_path: Path, db_uri: str, user: str | None = None) -> Settings:
    return resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user=user
    )


@pytest.fixture
def api(tmp_path: Path, db_uri: str) -> Iterator[Api]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    with Client(_settings(tmp_path, db_uri, user="root")) as local:
        users = UserService(local.store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("vic", "viewer")):
            users.add(name, role)
        tokens = TokenService(local.store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("ed", "vic")}
        with (
            live_server(_settings(tmp_path, db_uri)) as url,
            lw.connect(url, token=secrets["ed"], home=tmp_path / "ed-home") as ed,
            lw.connect(url, token=secrets["vic"], home=tmp_path / "vic-home") as vic,
        ):
            yield Api(url, secrets, local, ed, vic)


def _output(run_id: str | None, name: str = "output") -> ArtifactRef:
    return ArtifactRef(name, "ab" * 32, "pandas", run_id, f"outputs/{name}.parquet", 2048, "df")


def test_records_written_remotely_read_the_same_everywhere(api: Api) -> None:
    run = api.ed.pipelines.start_run(
        REF,
        params={"n": 3, "cols": ["a"]},
        executor="process",
        host="laptop",
        pid=42,
        experiment="remote-exp",
    )
    assert run.created_by == "ed" and run.status == "running" and run.host == "laptop"
    tracked = api.local.tracking.get_run(run.run_id or "")
    assert tracked.user == "ed" and tracked.host == "laptop"
    assert tracked.params == {"n": "3", "cols": '["a"]'}
    plain = api.ed.tracking.create_run(experiment="plain")  # a remote run records its context
    for field in ("environment_id", "git_commit", "entry_point"):
        assert getattr(tracked, field) == getattr(api.local.tracking.get_run(plain.id), field)
    assert tracked.environment_id is not None
    api.ed.pipelines.heartbeat(run.id)

    parts = {"code": {"flows.train.load": "d1"}, "params": {}, "inputs": {}}
    inputs = [ArtifactRef("n", "cd" * 32, "json", type_name="int")]
    load = api.ed.pipelines.start_step(
        run.id,
        invocation="load",
        step="load",
        cache_key="k1",
        cache_reason="no earlier run",
        inputs=inputs,
        key_parts=parts,
    )
    nested = api.local.tracking.get_run(load.run_id or "")
    assert nested.parent_run_id == run.run_id and nested.user == "ed"
    assert nested.environment_id == tracked.environment_id and nested.host == "laptop"
    api.ed.tracking.log_metrics(nested.id, {"rows": 3.0})  # through the server's writer
    api.ed.tracking.flush()
    done = api.ed.pipelines.finish_step(
        load.id, "completed", outputs=[_output(load.run_id)], attempts=2
    )
    assert api.local.tracking.get_run(nested.id).metrics["rows"].value == 3.0
    assert done.inputs == tuple(inputs) and done.key_parts == parts and done.attempts == 2

    hit = api.vic.pipelines.find_cached("k1")
    assert hit == done == api.local.pipelines.find_cached("k1")
    assert api.vic.pipelines.find_cached("k2") is None
    assert api.vic.pipelines.previous_step(REF, "load") == done
    assert api.vic.pipelines.previous_step(REF, "train") is None
    served = api.ed.pipelines.record_served(
        run.id,
        invocation="load#2",
        step="load",
        cache_key="k1",
        cache_reason="cache hit",
        source=done,
        status="resumed",
    )
    assert (served.status, served.cached_from, served.outputs) == ("resumed", done.id, done.outputs)

    result = _output(load.run_id, "result")
    finished = api.ed.pipelines.finish_run(run.id, "completed", result=result)
    assert finished.result == result and [s.id for s in finished.steps] == [load.id, served.id]
    assert finished == api.vic.pipelines.get_run(run.id) == api.local.pipelines.get_run(run.id)
    assert (
        api.vic.pipelines.list_runs()
        == api.local.pipelines.list_runs()
        == [api.local.pipelines.list_runs(pipeline=REF, status="completed", limit=1)[0]]
    )
    assert api.vic.pipelines.list_runs(status="failed") == []


def test_a_viewer_reads_but_cannot_record(api: Api) -> None:
    run = api.ed.pipelines.start_run(REF)
    step = api.ed.pipelines.start_step(
        run.id, invocation="a", step="a", cache_key="k", cache_reason="r"
    )
    for write in (
        lambda: api.vic.pipelines.start_run(REF),
        lambda: api.vic.pipelines.heartbeat(run.id),
        lambda: api.vic.pipelines.start_step(
            run.id, invocation="b", step="b", cache_key="k", cache_reason="r"
        ),
        lambda: api.vic.pipelines.finish_step(step.id, "completed"),
        lambda: api.vic.pipelines.record_served(
            run.id, invocation="b", step="b", cache_key="k", cache_reason="r", source=step
        ),
        lambda: api.vic.pipelines.finish_run(run.id, "failed"),
    ):
        with pytest.raises(PermissionDenied):
            write()
    assert api.vic.pipelines.get_run(run.id).steps == (step,)


def test_errors_come_back_as_the_same_classes(api: Api) -> None:
    with pytest.raises(NotFound, match="pipeline run 'nope' does not exist"):
        api.vic.pipelines.get_run("nope")
    with pytest.raises(NotFound, match="step run 'nope'"):
        api.ed.pipelines.finish_step("nope", "completed")
    run = api.ed.pipelines.start_run(REF)
    api.ed.pipelines.finish_run(run.id, "completed")
    with pytest.raises(Conflict, match="is completed"):
        api.ed.pipelines.heartbeat(run.id)
    with pytest.raises(Conflict, match="is completed"):
        api.ed.pipelines.start_step(
            run.id, invocation="a", step="a", cache_key="k", cache_reason="r"
        )
    # Refused by the client before sending, with the embedded API's message.
    with pytest.raises(InvalidInput, match="is not MODULE:FUNCTION"):
        api.ed.pipelines.start_run("no-colon")
    with pytest.raises(InvalidInput, match="param 'x' is not plain JSON"):
        api.ed.pipelines.start_run(REF, params={"x": float("inf")})
    with pytest.raises(InvalidInput, match="id must not be empty"):
        api.vic.pipelines.get_run("")
    with pytest.raises(InvalidInput, match="status 'done' must be one of"):
        api.ed.pipelines.list_runs(status="done")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="must be one of"):
        api.ed.pipelines.finish_run(run.id, "done")  # type: ignore[arg-type]


def test_a_dead_process_reads_killed_through_the_server(api: Api) -> None:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: its pid names no process now
    run = api.ed.pipelines.start_run(REF, host=socket.gethostname(), pid=child.pid)
    killed = api.vic.pipelines.get_run(run.id)
    assert killed.status == "killed" and f"process {child.pid}" in (killed.error or "")
    assert api.local.tracking.get_run(run.run_id or "").status.value == "KILLED"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/runs", {"pipeline": 3}, "body.pipeline"),
        ("/runs", {"pipeline": REF, "pid": -1}, "body.pid"),
        ("/runs", {"pipeline": REF, "params": {"a": 1}, "extra": 1}, "body.extra"),
        ("/runs", {"pipeline": "p" * 301}, "body.pipeline"),
        ("/runs/x/finish", {"status": "running"}, "body.status"),
        ("/runs/x/steps", {"invocation": "a", "step": "a", "cache_key": "k"}, "body.cache_reason"),
        (
            "/runs/x/steps",
            {"invocation": "a", "step": "a", "cache_key": "k" * 65, "cache_reason": ""},
            "body.cache_key",
        ),
        ("/steps/x/finish", {"status": "completed", "attempts": "1"}, "body.attempts"),
        (
            "/steps/x/finish",
            {"status": "completed", "outputs": [{"name": "o", "digest": "d"}]},
            "body.outputs.0.materializer",
        ),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    answer = api.call("ed", "POST", path, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "INVALID_PARAMETER_VALUE"
    assert answer.json()["message"].startswith(field), answer.json()["message"]


def test_a_served_step_takes_the_sources_stored_outputs(api: Api) -> None:
    """The server serves what the source stored, not what a caller claims it holds."""
    run = api.ed.pipelines.start_run(REF)
    source = api.ed.pipelines.start_step(
        run.id, invocation="a", step="a", cache_key="k", cache_reason="r"
    )
    source = api.ed.pipelines.finish_step(source.id, "completed", outputs=[_output(source.run_id)])
    answer = api.call(
        "ed",
        "POST",
        f"/runs/{run.id}/served",
        json={
            "invocation": "b",
            "step": "a",
            "cache_key": "k",
            "cache_reason": "hit",
            "source_id": source.id,
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["outputs"] == [_output(source.run_id).to_dict()]
    missing = api.call(
        "ed",
        "POST",
        f"/runs/{run.id}/served",
        json={
            "invocation": "c",
            "step": "a",
            "cache_key": "k",
            "cache_reason": "hit",
            "source_id": "nope",
        },
    )
    assert missing.status_code == 404 and "'nope'" in missing.json()["message"]
