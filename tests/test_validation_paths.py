"""One validation, three doors: the embedded API, the native REST API and MLflow's REST API
accept and refuse the same names, keys and values, on SQLite and PostgreSQL.

Hostile and boundary strings (NUL, lone surrogates, one past each column width, path-like keys)
and numbers (beyond 64 bits, beyond a double) go through each door; the outcome must be the
same everywhere, and every refusal an ``InvalidInput`` / HTTP 400: never a 500, never a raw
driver error. The limits are the ones ``store/limits.py`` declares and the schema's columns use.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopwright as lw
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.errors import AlreadyExists, InvalidInput
from loopwright.store import limits
from loopwright.tracking import Metric, RunStatus
from test_public_api import _add_users, live_server

OK, REFUSED = "accepted", "refused"
_unique = itertools.count()


@dataclass
class Doors:
    embedded: Client
    http: httpx.Client  # authenticated as the same user, for both REST APIs
    run_ids: dict[str, str]  # door -> a run to log to
    experiment_id: str


@pytest.fixture
def doors(tmp_path: Path, db_uri: str) -> Iterator[Doors]:
    settings = resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs")
    )
    token = _add_users(settings)["ada"]
    with (
        live_server(settings) as url,
        Client(resolve_settings(home=settings.home, db_uri=db_uri, user="ada")) as embedded,
        httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http,
    ):
        experiment = embedded.tracking.get_or_create_experiment("paths")
        run_ids = {
            door: embedded.tracking.create_run(experiment="paths").id
            for door in ("embedded", "native", "mlflow")
        }
        yield Doors(embedded, http, run_ids, experiment.id)


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> str:
    """POST ``body`` as JSON exactly (surrogates escaped, big integers whole)."""
    response = http.post(
        path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    if response.is_success:
        return OK
    found = response.json()
    code = found.get("code") or found.get("error_code")
    if code == "RESOURCE_ALREADY_EXISTS":
        return OK  # valid, and taken
    assert response.status_code == 400, f"{path}: HTTP {response.status_code} {found}"
    return REFUSED


def _call(action: Callable[[], object]) -> str:
    try:
        action()
    except AlreadyExists:
        return OK
    except InvalidInput:
        return REFUSED
    return OK


def _through_all_doors(doors: Doors, field: str, value: Any) -> dict[str, str]:
    """The outcome of setting ``field`` to ``value`` through each door."""
    tracking, http = doors.embedded.tracking, doors.http
    run = doors.run_ids
    n = next(_unique)
    native, mlflow = "/api/v1", "/api/2.0/mlflow"
    if field == "experiment name":
        return {
            "embedded": _call(lambda: tracking.create_experiment(value)),
            "native": _post(http, f"{native}/experiments", {"name": value}),
            "mlflow": _post(http, f"{mlflow}/experiments/create", {"name": value}),
        }
    if field == "run name":
        return {
            "embedded": _call(lambda: tracking.create_run(experiment="paths", name=value)),
            "native": _post(http, f"{native}/runs", {"experiment": "paths", "name": value}),
            "mlflow": _post(
                http,
                f"{mlflow}/runs/create",
                {"experiment_id": doors.experiment_id, "run_name": value},
            ),
        }
    if field in ("param key", "param value", "tag key", "tag value"):
        kind = field.split()[0]
        key, text = (value, "v") if field.endswith("key") else (f"{kind}-{n}", value)
        embedded = tracking.log_params if kind == "param" else tracking.set_tags
        many, one = ("params", "log-parameter") if kind == "param" else ("tags", "set-tag")
        return {
            "embedded": _call(lambda: embedded(run["embedded"], {key: text})),
            "native": _post(http, f"{native}/runs/{run['native']}/{many}", {many: {key: text}}),
            "mlflow": _post(
                http, f"{mlflow}/runs/{one}", {"run_id": run["mlflow"], "key": key, "value": text}
            ),
        }
    point: dict[str, Any] = {"key": "m", "value": 1.0, "step": 0, "timestamp": 1000}
    point[field.split()[1]] = value
    return {
        "embedded": _call(lambda: tracking.log_metric_points(run["embedded"], [Metric(**point)])),
        "native": _post(http, f"{native}/runs/{run['native']}/metrics", {"metrics": [point]}),
        "mlflow": _post(http, f"{mlflow}/runs/log-metric", {"run_id": run["mlflow"], **point}),
    }


def _texts(limit: int) -> st.SearchStrategy[str]:
    """Boundary lengths, characters no column can hold, path-like and ordinary text."""
    return st.one_of(
        st.sampled_from(
            [
                *("", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\U0001f600", "é", "a\nb"),
                *("/abs", "a/../b", "..", "a/b", "a b", "a%2Fb", "'; DROP TABLE runs; --"),
            ]
        ),
        st.integers(limit - 1, limit + 1).map(lambda n: "k" * n),
        st.integers(limit - 1, limit + 1).map(lambda n: "é" * n),  # two UTF-8 bytes each
        st.text(st.characters(codec="utf-8"), max_size=12),
        st.text(max_size=12).map(lambda s: s + "\udc80"),
    )


_FIELDS = st.one_of(
    st.tuples(st.just("experiment name"), _texts(limits.EXPERIMENT_NAME)),
    st.tuples(st.just("run name"), _texts(limits.RUN_NAME)),
    st.tuples(st.sampled_from(["param key", "tag key", "metric key"]), _texts(limits.KEY)),
    st.tuples(st.just("param value"), _texts(limits.PARAM_VALUE)),
    st.tuples(st.just("tag value"), _texts(limits.TAG_VALUE)),
    st.tuples(
        st.just("metric value"),
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([10**308 * 10, -(10**400), 2**63, 0, -1]),
        ),
    ),
    st.tuples(
        st.sampled_from(["metric step", "metric timestamp"]),
        st.one_of(
            st.sampled_from([limits.INT64_MAX, limits.INT64_MIN]),
            st.sampled_from([limits.INT64_MAX + 1, limits.INT64_MIN - 1, 10**30]),
            st.integers(-1000, 1000),
        ),
    ),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_FIELDS)
def test_every_door_accepts_and_refuses_the_same_input(doors: Doors, case: tuple[str, Any]) -> None:
    field, value = case
    outcomes = _through_all_doors(doors, field, value)
    assert len(set(outcomes.values())) == 1, f"{field} = {value!r:.80}: {outcomes}"


@pytest.mark.parametrize(
    ("field", "value", "outcome"),
    [
        ("run name", "r" * 250, OK),
        ("run name", "r" * 251, REFUSED),
        ("experiment name", "e" * 256, OK),
        ("experiment name", "e" * 257, REFUSED),
        ("experiment name", "a\x00b", REFUSED),
        ("tag key", "k\ud800", REFUSED),
        ("param value", "v" * 6000, OK),
        ("param value", "v" * 6001, REFUSED),
        ("tag value", "v" * 8001, REFUSED),
        ("metric value", 10**400, REFUSED),
        ("metric value", math.inf, OK),
        ("metric step", 2**63, REFUSED),
        ("metric timestamp", -(2**63), OK),
    ],
)
def test_the_limits_the_schema_declares(doors: Doors, field: str, value: Any, outcome: str) -> None:
    assert _through_all_doors(doors, field, value) == dict.fromkeys(
        ("embedded", "native", "mlflow"), outcome
    )


def test_bad_points_are_refused_at_the_call_and_the_good_ones_kept(
    tmp_path: Path, db_uri: str
) -> None:
    """Issue 11 defect 1 through the remote client: refused at the call, nothing lost."""
    settings = resolve_settings(
        home=tmp_path / "server-home", db_uri=db_uri, blob_uri=str(tmp_path / "blobs")
    )
    token = _add_users(settings)["ada"]
    with (
        live_server(settings) as url,
        lw.connect(url, token=token, home=tmp_path / "ada-home") as client,
    ):
        run = client.start_run(experiment="bad-points")
        for step in range(1000):
            run.log_metric("loss", 1.0, step=step)
        with pytest.raises(InvalidInput, match="64 bits"):
            run.log_metric("loss", 1.0, step=2**63)
        with pytest.raises(InvalidInput, match="64 bits"):
            run.log_metric("loss", 1.0, timestamp=2**63)
        with pytest.raises(InvalidInput, match="64-bit float"):
            run.log_metric("loss", 10**400)
        with pytest.raises(InvalidInput, match="lone surrogate"):
            run.set_tag("k\ud800", "v")
        with pytest.raises(InvalidInput, match="6000"):
            run.log_param("big", "x" * 100_000)
        run.end()
        stored = client.get_run(run.id)
        assert stored.status is RunStatus.FINISHED
        assert len(client.get_metric_history(run.id, "loss")) == 1000
