"""MLflow 3's evaluation-dataset API (``/api/3.0/mlflow/datasets``) over Loopwright's
evaluation datasets: what ``mlflow.genai.datasets.create_dataset(...).merge_records(...)``,
``get_dataset``, ``search_datasets`` and ``delete_dataset`` call.

Records are stored as versions of the dataset of the same name (content-addressed), so the
``digest`` MLflow shows is that version's content hash. Dataset ids are ``d-<32 hex>`` to MLflow
(Loopwright's id after the prefix); tags, schema and profile travel as JSON strings, as in
MLflow's protos.
"""

from __future__ import annotations

import json
import operator as op
import re
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field

from ...data.ingest import manifest_hash
from ...errors import InvalidInput
from ..api._deps import Editor, State, Viewer
from ..api.evaluation import MAX_RECORDS, service_for
from ._common import reply
from ._messages import Message
from ._paging import page, read_offset
from ._uris import experiment_id_in

if TYPE_CHECKING:
    from ...evaluation.entities import EvalDataset, EvalRecord
    from .._state import ServerState

__all__ = ["dataset_json", "mlflow_digest", "router"]

router = APIRouter()

_PREFIX = "d-"
_ORDER = re.compile(r"^\s*(name|created_time|last_update_time)(\s+(ASC|DESC))?\s*$", re.IGNORECASE)


def _id_in(dataset_id: str) -> str:
    return dataset_id.removeprefix(_PREFIX)


def mlflow_digest(content_hash: str | None) -> str:
    """The content hash as MLflow may hold it (a run input's digest has 36 characters at most):
    its first 32 hex digits. Before the first record, that of no content (MLflow's client
    needs one)."""
    return (content_hash or manifest_hash([]))[:32]


def dataset_json(found: EvalDataset) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dataset_id": _PREFIX + found.id,
        "name": found.name,
        "tags": json.dumps(dict(found.tags)),
        "digest": mlflow_digest(found.digest),
        "created_time": found.created_at,
        "last_update_time": found.updated_at,
        "experiment_ids": list(found.experiment_ids),
    }
    if found.schema is not None:
        out["schema"] = json.dumps(found.schema)
    if found.profile is not None:
        out["profile"] = json.dumps(found.profile)
    for key in ("created_by", "last_updated_by"):
        if getattr(found, key):
            out[key] = getattr(found, key)
    return out


def _record_json(record: EvalRecord, found: EvalDataset) -> dict[str, Any]:
    return {
        "dataset_id": _PREFIX + found.id,
        "dataset_record_id": record.record_id,
        "inputs": dict(record.inputs),
        "outputs": record.outputs,
        "expectations": dict(record.expectations),
        "tags": dict(record.tags),
        "source": record.source,
        "created_time": found.created_at,
        "last_update_time": found.updated_at,
        "created_by": found.created_by,
        "last_updated_by": found.last_updated_by,
    }


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} must be a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object, not {type(value).__name__}")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _experiments(state: ServerState, ids: list[str]) -> list[str]:
    # MLflow's client puts an id passed as a string (experiment_ids="123") into the repeated
    # field as is, which splits it into characters; a lone id of several characters is meant.
    if len(ids) > 1 and all(len(i) == 1 for i in ids):
        ids = ["".join(ids)]
    return [experiment_id_in(state.tracking, i) for i in ids]


class CreateDatasetIn(Message):
    name: str = Field(min_length=1, max_length=256)
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    tags: str | None = None


@router.post("/datasets/create")
def create(body: CreateDatasetIn, state: State, caller: Editor) -> Response:
    tags = _json_object(body.tags, "tags")
    with service_for(state, caller) as service:
        found = service.create_dataset(
            body.name, tags=tags, experiment_ids=_experiments(state, body.experiment_ids)
        )
    return reply({"dataset": dataset_json(found)})


class SearchIn(Message):
    experiment_ids: list[str] = Field(default_factory=list, max_length=100)
    filter_string: str | None = Field(default=None, max_length=1000)
    max_results: int = Field(default=1000, ge=1, le=50_000)
    order_by: list[str] = Field(default_factory=list, max_length=5)
    page_token: str | None = None


