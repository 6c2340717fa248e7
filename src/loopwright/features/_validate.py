"""Checking and normalizing definition specs before they are compared or stored.

A spec from Python, YAML or a server request is checked field by field and rebuilt in its
canonical form (every key present, defaults filled, unknown keys refused), so the same
definition always has the same digest however it was written. References are checked too: a
view's entities, an on-demand view's source views and a service's features must exist, in this
apply or stored. Every error is :class:`InvalidInput` naming the definition and the field.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..store import limits
from .definitions import file_format, free_names
from .spec import DTYPES, KINDS, Kind

if TYPE_CHECKING:
    from .entities import FeatureDefinition

__all__ = ["Existing", "check_name", "normalize", "validate"]

Existing = Callable[[Kind, str], "FeatureDefinition | None"]

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.FEATURE_NAME - 1}}}")
# Features, join keys and request fields are columns of DuckDB queries and DataFrames:
# identifiers, and never the store's own ``__``-prefixed columns (``__event_ms``).
_FIELD = re.compile(rf"(?!__)[A-Za-z_][A-Za-z0-9_]{{0,{limits.FEATURE_NAME - 1}}}")
_ORDER = {kind: i for i, kind in enumerate(KINDS)}
_COMMON = {"kind", "name", "description", "tags"}
_KEYS: Mapping[str, set[str]] = {
    "entity": _COMMON | {"join_keys"},
    "feature_view": _COMMON | {"entities", "source", "features", "ttl_seconds", "online"},
    "on_demand_feature_view": _COMMON
    | {"sources", "request_schema", "features", "function", "code"},
    "feature_service": _COMMON | {"features", "pins"},
}
_SOURCE_KEYS: Mapping[str, set[str]] = {
    "file": {"path", "format"},
    "dataset": {"dataset"},
    "sql": {"uri", "table", "query"},
}
_INT_BITS = {"int32": 32, "int64": 64}
_VALUE_TYPES: Mapping[str, tuple[type, ...]] = {
    "int32": (int,),
    "int64": (int,),
    "float32": (int, float),
    "float64": (int, float),
    "bool": (bool,),
    "string": (str,),
}


def check_name(what: str, name: object) -> str:
    """A definition name, as other Loopwright names: letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} {name!r} is not a valid name: use letters, digits, '.', '_' and '-' "
            f"(first a letter or digit), at most {limits.FEATURE_NAME} characters"
        )
    return name


def validate(specs: Sequence[Mapping[str, Any]], existing: Existing) -> list[dict[str, Any]]:
    """The specs checked and normalized, in dependency order (entities, views, on-demand views,
    services; each kind in the order given).

    Args:
        specs: the definitions to apply (a service's ``pins`` are ignored: apply sets them).
        existing: the newest stored version of a kind and name, or None.

    Raises:
        InvalidInput: a malformed spec, a duplicate name, an unknown reference.
    """
    if isinstance(specs, Mapping) or not isinstance(specs, Sequence):
        raise InvalidInput("specs must be a list of definition specs (JSON objects)")
    shaped = [_shape(spec, i) for i, spec in enumerate(specs)]
    shaped.sort(key=lambda spec: _ORDER[spec["kind"]])
    batch: dict[tuple[str, str], dict[str, Any]] = {}
    for spec in shaped:
        key = (spec["kind"], spec["name"])
        if key in batch:
            raise InvalidInput(f"{_label(spec)} is defined twice in this apply; keep one")
        batch[key] = spec

    def lookup(kind: Kind, name: str) -> Mapping[str, Any] | None:
        if (kind, name) in batch:
            return batch[(kind, name)]
        stored = existing(kind, name)
        return None if stored is None else stored.spec

    for spec in shaped:
        _check_references(spec, lookup)
    return shaped


