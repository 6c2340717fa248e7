"""MLflow's logging endpoints: metrics, params, tags, batches, inputs, outputs, metric history.

Metric points go through the tracking service's buffer and are flushed before the reply, so a
point is durable once acknowledged; concurrent requests share one transaction per flush. Exact
repeats of a point are ignored (the metrics table's key is the whole point). A point that names
a logged model (``model_id``) is also recorded as that model's metric.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ...errors import InvalidInput
from ...store import limits
from ...store.home import acting_as
from ...tracking.entities import Metric
from ...tracking.logged_models import LoggedModelService, ModelMetric
from ...tracking.run_links import DatasetInput, loopwright_ref, record_inputs, record_outputs
from .._hot import run_hot
from ..auth import Identity
from . import _messages as m
from ._batch import Batch, read_batch
from ._common import (
    Editor,
    State,
    Viewer,
    check_key,
    check_length,
    check_param,
    check_tag,
    reply,
)
from ._convert import RUN_NAME_TAG, double
from ._paging import page, read_offset
from ._uris import model_id_in
from .errors import missing_value

__all__ = ["router"]

router = APIRouter()

# MLflow's log-batch limits (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BULK_RUNS = 100
MAX_BULK_POINTS = 2500  # per run (MLflow's MAX_RESULTS_PER_RUN)


def _model_points(
    state: State, run_id: str, metrics: list[m.MetricIn], points: list[Metric]
) -> None:
    """Record the points that name a logged model as that model's metrics too (their keys
    checked here, before the model's rows are written)."""
    for given in metrics:
        check_length("dataset_name", given.dataset_name, 500)
        check_length("dataset_digest", given.dataset_digest, 36)
    for key in {given.key for given in metrics if given.model_id}:
        check_key("metric", key)
    linked = [
        (
            model_id_in(given.model_id),
            ModelMetric(
                p.key,
                p.value,
                p.step,
                p.timestamp,
                run_id,
                given.dataset_name,
                given.dataset_digest,
            ),
        )
        for given, p in zip(metrics, points, strict=True)
        if given.model_id
    ]
    if linked:
        LoggedModelService(state.store).log_metrics(linked)


@router.post("/runs/log-metric")
async def log_metric(body: m.LogMetric, state: State, caller: Editor) -> Response:
    if body.model_id:  # the logged model's point is a write of its own: not for the event loop
        return await run_in_threadpool(_log_metric, body, state, caller)
    # Run again in the thread pool after a WouldBlock, the point is buffered twice: the second
    # copy is an exact repeat, which the metrics table ignores.
    return await run_hot(state.store.db, lambda: _log_metric(body, state, caller))


def _log_metric(body: m.LogMetric, state: State, caller: Identity) -> Response:
    run_id = body.run
    point = Metric(body.key, body.value, body.step, body.timestamp)
    with acting_as(caller.user):
        if body.model_id:
            state.tracking.require_loggable(run_id)
            _model_points(state, run_id, [body], [point])
        state.tracking.log_metric_points(run_id, [point])
        state.tracking.flush(run_id)
    return reply()


@router.post("/runs/log-parameter")
def log_param(body: m.LogParam, state: State, caller: Editor) -> Response:
    check_param(body.key, body.value)
    with acting_as(caller.user):
        state.tracking.log_params(body.run, {body.key: body.value})
    return reply()


def _set_tags(state: State, run_id: str, tags: dict[str, str]) -> None:
    state.tracking.set_tags(run_id, tags)
    if tags.get(RUN_NAME_TAG):  # MLflow renames the run with its name tag
        state.tracking.update_run(run_id, name=tags[RUN_NAME_TAG][: limits.RUN_NAME])


@router.post("/runs/set-tag")
def set_tag(body: m.SetTag, state: State, caller: Editor) -> Response:
    check_tag(body.key, body.value)
    with acting_as(caller.user):
        _set_tags(state, body.run, {body.key: body.value})
    return reply()


@router.post("/runs/delete-tag")
def delete_tag(body: m.DeleteTag, state: State, caller: Editor) -> Response:
    with acting_as(caller.user):
        state.tracking.delete_tag(body.run, body.key)
    return reply()


