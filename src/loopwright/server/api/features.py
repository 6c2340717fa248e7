"""``/api/v1/features``: feature definitions, training sets, the online store and its checks.

Reading (definitions, plans, training sets, online lookups, freshness, skew) needs a viewer;
applying definitions, materializing and pushing need an editor. Answers are the entities'
``to_dict()`` as JSON (NaN and infinities as Python's JSON writes them).

Tables travel as Parquet: ``POST /historical`` takes the entity rows as a streamed Parquet body
(at most ``max_upload_bytes``; or none, with ``entities_dataset=name@v3``) and the selection in
the query string (``service=svc@v2`` or ``feature=view:f`` repeated) and answers a training-set
stream (``remote.features.TRAINING_SET_MEDIA``: an 8-byte big-endian length, that many bytes of
JSON metadata, then the Parquet file); ``POST /push?view=`` takes the rows as Parquet too.

``POST /online`` is the hot path: its JSON body ``{"entities": {"driver_id": [1, 2]} | [{...}],
"features": "svc@v2" | ["view:f", ...], "full_feature_names": false}`` is parsed once with the
standard library (no model per row), at most :data:`MAX_ONLINE_ROWS` entity rows, and the
lookup runs on the event loop (a read of the online store, no thread hop). Its answer is
``OnlineFeatures.to_dict()`` with timestamp and bytes columns as ISO 8601 text and base64,
named in ``"encoded"``. Measured on this machine (SQLite online store, auth on, keep-alive
client, load ~4 on 2 cores): p50 0.6 ms for 1 entity, 1.0 ms for 100.
"""

from __future__ import annotations

import base64
import builtins
import json
import shutil
import struct
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput, PermissionDenied, RequestTooLarge
from ...features.skew import MAX_SAMPLE
from ...features.spec import FIRST_MS, LAST_MS, Kind
from ...governance.users import role_at_least
from ...remote.features import TRAINING_SET_MEDIA
from ...store import limits
from .._limits import streams_body
from ._deps import PREFIX, Editor, State, Viewer
from ._schemas import Body
from ._streaming import BINARY_BODY, receive_to_file

if TYPE_CHECKING:
    from ...features.entities import OnlineFeatures, TrainingSet
    from ...features.protocol import FeatureSelection
    from ...features.service import FeatureStore

__all__ = ["MAX_ONLINE_ROWS", "MAX_PUSH_ROWS", "MAX_SPECS", "router"]

router = APIRouter(prefix=f"{PREFIX}/features", tags=["features"])

MAX_SPECS = 10_000  # definitions one apply may carry
MAX_ONLINE_ROWS = 10_000  # entity rows one online lookup may ask for
MAX_PUSH_ROWS = 1_000_000  # rows one push may carry (read whole into memory)
_MAX_REFS = 10_000  # feature refs one selection may name
_REF = 2 * limits.FEATURE_NAME + 10  # view:feature, or name@vN
_CHUNK = 1 << 20
_PREFIX = struct.Struct(">Q")
_ONLINE_KEYS = frozenset({"entities", "features", "full_feature_names"})

_MAX_VERSION = limits.INT32_MAX  # versions are INTEGER columns

Ref = Annotated[str, Field(min_length=1, max_length=_REF)]
Ms = Annotated[int, Field(ge=FIRST_MS, le=LAST_MS)]  # UTC ms


# --- bodies ------------------------------------------------------------------------------------


class SpecsIn(Body):
    specs: list[dict[str, Any]] = Field(max_length=MAX_SPECS)
    force: bool = False


class MaterializeIn(Body):
    views: list[Ref] | None = Field(default=None, max_length=_MAX_REFS)
    start: Ms | None = None
    end: Ms | None = None
    incremental: bool = False


class SkewIn(Body):
    deployment: str = Field(min_length=1, max_length=limits.DEPLOYMENT_NAME)
    sample: int = Field(default=1000, ge=1, le=MAX_SAMPLE)
    since: Ms | None = None
    until: Ms | None = None
    tolerance: float = Field(default=1e-6, ge=0, allow_inf_nan=False)


# --- helpers -----------------------------------------------------------------------------------


def _json(data: Any, status_code: int = 200) -> Response:
    text = json.dumps(data, allow_nan=True, default=_json_value, separators=(",", ":"))
    return Response(text.encode("utf-8"), status_code=status_code, media_type="application/json")


