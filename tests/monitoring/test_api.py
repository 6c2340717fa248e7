"""Monitoring over the REST API: a real server (uvicorn on 127.0.0.1, auth on) read through the
remote client answers the same entities as the embedded service on the same stores; viewers
read, editors change; bad bodies are 4xx naming what is wrong; label uploads are bounded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import loopwright as lw
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.errors import InvalidInput, LimitExceeded, NotFound, PermissionDenied
from loopwright.server.api import monitoring as monitoring_api
from loopwright.server.api.monitoring import MAX_LABELS
from test_public_api import live_server as serving  # one live-server helper

DEPLOYMENT = "scorer-api"
AT = datetime(2026, 12, 5, 10, tzinfo=UTC)  # the unshifted hour ends here, the shifted one starts


def fill_log(blobs: Path, *, requests: int = 60, rows: int = 10) -> None:
    """Two hours of ``scorer-api``'s log: [AT-1h, AT) like the reference, [AT, AT+1h) with
    ``x`` moved by 1.5 sd and ``c`` mostly ``a``. Even requests go to ``primary`` (scorer/1),
    odd to ``canary`` (scorer/2); request ids ``r0-N`` and ``r1-N``."""
    from loopwright.serving.prediction_log import PredictionLog, PredictionRecord

    # Seed 7 drew a calm hour whose x differs from the reference's by 0.12 sd (exact KS p =
    # 0.004): a real difference the defaults rightly flag (1 draw in ~200), not a calm window.
    rng = np.random.default_rng(1)
    with PredictionLog(str(blobs / "predictions")) as log:
        for hour, shift in ((0, 0.0), (1, 1.5)):
            share = [0.9, 0.1] if shift else [0.5, 0.5]
            for i in range(requests):
                x = rng.normal(shift, 1.0, rows)
                log.append(
                    PredictionRecord(
                        request_id=f"r{hour}-{i}",
                        deployment=DEPLOYMENT,
                        variant="primary" if i % 2 == 0 else "canary",
                        model="scorer",
                        model_version=1 + i % 2,
                        timestamp=AT + timedelta(hours=hour - 1, seconds=30 * i),
                        latency_ms=2.0 + i % 2,
                        status=200,
                        inputs={"x": x, "c": list(rng.choice(["a", "b"], rows, p=share))},
                        outputs={"predict": (x > 0).astype(np.int64)},
                    )
                )


def add_reference(client: Client, folder: Path) -> None:
    """Dataset ``ref`` v1: 2,000 rows of ``x`` ~ N(0, 1) and ``c`` in {a, b}."""
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    frame = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    frame.to_parquet(folder / "part.parquet")
    client.datasets.add("ref", folder)


@dataclass
class Api:
    url: str
    tokens: dict[str, str]
    local: Client  # embedded, on the server's stores, as ``ed``
    ed: Client  # remote, an editor
    vic: Client  # remote, a viewer

    def call(self, user: str | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        url = f"{self.url}/api/v1/monitoring{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def store_settings(tmp_path: Path, db_uri: str, user: str | None = None) -> Settings:
    return resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs"), user=user
    )


@pytest.fixture
def api(tmp_path: Path, db_uri: str) -> Iterator[Api]:
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService

    settings = store_settings(tmp_path, db_uri)
    with Client(store_settings(tmp_path, db_uri, user="ed")) as local:
        users = UserService(local.store, actor="root")
        for name, role in (("root", "admin"), ("ed", "editor"), ("vic", "viewer")):
            users.add(name, role)
        tokens = TokenService(local.store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("ed", "vic")}
        add_reference(local, tmp_path / "ref")
        fill_log(tmp_path / "blobs")
        with (
            serving(settings) as url,
            lw.connect(url, token=secrets["ed"], home=tmp_path / "ed-home") as ed,
            lw.connect(url, token=secrets["vic"], home=tmp_path / "vic-home") as vic,
        ):
            yield Api(url, secrets, local, ed, vic)


def _create(client: Client, name: str = "mon", **options: Any) -> Any:
    settings: dict[str, Any] = {
        "reference": "ref@v1",
        "columns": ["input.x", "input.c"],  # the default tests: wasserstein, jensenshannon
        "alerts": ["drift_share>0.3"],
        "description": "scorer inputs",
    }
    return client.monitoring.create(name, deployment=DEPLOYMENT, **{**settings, **options})


def test_monitors_and_runs_read_the_same_remotely(api: Api) -> None:
    created = _create(api.ed)
    assert created == api.local.monitoring.get("mon") == api.vic.monitoring.get("mon")
    assert created.created_by == "ed" and created.alerts[0].key == "drift_share>0.3"
    assert api.vic.monitoring.list(deployment=DEPLOYMENT) == api.local.monitoring.list()
    assert api.vic.monitoring.list(deployment="other") == []
    with pytest.raises(PermissionDenied):
        _create(api.vic, "mine")

    calm = api.ed.monitoring.run("mon", at=AT)
    shifted = api.ed.monitoring.run("mon", at=AT + timedelta(hours=1))
    assert calm.status == shifted.status == "ok", (calm.error, shifted.error)
    assert calm.drift is not None and shifted.drift is not None
    assert "input.x" not in calm.drift.drifted_columns
    assert "input.x" in shifted.drift.drifted_columns
    assert shifted.drift.distributions  # the charts' data travels too
    for run in (calm, shifted):
        assert api.vic.monitoring.get_run(run.id) == api.local.monitoring.get_run(run.id) == run
    assert [r.id for r in api.vic.monitoring.history("mon")] == [shifted.id, calm.id]
    assert api.vic.monitoring.history("mon", limit=1) == api.local.monitoring.history("mon")[:1]
    later = api.vic.monitoring.history("mon", since=datetime.fromtimestamp(0, UTC))
    assert len(later) == 2

    (alert,) = api.vic.monitoring.alerts(monitor="mon")
    assert alert.status == "open" and shifted.alerts == (alert.id,)
    assert api.vic.monitoring.alerts(status="open") == api.local.monitoring.alerts(status="open")
    assert api.vic.monitoring.alerts(status="resolved") == []

    page = api.vic.monitoring.report("mon")
    assert "<svg" in page and "input.x" in page
    assert page == api.local.monitoring.report("mon")
    older = json.loads(api.vic.monitoring.report("mon", run_id=calm.id, format="json"))
    assert older == json.loads(api.local.monitoring.report("mon", run_id=calm.id, format="json"))

    assert api.vic.monitoring.references() == api.local.monitoring.references()
    with pytest.raises(PermissionDenied):
        api.vic.monitoring.delete("mon")
    api.ed.monitoring.delete("mon")
    with pytest.raises(NotFound, match="mon"):
        api.vic.monitoring.get("mon")


def test_every_registered_test_round_trips(api: Api) -> None:
    """Each test's figures and ``detail`` (new categories, quantiles ...) decode as embedded."""
    from loopwright.monitoring.stats import TESTS

    _create(api.ed, tests=sorted(TESTS), columns=[])  # every logged column, outputs included
    run = api.ed.monitoring.run("mon", at=AT + timedelta(hours=1))
    assert run.status == "ok" and run.drift is not None, run.error
    assert {t.test for t in run.drift.tests} >= {"mmd", "psi", "chi2", "missing"}
    assert api.vic.monitoring.get_run(run.id) == api.local.monitoring.get_run(run.id) == run


