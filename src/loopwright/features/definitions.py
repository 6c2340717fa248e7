"""Feature definitions in Python: Feast's concepts, each turned into a spec (features/spec.py).

Write these at module level in a ``features.py`` (or a folder of them) and apply them with
``loopwright features apply``; every definition object at module level is collected. Nothing here
touches a store: :func:`to_specs` turns objects into specs, which are validated, compared and
stored by the definition store.

Example:
    >>> from datetime import timedelta
    >>> driver = Entity("driver", join_keys={"driver_id": "int64"})
    >>> stats = FeatureView(
    ...     "driver_stats",
    ...     entities=[driver],
    ...     source=FileSource("data/driver_stats.parquet", timestamp_field="event_timestamp"),
    ...     schema=[Field("conv_rate", "float32"), Field("trips", "int64", default=0)],
    ...     ttl=timedelta(days=1),
    ... )
    >>> model = FeatureService("driver_model", features=[stats[["conv_rate"]]])
    >>> [spec["kind"] for spec in to_specs([model])]
    ['entity', 'feature_view', 'feature_service']

On-demand feature views are code: the decorated function's source text is stored and run in a
fresh namespace, offline and online alike, so it must import what it uses inside its body.
Applying code is trusted like a pipeline's code: whoever may apply definitions may run code on
the machines that serve and build training sets. On the embedded store that is an editor; through
a server, where the code would run in the server, an administrator (server/api/features.py).
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import InvalidInput
from .spec import Kind

__all__ = [
    "DatasetSource",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "OnDemandFeatureView",
    "RequestSource",
    "SqlSource",
    "on_demand_feature_view",
    "to_specs",
]


@dataclass(frozen=True)
class Field:
    """A feature, join key or request field: its name and type (one of spec.DTYPES)."""

    name: str
    dtype: str
    default: Any = None
    description: str = ""

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "default": self.default,
            "description": self.description,
        }


def _fields(fields: Mapping[str, str] | Sequence[Field]) -> list[Field]:
    if isinstance(fields, Mapping):
        return [Field(name, dtype) for name, dtype in fields.items()]
    return list(fields)


@dataclass(frozen=True)
class Entity:
    """What features describe (a driver, a customer), identified by its join keys."""

    name: str
    join_keys: Mapping[str, str] | Sequence[Field]
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "entity",
            "name": self.name,
            "join_keys": [{"name": f.name, "dtype": f.dtype} for f in _fields(self.join_keys)],
            "description": self.description,
            "tags": dict(self.tags),
        }


def _timestamps(timestamp_field: str, created: str | None) -> dict[str, Any]:
    return {"timestamp_field": timestamp_field, "created_timestamp_field": created}


@dataclass(frozen=True, init=False)
class FileSource:
    """Parquet or CSV files, local or on S3 (a path or a glob); ``format`` from the suffix."""

    path: str
    timestamp_field: str
    created_timestamp_field: str | None = None
    format: str | None = None

    def __init__(
        self, path: str, *, timestamp_field: str, created_timestamp_field: str | None = None,
        format: str | None = None,
    ) -> None:  # fmt: skip
        object.__setattr__(self, "path", str(path))
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)
        object.__setattr__(self, "format", format)

    def spec(self) -> dict[str, Any]:
        fmt = self.format or file_format(self.path) or "parquet"
        return {
            "kind": "file",
            "path": self.path,
            "format": fmt,
            **_timestamps(self.timestamp_field, self.created_timestamp_field),
        }


@dataclass(frozen=True, init=False)
class DatasetSource:
    """A Loopwright dataset's files: ``name`` (the newest version at retrieval), ``name@v3``
    or ``name@alias``."""

    dataset_ref: str
    timestamp_field: str
    created_timestamp_field: str | None = None

    def __init__(
        self, dataset_ref: str, *, timestamp_field: str, created_timestamp_field: str | None = None
    ) -> None:
        object.__setattr__(self, "dataset_ref", dataset_ref)
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "dataset",
            "dataset": self.dataset_ref,
            **_timestamps(self.timestamp_field, self.created_timestamp_field),
        }


@dataclass(frozen=True, init=False)
class SqlSource:
    """A table or query of a SQL database (an SQLAlchemy URI); exactly one of the two."""

    uri: str
    timestamp_field: str
    table: str | None = None
    query: str | None = None
    created_timestamp_field: str | None = None

    def __init__(
        self, uri: str, *, table: str | None = None, query: str | None = None,
        timestamp_field: str, created_timestamp_field: str | None = None,
    ) -> None:  # fmt: skip
        object.__setattr__(self, "uri", uri)
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "timestamp_field", timestamp_field)
        object.__setattr__(self, "created_timestamp_field", created_timestamp_field)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "sql",
            "uri": self.uri,
            "table": self.table,
            "query": self.query,
            **_timestamps(self.timestamp_field, self.created_timestamp_field),
        }


Source = FileSource | DatasetSource | SqlSource


@dataclass(frozen=True)
class RequestSource:
    """Fields an on-demand view takes from the request (offline: the entity rows' columns)."""

    name: str
    schema: Sequence[Field]


@dataclass(frozen=True, init=False)
class FeatureView:
    """Features of entities read from a source, with a TTL (how old a value may be)."""

    name: str
    entities: tuple[Entity | str, ...]
    source: Source
    features: tuple[Field, ...]
    ttl_seconds: int | None
    online: bool = True
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self, name: str, *, entities: Sequence[Entity | str], source: Source,
        schema: Sequence[Field] | None = None, features: Sequence[Field] | None = None,
        ttl: timedelta | int | None = None, online: bool = True, description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        if (schema is None) == (features is None):
            raise InvalidInput(f"feature view {name!r}: pass its fields as schema= or features=")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "entities", tuple(entities))
        object.__setattr__(self, "source", source)
        fields = schema if schema is not None else features
        object.__setattr__(self, "features", tuple(fields or ()))
        object.__setattr__(self, "ttl_seconds", _seconds(ttl, name))
        object.__setattr__(self, "online", online)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "tags", dict(tags or {}))

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        """``view[["a", "b"]]``: those features of the view, for a feature service."""
        return FeatureViewProjection(self, tuple(features))

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "feature_view",
            "name": self.name,
            "entities": [e if isinstance(e, str) else e.name for e in self.entities],
            "source": self.source.spec(),
            "features": [f.spec() for f in self.features],
            "ttl_seconds": self.ttl_seconds,
            "online": self.online,
            "description": self.description,
            "tags": dict(self.tags),
        }


