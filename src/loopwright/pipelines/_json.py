"""Pipeline runs and step runs as JSON documents: what the REST API answers, what the remote
client decodes and what ``loopwright pipelines ... --json`` prints (one form for all three).

Example:
    >>> from loopwright.pipelines.entities import ArtifactRef
    >>> ref = ArtifactRef(name="output", digest="ab" * 32, materializer="json")
    >>> artifact_from_json(artifact_json(ref)) == ref
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .entities import ArtifactRef, PipelineRun, StepRun

__all__ = [
    "artifact_from_json",
    "artifact_json",
    "run_from_json",
    "run_json",
    "step_from_json",
    "step_json",
]

Json = dict[str, Any]


def artifact_json(ref: ArtifactRef) -> Json:
    return ref.to_dict()


def artifact_from_json(data: Mapping[str, Any]) -> ArtifactRef:
    return ArtifactRef.from_dict(data)


def step_json(step: StepRun) -> Json:
    return {
        "id": step.id,
        "pipeline_run_id": step.pipeline_run_id,
        "invocation": step.invocation,
        "step": step.step,
        "status": step.status,
        "cache_key": step.cache_key,
        "cache_reason": step.cache_reason,
        "run_id": step.run_id,
        "cached_from": step.cached_from,
        "attempts": step.attempts,
        "inputs": [artifact_json(a) for a in step.inputs],
        "outputs": [artifact_json(a) for a in step.outputs],
        "error": step.error,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "duration_ms": step.duration_ms,
        "key_parts": dict(step.key_parts),
    }


def step_from_json(data: Mapping[str, Any]) -> StepRun:
    return StepRun(
        id=data["id"],
        pipeline_run_id=data["pipeline_run_id"],
        invocation=data["invocation"],
        step=data["step"],
        status=data["status"],
        cache_key=data["cache_key"],
        cache_reason=data["cache_reason"],
        run_id=data["run_id"],
        cached_from=data["cached_from"],
        attempts=data["attempts"],
        inputs=tuple(artifact_from_json(a) for a in data["inputs"]),
        outputs=tuple(artifact_from_json(a) for a in data["outputs"]),
        error=data["error"],
        started_at=data["started_at"],
        finished_at=data["finished_at"],
        key_parts=dict(data.get("key_parts") or {}),
    )


def run_json(run: PipelineRun) -> Json:
    """``run`` as JSON, its step runs (if loaded) under ``steps``."""
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "name": run.name,
        "status": run.status,
        "run_id": run.run_id,
        "params": dict(run.params),
        "executor": run.executor,
        "resumed_from": run.resumed_from,
        "code_digest": run.code_digest,
        "result": None if run.result is None else artifact_json(run.result),
        "error": run.error,
        "host": run.host,
        "pid": run.pid,
        "created_by": run.created_by,
        "started_at": run.started_at,
        "heartbeat_at": run.heartbeat_at,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
        "steps": [step_json(s) for s in run.steps],
    }


def run_from_json(data: Mapping[str, Any]) -> PipelineRun:
    result = data.get("result")
    return PipelineRun(
        id=data["id"],
        pipeline=data["pipeline"],
        name=data["name"],
        status=data["status"],
        run_id=data["run_id"],
        params=dict(data["params"]),
        executor=data["executor"],
        resumed_from=data["resumed_from"],
        code_digest=data["code_digest"],
        result=None if result is None else artifact_from_json(result),
        error=data["error"],
        host=data["host"],
        pid=data["pid"],
        created_by=data["created_by"],
        started_at=data["started_at"],
        heartbeat_at=data["heartbeat_at"],
        finished_at=data["finished_at"],
        steps=tuple(step_from_json(s) for s in data.get("steps") or ()),
    )
