"""``/api/v1/features`` over raw HTTP on a real server (auth on): roles per route, and the
unhappy paths answer 4xx naming what is wrong (bad specs, unknown views, malformed Parquet,
oversized and malformed lookup bodies), never a 500."""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from loopwright.config import resolve_settings
from loopwright.features.definitions import Entity, FeatureView, Field, FileSource, to_specs
from loopwright.server.api import features as features_api
from loopwright.server.api.features import MAX_ONLINE_ROWS
from test_public_api import live_server

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


@dataclass
class Api:
    url: str
    tokens: dict[str, str]

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kwargs.pop("headers", {})}
        url = f"{self.url}/api/v1/features{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)


def _specs(tmp_path: Path) -> list[dict[str, Any]]:
    frame = pd.DataFrame(
        {
            "driver_id": [1, 2],
            "event_timestamp": [T0, T0],
            "conv_rate": [0.1, 0.2],
        }
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(tmp_path / "stats.parquet", index=False)
    driver = Entity("driver", join_keys={"driver_id": "int64"})
    view = FeatureView(
        "driver_stats",
        entities=[driver],
        source=FileSource(str(tmp_path / "stats.parquet"), timestamp_field="event_timestamp"),
        schema=[Field("conv_rate", "float64")],
    )
    return to_specs([driver, view])


@pytest.fixture
def api(tmp_path: Path, db_uri: str) -> Iterator[Api]:
    with serve(tmp_path, db_uri) as api:
        yield api


@contextlib.contextmanager
def serve(tmp_path: Path, db_uri: str, **overrides: Any) -> Iterator[Api]:
    """A server (with ``overrides`` of its settings) where ``driver_stats`` is applied."""
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    settings = resolve_settings(
        home=tmp_path / "home",
        db_uri=db_uri,
        blob_uri=str(tmp_path / "blobs"),
        max_request_bytes=64 * 1024,
        max_upload_bytes=256 * 1024,
        **overrides,
    )
    with open_store(settings) as store:
        users = UserService(store, actor="root")
        users.add("root", "admin")
        users.add("ed", "editor")
        users.add("vic", "viewer")
        tokens = TokenService(store, actor="root")
        secrets = {name: tokens.create(name).secret for name in ("root", "ed", "vic")}
    with live_server(settings) as url:
        api = Api(url, secrets)
        # A local file source reads the server's disk: an administrator applies it.
        applied = api.call("root", "POST", "/apply", json={"specs": _specs(tmp_path / "data")})
        assert applied.status_code == 200, applied.text
        yield api


def _error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    message = response.json()["message"]
    for fragment in fragments:
        assert fragment in message, message


def test_roles(api: Api) -> None:
    specs = api.call("vic", "GET", "/definitions").json()
    assert [d["name"] for d in specs] == ["driver", "driver_stats"]
    plan = api.call("vic", "POST", "/plan", json={"specs": [d["spec"] for d in specs]})
    assert plan.status_code == 200 and not plan.json()["applied"]
    _error(api.call("vic", "POST", "/apply", json={"specs": []}), 403)
    _error(api.call("vic", "POST", "/materialize", json={}), 403)
    _error(api.call("vic", "POST", "/push?view=driver_stats", content=b""), 403)
    anonymous = httpx.get(f"{api.url}/api/v1/features/definitions", timeout=30)
    assert anonymous.status_code == 401


def test_what_runs_on_the_server_needs_an_administrator(api: Api, tmp_path: Path) -> None:
    entity = {
        "kind": "entity",
        "name": "rider",
        "join_keys": [{"name": "rider_id", "dtype": "int64"}],
    }
    view = {
        "kind": "feature_view",
        "name": "rider_stats",
        "entities": ["rider"],
        "features": [{"name": "trips", "dtype": "int64"}],
    }
    local = {"kind": "file", "path": "/etc/passwd", "format": "csv", "timestamp_field": "t"}
    sql = {
        "kind": "sql",
        "uri": "sqlite:////srv/loopwright.db",
        "table": "api_tokens",
        "query": None,
        "timestamp_field": "t",
    }
    code = {
        "kind": "on_demand_feature_view",
        "name": "shell",
        "sources": ["driver_stats"],
        "request_schema": [],
        "features": [{"name": "x", "dtype": "int64"}],
        "function": "shell",
        "code": "def shell(inputs):\n    import os\n    return os.system('true')\n",
    }
    for spec, fragment in (
        ({**view, "source": local}, "local file source"),
        ({**view, "source": sql}, "SQL source"),
        (code, "its code runs on the server"),
    ):
        refused = api.call("ed", "POST", "/apply", json={"specs": [entity, spec]})
        _error(refused, 403, "needs the admin role", fragment)
    assert [d["name"] for d in api.call("vic", "GET", "/definitions").json()] == [
        "driver",
        "driver_stats",
    ]  # nothing of a refused apply was stored
    s3 = {
        "kind": "file",
        "path": "s3://bucket/riders/*.parquet",
        "format": "parquet",
        "timestamp_field": "t",
    }
    allowed = api.call("ed", "POST", "/apply", json={"specs": [entity, {**view, "source": s3}]})
    assert allowed.status_code == 200, allowed.text


def test_bad_specs_name_the_field(api: Api) -> None:
    bad = {"kind": "entity", "name": "rider", "join_keys": [{"name": "rider_id", "dtype": "nope"}]}
    _error(api.call("ed", "POST", "/apply", json={"specs": [bad]}), 400, "rider", "dtype")
    _error(api.call("ed", "POST", "/apply", json={"specs": "x"}), 400, "specs")
    _error(api.call("ed", "POST", "/apply", json={"specs": [], "extra": 1}), 400, "extra")


def test_unknown_names_are_404(api: Api) -> None:
    _error(api.call("vic", "GET", "/definitions/ghost"), 404, "ghost")
    _error(api.call("vic", "GET", "/definitions/driver_stats", params={"version": 9}), 404)
    _error(api.call("vic", "GET", "/definitions/ghost/versions"), 404, "ghost")
    body = {"entities": {"driver_id": [1]}, "features": ["ghost:x"]}
    _error(api.call("vic", "POST", "/online", json=body), 404, "ghost")
    _error(api.call("ed", "POST", "/materialize", json={"views": ["ghost"]}), 404, "ghost")
    huge = api.call("vic", "GET", "/definitions/driver_stats@v99999999999999999999")
    _error(huge, 400, "driver_stats@v99999999999999999999", "past the largest possible")
    found = api.call("vic", "GET", "/definitions/driver_stats", params={"version": 1})
    assert found.status_code == 200 and found.json()["version"] == 1


def test_online_lookup_body(api: Api) -> None:
    done = api.call("ed", "POST", "/materialize", json={})
    assert done.status_code == 200, done.text
    body = {"entities": {"driver_id": [1, 5]}, "features": ["driver_stats:conv_rate"]}
    found = api.call("vic", "POST", "/online", json=body).json()
    assert found["values"] == {"driver_id": [1, 5], "conv_rate": [0.1, None]}
    assert found["statuses"]["conv_rate"] == ["present", "not_found"]

    raw = {"content": b"{not json", "headers": {"Content-Type": "application/json"}}
    _error(api.call("vic", "POST", "/online", **raw), 400, "not JSON")
    _error(api.call("vic", "POST", "/online", json=[1]), 400, "JSON object")
    _error(api.call("vic", "POST", "/online", json={**body, "x": 1}), 400, "keys")
    _error(api.call("vic", "POST", "/online", json={**body, "entities": 3}), 400, "entities")
    _error(api.call("vic", "POST", "/online", json={**body, "features": 3}), 400, "features")
    rows = {"driver_id": [1] * (MAX_ONLINE_ROWS + 1)}
    _error(api.call("vic", "POST", "/online", json={**body, "entities": rows}), 400, "split")
    wide = {"driver_id": list(range(20_000))}  # past the server's 64 KiB JSON cap
    response = api.call("vic", "POST", "/online", json={**body, "entities": wide})
    assert response.status_code == 413
    for entities in (
        {"x": [1]},  # no join key
        [1, 2],  # rows that are not objects
        {"driver_id": ["one"]},  # a key of the wrong type
        [{"driver_id": 1}, {}],  # a row without its key
    ):
        response = api.call("vic", "POST", "/online", json={**body, "entities": entities})
        _error(response, 400)


def test_parquet_uploads(api: Api, tmp_path: Path) -> None:
    junk = b"PAR1 this is not parquet"
    params = {"service": "x"}
    _error(api.call("vic", "POST", "/historical", params=params, content=junk), 400, "Parquet")
    both = {"service": "x", "feature": ["driver_stats:conv_rate"]}
    _error(api.call("vic", "POST", "/historical", params=both, content=b""), 400, "either")
    pushed = api.call("ed", "POST", "/push", params={"view": "driver_stats"}, content=junk)
    _error(pushed, 400, "Parquet")
    many = pd.DataFrame({"driver_id": [1] * 11, "event_timestamp": [T0] * 11, "conv_rate": 0.5})
    many.to_parquet(tmp_path / "many.parquet", index=False)
    to_view = {"view": "driver_stats"}
    with pytest.MonkeyPatch.context() as patch:  # the server runs in this process
        patch.setattr(features_api, "MAX_PUSH_ROWS", 10)
        pushed = api.call(
            "ed",
            "POST",
            "/push",
            params=to_view,
            content=(tmp_path / "many.parquet").read_bytes(),
        )
    _error(pushed, 400, "11 rows", "split")
    big = b"\0" * (300 * 1024)  # past the 256 KiB upload cap
    _error(api.call("vic", "POST", "/historical", params=params, content=big), 413)

    entities = pd.DataFrame({"driver_id": [2], "event_timestamp": [T0 + timedelta(hours=1)]})
    entities.to_parquet(tmp_path / "e.parquet", index=False)
    answer = api.call(
        "vic",
        "POST",
        "/historical",
        params={"feature": ["driver_stats:conv_rate"]},
        content=(tmp_path / "e.parquet").read_bytes(),
    )
    assert answer.status_code == 200, answer.text
    (size,) = struct.unpack(">Q", answer.content[:8])
    metadata = json.loads(answer.content[8 : 8 + size])
    assert metadata["rows"] == 1 and metadata["views"] == {"driver_stats": 1}
    (tmp_path / "out.parquet").write_bytes(answer.content[8 + size :])
    assert pd.read_parquet(tmp_path / "out.parquet")["conv_rate"].tolist() == [0.2]


def test_a_viewer_cannot_read_server_files_as_entity_rows(api: Api, tmp_path: Path) -> None:
    secret = pd.DataFrame({"driver_id": [1], "event_timestamp": [T0], "password": ["hunter2"]})
    for name in ("secret.parquet", "secret.csv"):
        path = tmp_path / name
        if name.endswith(".csv"):
            secret.to_csv(path, index=False)
        else:
            secret.to_parquet(path, index=False)
        params = {"feature": ["driver_stats:conv_rate"], "entities_dataset": str(path)}
        answer = api.call("vic", "POST", "/historical", params=params, content=b"")
        assert answer.status_code in (400, 404), answer.text
        assert b"hunter2" not in answer.content


def test_a_push_that_would_decode_past_query_memory_is_refused(tmp_path: Path, db_uri: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    long = "x" * 20_000  # 100 rows of it: 2 MB once read, from a file of a few KB
    rows = pa.table(
        {
            "driver_id": pa.array(range(100), pa.int64()),
            "event_timestamp": pa.array([T0] * 100, pa.timestamp("us", tz="UTC")),
            "conv_rate": pa.array([0.5] * 100),
            "note": pa.array([long] * 100),  # an extra column, ignored by push once read
        }
    )
    small = rows.slice(0, 2).drop_columns(["note"])
    with serve(tmp_path, db_uri, query_memory=1024 * 1024) as api:
        for name, options in (
            ("dictionary", {"use_dictionary": True, "compression": "zstd"}),
            ("plain", {"use_dictionary": False, "compression": "zstd"}),
        ):
            pq.write_table(rows, tmp_path / f"{name}.parquet", **options)
            body = (tmp_path / f"{name}.parquet").read_bytes()
            assert len(body) < 64 * 1024, name
            pushed = api.call("ed", "POST", "/push", params={"view": "driver_stats"}, content=body)
            _error(pushed, 413, "'driver_stats'", "query_memory", "split")
        pq.write_table(small, tmp_path / "small.parquet")
        body = (tmp_path / "small.parquet").read_bytes()
        pushed = api.call("ed", "POST", "/push", params={"view": "driver_stats"}, content=body)
        assert pushed.status_code == 200 and pushed.json()["rows"] == 2, pushed.text


def test_the_routes_bounds_are_the_feature_stores(api: Api) -> None:
    from annotated_types import Ge, Le

    from loopwright.features.skew import MAX_SAMPLE
    from loopwright.features.spec import FIRST_MS, LAST_MS

    bounds = {type(m): m for m in features_api.SkewIn.model_fields["sample"].metadata}
    assert (bounds[Ge].ge, bounds[Le].le) == (1, MAX_SAMPLE)
    body = {"deployment": "d", "sample": MAX_SAMPLE + 1}
    _error(api.call("vic", "POST", "/skew", json=body), 400, "sample")
    for end in (LAST_MS + 1, FIRST_MS - 1):
        _error(api.call("ed", "POST", "/materialize", json={"end": end}), 400, "end")
    done = api.call("ed", "POST", "/materialize", json={"end": LAST_MS})
    assert done.status_code == 200, done.text