def _json_value(value: Any) -> Any:
    """Values the standard encoder does not know: NumPy scalars, times, bytes."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _store(state: State) -> FeatureStore:
    return state.features()


def _selection(service: str | None, feature: builtins.list[str] | None) -> FeatureSelection:
    if (service is None) == (not feature):
        raise InvalidInput(
            "name the features either as service=NAME[@vN] or as feature=VIEW:FEATURE "
            "(repeated), not both and not neither"
        )
    return service if service is not None else feature or []


def _ref(ref: str, version: int | None) -> str:
    if version is None:
        return ref
    if "@" in ref:
        raise InvalidInput(f"{ref!r} names a version already; drop version={version}")
    return f"{ref}@v{version}"


def _check_parquet(path: Path, what: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(
            f"the uploaded {what} are not a Parquet file ({exc}); send the table written "
            "with pyarrow.parquet.write_table"
        ) from None


def _check_decoded_size(path: Path, view: str, budget: int) -> None:
    """Refuse rows that would take more than ``budget`` bytes once read: a small upload can
    decompress (the pages' uncompressed size) or decode (a long dictionary value repeated on
    every row) to far more than it weighs. Text columns are read dictionary-encoded first, to
    add up what they decode to without decoding them."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(path)
    size = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
    text = [
        f.name
        for f in pq.read_schema(path)
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_binary(f.type)
        or pa.types.is_large_binary(f.type)
    ]
    if size <= budget and text:
        columns = pq.read_table(path, columns=text, read_dictionary=text)
        for column in columns.columns:
            for chunk in column.chunks:
                lengths = pc.binary_length(chunk.dictionary)
                size += pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0
    if size > budget:
        raise RequestTooLarge(
            f"the rows pushed to {view!r} take {size:,} bytes once read, past the server's "
            f"query_memory of {budget:,}; split them into smaller pushes"
        )


def _training_set_chunks(found: TrainingSet, folder: Path) -> Iterator[bytes]:
    try:
        metadata = json.dumps(found.to_dict(), separators=(",", ":")).encode("utf-8")
        yield _PREFIX.pack(len(metadata)) + metadata
        with found.path.open("rb") as source:
            while chunk := source.read(_CHUNK):
                yield chunk
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- definitions -------------------------------------------------------------------------------


@router.post("/plan")
def plan(body: SpecsIn, state: State, caller: Viewer) -> Response:
    """What applying the specs would do (validated; nothing written)."""
    return _json(_store(state).plan(body.specs).to_dict())


def runs_on_the_server(spec: Any) -> str | None:
    """Why a spec would make this server run code or read its own files or databases, or None.

    Through a server, an on-demand view's code runs in the server's process, a local file source
    reads the server's disk and a SQL source connects from the server's machine (its own
    metadata database included): applying those is an administrator's act. Dataset versions and
    ``s3://`` files are read with the server's stores and credentials, as any editor's data is.
    """
    if not isinstance(spec, dict):
        return None
    name = spec.get("name")
    if spec.get("kind") == "on_demand_feature_view":
        return f"on-demand view {name!r} (its code runs on the server)"
    source = spec.get("source")
    if spec.get("kind") != "feature_view" or not isinstance(source, dict):
        return None
    if source.get("kind") == "sql":
        return f"view {name!r} (a SQL source: the server connects to the database)"
    path = source.get("path")
    if source.get("kind") == "file" and not (isinstance(path, str) and path.startswith("s3://")):
        return f"view {name!r} (a local file source: the server reads its own disk)"
    return None


@router.post("/apply")
def apply(body: SpecsIn, state: State, caller: Editor) -> Response:
    """Store the specs as new versions where their content changed, all or nothing; a
    breaking change needs ``force`` (409 listing each reason otherwise). Definitions that would
    run code or read the server's files or databases need the admin role."""
    if not role_at_least(caller.role, "admin"):
        reasons = [reason for spec in body.specs if (reason := runs_on_the_server(spec))]
        if reasons:
            raise PermissionDenied(
                f"user {caller.user!r} is {caller.role}; through a server, applying "
                f"{'; '.join(reasons[:5])} needs the admin role. An editor may apply views over "
                "dataset versions or s3:// files, or apply these on the embedded store"
            )
    store = _store(state)._acting_for(caller.user)
    return _json(store.apply(body.specs, force=body.force).to_dict())


@router.get("/definitions")
def definitions(state: State, caller: Viewer, kind: Kind | None = None) -> Response:
    """The newest version of every definition (of ``kind``), by kind then name."""
    return _json([d.to_dict() for d in _store(state).list(kind)])