def _check_batch(batch: Batch) -> tuple[dict[str, str], dict[str, str]]:
    body = batch.message
    counts = {"metrics": len(batch.rows), "params": len(body.params), "tags": len(body.tags)}
    limits = {
        "metrics": MAX_METRICS_PER_BATCH,
        "params": MAX_PARAMS_TAGS_PER_BATCH,
        "tags": MAX_PARAMS_TAGS_PER_BATCH,
    }
    for kind, count in counts.items():
        if count > limits[kind]:
            raise InvalidInput(
                f"a batch logging request can contain at most {limits[kind]} {kind}; got "
                f"{count}. Split the batch into smaller ones"
            )
    if sum(counts.values()) > MAX_ENTITIES_PER_BATCH:
        raise InvalidInput(
            f"a batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, "
            f"params and tags in total; got {sum(counts.values())}"
        )
    for key in batch.keys:  # a batch repeats a few keys
        check_key("metric", key)
    params: dict[str, str] = {}
    for param in body.params:
        check_key("param", param.key)
        check_param(param.key, param.value)
        if params.setdefault(param.key, param.value) != param.value:
            raise InvalidInput(
                f"param {param.key!r} appears twice in the batch with different values "
                f"({params[param.key]!r}, {param.value!r})"
            )
    tags: dict[str, str] = {}
    for tag in body.tags:
        check_key("tag", tag.key)
        check_tag(tag.key, tag.value)
        tags[tag.key] = tag.value  # the last value wins, as in MLflow
    return params, tags


@router.post("/runs/log-batch")
async def log_batch(body: Annotated[Any, Body()], state: State, caller: Editor) -> Response:
    """The body is parsed by :func:`._batch.read_batch` (as ``LogBatch``, faster), then written
    as before: params and tags now, the points through the writer, flushed before the reply.
    Points alone (what ``log_batch`` of metrics sends) are one write: on the event loop."""
    batch = read_batch(body)
    params, tags = _check_batch(batch)
    if params or tags or batch.linked:
        return await run_in_threadpool(_log_batch, batch, params, tags, state, caller)
    return await run_hot(state.store.db, lambda: _log_batch(batch, params, tags, state, caller))


def _log_batch(
    batch: Batch, params: dict[str, str], tags: dict[str, str], state: State, caller: Identity
) -> Response:
    run_id = batch.run_id
    with acting_as(caller.user):
        state.tracking.require_loggable(run_id)
        if batch.linked:
            given = batch.message.metrics
            points = [Metric(p.key, p.value, p.step, p.timestamp) for p in given]
            _model_points(state, run_id, given, points)
        if params:
            state.tracking.log_params(run_id, params)
        state.tracking.writer.add_many(batch.rows)  # checked: keys above, values when read
        if tags:
            _set_tags(state, run_id, tags)
        state.tracking.flush(run_id)
    return reply()


@router.post("/runs/log-inputs")
def log_inputs(body: m.LogInputs, state: State, caller: Editor) -> Response:
    run_id = body.run
    for d in body.datasets:
        check_length("dataset name", d.dataset.name, 500)
        check_length("dataset digest", d.dataset.digest, 36)
        check_length("dataset source_type", d.dataset.source_type, 100)
    datasets = [
        DatasetInput(
            d.dataset.name,
            d.dataset.digest,
            d.dataset.source_type,
            d.dataset.source,
            d.dataset.schema_,
            d.dataset.profile,
            {t.key: t.value for t in d.tags},
        )
        for d in body.datasets
    ]
    models = [model_id_in(i.model_id) for i in body.models]
    lineage = [
        (ref, d.tags.get("mlflow.data.context") or "training")
        for d in datasets
        if (ref := loopwright_ref(d)) is not None
    ]
    with acting_as(caller.user):
        state.tracking.require_loggable(run_id)
        for ref, context in lineage:
            version = state.datasets.get(ref)
            state.tracking.use_dataset(run_id, version.id, context=context[:100])
        record_inputs(state.store.db, run_id, datasets, models)
    return reply()