def normalize(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One spec in its canonical form, references unchecked (how two files' definitions of a
    name are compared)."""
    return _shape(spec, 0)


def _label(spec: Mapping[str, Any]) -> str:
    return f"{str(spec.get('kind', 'definition')).replace('_', ' ')} {spec.get('name')!r}"


def _shape(spec: object, index: int) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"spec #{index + 1} must be a JSON object, not {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise InvalidInput(
            f"spec #{index + 1} ({spec.get('name')!r}): kind must be one of {', '.join(KINDS)}, "
            f"not {kind!r}"
        )
    label = _label(spec)
    check_name(label.rsplit(" ", 1)[0], spec.get("name"))
    unknown = sorted(set(spec) - _KEYS[kind])
    if unknown:
        raise InvalidInput(
            f"{label}: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KEYS[kind]))}"
        )
    out: dict[str, Any] = {
        "kind": kind,
        "name": spec["name"],
        "description": _text(label, "description", spec.get("description", "")),
        "tags": _tags(label, spec.get("tags", {})),
    }
    if kind == "entity":
        out["join_keys"] = _fields(label, "join_keys", spec.get("join_keys"), extra=False)
    elif kind == "feature_view":
        out["entities"] = _names(label, "entities", spec.get("entities"))
        out["source"] = _source(label, spec.get("source"))
        out["features"] = _fields(label, "features", spec.get("features"), extra=True)
        out["ttl_seconds"] = _ttl(label, spec.get("ttl_seconds"))
        online = spec.get("online", True)
        if not isinstance(online, bool):
            raise InvalidInput(f"{label}: online must be true or false, not {online!r}")
        out["online"] = online
    elif kind == "on_demand_feature_view":
        out["sources"] = _names(label, "sources", spec.get("sources"))
        out["request_schema"] = _fields(
            label, "request_schema", spec.get("request_schema", []), extra=False, empty=True
        )
        out["features"] = _fields(label, "features", spec.get("features"), extra=True)
        out["function"] = _text(label, "function", spec.get("function"))
        out["code"] = _text(label, "code", spec.get("code"), limit=limits.REGISTRY_TAG_VALUE)
        _check_code(label, out["function"], out["code"])
    else:
        out["features"] = _service_features(label, spec.get("features"))
    return out


def _text(label: str, key: str, value: object, *, limit: int = limits.TAG_VALUE) -> str:
    """A string field: no NUL, at most ``limit`` characters (code: more)."""
    return limits.check_text(f"{label}: {key}", value, limit=limit, allow_empty=True)


def _tags(label: str, tags: object) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InvalidInput(f"{label}: tags must map strings to strings")
    for key, value in tags.items():
        limits.check_text(f"{label}: tag key", key, limit=limits.KEY)
        limits.check_text(f"{label}: tag {key!r}", value, limit=limits.TAG_VALUE, allow_empty=True)
    return dict(tags)


def _names(label: str, key: str, value: object) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidInput(f"{label}: {key} must be a non-empty list of names")
    names = [check_name(f"{label}: {key}", item) for item in value]
    if len(set(names)) != len(names):
        raise InvalidInput(f"{label}: {key} lists a name twice")
    return names


def _fields(
    label: str, key: str, value: object, *, extra: bool, empty: bool = False
) -> list[dict[str, Any]]:
    """Fields as ``[{"name", "dtype"[, "default", "description"]}]``; YAML may write a
    mapping ``{name: dtype}``."""
    if isinstance(value, Mapping):
        value = [{"name": name, "dtype": dtype} for name, dtype in value.items()]
    if isinstance(value, str) or not isinstance(value, Sequence) or (not value and not empty):
        raise InvalidInput(f"{label}: {key} must be a non-empty list of fields (name, dtype)")
    out: list[dict[str, Any]] = []
    allowed = {"name", "dtype", "default", "description"} if extra else {"name", "dtype"}
    for item in value:
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{label}: each of {key} must be an object with name and dtype")
        name = item.get("name")
        where = f"{label}: {key} {name!r}"
        if not isinstance(name, str) or not _FIELD.fullmatch(name):
            raise InvalidInput(
                f"{where}: a field name is an identifier (letters, digits, '_'; not starting "
                f"with a digit or '__'), at most {limits.FEATURE_NAME} characters"
            )
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise InvalidInput(f"{where}: unknown key(s) {', '.join(unknown)}")
        dtype = item.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise InvalidInput(f"{where}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        field: dict[str, Any] = {"name": name, "dtype": dtype}
        if extra:
            default = item.get("default")
            if default is not None and not _fits(default, dtype):
                raise InvalidInput(f"{where}: default {default!r} is not a valid {dtype} value")
            field["default"] = default
            field["description"] = _text(where, "description", item.get("description", ""))
        out.append(field)
    names = [f["name"] for f in out]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInput(f"{label}: {key} names {', '.join(twice)} more than once")
    return out


def _fits(value: object, dtype: str) -> bool:
    types = _VALUE_TYPES.get(dtype)
    if types is None:  # bytes and timestamps have no JSON default
        return False
    if not isinstance(value, types) or (dtype != "bool" and isinstance(value, bool)):
        return False
    if isinstance(value, float):
        return math.isfinite(value)  # JSON has no NaN or infinity
    if dtype in _INT_BITS:
        bound = 2 ** (_INT_BITS[dtype] - 1)
        return isinstance(value, int) and -bound <= value < bound
    return True


# Some 317 years: past it ``t - ttl`` leaves the range of timestamps (DuckDB fails on
# timedelta.max, and a huge TTL means "unlimited", which null already says).
MAX_TTL_SECONDS = 10**10


def _ttl(label: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(
            f"{label}: ttl_seconds must be whole seconds >= 0 or null, not {value!r}"
        )
    if value > MAX_TTL_SECONDS:
        raise InvalidInput(
            f"{label}: ttl_seconds {value} is more than {MAX_TTL_SECONDS} (some 317 years); "
            "for an unlimited TTL use null (None in Python)"
        )
    return value or None  # 0 and null both mean unlimited: one spelling, one digest


def _source(label: str, source: object) -> dict[str, Any]:
    if not isinstance(source, Mapping):
        raise InvalidInput(f"{label}: source must be an object with a kind (file, dataset, sql)")
    kind = source.get("kind")
    if not isinstance(kind, str) or kind not in _SOURCE_KEYS:
        raise InvalidInput(f"{label}: source kind must be file, dataset or sql, not {kind!r}")
    where = f"{label}: source"
    known = _SOURCE_KEYS[kind] | {"kind", "timestamp_field", "created_timestamp_field"}
    unknown = sorted(set(source) - known)
    if unknown:
        raise InvalidInput(f"{where}: unknown key(s) {', '.join(unknown)}")
    timestamp = source.get("timestamp_field")
    if not isinstance(timestamp, str) or not timestamp:
        raise InvalidInput(f"{where}: timestamp_field (the event time column) must be set")
    created = source.get("created_timestamp_field")
    if created is not None and (not isinstance(created, str) or not created):
        raise InvalidInput(f"{where}: created_timestamp_field must be a column name or null")
    for column in (timestamp, created):
        if column is not None:
            limits.check_text(f"{where}: timestamp column", column, limit=limits.KEY)
    out: dict[str, Any] = {"kind": kind}
    if kind == "file":
        out["path"] = _text(where, "path", source.get("path"))
        fmt = source.get("format") or file_format(out["path"]) or "parquet"
        if fmt not in ("parquet", "csv"):
            raise InvalidInput(f"{where}: format must be parquet or csv, not {fmt!r}")
        out["format"] = fmt
    elif kind == "dataset":
        out["dataset"] = _text(where, "dataset", source.get("dataset"))
    else:
        out["uri"] = _text(where, "uri", source.get("uri"))
        table, query = source.get("table"), source.get("query")
        if (table is None) == (query is None):
            raise InvalidInput(f"{where}: give exactly one of table and query")
        out["table"] = None if table is None else _text(where, "table", table)
        out["query"] = None if query is None else _text(where, "query", query)
    for key in ("path", "dataset", "uri"):
        if key in out and not out[key]:
            raise InvalidInput(f"{where}: {key} must not be empty")
    out["timestamp_field"] = timestamp
    out["created_timestamp_field"] = created
    return out


def _check_code(label: str, function: str, code: str) -> None:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise InvalidInput(f"{label}: code does not parse: {exc.msg} (line {exc.lineno})") from exc
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    if not defined:
        raise InvalidInput(f"{label}: code does not define function {function!r} at top level")
    if len(defined[0].args.args) + len(defined[0].args.posonlyargs) != 1:
        raise InvalidInput(f"{label}: function {function!r} must take one DataFrame argument")
    free = sorted(free_names(defined[0]) - _module_names(tree))
    if free:
        raise InvalidInput(
            f"{label}: function {function!r} uses {', '.join(map(repr, free))}, which its code "
            "does not define or import; the code runs alone"
        )


def _module_names(tree: ast.Module) -> set[str]:
    """Names the code binds at its top level (imports, definitions, assignments)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        else:
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.add(child.id)
    return names


def _service_features(label: str, value: object) -> list[dict[str, Any]]:
    """``[{"view", "features"}]``; YAML may write feature refs (``view:feature``, ``view:*``,
    ``view``), grouped by view in the order of first mention."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidInput(f"{label}: features must be a non-empty list")
    picks: dict[str, list[str]] = {}
    for item in value:
        if isinstance(item, str):
            view, _, feature = item.partition(":")
            item = {"view": view, "features": [feature or "*"]}
        if not isinstance(item, Mapping) or set(item) - {"view", "features"}:
            raise InvalidInput(f"{label}: each feature pick is {{view, features}}, not {item!r}")
        view = check_name(f"{label}: view", item.get("view"))
        features = item.get("features", ["*"])
        if isinstance(features, str) or not isinstance(features, Sequence) or not features:
            raise InvalidInput(f"{label}: features of view {view!r} must be a non-empty list")
        chosen = picks.setdefault(view, [])
        for feature in features:
            if not isinstance(feature, str) or not (feature == "*" or _FIELD.fullmatch(feature)):
                raise InvalidInput(f"{label}: {feature!r} of view {view!r} is not a feature name")
            if feature in chosen:
                raise InvalidInput(f"{label}: picks {view}:{feature} twice")
            chosen.append(feature)
        if "*" in chosen and len(chosen) > 1:
            raise InvalidInput(f"{label}: picks {view}:* and single features of it; keep one")
    return [{"view": view, "features": features} for view, features in picks.items()]


def _check_references(
    spec: Mapping[str, Any], lookup: Callable[[Kind, str], Mapping[str, Any] | None]
) -> None:
    label = _label(spec)
    kind = spec["kind"]
    if kind in ("feature_view", "on_demand_feature_view"):
        other: Kind = "on_demand_feature_view" if kind == "feature_view" else "feature_view"
        if lookup(other, spec["name"]) is not None:
            article = "an" if other == "on_demand_feature_view" else "a"
            raise InvalidInput(
                f"{label}: {article} {other.replace('_', ' ')} has this name; feature refs "
                "(view:feature) need one view per name, rename one"
            )
    if kind == "feature_view":
        keys: set[str] = set()
        for entity in spec["entities"]:
            found = lookup("entity", entity)
            if found is None:
                raise InvalidInput(
                    f"{label}: entities: entity {entity!r} does not exist; define it in this "
                    "apply or apply it first"
                )
            keys.update(key["name"] for key in found["join_keys"])
        clash = sorted(keys & {f["name"] for f in spec["features"]})
        if clash:
            raise InvalidInput(
                f"{label}: features {', '.join(clash)} are join keys of its entities"
            )
    elif kind == "on_demand_feature_view":
        for view in spec["sources"]:
            if lookup("feature_view", view) is None:
                raise InvalidInput(
                    f"{label}: sources: feature view {view!r} does not exist; define it in this "
                    "apply or apply it first"
                )
        _check_input_names(label, spec, lookup)
    elif kind == "feature_service":
        for pick in spec["features"]:
            view = lookup("feature_view", pick["view"]) or lookup(
                "on_demand_feature_view", pick["view"]
            )
            if view is None:
                raise InvalidInput(
                    f"{label}: features: view {pick['view']!r} does not exist (neither a feature "
                    "view nor an on-demand feature view)"
                )
            have = [f["name"] for f in view["features"]]
            missing = [f for f in pick["features"] if f != "*" and f not in have]
            if missing:
                raise InvalidInput(
                    f"{label}: features: view {pick['view']!r} has no feature "
                    f"{', '.join(map(repr, missing))}; it has {', '.join(have)}"
                )


def _check_input_names(
    label: str,
    spec: Mapping[str, Any],
    lookup: Callable[[Kind, str], Mapping[str, Any] | None],
) -> None:
    """An on-demand view's input frame holds its request fields and its source views' features
    by plain name: a name given twice would need a rule for which value wins, and training and
    serving must never disagree on it, so it is refused."""
    owner = {field["name"]: "request field" for field in spec["request_schema"]}
    for view in spec["sources"]:
        found = lookup("feature_view", view)
        for feature in found["features"] if found is not None else ():
            name = feature["name"]
            first = owner.setdefault(name, f"feature of source view {view!r}")
            if first != f"feature of source view {view!r}":
                raise InvalidInput(
                    f"{label}: input {name!r} is both a {first} and a feature of source view "
                    f"{view!r}; its function sees inputs by plain name, so rename one"
                )