def test_references_build_remotely(api: Api) -> None:
    built = api.ed.monitoring.build_reference("ref@v1", name="ref-v1")
    assert built.rows == 2000 and set(built.columns) >= {"input.x", "input.c"}
    assert api.vic.monitoring.references() == [built] == api.local.monitoring.references()
    with pytest.raises(PermissionDenied):
        api.vic.monitoring.build_reference("ref@v1", name="again")
    with pytest.raises(NotFound):
        api.ed.monitoring.build_reference("nope@v1")


def test_labels_performance_and_variants_read_the_same_remotely(api: Api) -> None:
    by_id = {f"r0-{i}": int(i % 3 != 0) for i in range(60)}
    done = api.ed.log_labels(DEPLOYMENT, by_id)
    assert (done.deployment, done.rows, done.updated) == (DEPLOYMENT, 60, 0)
    rows = pd.DataFrame({"request_id": ["r0-0", "r0-0"], "row": [1, 2], "label": [1, 0]})
    assert api.ed.monitoring.log_labels(DEPLOYMENT, rows).rows == 2
    again = api.ed.log_labels(DEPLOYMENT, {"r0-1": np.int64(0)})  # NumPy scalars travel
    assert again.updated == 1
    with pytest.raises(PermissionDenied):
        api.vic.log_labels(DEPLOYMENT, {"r0-1": 1})

    remote, local = api.vic.monitoring.labels(DEPLOYMENT), api.local.monitoring.labels(DEPLOYMENT)
    pd.testing.assert_frame_equal(remote, local)
    assert len(remote) == 62
    assert api.vic.monitoring.labels(DEPLOYMENT, since=timedelta(0)).empty  # none logged since now

    span: dict[str, Any] = {"since": AT - timedelta(hours=1), "until": AT}
    performance = api.vic.monitoring.performance(DEPLOYMENT, **span)
    assert performance == api.local.monitoring.performance(DEPLOYMENT, **span)
    assert performance.task == "classification" and performance.rows == 62
    sliced = api.vic.monitoring.performance(DEPLOYMENT, slices=["variant"], **span)
    assert sliced == api.local.monitoring.performance(DEPLOYMENT, slices=["variant"], **span)

    options: dict[str, Any] = {"min_samples": 10, "confidence": 0.9, **span}
    compared = api.vic.monitoring.compare_variants(DEPLOYMENT, **options)
    assert compared == api.local.monitoring.compare_variants(DEPLOYMENT, **options)
    assert compared.baseline.variant == "primary" and compared.candidate.variant == "canary"
    latency = api.vic.monitoring.compare_variants(DEPLOYMENT, metric="latency_ms", **options)
    assert latency.metric == "latency_ms" and latency.decision in ("promote", "rollback")


