"""``RemotePipelines``: pipeline runs and step runs over the server's ``/api/v1/pipelines`` (the
``Pipelines`` protocol).

Answers decode into the same entities as the embedded service's (``pipelines/_json.py`` is the
one JSON form both sides use); errors come back as the same classes. Inputs are checked here
first, with the service's own checks, so a bad call fails before it is sent.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidInput
from ..pipelines import _checks as checks
from ..pipelines._json import artifact_json, run_from_json, step_from_json
from ..pipelines.entities import ArtifactRef, PipelineRun, PipelineStatus, StepRun, StepStatus
from ._http import Http
from .tracking import _context, context_body

if TYPE_CHECKING:
    from ..tracking.capture import RunContext

__all__ = ["RemotePipelines"]


def _id(value: str) -> str:
    """An id as one URL segment (checked first: a ``/`` or NUL cannot slip into the path)."""
    return quote(checks.check_name("id", value, 100), safe="")


class RemotePipelines:
    """The ``Pipelines`` protocol through a Loopwright server."""

    def __init__(self, http: Http) -> None:
        self._http = http

    # --- pipeline runs ---------------------------------------------------------------------

    def start_run(
        self,
        pipeline: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "inprocess",
        code_digest: str = "",
        experiment: str | None = None,
        resumed_from: str | None = None,
        host: str = "",
        pid: int = 0,
        context: RunContext | None = None,
    ) -> PipelineRun:
        values, _ = checks.checked_params(params)
        body = {
            "pipeline": checks.check_ref(pipeline),
            "name": name,
            "params": values,
            "executor": executor,
            "code_digest": code_digest,
            "experiment": experiment,
            "resumed_from": resumed_from,
            "host": host,
            "pid": checks.check_pid(pid),
            # The given code version (the pipeline module's), else this process's; the
            # environment is this process's either way.
            "context": _context() if context is None else context_body(context),
        }
        return run_from_json(self._http.post("/pipelines/runs", body))

    def heartbeat(self, pipeline_run_id: str) -> None:
        self._http.post(f"/pipelines/runs/{_id(pipeline_run_id)}/heartbeat")

    def finish_run(
        self,
        pipeline_run_id: str,
        status: PipelineStatus,
        *,
        result: ArtifactRef | None = None,
        error: str | None = None,
    ) -> PipelineRun:
        checks.check_choice("status", status, ("completed", "failed", "killed"))
        ref = None if result is None else checks.check_artifact("result", result)
        body = {
            "status": status,
            "result": None if ref is None else artifact_json(ref),
            "error": checks.checked_error(error),
        }
        answer = self._http.post(f"/pipelines/runs/{_id(pipeline_run_id)}/finish", body)
        return run_from_json(answer)

    def get_run(self, pipeline_run_id: str) -> PipelineRun:
        return run_from_json(self._http.get(f"/pipelines/runs/{_id(pipeline_run_id)}"))

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: PipelineStatus | None = None,
        limit: int = 50,
    ) -> builtins.list[PipelineRun]:
        if status is not None:
            checks.check_choice("status", status, ("running", "completed", "failed", "killed"))
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit {limit!r} must be a whole number from 1 to 10,000")
        answer = self._http.get("/pipelines/runs", pipeline=pipeline, status=status, limit=limit)
        return [run_from_json(r) for r in answer]

    # --- step runs -------------------------------------------------------------------------

    def start_step(
        self,
        pipeline_run_id: str,
        *,
        invocation: str,
        step: str,
        cache_key: str,
        cache_reason: str,
        inputs: Sequence[ArtifactRef] = (),
        key_parts: Mapping[str, Any] | None = None,
    ) -> StepRun:
        checks.check_artifacts("inputs", inputs)
        checks.check_document("key_parts", key_parts)
        body = {
            "invocation": invocation,
            "step": step,
            "cache_key": cache_key,
            "cache_reason": cache_reason,
            "inputs": [artifact_json(a) for a in inputs],
            "key_parts": dict(key_parts or {}),
        }
        answer = self._http.post(f"/pipelines/runs/{_id(pipeline_run_id)}/steps", body)
        return step_from_json(answer)

    def finish_step(
        self,
        step_run_id: str,
        status: StepStatus,
        *,
        outputs: Sequence[ArtifactRef] = (),
        attempts: int = 1,
        error: str | None = None,
    ) -> StepRun:
        checks.check_choice("status", status, ("completed", "failed"))
        checks.check_artifacts("outputs", outputs)
        body = {
            "status": status,
            "outputs": [artifact_json(a) for a in outputs],
            "attempts": checks.check_attempts(attempts),
            "error": checks.checked_error(error),
        }
        answer = self._http.post(f"/pipelines/steps/{_id(step_run_id)}/finish", body)
        return step_from_json(answer)

    def record_served(
        self,
        pipeline_run_id: str,
        *,
        invocation: str,
        step: str,
        cache_key: str,
        cache_reason: str,
        source: StepRun,
        status: StepStatus = "cached",
        inputs: Sequence[ArtifactRef] = (),
        key_parts: Mapping[str, Any] | None = None,
    ) -> StepRun:
        if not isinstance(source, StepRun):
            raise InvalidInput(f"source must be a StepRun, not {type(source).__name__}")
        checks.check_choice("status", status, ("cached", "resumed"))
        checks.check_artifacts("inputs", inputs)
        checks.check_document("key_parts", key_parts)
        body = {
            "invocation": invocation,
            "step": step,
            "cache_key": cache_key,
            "cache_reason": cache_reason,
            "source_id": source.id,
            "status": status,
            "inputs": [artifact_json(a) for a in inputs],
            "key_parts": dict(key_parts or {}),
        }
        answer = self._http.post(f"/pipelines/runs/{_id(pipeline_run_id)}/served", body)
        return step_from_json(answer)

    def find_cached(self, cache_key: str) -> StepRun | None:
        answer = self._http.get("/pipelines/cached", cache_key=checks.check_cache_key(cache_key))
        return None if answer["step"] is None else step_from_json(answer["step"])

    def previous_step(self, pipeline: str, invocation: str) -> StepRun | None:
        answer = self._http.get("/pipelines/previous", pipeline=pipeline, invocation=invocation)
        return None if answer["step"] is None else step_from_json(answer["step"])