@router.get("/definitions/{ref}")
def definition(
    ref: str,
    state: State,
    caller: Viewer,
    kind: Kind | None = None,
    version: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
) -> Response:
    """A version by ``name`` (the newest), ``name@vN`` or ``name?version=N``."""
    return _json(_store(state).get(_ref(ref, version), kind=kind).to_dict())


@router.get("/definitions/{name}/versions")
def versions(name: str, state: State, caller: Viewer, kind: Kind | None = None) -> Response:
    """Every version of ``name``, newest first."""
    return _json([d.to_dict() for d in _store(state).versions(name, kind=kind)])


@router.get("/definitions/{name}/diff")
def diff(
    name: str,
    state: State,
    caller: Viewer,
    a: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    b: Annotated[int | None, Query(ge=1, le=_MAX_VERSION)] = None,
    kind: Kind | None = None,
) -> Response:
    """``{"diff": text}``: a unified diff of two versions (default: previous and newest)."""
    return _json({"diff": _store(state).diff(name, a, b, kind=kind)})


# --- offline store -----------------------------------------------------------------------------


@router.post("/historical", openapi_extra=BINARY_BODY, response_class=StreamingResponse)
@streams_body
async def historical(
    request: Request,
    state: State,
    caller: Viewer,
    service: Annotated[str | None, Query(min_length=1, max_length=_REF)] = None,
    feature: Annotated[builtins.list[str] | None, Query(max_length=_MAX_REFS)] = None,
    timestamp_field: Annotated[str, Query(min_length=1, max_length=limits.KEY)] = (
        "event_timestamp"
    ),
    full_feature_names: bool = False,
    entities_dataset: Annotated[str | None, Query(min_length=1, max_length=600)] = None,
) -> StreamingResponse:
    """A point-in-time training set for the uploaded entity rows (Parquet), answered as a
    training-set stream (see the module)."""
    features = _selection(service, feature)
    folder = Path(tempfile.mkdtemp(prefix="lw-historical-"))
    try:
        upload = folder / "entity_rows.parquet"
        await receive_to_file(request, upload)
        rows: Path | str
        if entities_dataset is not None:
            if upload.stat().st_size:
                raise InvalidInput(
                    "send the entity rows either as the Parquet body or as entities_dataset, "
                    "not both"
                )
            rows = entities_dataset
        else:
            await run_in_threadpool(_check_parquet, upload, "entity rows")
            rows = upload
        workdir = folder / "out"
        workdir.mkdir()

        def compute() -> TrainingSet:
            return _store(state)._historical(
                rows,
                features,
                timestamp_field=timestamp_field,
                full_feature_names=full_feature_names,
                progress=None,
                workdir=workdir,
            )

        found = await run_in_threadpool(compute)
        size = found.path.stat().st_size
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    metadata_size = len(json.dumps(found.to_dict(), separators=(",", ":")).encode("utf-8"))
    return StreamingResponse(
        _training_set_chunks(found, folder),
        media_type=TRAINING_SET_MEDIA,
        headers={"Content-Length": str(_PREFIX.size + metadata_size + size)},
        # The stream's own cleanup does not run when the caller goes away mid-answer.
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


# --- online store ------------------------------------------------------------------------------


@router.post("/materialize")
def materialize(body: MaterializeIn, state: State, caller: Editor) -> Response:
    """Load the views' newest rows per entity in ``[start, end]`` into the online store."""
    store = _store(state)._acting_for(caller.user)
    done = store.materialize(
        body.views, start=body.start, end=body.end, incremental=body.incremental
    )
    return _json([m.to_dict() for m in done])


@router.post("/push", openapi_extra=BINARY_BODY)
@streams_body
async def push(
    request: Request,
    state: State,
    caller: Editor,
    view: Annotated[str, Query(min_length=1, max_length=limits.FEATURE_NAME)],
) -> Response:
    """Write the uploaded rows (Parquet: join keys, event time, features) into the online
    store."""
    with tempfile.TemporaryDirectory(prefix="lw-push-") as tmp:
        upload = Path(tmp) / "rows.parquet"
        await receive_to_file(request, upload)

        def write() -> dict[str, Any]:
            import pyarrow.parquet as pq

            _check_parquet(upload, "rows")
            rows = pq.read_metadata(upload).num_rows
            if rows > MAX_PUSH_ROWS:
                raise InvalidInput(
                    f"a push of {rows:,} rows to {view!r} is past the {MAX_PUSH_ROWS:,} one "
                    "request may carry (a push is read whole); split it, or materialize the "
                    "view from its source"
                )
            _check_decoded_size(upload, view, state.settings.query_memory)
            table = pq.read_table(upload)
            return _store(state)._acting_for(caller.user).push(view, table).to_dict()

        return _json(await run_in_threadpool(write))


@router.post(
    "/online",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def online(request: Request, state: State, caller: Viewer) -> Response:
    """The served feature values for each entity row (see the module for the body)."""
    entities, features, full = _online_body(await request.body())
    found = _store(state).get_online_features(entities, features, full_feature_names=full)
    return _json(_online_answer(found))


def _online_answer(found: OnlineFeatures) -> dict[str, Any]:
    """``found`` as JSON: timestamp columns as ISO 8601 text and bytes columns as base64, named
    in ``"encoded"`` (``{column: "timestamp" | "bytes"}``) so the client turns them back."""
    data = found.to_dict()
    encoded: dict[str, str] = {}
    for column, values in data["values"].items():
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, datetime):
            encoded[column] = "timestamp"
            data["values"][column] = [None if v is None else v.isoformat() for v in values]
        elif isinstance(sample, bytes):
            encoded[column] = "bytes"
            data["values"][column] = [
                None if v is None else base64.b64encode(v).decode("ascii") for v in values
            ]
    if encoded:
        data["encoded"] = encoded
    return data


def _online_body(raw: bytes) -> tuple[Any, FeatureSelection, bool]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON ({exc})") from None
    if not isinstance(data, dict) or not _ONLINE_KEYS.issuperset(data):
        raise InvalidInput(
            'send a JSON object {"entities": ..., "features": ..., "full_feature_names": '
            f"false}}; got {_shape(data)}"
        )
    entities = data.get("entities")
    if isinstance(entities, dict):
        rows = max((len(v) for v in entities.values() if isinstance(v, list)), default=0)
        if not all(isinstance(v, list) for v in entities.values()):
            raise InvalidInput(
                'entities: each column must be a list of values ({"driver_id": [1, 2]})'
            )
    elif isinstance(entities, list):
        rows = len(entities)
    else:
        raise InvalidInput(
            'entities: send columns ({"driver_id": [1, 2]}) or rows ([{"driver_id": 1}])'
        )
    if rows > MAX_ONLINE_ROWS:
        raise InvalidInput(
            f"entities: {rows:,} rows, past the {MAX_ONLINE_ROWS:,} one lookup may ask for; "
            "split the lookup"
        )
    features = data.get("features")
    if isinstance(features, list) and len(features) <= _MAX_REFS:
        if not all(isinstance(f, str) for f in features):
            raise InvalidInput('features: a list of feature refs (["view:feature", ...])')
    elif not isinstance(features, str):
        raise InvalidInput(
            'features: a feature service ref ("svc@v2") or at most '
            f'{_MAX_REFS:,} feature refs (["view:feature", ...])'
        )
    full = data.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise InvalidInput("full_feature_names: true or false")
    return entities, features, full


def _shape(data: Any) -> str:
    if isinstance(data, dict):
        return "an object with keys " + ", ".join(sorted(map(str, data)))
    return f"a JSON {type(data).__name__}"


@router.get("/materializations")
def materializations(
    state: State,
    caller: Viewer,
    view: Annotated[str | None, Query(min_length=1, max_length=limits.FEATURE_NAME)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Response:
    """Recent loads into the online store, newest first."""
    return _json([m.to_dict() for m in _store(state).materializations(view, limit=limit)])


@router.get("/freshness")
def freshness(
    state: State,
    caller: Viewer,
    view: Annotated[builtins.list[str] | None, Query(max_length=_MAX_REFS)] = None,
) -> Response:
    """Per online view (``view`` repeated: those), the newest event time loaded and its age."""
    return _json([f.to_dict() for f in _store(state).freshness(view)])


# --- checks ------------------------------------------------------------------------------------


@router.post("/skew")
def skew(body: SkewIn, state: State, caller: Viewer) -> Response:
    """Compare a sample of the features a deployment served with the offline store's."""
    report = _store(state).skew(
        body.deployment,
        sample=body.sample,
        since=body.since,
        until=body.until,
        tolerance=body.tolerance,
    )
    return _json(report.to_dict())