@router.post("/datasets/search")
def search(body: SearchIn, state: State, caller: Viewer) -> Response:
    keep = _dataset_filter(body.filter_string)
    with service_for(state, caller) as service:
        found = service.search_datasets(
            experiment_ids=_experiments(state, body.experiment_ids), max_results=50_000
        )
    found = [d for d in found if keep(d)]
    keys = [_order(item) for item in body.order_by] or [("created_at", False)]
    for key, ascending in reversed(keys):
        found.sort(key=attrgetter(key), reverse=not ascending)
    search_key = [body.experiment_ids, body.filter_string or "", body.order_by]
    chosen, token = page(
        found, read_offset(body.page_token, search_key), body.max_results, search_key
    )
    message: dict[str, Any] = {"datasets": [dataset_json(d) for d in chosen]}
    if token:
        message["next_page_token"] = token
    return reply(message)


_CLAUSE = re.compile(
    r"\s*(name|created_by|last_updated_by|created_time|last_update_time|tags\.`[^`]+`|tags\.[\w.-]+)"
    r"\s*(=|!=|<=|>=|<|>|\bLIKE\b|\bILIKE\b)\s*('(?:[^']|'')*'|-?\d+)\s*(AND\b|$)",
    re.IGNORECASE,
)
_FIELDS = {
    "name": "name",
    "created_by": "created_by",
    "last_updated_by": "last_updated_by",
    "created_time": "created_at",
    "last_update_time": "updated_at",
}


def _dataset_filter(text: str | None) -> Callable[[EvalDataset], bool]:
    """MLflow's dataset filter: clauses joined by AND on name, created_by, last_updated_by,
    created_time, last_update_time and tags.<key> (=, !=, <, <=, >, >=, LIKE, ILIKE)."""
    checks: list[Callable[[EvalDataset], bool]] = []
    position, text = 0, (text or "").strip()
    while position < len(text):
        matched = _CLAUSE.match(text, position)
        if matched is None:
            raise InvalidInput(
                f"filter {text!r} is not supported from {text[position:]!r}; use clauses such "
                "as name = 'x', name LIKE 'x%', tags.team = 'a', created_time >= 0 joined by AND"
            )
        checks.append(_clause(*matched.group(1, 2, 3)))
        position = matched.end()
    return lambda d: all(check(d) for check in checks)


def _clause(field: str, operator: str, literal: str) -> Callable[[EvalDataset], bool]:
    operator = operator.upper()
    value: Any = literal[1:-1].replace("''", "'") if literal.startswith("'") else int(literal)
    if field.lower().startswith("tags."):
        key = field[5:].strip("`")

        def read(d: EvalDataset) -> Any:
            return d.tags.get(key)
    else:
        attribute = _FIELDS[field.lower()]

        def read(d: EvalDataset) -> Any:
            return getattr(d, attribute)

    if operator in ("LIKE", "ILIKE"):
        pattern = "".join(
            ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(value)
        )
        compiled = re.compile(pattern, re.DOTALL | (re.IGNORECASE if operator == "ILIKE" else 0))
        return lambda d: read(d) is not None and compiled.fullmatch(str(read(d))) is not None
    compare: Callable[[Any, Any], Any] = {
        "=": op.eq,
        "!=": op.ne,
        "<": op.lt,
        "<=": op.le,
        ">": op.gt,
        ">=": op.ge,
    }[operator]

    def check(d: EvalDataset) -> bool:
        have = read(d)
        if have is None or isinstance(have, str) != isinstance(value, str):
            return False
        return bool(compare(have, value))

    return check


def _order(item: str) -> tuple[str, bool]:
    matched = _ORDER.match(item)
    if matched is None:
        raise InvalidInput(
            f"order_by {item!r}: use name, created_time or last_update_time, then ASC or DESC"
        )
    column = {"name": "name", "created_time": "created_at", "last_update_time": "updated_at"}
    return column[matched.group(1).lower()], (matched.group(3) or "ASC").upper() == "ASC"


@router.get("/datasets/{dataset_id}")
def get(dataset_id: str, state: State, caller: Viewer) -> Response:
    with service_for(state, caller) as service:
        return reply({"dataset": dataset_json(service.get_dataset(_id_in(dataset_id)))})


