"""The definition spec: what a feature definition is, as plain JSON, on both backends.

Every definition (written in Python with :mod:`loopwright.features.definitions` or in YAML) is
turned into a *spec*, a JSON object, before it is validated, compared, stored or sent to a
server. A version's identity is the BLAKE3 digest of its canonical JSON (:func:`spec_digest`):
applying the same spec again is a no-op, a changed spec becomes the next version.

Kinds and their keys (``name`` and ``kind`` always; ``description`` "" and ``tags`` {} default):

``entity``
    ``join_keys``: ``[{"name": "driver_id", "dtype": "int64"}, ...]`` (one or more).
``feature_view``
    ``entities``: entity names; ``source``: one of

    - ``{"kind": "file", "path": "data/*.parquet" | "s3://bucket/x/*.parquet", "format":
      "parquet" | "csv", ...}``
    - ``{"kind": "dataset", "dataset": "driver_stats" | "driver_stats@v3" | "name@alias",
      ...}`` (a dataset version's Parquet/CSV files; no version: the newest at retrieval)
    - ``{"kind": "sql", "uri": "postgresql://..." | "sqlite:///...", "table": "t" | null,
      "query": "select ..." | null, ...}``

    each with ``"timestamp_field"`` (event time, required) and ``"created_timestamp_field"``
    (``null`` or the column that breaks ties on event time: the newest wins);
    ``features``: ``[{"name": "conv_rate", "dtype": "float32", "default": null}, ...]``
    (``default``: the value served when the online store has none, else a missing value is an
    error at inference); ``ttl_seconds``: ``null`` or 0 for unlimited, else how far back from
    an entity row's time a feature row may be (both bounds inclusive); ``online``: bool.
``on_demand_feature_view``
    ``sources``: feature view names it reads; ``request_schema``: fields taken from the
    request (the entity rows' columns offline); ``features``: the fields it returns;
    ``function``: the function's name; ``code``: its module-level source text (imports it
    needs inside the text). Code, never a pickle: the same text runs offline and online.
``feature_service``
    ``features``: ``[{"view": "driver_stats", "features": ["conv_rate"] | ["*"]}, ...]``
    (views or on-demand views). A stored service version also has ``pins``:
    ``{"driver_stats": 3, ...}``, the view versions current when it was applied; a service
    whose views change gets a new version pinning the new ones.

Types (``dtype``): :data:`DTYPES`. Changing a feature's or join key's type, removing a feature
or changing an entity's join keys or a view's entities is *breaking* (``apply`` needs
``force``); anything else (a new feature, TTL, description, source) is not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from blake3 import blake3

from ..store import limits

__all__ = [
    "DTYPES",
    "FIRST_MS",
    "KINDS",
    "LAST_MS",
    "Kind",
    "Spec",
    "canonical_json",
    "spec_digest",
]

Kind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
KINDS: Final[tuple[Kind, ...]] = (
    "entity",
    "feature_view",
    "on_demand_feature_view",
    "feature_service",
)
# Feature and join-key types, with their Arrow counterparts (the offline and online stores
# keep these exactly; a value of another type is cast or refused, never silently changed).
DTYPES: Final[Mapping[str, str]] = {
    "int32": "int32",
    "int64": "int64",
    "float32": "float",
    "float64": "double",
    "bool": "bool",
    "string": "string",
    "bytes": "binary",
    "timestamp": "timestamp[us, tz=UTC]",
}

Spec = Mapping[str, Any]

# The times (UTC ms) a feature store accepts: those Python's datetime can hold. Outside them a
# time is refused (a nanosecond value passed as ms, most likely), never stored.
LAST_MS: Final = limits.LAST_MS  # 9999-12-31T23:59:59.999Z
FIRST_MS: Final = -62_135_596_800_000  # 0001-01-01T00:00:00Z


def canonical_json(spec: Spec) -> str:
    """The spec as canonical JSON: sorted keys, no spaces, ASCII (what the digest covers)."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def spec_digest(spec: Spec) -> str:
    """BLAKE3 hex digest of :func:`canonical_json` (``pins`` of a service included)."""
    return blake3(canonical_json(spec).encode()).hexdigest()
