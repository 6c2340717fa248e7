"""``RemoteFeatures``: the feature store on a Loopwright server, over ``/api/v1/features`` (the
``Features`` protocol).

Answers decode into the same entities the embedded :class:`~loopwright.features.service.
FeatureStore` returns. Tables travel as Parquet both ways: entity rows (a training set's) and
pushed rows are uploaded as one streamed Parquet file; a training set comes back as a
*training-set stream* (:data:`TRAINING_SET_MEDIA`): 8 bytes (big-endian length *n*), *n* bytes
of JSON (``TrainingSet.to_dict()``), then the Parquet file's bytes, written here to a new
temporary folder (``TrainingSet.path``) as they arrive.

Saving a training set runs here, in the caller's process, through the remote data and tracking
services (the file is on this machine), as the embedded store does through its own.
"""

from __future__ import annotations

import builtins
import os
import struct
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidInput, StoreError
from ..features.entities import (
    ApplyPlan,
    FeatureDefinition,
    Freshness,
    Materialization,
    OnlineFeatures,
    SkewReport,
    TrainingSet,
)
from ..features.service import time_ms
from ._http import Http

if TYPE_CHECKING:
    from ..data.entities import DatasetVersion
    from ..data.protocol import Datasets
    from ..features.protocol import EntityRows, FeatureSelection, TimeArg
    from ..features.spec import Kind, Spec
    from ..tracking.protocol import Tracking

__all__ = ["TRAINING_SET_MEDIA", "RemoteFeatures", "read_training_set", "selection_params"]

TRAINING_SET_MEDIA = "application/x-loopwright-training-set"
_PREFIX = struct.Struct(">Q")
_MAX_METADATA = 64 << 20  # a training set's JSON part: refs and names, far below this
_CHUNK = 1 << 20


def selection_params(features: FeatureSelection) -> dict[str, Any]:
    """A selection as query parameters: ``service=svc@v2`` or ``feature=view:f`` repeated."""
    if isinstance(features, str):
        return {"service": features}
    if not isinstance(features, Sequence) or not all(isinstance(f, str) for f in features):
        raise InvalidInput(
            "features must be a feature service ref ('driver_model@v2') or a list of feature "
            f"refs (['driver_stats:conv_rate']), not {features!r}"
        )
    return {"feature": builtins.list(features)}


def _selection_body(features: FeatureSelection) -> str | builtins.list[str]:
    if isinstance(features, str):
        return features
    return list(selection_params(features)["feature"])


def _plain(value: Any) -> Any:
    """NumPy arrays, pandas Series and NumPy scalars as JSON-ready Python values (times as
    ISO 8601 text)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _entity_rows_body(entity_rows: EntityRows) -> Any:
    if isinstance(entity_rows, Mapping):
        return {str(k): [_plain(v) for v in _plain(col)] for k, col in entity_rows.items()}
    if hasattr(entity_rows, "to_dict") and hasattr(entity_rows, "columns"):  # a DataFrame
        return {str(k): _plain(entity_rows[k]) for k in entity_rows.columns}
    if isinstance(entity_rows, Sequence) and not isinstance(entity_rows, str | bytes):
        return [
            {str(k): _plain(v) for k, v in row.items()} if isinstance(row, Mapping) else row
            for row in entity_rows
        ]
    raise InvalidInput(
        "entity_rows must be columns ({'driver_id': [1, 2]}) or rows ([{'driver_id': 1}]), "
        f"not {type(entity_rows).__name__}"
    )


def _write_parquet(rows: Any, dest: Path, what: str) -> None:
    """A DataFrame, an Arrow table or a list of dicts as a Parquet file at ``dest``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(rows, pa.Table):
        table = rows
    elif isinstance(rows, os.PathLike):  # a CSV file: uploaded as Parquet, typed as read here
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(rows)
    elif hasattr(rows, "columns") and hasattr(rows, "to_dict"):
        table = pa.Table.from_pandas(rows, preserve_index=False)
    elif isinstance(rows, Sequence) and all(isinstance(r, Mapping) for r in rows):
        table = pa.Table.from_pylist([dict(r) for r in rows])
    else:
        raise InvalidInput(
            f"{what} must be a pandas DataFrame, a pyarrow Table or a list of dicts, not "
            f"{type(rows).__name__}"
        )
    pq.write_table(table, dest)


