"""Loopwright entities as MLflow's JSON messages (``mlflow/protos/service.proto`` and
``model_registry.proto``): snake_case fields, int64 as numbers, unset fields left out, and
non-finite doubles as protobuf's ``"NaN"``/``"Infinity"`` strings (JSON has no such numbers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ...tracking.run_links import RunLinks
from ._uris import (
    experiment_location,
    logged_model_uri,
    model_id_out,
    run_artifact_uri,
)

if TYPE_CHECKING:
    from ...registry.entities import ModelVersion, RegisteredModel
    from ...tracking.entities import Experiment, Run
    from ...tracking.logged_models import LoggedModel, ModelMetric

__all__ = [
    "double",
    "experiment_json",
    "links_json",
    "logged_model_json",
    "pairs",
    "registered_model_json",
    "run_info_json",
    "run_json",
    "version_json",
]

JSON = dict[str, Any]
NOTE_TAG = "mlflow.note.content"  # MLflow keeps descriptions in this tag
RUN_NAME_TAG = "mlflow.runName"
_LOGGED_MODEL_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}


def double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def pairs(values: Mapping[str, str], name: str = "key") -> list[JSON]:
    return [{name: k, "value": v} for k, v in values.items()]


def _compact(message: JSON) -> JSON:
    return {k: v for k, v in message.items() if v is not None}


def experiment_json(experiment: Experiment) -> JSON:
    tags = dict(experiment.tags)
    if experiment.description and NOTE_TAG not in tags:
        tags[NOTE_TAG] = experiment.description
    return {
        "experiment_id": experiment.id,
        "name": experiment.name,
        "artifact_location": experiment_location(experiment.id, experiment.artifact_location),
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": experiment.updated_at,
        "creation_time": experiment.created_at,
        "tags": pairs(tags),
    }


def run_info_json(run: Run, location: str | None = None) -> JSON:
    """``location``: the run's experiment's ``artifact_location`` (None: served here)."""
    return _compact(
        {
            "run_id": run.id,
            "run_uuid": run.id,
            "run_name": run.name,
            "experiment_id": run.experiment_id,
            "user_id": run.user or "",
            # MLflow has no STALE: a run whose heartbeat stopped is still RUNNING to its clients.
            "status": "RUNNING" if run.is_stale else run.status.value,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "artifact_uri": run_artifact_uri(run.experiment_id, run.id, location),
            "lifecycle_stage": run.lifecycle_stage,
        }
    )


def run_json(run: Run, links: RunLinks | None = None, location: str | None = None) -> JSON:
    tags = dict(run.tags)
    tags.setdefault(RUN_NAME_TAG, run.name)  # runs made through Loopwright's own API
    if run.git_commit:
        tags.setdefault("mlflow.source.git.commit", run.git_commit)
    return {
        "info": run_info_json(run, location),
        "data": {
            "metrics": [
                {"key": m.key, "value": double(m.value), "timestamp": m.timestamp, "step": m.step}
                for m in run.metrics.values()
            ],
            "params": pairs(run.params),
            "tags": pairs(tags),
        },
        **links_json(links or RunLinks()),
    }


def links_json(links: RunLinks) -> JSON:
    """The ``inputs`` and ``outputs`` parts of a Run message."""
    return {
        "inputs": {
            "dataset_inputs": [
                {
                    "tags": pairs(d.tags),
                    "dataset": _compact(
                        {
                            "name": d.name,
                            "digest": d.digest,
                            "source_type": d.source_type,
                            "source": d.source,
                            "schema": d.schema,
                            "profile": d.profile,
                        }
                    ),
                }
                for d in links.datasets
            ],
            "model_inputs": [{"model_id": model_id_out(m)} for m in links.model_inputs],
        },
        "outputs": {
            "model_outputs": [
                {"model_id": model_id_out(m), "step": step} for m, step in links.model_outputs
            ]
        },
    }


def model_metric_json(metric: ModelMetric, model_id: str | None = None) -> JSON:
    return _compact(
        {
            "key": metric.key,
            "value": double(metric.value),
            "timestamp": metric.timestamp,
            "step": metric.step,
            "dataset_name": metric.dataset_name,
            "dataset_digest": metric.dataset_digest,
            "model_id": model_id,
            "run_id": metric.run_id,
        }
    )


def logged_model_json(model: LoggedModel) -> JSON:
    return {
        "info": _compact(
            {
                "model_id": model_id_out(model.id),
                "experiment_id": model.experiment_id,
                "name": model.name,
                "creation_timestamp_ms": model.created_at,
                "last_updated_timestamp_ms": model.updated_at,
                "artifact_uri": logged_model_uri(model.experiment_id, model.id),
                "status": _LOGGED_MODEL_STATUS.get(model.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
                "model_type": model.model_type,
                "source_run_id": model.source_run_id,
                "status_message": model.status_message,
                "tags": pairs(model.tags),
            }
        ),
        "data": {
            "params": pairs(model.params),
            "metrics": [model_metric_json(m, model_id_out(model.id)) for m in model.metrics],
        },
    }


def version_json(version: ModelVersion, logged_model_id: str | None = None) -> JSON:
    return _compact(
        {
            "name": version.model,
            "version": str(version.version),
            "creation_timestamp": version.created_at,
            "last_updated_timestamp": version.updated_at,
            "user_id": version.created_by,
            "current_stage": version.stage.value,
            "description": version.description,
            "source": version.source,
            "run_id": version.run_id,
            "status": "READY",
            "tags": pairs(version.tags),
            "aliases": list(version.aliases),
            "model_id": model_id_out(logged_model_id) if logged_model_id else None,
        }
    )


def registered_model_json(
    model: RegisteredModel,
    latest: Iterable[ModelVersion] = (),
    links: Mapping[str, str] | None = None,
) -> JSON:
    """The model with its latest version per stage; ``links``: version id -> logged model id."""
    links = links or {}
    return _compact(
        {
            "name": model.name,
            "creation_timestamp": model.created_at,
            "last_updated_timestamp": model.updated_at,
            "user_id": model.created_by,
            "description": model.description,
            "latest_versions": [version_json(v, links.get(v.id)) for v in latest],
            "tags": pairs(model.tags),
            "aliases": [
                {"alias": alias, "version": str(number)}
                for alias, number in sorted(model.aliases.items())
            ],
        }
    )