@router.post("/runs/outputs")
def log_outputs(body: m.LogOutputs, state: State, caller: Editor) -> Response:
    run_id = body.run
    models: list[tuple[str, int | None]] = [(model_id_in(o.model_id), o.step) for o in body.models]
    with acting_as(caller.user):
        state.tracking.require_loggable(run_id)
        record_outputs(state.store.db, run_id, models)
    return reply()


@router.post("/runs/log-model")
def log_model(body: m.LogModel, state: State, caller: Editor) -> Response:
    """MLflow 2's model history: appended to the run's ``mlflow.log-model.history`` tag."""
    run_id = body.run
    try:
        model = json.loads(body.model_json or "")
    except json.JSONDecodeError:
        raise InvalidInput("model_json must be a JSON object describing the model") from None
    key = "mlflow.log-model.history"
    with acting_as(caller.user):
        try:
            history = json.loads(state.tracking.get_run(run_id).tags.get(key) or "[]")
        except json.JSONDecodeError:
            history = []
        history = [*history, model] if isinstance(history, list) else [model]
        state.tracking.set_tags(run_id, {key: json.dumps(history)})
    return reply()


@router.get("/metrics/get-history")
def get_history(q: Annotated[m.GetMetricHistory, Query()], state: State, _: Viewer) -> Response:
    run_id = q.run
    points = state.tracking.metric_history(run_id, q.metric_key)
    token = None
    if q.max_results is not None or q.page_token:
        search = [run_id, q.metric_key]
        points, token = page(
            points, read_offset(q.page_token, search), q.max_results or 25000, search
        )
    message: dict[str, object] = {
        "metrics": [
            {
                "key": p.key,
                "value": double(p.value),
                "timestamp": p.timestamp,
                "step": p.step,
                "run_id": run_id,
            }
            for p in points
        ]
    }
    if token:
        message["next_page_token"] = token
    return reply(message)


def _check_bulk_interval(q: m.GetMetricHistoryBulkInterval) -> None:
    """MLflow's checks, in its order and words (its UI and tests match them)."""
    if not q.run_ids:
        raise InvalidInput(missing_value("run_ids"))
    if len(q.run_ids) > MAX_BULK_RUNS:
        raise InvalidInput(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} "
            f"run_ids. Received {len(q.run_ids)} run_ids."
        )
    if not q.metric_key:
        raise InvalidInput(missing_value("metric_key"))
    if q.max_results is not None and not 1 <= q.max_results <= MAX_BULK_POINTS:
        raise InvalidInput(f"max_results must be between 1 and {MAX_BULK_POINTS}.")
    if (q.start_step is None) != (q.end_step is None):
        raise InvalidInput(
            "If either start step or end step are specified, both must be specified."
        )
    if q.start_step is not None and q.end_step is not None and q.start_step > q.end_step:
        raise InvalidInput(
            "end_step must be greater than start_step. "
            f"Found start_step={q.start_step} and end_step={q.end_step}."
        )


@router.get("/metrics/get-history-bulk-interval")
def get_history_bulk_interval(
    q: Annotated[m.GetMetricHistoryBulkInterval, Query()], state: State, _: Viewer
) -> Response:
    """Up to ``max_results`` points per run, at steps spread evenly over the range (the first
    and last step always among them), for plotting many runs at once."""
    _check_bulk_interval(q)
    limit = max(2, q.max_results or MAX_BULK_POINTS)
    found = []
    for run_id in q.run_ids:
        points = [
            p
            for p in state.tracking.metric_history(run_id, q.metric_key)
            if (q.start_step is None or p.step >= q.start_step)
            and (q.end_step is None or p.step <= q.end_step)
        ]
        steps = sorted({p.step for p in points})
        if len(steps) > limit:
            last = len(steps) - 1
            keep = {steps[round(i * last / (limit - 1))] for i in range(limit)}
            points = [p for p in points if p.step in keep]
        found += [
            {
                "key": p.key,
                "value": double(p.value),
                "timestamp": p.timestamp,
                "step": p.step,
                "run_id": run_id,
            }
            for p in points
        ]
    return reply({"metrics": found})