def read_training_set(chunks: Iterator[bytes], folder: Path) -> TrainingSet:
    """Write a training-set stream (see the module) to a new file in ``folder``
    (``training-set-<random>.parquet``, as the embedded store names it)."""
    buffer = b""
    chunks = iter(chunks)
    while len(buffer) < _PREFIX.size:
        buffer += _next(chunks)
    (size,) = _PREFIX.unpack_from(buffer)
    if size > _MAX_METADATA:
        raise StoreError(f"the server sent a training set whose metadata claims {size} bytes")
    while len(buffer) < _PREFIX.size + size:
        buffer += _next(chunks)
    import json

    start = _PREFIX.size + size
    metadata = json.loads(buffer[_PREFIX.size : start])
    path = folder / f"training-set-{uuid.uuid4().hex[:12]}.parquet"
    part = path.with_name(f".{path.name}.part")  # renamed when whole: no half file left behind
    try:
        with part.open("wb") as out:
            out.write(buffer[start:])
            for chunk in chunks:
                out.write(chunk)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
    return TrainingSet.from_dict(metadata, path)


def _next(chunks: Iterator[bytes]) -> bytes:
    try:
        return next(chunks)
    except StopIteration:
        raise StoreError(
            "the server's training-set answer ended before its metadata; try again"
        ) from None


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"expected a non-empty {what}, not {value!r}")
    return quote(value, safe="@")  # one path segment: '/' escaped too


