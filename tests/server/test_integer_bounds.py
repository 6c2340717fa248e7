"""Every integer a route takes has an upper bound, so no number reaches the database driver
that its columns cannot hold: sqlite3 cannot bind an int past 64 bits (an OverflowError, a 500
before the bounds) and PostgreSQL refuses one past its column's range."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import httpx
import pytest
from _routes import all_routes
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.server.app import create_app

PAST_64_BITS = 2**63


def _bounded(metadata: typing.Iterable[Any]) -> bool:
    return any(isinstance(item, annotated_types.Le | annotated_types.Lt) for item in metadata)


def _constraints(item: Any) -> list[Any]:
    """An ``Annotated`` extra as constraints: a ``FieldInfo`` (``Field``, ``Query``, ``Path``)
    holds them in its metadata, a bare ``annotated_types`` constraint is one."""
    return list(getattr(item, "metadata", [item]))


def _unbounded_int(annotation: Any, metadata: typing.Iterable[Any] = ()) -> bool:
    """Whether ``annotation`` admits an int with no upper bound (in a union, an ``Annotated``,
    a list's items or a dict's values)."""
    if annotation is int:
        return not _bounded(metadata)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        extras = [c for item in args[1:] for c in _constraints(item)]
        return _unbounded_int(args[0], [*metadata, *extras])
    if origin in (typing.Union, types.UnionType):
        return any(_unbounded_int(arg, metadata) for arg in args)
    return any(_unbounded_int(arg) for arg in args)  # a container's items: their own bounds


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _params(dependant: Any) -> typing.Iterator[Any]:
    yield from dependant.path_params
    yield from dependant.query_params
    yield from dependant.header_params
    yield from dependant.body_params
    for sub in dependant.dependencies:
        yield from _params(sub)


def _unbounded(app: Any) -> tuple[int, list[str]]:
    """(routes walked, every parameter or body field taking an unbounded int)."""
    found: list[str] = []
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel], where: str) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            if _unbounded_int(field.annotation, field.metadata):
                found.append(f"{where}: {model.__name__}.{name}")
            for inner in _models(field.annotation):
                walk(inner, where)

    routes = [r for r in all_routes(app.routes) if isinstance(r, APIRoute)]
    for route in routes:
        where = f"{sorted(route.methods or ())} {route.path}"
        for param in _params(route.dependant):
            info = param.field_info
            if _unbounded_int(info.annotation, info.metadata):
                found.append(f"{where}: parameter {param.name}")
            for model in _models(info.annotation):
                walk(model, where)
    return len(routes), found


def test_every_integer_a_route_takes_has_an_upper_bound(tmp_path: Path) -> None:
    """Int64 / Int32 / Number (server/api/_schemas.py), VersionNumber (api/_deps.py), Offset
    (ui/_paging.py) or a ``le=`` of the field's own."""
    walked, unbounded = _unbounded(create_app(resolve_settings(home=tmp_path / "home")))
    assert walked > 400  # the native API, MLflow's, the gateway's and the dashboard's
    assert not unbounded, f"integers without an upper bound: {unbounded}"


def test_the_walk_finds_an_unbounded_int_where_there_is_one() -> None:
    """The check above can fail: each shape it reads, bounded and not."""
    from typing import Annotated

    from pydantic import Field

    from loopwright.server.api._schemas import Int64, Number

    cases: list[tuple[Any, bool]] = [
        (int, True),
        (int | None, True),
        (float | int, True),
        (Number, False),
        (Int64 | None, False),
        (Annotated[int, Field(ge=0)], True),
        (Annotated[int | None, Field(le=5)], False),
        (dict[str, float | int], True),
        (dict[str, Number], False),
        (list[Annotated[int, Field(lt=3)]], False),
        (str, False),
    ]
    assert [_unbounded_int(annotation) for annotation, _ in cases] == [u for _, u in cases]


_TRACE_COUNT = {"metric_name": "trace_count", "aggregations": [{"aggregation_type": "COUNT"}]}


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        # The first three were a 500 (an OverflowError on SQLite) before their bounds.
        ("POST", "/api/v1/traces/delete", {"older_than_ms": PAST_64_BITS}, "older_than_ms"),
        (
            "POST",
            "/api/2.0/mlflow/traces/delete-traces",
            {"experiment_id": "0", "max_timestamp_millis": PAST_64_BITS - 1},  # + 1 ms inside
            "max_timestamp_millis",
        ),
        (
            "POST",
            "/api/3.0/mlflow/traces/metrics",
            {"experiment_ids": ["0"], **_TRACE_COUNT, "end_time_ms": PAST_64_BITS},
            "end_time_ms",
        ),
        ("GET", f"/api/v1/models/m/versions/{2**31}", None, "version"),
        ("GET", f"/api/v1/predictions/d?limit={PAST_64_BITS}", None, "limit"),
        ("POST", "/api/v1/deployments/d/rollback", {"to_revision": 2**31}, "to_revision"),
    ],
)
def test_a_number_past_its_column_is_a_400_on_every_backend(
    http: httpx.Client, method: str, path: str, body: dict[str, Any] | None, named: str
) -> None:
    answer = http.request(method, path, json=body)
    assert answer.status_code == 400, answer.text
    assert "INTERNAL" not in answer.text
    assert named in answer.text, answer.text  # the answer names what to correct


def test_the_tracing_service_refuses_a_time_past_64_bits(tmp_path: Path) -> None:
    """The same bound in the domain: an embedded caller gets the same refusal."""
    from loopwright.store.home import open_store
    from loopwright.tracing.service import TracingService

    with open_store(resolve_settings(home=tmp_path / "home")) as store:
        tracing = TracingService(store)
        with pytest.raises(InvalidInput, match=r"older_than_ms .* does not fit in 64 bits"):
            tracing.delete(older_than_ms=PAST_64_BITS)
        for start, end in ((PAST_64_BITS, None), (None, -PAST_64_BITS - 1)):
            with pytest.raises(InvalidInput, match=r"_time_ms .* does not fit in 64 bits"):
                tracing.metrics(None, "trace_count", [("COUNT", None)], start_ms=start, end_ms=end)
        assert tracing.delete(older_than_ms=2**63 - 1) == 0  # the largest bound still answers


def test_an_overflow_the_bounds_miss_is_still_a_400_and_any_other_a_500(tmp_path: Path) -> None:
    """The app's last line: sqlite3's OverflowError on binding is the request's fault (as
    PostgreSQL's out-of-range DataError is); an OverflowError of our own arithmetic is not."""
    app = create_app(resolve_settings(home=tmp_path / "home"), auth=False)

    @app.get("/api/v1/test-binding-overflow")
    def binding() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    @app.get("/api/v1/test-math-overflow")
    def arithmetic() -> None:
        raise OverflowError("math range error")

    with TestClient(app, raise_server_exceptions=False) as client:
        refused = client.get("/api/v1/test-binding-overflow")
        assert refused.status_code == 400, refused.text
        assert refused.json()["code"] == "INVALID_PARAMETER_VALUE"
        assert "does not fit in 64 bits" in refused.json()["message"]
        broken = client.get("/api/v1/test-math-overflow")
        assert broken.status_code == 500, broken.text
        assert broken.json()["code"] == "INTERNAL_ERROR"