def test_run_due_and_prometheus_gauges(api: Api) -> None:
    _create(api.ed, every=timedelta(minutes=15))
    _create(api.ed, "manual")
    (due,) = api.ed.monitoring.run_due()
    assert due.monitor == "mon"
    assert api.ed.monitoring.run_due() == []  # not due again for 15 minutes
    with pytest.raises(PermissionDenied):
        api.vic.monitoring.run_due()
    answer = api.call("vic", "GET", "/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert 'loopwright_monitor_rows{deployment="scorer-api",monitor="mon"}' in answer.text
    assert api.call(None, "GET", "/metrics").status_code == 401


def test_compare_runs_in_the_callers_process(api: Api) -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(size=500), "b": rng.choice(["x", "y"], 500)})
    cur = pd.DataFrame({"a": rng.normal(1.0, 1.0, 500), "b": rng.choice(["x", "y"], 500)})
    remote = api.vic.monitoring.compare(ref, cur, tests=["psi"])
    assert remote == api.local.monitoring.compare(ref, cur, tests=["psi"])
    assert remote.drifted_columns == ("a",)


GOOD = {"name": "m2", "deployment": DEPLOYMENT, "reference": "ref@v1"}


# One server for all the cases (each case's own would take a second to start).
BAD_WRITES: list[tuple[str, object, int, str]] = [
    ("/monitors", {**GOOD, "colour": "red"}, 400, "colour"),
    ("/monitors", {**GOOD, "window_s": 0}, 400, "window_s"),
    ("/monitors", {**GOOD, "window_s": "1h"}, 400, "window_s"),
    ("/monitors", {**GOOD, "tests": ["nope"]}, 400, "nope"),
    ("/monitors", {**GOOD, "alerts": ["drift is bad"]}, 400, "METRIC OP NUMBER"),
    ("/monitors", {**GOOD, "webhook": "ftp://x"}, 400, "webhook"),
    ("/monitors", {**GOOD, "task": "ranking"}, 400, "task"),
    ("/monitors", {**GOOD, "name": "x" * 101}, 400, "name"),
    ("/monitors/nope/runs", {}, 404, "nope"),
    ("/monitors/nope/runs", {"at": "yesterday"}, 400, "at"),
    ("/references", {"source": "no version"}, 400, "NAME@VERSION"),
    (f"/labels/{DEPLOYMENT}", {}, 400, "either"),
    (f"/labels/{DEPLOYMENT}", {"labels": {"r": 1}, "rows": []}, 400, "either"),
    (f"/labels/{DEPLOYMENT}", {"labels": {"r": None}}, 400, "labels"),
    (f"/labels/{DEPLOYMENT}", {"labels": {"r": [1, 2]}}, 400, "labels"),
    (
        f"/labels/{DEPLOYMENT}",
        {"rows": [{"request_id": "r", "row": -1, "label": 1}]},
        400,
        "row",
    ),
    (f"/labels/{DEPLOYMENT}", {"labels": {"": 1}}, 400, "request id"),
    ("/labels/bad=name", {"labels": {"r": 1}}, 400, "deployment"),
]
BAD_READS: list[tuple[str, int, str]] = [
    ("/monitors/nope", 404, "nope"),
    ("/runs/nope", 404, "nope"),
    ("/monitors/nope/report", 404, "nope"),
    ("/monitors/nope/report?format=pdf", 400, "format"),
    (f"/performance/{DEPLOYMENT}?task=ranking", 400, "task"),
    (f"/variants/{DEPLOYMENT}?confidence=2", 400, "confidence"),
    (f"/labels/{DEPLOYMENT}?since=yesterday", 400, "since"),
    ("/alerts?status=closed", 400, "status"),
]