class RemoteFeatures:
    """The feature store of a Loopwright server (apply, materialize and push need an editor
    token; the rest, a viewer)."""

    def __init__(self, http: Http, *, datasets: Callable[[], Datasets], tracking: Tracking) -> None:
        self._http = http
        self._datasets = datasets
        self._tracking = tracking

    # --- definitions -------------------------------------------------------------------------

    def plan(self, specs: Sequence[Spec]) -> ApplyPlan:
        """What :meth:`apply` would do with ``specs`` (validated on the server; nothing written)."""
        return ApplyPlan.from_dict(self._http.post("/features/plan", {"specs": _specs(specs)}))

    def apply(self, specs: Sequence[Spec], *, force: bool = False) -> ApplyPlan:
        """Store ``specs`` as new versions where their content changed; all or nothing."""
        body = {"specs": _specs(specs), "force": force}
        return ApplyPlan.from_dict(self._http.post("/features/apply", body))

    def list(self, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """The newest version of every definition (of ``kind``), by kind then name."""
        found = self._http.get("/features/definitions", kind=kind)
        return [FeatureDefinition.from_dict(item) for item in found]

    def get(self, ref: str, *, kind: Kind | None = None) -> FeatureDefinition:
        """A version by ``name`` (the newest) or ``name@vN``."""
        found = self._http.get(f"/features/definitions/{_segment(ref, 'ref')}", kind=kind)
        return FeatureDefinition.from_dict(found)

    def versions(self, name: str, *, kind: Kind | None = None) -> builtins.list[FeatureDefinition]:
        """Every version of ``name``, newest first."""
        path = f"/features/definitions/{_segment(name, 'name')}/versions"
        return [FeatureDefinition.from_dict(item) for item in self._http.get(path, kind=kind)]

    def diff(
        self, name: str, a: int | None = None, b: int | None = None, *, kind: Kind | None = None
    ) -> str:
        """A unified diff of two versions' specs (default: the previous and the newest)."""
        path = f"/features/definitions/{_segment(name, 'name')}/diff"
        return str(self._http.get(path, a=a, b=b, kind=kind)["diff"])

    # --- offline store -----------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_rows: Any,
        features: FeatureSelection,
        *,
        timestamp_field: str = "event_timestamp",
        full_feature_names: bool = False,
        progress: Callable[[int], None] | None = None,
        dest: str | os.PathLike[str] | None = None,
    ) -> TrainingSet:
        """A point-in-time correct training set computed on the server, downloaded into
        ``dest`` (else a new temporary folder): ``TrainingSet.path``. ``progress`` is called
        once, with the rows."""
        params: dict[str, Any] = {
            **selection_params(features),
            "timestamp_field": timestamp_field,
            "full_feature_names": full_feature_names,
        }
        if dest is None:
            folder = Path(tempfile.mkdtemp(prefix="loopwright-training-set-"))
        else:
            folder = Path(dest)
            folder.mkdir(parents=True, exist_ok=True)
        if isinstance(entity_rows, str):  # a dataset ref, read on the server
            params["entities_dataset"] = entity_rows
            found = self._fetch_training_set(params, None, folder)
        elif isinstance(entity_rows, os.PathLike) and Path(entity_rows).suffix.lower() != ".csv":
            found = self._fetch_training_set(params, Path(entity_rows), folder)
        else:
            upload = folder / f".entity-rows-{uuid.uuid4().hex[:12]}.parquet"
            _write_parquet(entity_rows, upload, "entity_rows")
            try:
                found = self._fetch_training_set(params, upload, folder)
            finally:
                upload.unlink(missing_ok=True)
        if progress is not None:
            progress(found.rows)
        return found

    def _fetch_training_set(
        self, params: Mapping[str, Any], upload: Path | None, folder: Path
    ) -> TrainingSet:
        with self._http.stream_upload("POST", "/features/historical", upload, params) as answer:
            return read_training_set(answer.iter_bytes(_CHUNK), folder)

    def save_training_set(
        self,
        training_set: TrainingSet,
        dataset: str,
        *,
        run_id: str | None = None,
        message: str | None = None,
    ) -> DatasetVersion:
        """Store the training set as a version of ``dataset`` on the server (uploaded from this
        machine), tagged with its lineage; ``run_id`` records it as the run's training input."""
        from ..features import training_sets

        return training_sets.save(
            training_set,
            dataset,
            datasets=self._datasets(),
            tracking=self._tracking,
            run_id=run_id,
            message=message,
        )

    # --- online store ------------------------------------------------------------------------

    def materialize(
        self,
        views: Sequence[str] | None = None,
        *,
        start: TimeArg = None,
        end: TimeArg = None,
        incremental: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[Materialization]:
        """Load the views into the server's online store; ``progress`` is called once, with the
        rows written."""
        body = {
            "views": None if views is None else _names("views", views),
            "start": time_ms("start", start),
            "end": time_ms("end", end),
            "incremental": incremental,
        }
        done = [
            Materialization.from_dict(m) for m in self._http.post("/features/materialize", body)
        ]
        if progress is not None:
            progress(sum(m.rows for m in done))
        return done

    def push(self, view: str, rows: Any) -> Materialization:
        """Write ``rows`` into the server's online store (uploaded as Parquet)."""
        with tempfile.TemporaryDirectory(prefix="loopwright-push-") as tmp:
            upload = Path(tmp) / "rows.parquet"
            _write_parquet(rows, upload, "rows")
            with self._http.stream_upload(
                "POST", "/features/push", upload, {"view": view}
            ) as answer:
                answer.read()
                return Materialization.from_dict(answer.json())

    def get_online_features(
        self,
        entity_rows: EntityRows,
        features: FeatureSelection,
        *,
        full_feature_names: bool = False,
    ) -> OnlineFeatures:
        """The served values for each entity row, in one request."""
        body = {
            "entities": _entity_rows_body(entity_rows),
            "features": _selection_body(features),
            "full_feature_names": full_feature_names,
        }
        return OnlineFeatures.from_dict(_decoded(self._http.post("/features/online", body)))

    def materializations(
        self, view: str | None = None, *, limit: int = 100
    ) -> builtins.list[Materialization]:
        """Recent loads into the online store, newest first."""
        found = self._http.get("/features/materializations", view=view, limit=limit)
        return [Materialization.from_dict(m) for m in found]

    def freshness(self, views: Sequence[str] | None = None) -> builtins.list[Freshness]:
        """Per online view, the newest event time in the online store and its age."""
        query = None if views is None else _names("views", views)
        found = self._http.get("/features/freshness", view=query)
        return [Freshness.from_dict(f) for f in found]

    # --- checks ------------------------------------------------------------------------------

    def skew(
        self,
        deployment: str,
        *,
        sample: int = 1000,
        since: TimeArg = None,
        until: TimeArg = None,
        tolerance: float = 1e-6,
    ) -> SkewReport:
        """Compare a sample of the features a deployment served with the offline store's (on
        the server)."""
        body = {
            "deployment": deployment,
            "sample": sample,
            "since": time_ms("since", since),
            "until": time_ms("until", until),
            "tolerance": tolerance,
        }
        return SkewReport.from_dict(self._http.post("/features/skew", body))

    def close(self) -> None:
        """Nothing to release: the session belongs to the client."""


def _decoded(data: dict[str, Any]) -> dict[str, Any]:
    """An online answer's timestamp (ISO text) and bytes (base64) columns as the embedded
    store returns them (``"encoded"`` names them)."""
    import base64

    decode: dict[str, Callable[[str], Any]] = {
        "timestamp": datetime.fromisoformat,
        "bytes": base64.b64decode,
    }
    for column, kind in data.pop("encoded", {}).items():
        turn = decode[kind]
        data["values"][column] = [None if v is None else turn(v) for v in data["values"][column]]
    return data


def _specs(specs: Sequence[Spec]) -> builtins.list[dict[str, Any]]:
    if isinstance(specs, Mapping) or not isinstance(specs, Sequence):
        raise InvalidInput(
            "specs must be a list of definition specs (features.definitions.to_specs(...)), "
            f"not {type(specs).__name__}"
        )
    return [dict(spec) for spec in specs]


def _names(what: str, values: Sequence[str]) -> builtins.list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInput(f"{what} must be a list of names, e.g. ['driver_stats'], not {values!r}")
    return builtins.list(values)