@router.delete("/datasets/{dataset_id}")
def delete(dataset_id: str, state: State, caller: Editor) -> Response:
    with service_for(state, caller) as service:
        service.delete_dataset(_id_in(dataset_id))
    return reply({})


class RecordsQuery(Message):
    max_results: int = Field(default=1000, ge=1, le=50_000)
    page_token: str | None = None


@router.get("/datasets/{dataset_id}/records")
def records(
    dataset_id: str, q: Annotated[RecordsQuery, Query()], state: State, caller: Viewer
) -> Response:
    with service_for(state, caller) as service:
        found = service.get_dataset(_id_in(dataset_id))
        rows = service.records(found.id)
    search_key = [found.id, found.version_id]
    chosen, token = page(rows, read_offset(q.page_token, search_key), q.max_results, search_key)
    message: dict[str, Any] = {"records": json.dumps([_record_json(r, found) for r in chosen])}
    if token:
        message["next_page_token"] = token
    return reply(message)


class UpsertIn(Message):
    records: str = Field(min_length=2)


@router.post("/datasets/{dataset_id}/records")
def upsert(dataset_id: str, body: UpsertIn, state: State, caller: Editor) -> Response:
    try:
        rows = json.loads(body.records)
    except ValueError as exc:
        raise InvalidInput(f"records must be a JSON list of records: {exc}") from exc
    if not isinstance(rows, list):
        raise InvalidInput(f"records must be a JSON list, not {type(rows).__name__}")
    if len(rows) > MAX_RECORDS:
        raise InvalidInput(f"{len(rows)} records in one call; the limit is {MAX_RECORDS}")
    with service_for(state, caller) as service:
        counts = service.upsert_records(_id_in(dataset_id), rows)
    return reply({"inserted_count": counts["inserted"], "updated_count": counts["updated"]})


class DeleteRecordsIn(Message):
    dataset_record_ids: list[str] = Field(max_length=MAX_RECORDS)


@router.delete("/datasets/{dataset_id}/records")
def delete_records(
    dataset_id: str, body: DeleteRecordsIn, state: State, caller: Editor
) -> Response:
    with service_for(state, caller) as service:
        gone = service.delete_records(_id_in(dataset_id), body.dataset_record_ids)
    return reply({"deleted_count": gone})


class TagsIn(Message):
    tags: str


@router.patch("/datasets/{dataset_id}/tags")
def set_tags(dataset_id: str, body: TagsIn, state: State, caller: Editor) -> Response:
    tags = _json_object(body.tags, "tags")
    with service_for(state, caller) as service:
        service.set_tags(_id_in(dataset_id), tags)
        return reply({"dataset": dataset_json(service.get_dataset(_id_in(dataset_id)))})


@router.delete("/datasets/{dataset_id}/tags/{key}")
def delete_tag(dataset_id: str, key: str, state: State, caller: Editor) -> Response:
    with service_for(state, caller) as service:
        service.delete_tag(_id_in(dataset_id), key)
    return reply({})


@router.get("/datasets/{dataset_id}/experiment-ids")
def experiment_ids(dataset_id: str, state: State, caller: Viewer) -> Response:
    with service_for(state, caller) as service:
        found = service.get_dataset(_id_in(dataset_id))
    return reply({"experiment_ids": list(found.experiment_ids)})


class ExperimentsIn(Message):
    experiment_ids: list[str] = Field(max_length=100)


@router.post("/datasets/{dataset_id}/add-experiments")
def add_experiments(dataset_id: str, body: ExperimentsIn, state: State, caller: Editor) -> Response:
    with service_for(state, caller) as service:
        found = service.add_experiments(
            _id_in(dataset_id), _experiments(state, body.experiment_ids)
        )
    return reply({"dataset": dataset_json(found)})


@router.post("/datasets/{dataset_id}/remove-experiments")
def remove_experiments(
    dataset_id: str, body: ExperimentsIn, state: State, caller: Editor
) -> Response:
    with service_for(state, caller) as service:
        found = service.remove_experiments(
            _id_in(dataset_id), _experiments(state, body.experiment_ids)
        )
    return reply({"dataset": dataset_json(found)})