def test_bad_requests_are_refused_naming_what_is_wrong(api: Api) -> None:
    for path, body, status, fragment in BAD_WRITES:
        answer = api.call("ed", "POST", path, json=body)
        assert answer.status_code == status, (path, body, answer.text)
        assert fragment in answer.json()["message"], (path, body, answer.text)
    for path, status, fragment in BAD_READS:
        answer = api.call("vic", "GET", path)
        assert answer.status_code == status, (path, answer.text)
        assert fragment in answer.json()["message"], (path, answer.text)


def test_label_uploads_and_reads_are_bounded(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    many = {f"id-{i}": 1 for i in range(MAX_LABELS + 1)}
    answer = api.call("ed", "POST", f"/labels/{DEPLOYMENT}", json={"labels": many})
    assert answer.status_code == 400 and "labels" in answer.json()["message"]
    assert api.vic.monitoring.labels(DEPLOYMENT).empty  # nothing of it was stored
    # The client splits a large mapping into several requests under the bound.
    assert api.ed.log_labels(DEPLOYMENT, many).rows == MAX_LABELS + 1
    monkeypatch.setattr(monitoring_api, "MAX_LABELS_READ", MAX_LABELS)  # the server is in-process
    with pytest.raises(LimitExceeded, match="narrow since / until"):
        api.vic.monitoring.labels(DEPLOYMENT)


def test_remote_arguments_are_checked_before_sending(api: Api) -> None:
    with pytest.raises(InvalidInput, match="timedelta"):
        api.ed.monitoring.create("m", deployment=DEPLOYMENT, window=3600)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="list of strings"):
        api.ed.monitoring.create("m", deployment=DEPLOYMENT, tests="psi")
    with pytest.raises(InvalidInput, match="not strings"):
        api.ed.log_labels(DEPLOYMENT, {1: 1})
    with pytest.raises(InvalidInput, match="request_id"):
        api.ed.log_labels(DEPLOYMENT, pd.DataFrame({"label": [1]}))
    with pytest.raises(InvalidInput, match="datetime"):
        api.ed.monitoring.run("m", at="now")  # type: ignore[arg-type]
    for bad in ("a/b", "..", "x" * 101):  # never a wrong URL: refused as embedded refuses them
        with pytest.raises(InvalidInput, match="monitor name"):
            api.vic.monitoring.get(bad)
        with pytest.raises(InvalidInput, match="monitor name"):
            api.local.monitoring.get(bad)
    with pytest.raises(InvalidInput, match="deployment name"):
        api.vic.monitoring.labels("../scorer-api")
    with pytest.raises(InvalidInput, match="deployment name"):
        api.vic.monitoring.performance("a/b")