def _seconds(ttl: timedelta | int | None, name: str) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        return int(ttl.total_seconds())
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise InvalidInput(
            f"feature view {name!r}: ttl must be a timedelta or whole seconds, not {ttl!r}"
        )
    return ttl


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed by code from feature views and request fields (see the decorator)."""

    name: str
    sources: tuple[FeatureView | str, ...]
    request_schema: tuple[Field, ...]
    features: tuple[Field, ...]
    function: str
    code: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, features: Sequence[str]) -> FeatureViewProjection:
        return FeatureViewProjection(self, tuple(features))

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "on_demand_feature_view",
            "name": self.name,
            "sources": [s if isinstance(s, str) else s.name for s in self.sources],
            "request_schema": [{"name": f.name, "dtype": f.dtype} for f in self.request_schema],
            "features": [f.spec() for f in self.features],
            "function": self.function,
            "code": self.code,
            "description": self.description,
            "tags": dict(self.tags),
        }


def on_demand_feature_view(
    *, sources: Sequence[FeatureView | RequestSource | str], schema: Sequence[Field],
    name: str | None = None, description: str = "", tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., Any]], OnDemandFeatureView]:  # fmt: skip
    """Decorate a module-level function ``f(df: pd.DataFrame) -> pd.DataFrame`` computing
    ``schema``'s columns from its sources' features (plain names) and request fields.

    The function's source text is what is stored: it must import what it uses inside its body
    (it runs in a fresh namespace), so a lambda, a nested function or a function using a name of
    its module is refused here, naming that name.
    """

    def decorate(function: Callable[..., Any]) -> OnDemandFeatureView:
        code = function_source(function)
        views = tuple(s for s in sources if not isinstance(s, RequestSource))
        request = tuple(f for s in sources if isinstance(s, RequestSource) for f in s.schema)
        return OnDemandFeatureView(
            name=name or function.__name__,
            sources=views,
            request_schema=request,
            features=tuple(schema),
            function=function.__name__,
            code=code,
            description=description,
            tags=dict(tags or {}),
        )

    return decorate


def function_source(function: Callable[..., Any]) -> str:
    """The function's source as a module-level ``def`` (dedented, decorators stripped),
    refusing what cannot run alone: lambdas, closures, names taken from its module."""
    what = f"on-demand function {getattr(function, '__qualname__', function)!r}"
    if not inspect.isfunction(function) or function.__name__ == "<lambda>":
        raise InvalidInput(f"{what}: must be a function defined with def, not a lambda")
    if function.__closure__ or "<locals>" in function.__qualname__:
        raise InvalidInput(f"{what}: must be defined at module level, not inside a function")
    try:
        text = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as exc:
        raise InvalidInput(f"{what}: its source text cannot be read ({exc})") from exc
    tree = ast.parse(text)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise InvalidInput(f"{what}: must be a plain def (not async)")
    code = "\n".join(text.splitlines()[node.lineno - 1 :]) + "\n"
    free = sorted(free_names(node))
    if free:
        raise InvalidInput(
            f"{what}: uses {', '.join(map(repr, free))} from its module; its code runs alone, "
            "so import or define them inside the function"
        )
    return code


# The one rule for a file source's format from its name, wherever a spec is made or read.
_FILE_FORMATS: Mapping[str, str] = {
    ".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "csv",
}  # fmt: skip
_COMPRESSED = (".gz", ".zst")  # DuckDB's CSV reader decompresses these by name


def file_format(path: str) -> str | None:
    """``parquet`` or ``csv`` by the file name (``.csv``, ``.tsv``, ``.csv.gz``, ``.csv.zst``,
    ``.parquet``, ``.pq``; globs by their pattern's suffix), else None (a folder or another
    name: a spec then says parquet unless its format is set)."""
    name = path.lower()
    compressed = name.endswith(_COMPRESSED)
    for suffix in _COMPRESSED:
        name = name.removesuffix(suffix)
    found = _FILE_FORMATS.get(name[name.rfind(".") :] if "." in name else "")
    if compressed and found != "csv":
        return None
    return found


def free_names(node: ast.FunctionDef) -> set[str]:
    """Names a function reads that it neither binds (arguments, assignments, imports, nested
    definitions) nor gets from builtins."""
    bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    used: set[str] = set()
    # Decorators ran in the module and are not stored; annotations are not evaluated where the
    # code runs (on_demand compiles it with postponed annotations).
    body = ast.Module(body=node.body, type_ignores=[])
    defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    for child in (n for root in (body, *defaults) for n in ast.walk(root)):
        if isinstance(child, ast.Name):
            (used if isinstance(child.ctx, ast.Load) else bound).add(child.id)
        elif isinstance(child, ast.alias):
            bound.add((child.asname or child.name).split(".")[0])
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(child.name)
        elif isinstance(child, ast.arg):
            bound.add(child.arg)
        elif isinstance(child, ast.ExceptHandler) and child.name:
            bound.add(child.name)
    return used - bound - set(dir(builtins))


@dataclass(frozen=True)
class FeatureViewProjection:
    """Some features of a view (``view[["a"]]``) for a feature service."""

    view: FeatureView | OnDemandFeatureView
    features: tuple[str, ...]


@dataclass(frozen=True, init=False)
class FeatureService:
    """A named selection of features: what a model is trained and served with."""

    name: str
    features: tuple[FeatureView | OnDemandFeatureView | FeatureViewProjection, ...]
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self, name: str, *,
        features: Sequence[FeatureView | OnDemandFeatureView | FeatureViewProjection],
        description: str = "", tags: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "features", tuple(features))
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "tags", dict(tags or {}))

    def spec(self) -> dict[str, Any]:
        picks = []
        for item in self.features:
            if isinstance(item, FeatureViewProjection):
                picks.append({"view": item.view.name, "features": list(item.features)})
            else:
                picks.append({"view": item.name, "features": ["*"]})
        return {
            "kind": "feature_service",
            "name": self.name,
            "features": picks,
            "description": self.description,
            "tags": dict(self.tags),
        }


Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService
DEFINITION_TYPES = (Entity, FeatureView, OnDemandFeatureView, FeatureService)
_ORDER: dict[Kind, int] = {
    "entity": 0,
    "feature_view": 1,
    "on_demand_feature_view": 2,
    "feature_service": 3,
}


def _with_dependencies(item: Definition) -> Iterable[Definition]:
    """The definition after the definition objects it refers to (names refer to stored ones)."""
    if isinstance(item, FeatureView):
        yield from (e for e in item.entities if isinstance(e, Entity))
    elif isinstance(item, OnDemandFeatureView):
        for view in item.sources:
            if isinstance(view, FeatureView):
                yield from _with_dependencies(view)
    elif isinstance(item, FeatureService):
        for pick in item.features:
            yield from _with_dependencies(
                pick.view if isinstance(pick, FeatureViewProjection) else pick
            )
    yield item


def to_specs(objects: Iterable[Any]) -> list[dict[str, Any]]:
    """The specs of definition objects and of the objects they refer to, each once, in
    dependency order (entities, views, on-demand views, services; then by name).

    Raises:
        InvalidInput: an object is not a definition, or two different definitions of one kind
            share a name.
    """
    specs: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        if not isinstance(obj, DEFINITION_TYPES):
            raise InvalidInput(
                f"{obj!r} is not a feature definition (an Entity, FeatureView, "
                "OnDemandFeatureView or FeatureService)"
            )
        for item in _with_dependencies(obj):
            spec = item.spec()
            key = (spec["kind"], spec["name"])
            if key in specs and specs[key] != spec:
                raise InvalidInput(
                    f"two different {spec['kind'].replace('_', ' ')} definitions are named "
                    f"{spec['name']!r}; rename one"
                )
            specs[key] = spec
    return sorted(specs.values(), key=lambda s: (_ORDER[s["kind"]], s["name"]))
