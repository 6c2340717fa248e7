"""Pipelines as a capability: the records both backends keep (``client.pipelines``).

The engine (``pipelines/engine.py``) runs where the pipeline is called, on any client; it
records every pipeline run and step run through this protocol and stores step outputs as
artifacts of the steps' nested tracked runs (``client.tracking.log_artifact``), so a pipeline
runs the same against the embedded store and against a server.
:class:`~loopwright.pipelines.service.PipelineService` keeps the records in the metadata store;
:class:`~loopwright.remote.pipelines.RemotePipelines` is the same over ``/api/v1/pipelines``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..tracking.capture import RunContext
    from .entities import ArtifactRef, PipelineRun, PipelineStatus, StepRun, StepStatus

__all__ = ["Pipelines"]


class Pipelines(Protocol):
    """Pipeline runs and step runs: started, finished, looked up for the cache and resume."""

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
        """Record a ``running`` pipeline run and start its tracked run (experiment: ``experiment``,
        else the pipeline's name; tags ``loopwright.pipeline`` and ``loopwright.pipeline_run``;
        the parameters logged as params).

        ``context`` is what the tracked run records as its code version, entry point, host and
        environment (the engine passes the pipeline module's repository); by default, those of
        the process calling (through a server: the client's)."""
        ...

    def heartbeat(self, pipeline_run_id: str) -> None:
        """Say the run's process is alive (the engine calls it every ``HEARTBEAT_INTERVAL_MS``)."""
        ...

    def finish_run(
        self,
        pipeline_run_id: str,
        status: PipelineStatus,
        *,
        result: ArtifactRef | None = None,
        error: str | None = None,
    ) -> PipelineRun:
        """Record the end (``completed``, ``failed`` or ``killed``) and end the tracked run
        FINISHED, FAILED or KILLED."""
        ...

    def get_run(self, pipeline_run_id: str) -> PipelineRun:
        """The run with its step runs (in the order they started); a ``running`` run whose
        process is gone comes back ``killed`` (and is stored so)."""
        ...

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: PipelineStatus | None = None,
        limit: int = 50,
    ) -> builtins.list[PipelineRun]:
        """Runs, newest first (without their steps)."""
        ...

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
        """Record a ``running`` step run and start its nested tracked run (parent: the pipeline
        run's tracked run; name: the invocation)."""
        ...

    def finish_step(
        self,
        step_run_id: str,
        status: StepStatus,
        *,
        outputs: Sequence[ArtifactRef] = (),
        attempts: int = 1,
        error: str | None = None,
    ) -> StepRun:
        """Record the step run's end (``completed`` or ``failed``) and end its tracked run."""
        ...

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
        """Record a step run served from ``source``'s outputs (``cached`` or ``resumed``),
        finished at once, with no tracked run of its own."""
        ...

    def find_cached(self, cache_key: str) -> StepRun | None:
        """The newest ``completed`` step run with ``cache_key`` (any pipeline run), or None."""
        ...

    def previous_step(self, pipeline: str, invocation: str) -> StepRun | None:
        """The newest finished step run of ``invocation`` in an earlier run of ``pipeline`` (what
        a cache miss's reason compares against), or None."""
        ...
