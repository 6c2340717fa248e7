"""The lineage walk: each kind of record becomes a node, with links to what made it.

:class:`Walk` builds a :class:`~._lineage_graph.LineageGraph` through client calls only; each
builder adds its record once and follows its provenance (``run`` and ``dataset_version`` with
``downstream``: also what used them). :mod:`.lineage` decides where a walk starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound
from ._lineage_graph import Edge, LineageGraph, Node, json_attrs
from ._lineage_llm import LLMWalk
from .driver import waiting_text

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..loop.entities import Iteration, Loop
    from ..pipelines.entities import PipelineRun, StepRun
    from ..registry.entities import ModelVersion
    from ..tracking.entities import Run

__all__ = ["MAX_NODES", "Walk"]

# A walk stops adding nodes past this many (a dataset read by thousands of runs) and says so.
MAX_NODES = 500
# Iterations of one loop searched for the one that produced a model version.
_ITERATIONS = 1000
# Fires of a loop's schedule searched for the one that started an iteration.
_FIRES = 500
# Dataset versions scanned to find what a run read (the data service answers by version).
_SCANNED_VERSIONS = 2000
_PIPELINE_RUN_TAG = "loopwright.pipeline_run"
_STEP_TAG = "loopwright.step"
_FEATURE_SERVICE_TAG = "loopwright.feature_service"


class Walk(LLMWalk):
    """One walk: the graph being built and what each lookup already answered (traces, prompt
    versions, evaluation runs and gateway routes: :class:`._lineage_llm.LLMWalk`)."""

    def __init__(self, client: Client, subject: str) -> None:
        self.client = client
        self.graph = LineageGraph(subject=subject, root="")
        self._nodes: dict[str, Node] = {}
        self._edges: set[tuple[str, str, str]] = set()
        self._expanded: set[str] = set()
        self._step_of_run: dict[str, str] = {}  # a step's tracked run id -> its step node
        self._loops: list[Loop] | None = None
        self._reads: dict[str, list[str]] | None = None  # run id -> dataset version ids
        self._cut = False

    # --- building the graph --------------------------------------------------------------------

    def _add(self, node_id: str, kind: str, label: str, attrs: Mapping[str, Any]) -> bool:
        """Add a node once; False when the walk is full (the caller then stops there)."""
        if node_id in self._nodes:
            return True
        if len(self._nodes) >= MAX_NODES:
            if not self._cut:
                self._cut = True
                self.graph.notes.append(
                    f"the walk stopped at {MAX_NODES} records; start from a narrower subject"
                )
            return False
        node = Node(node_id, kind, label, json_attrs(attrs))
        self._nodes[node_id] = node
        self.graph.nodes.append(node)
        return True

    def _link(self, src: str, dst: str, relation: str) -> None:
        if dst in self._nodes and (src, dst, relation) not in self._edges:
            self._edges.add((src, dst, relation))
            self.graph.edges.append(Edge(src, dst, relation))

    def _first_visit(self, node_id: str) -> bool:
        if node_id in self._expanded:
            return False
        self._expanded.add(node_id)
        return True

    # --- predictions ---------------------------------------------------------------------------

    def prediction(self, request_id: str, rows: pd.DataFrame) -> str:
        """The prediction logged as ``rows`` (its rows in the log, in order)."""
        first = rows.iloc[0]
        node_id = f"prediction:{request_id}"
        at = first["timestamp"].to_pydatetime()
        self._add(
            node_id,
            "prediction",
            request_id,
            {
                "timestamp": int(at.timestamp() * 1000),
                "deployment": first["deployment"],
                "variant": first["variant"],
                "rows": len(rows),
                "status": _int(first["status"]),
                "latency_ms": _float(first["latency_ms"]),
            },
        )
        target = self._deployment(str(first["deployment"]), at)
        self._link(node_id, target, "served_by")
        model, version = first["model"], _int(first["model_version"])
        if isinstance(model, str) and model and version is not None:
            try:
                found = self.client.registry.get_version(model, version)
            except NotFound:
                self.graph.notes.append(
                    f"prediction {request_id} names model {model} v{version}, which the "
                    "registry no longer has"
                )
            else:
                self._link(node_id, self.model_version(found), "predicted_by")
        return node_id

    def _deployment(self, name: str, at: datetime) -> str:
        node_id = f"deployment:{name}"
        attrs: dict[str, Any] = {}
        try:
            current = self.client.deployments.get(name)
        except NotFound:
            attrs["deleted"] = True
        else:
            attrs = {"strategy": current.strategy, "revision": current.revision}
            moment = int(at.timestamp() * 1000)
            in_force = [r for r in self.client.deployments.history(name) if r.created_at <= moment]
            if in_force:
                revision = in_force[-1]
                attrs["revision_at_prediction"] = revision.revision
                attrs["variants_at_prediction"] = [
                    {"name": v.name, "model_uri": v.model_uri, "weight": v.weight}
                    for v in revision.variants
                ]
        self._add(node_id, "deployment", name, attrs)
        return node_id

    # --- model versions ------------------------------------------------------------------------

    def model_version(self, version: ModelVersion) -> str:
        node_id = f"model_version:{version.model}/{version.version}"
        if not self._first_visit(node_id):
            return node_id
        if not self._add(
            node_id,
            "model_version",
            version.ref,
            {
                "model": version.model,
                "version": version.version,
                "stage": str(version.stage),
                "aliases": list(version.aliases),
                "flavor": version.flavor,
                "source": version.source,
                "run_id": version.run_id,
                "metrics": dict(version.metrics),
                "tags": dict(version.tags),
                "created_by": version.created_by,
                "created_at": version.created_at,
            },
        ):
            return node_id
        iteration = self._iteration_of(version)
        if iteration is not None:
            self._link(node_id, self._iteration(*iteration), "produced_by")
        if version.run_id:
            try:
                run = self.client.tracking.get_run(version.run_id)
            except NotFound:
                self.graph.notes.append(f"{version.ref}'s run {version.run_id} is gone")
            else:
                self._link(node_id, self.run(run), "trained_in")
        for dataset_id in version.dataset_version_ids:
            self._link(node_id, self._dataset_by_id(dataset_id), "trained_on")
        for result in self.client.gates.results(model=version.model, version=version.version):
            self._link(node_id, self._gate_result(result), "gated_by")
        for request in self.client.registry.requests(status=None, model=version.model):
            if request.version == version.version:
                self._link(node_id, self._approval(request), "approval")
        service = version.tags.get(_FEATURE_SERVICE_TAG)
        if service:
            self._link(node_id, self._feature_service(service), "features_from")
        return node_id

    # --- feature definitions -------------------------------------------------------------------

    def _feature_service(self, ref: str) -> str:
        """The feature service version a model was trained on (its training set is the
        version's ``trained_on`` dataset) and the view versions it pins."""
        node_id = f"feature_service:{ref}"
        if not self._first_visit(node_id):
            return node_id
        try:
            service = self.client.features.get(ref, kind="feature_service")
        except NotFound:
            self._add(node_id, "feature_service", ref, {"deleted": True})
            return node_id
        pins: Mapping[str, int] = service.spec.get("pins") or {}
        attrs = {"name": service.name, "version": service.version, "pins": dict(pins)}
        if self._add(node_id, "feature_service", service.ref, attrs):
            for view, pinned in pins.items():
                self._link(node_id, self._feature_view(f"{view}@v{pinned}"), "includes")
        return node_id

    def _feature_view(self, ref: str) -> str:
        node_id = f"feature_view:{ref}"
        if node_id in self._nodes:
            return node_id
        for kind in ("feature_view", "on_demand_feature_view"):
            try:
                view = self.client.features.get(ref, kind=kind)
            except NotFound:
                continue
            attrs = {
                "kind": kind,
                "name": view.name,
                "version": view.version,
                "digest": view.digest,
                "features": [f["name"] for f in view.spec.get("features", ())],
                "created_by": view.created_by,
                "created_at": view.created_at,
            }
            self._add(node_id, "feature_view", view.ref, attrs)
            return node_id
        self._add(node_id, "feature_view", ref, {"deleted": True})
        return node_id

    def _iteration_of(self, version: ModelVersion) -> tuple[Iteration, Loop] | None:
        if self._loops is None:
            self._loops = list(self.client.loops.list())
        for loop in self._loops:
            if loop.model != version.model:
                continue
            for iteration in self.client.loops.iterations(loop.name, limit=_ITERATIONS):
                if iteration.model_version == version.version:
                    return iteration, loop
        return None

    def _gate_result(self, result: Any) -> str:
        node_id = f"gate_result:{result.id}"
        failed = [o.rule for o in result.outcomes if not o.passed]
        self._add(
            node_id,
            "gate_result",
            f"{result.gate}: {'passed' if result.passed else 'failed'}",
            {
                "gate": result.gate,
                "passed": result.passed,
                "reason": result.reason,
                "failed_rules": failed,
                "outcomes": [
                    {"rule": o.rule, "value": o.value, "passed": o.passed, "detail": o.detail}
                    for o in result.outcomes
                ],
                "subject": result.subject_uri,
                "dataset": result.dataset,
                "dataset_digest": result.dataset_digest,
                "evaluation_run_id": result.evaluation_run_id,
                "scorers": dict(result.scorers),
                "champion_version": result.champion_version,
                "pipeline_run_id": result.pipeline_run_id,
                "created_by": result.created_by,
                "created_at": result.created_at,
            },
        )
        if not self._first_visit(node_id):
            return node_id
        if result.evaluation_run_id:  # an evaluation gate: its run, then the run's dataset
            self._link(node_id, self._evaluation_run(result.evaluation_run_id), "evidence")
        elif result.dataset_version_id:
            self._link(node_id, self._dataset_by_id(result.dataset_version_id), "evaluated_on")
        return node_id

    def _approval(self, request: Any) -> str:
        node_id = f"approval_request:{request.id}"
        decisions = getattr(request, "decisions", ()) or ()
        # "traffic", "alias champion", "stage Production": what the request would change.
        same = request.action == request.target
        what = request.target if same else f"{request.action} {request.target}"
        self._add(
            node_id,
            "approval_request",
            f"{request.id} ({what} for version {request.version})",
            {
                "model": request.model,
                "version": request.version,
                "action": request.action,
                "target": request.target,
                "status": request.status,
                "requested_by": request.requested_by,
                "comment": request.comment,
                "created_at": request.created_at,
                "expires_at": request.expires_at,
                "resolved_at": request.resolved_at,
                "decisions": [
                    {"actor": d.actor, "decision": d.decision, "comment": d.comment}
                    for d in decisions
                ],
            },
        )
        return node_id

    # --- loop iterations -----------------------------------------------------------------------

    def _iteration(self, iteration: Iteration, loop: Loop) -> str:
        node_id = f"iteration:{iteration.id}"
        if not self._first_visit(node_id):
            return node_id
        if not self._add(
            node_id,
            "iteration",
            f"{loop.name} #{iteration.number}: {iteration.state}",
            {
                "loop": loop.name,
                "number": iteration.number,
                "state": iteration.state,
                "reason": iteration.reason,
                "deployment": loop.deployment,
                "pipeline": loop.pipeline,
                "canary_revision": iteration.canary_revision,
                "comparison": dict(iteration.comparison) if iteration.comparison else None,
                "waiting": waiting_text(iteration),
                "history": [list(step) for step in iteration.history],
                "created_at": iteration.created_at,
                "finished_at": iteration.finished_at,
            },
        ):
            return node_id
        self._link(node_id, self._trigger(iteration, loop), "triggered_by")
        if iteration.pipeline_run_id:
            self._link(node_id, self.pipeline_run(iteration.pipeline_run_id), "trained_by")
        if iteration.gate_result_id:
            self._link(
                node_id, self._gate_result(self.client.gates.get(iteration.gate_result_id)), "gate"
            )
        if iteration.approval_request_id:
            request = self.client.registry.get_request(iteration.approval_request_id)
            self._link(node_id, self._approval(request), "approval")
        return node_id

    def _trigger(self, iteration: Iteration, loop: Loop) -> str:
        """What started the iteration; for a scheduled one, the fire and the event it fired on
        (the alert of a drift, performance or alert trigger, the new dataset version)."""
        node_id = f"trigger:{iteration.id}"
        attrs: dict[str, Any] = {"trigger": iteration.trigger, "detail": iteration.trigger_detail}
        fire = self._fire_of(iteration, loop)
        if fire is not None:
            attrs |= {
                "schedule": fire.schedule,
                "event_key": fire.event_key,
                "due_at": fire.due_at,
                "fired_at": fire.fired_at,
            }
        if not self._add(node_id, "trigger", iteration.trigger, attrs) or fire is None:
            return node_id
        kind, _, spec = iteration.trigger.partition(":")
        if kind == "dataset":
            self._link(node_id, self._dataset_by_id(fire.event_key), "new_version")
        elif kind in ("drift", "performance", "alert"):
            try:
                alerts = self.client.monitoring.alerts(monitor=spec)
            except NotFound:  # the monitor was deleted since
                self.graph.notes.append(f"monitor {spec} of {iteration.trigger} is gone")
                alerts = []
            for alert in alerts:
                if alert.id == fire.event_key:
                    self._link(node_id, self._alert(alert), "alert")
        return node_id

    def _fire_of(self, iteration: Iteration, loop: Loop) -> Any:
        for schedule in self.client.schedules.list(target=loop.name):
            if schedule.target_kind != "loop":
                continue
            for fire in self.client.schedules.fires(schedule.name, limit=_FIRES):
                if fire.iteration_id == iteration.id:
                    return fire
        return None

    def _alert(self, alert: Any) -> str:
        node_id = f"alert:{alert.id}"
        self._add(
            node_id,
            "alert",
            f"{alert.monitor}: {alert.rule} ({alert.status})",
            {
                "monitor": alert.monitor,
                "rule": alert.rule,
                "status": alert.status,
                "value": alert.value,
                "threshold": alert.threshold,
                "message": alert.message,
                "opened_at": alert.opened_at,
                "resolved_at": alert.resolved_at,
            },
        )
        return node_id

    # --- runs and pipelines --------------------------------------------------------------------

    def run(self, run: Run, *, downstream: bool = False) -> str:
        """The run's node, or its step's node when the run is a pipeline step."""
        pipeline_run_id = run.tags.get(_PIPELINE_RUN_TAG)
        if pipeline_run_id is None and _STEP_TAG in run.tags and run.parent_run_id:
            parent = self.client.tracking.get_run(run.parent_run_id)
            pipeline_run_id = parent.tags.get(_PIPELINE_RUN_TAG)
        if pipeline_run_id and _STEP_TAG in run.tags:
            pipeline_node = self.pipeline_run(pipeline_run_id)
            step_node = self._step_of_run.get(run.id)
            if step_node is not None:  # else the walk was cut: a run node stands in
                self._link(step_node, pipeline_node, "part_of")
                if downstream:
                    self._registered(step_node, run.id)
                return step_node
        node_id = f"run:{run.id}"
        if not self._first_visit(node_id):
            return node_id
        if not self._add(node_id, "run", run.name or run.id, _run_attrs(run)):
            return node_id
        self._run_links(node_id, run)
        if pipeline_run_id:
            self._link(node_id, self.pipeline_run(pipeline_run_id), "part_of")
        if downstream:
            self._registered(node_id, run.id)
        return node_id

    def _run_links(self, node_id: str, run: Run) -> None:
        """The commit a run ran at and the dataset versions it read."""
        if run.git_commit:
            commit = f"commit:{run.git_commit}"
            self._add(
                commit,
                "commit",
                run.git_commit[:12],
                {
                    "commit": run.git_commit,
                    "branch": run.git_branch,
                    "dirty": run.git_dirty,
                    "entry_point": run.entry_point,
                },
            )
            self._link(node_id, commit, "code")
        for dataset_id in self._read_by(run.id):
            self._link(node_id, self._dataset_by_id(dataset_id), "used")

    def _registered(self, node_id: str, run_id: str) -> None:
        for version in self.client.registry.search_versions(f"run_id = '{run_id}'"):
            self._link(node_id, self.model_version(version), "registered")

    def pipeline_run(self, pipeline_run_id: str) -> str:
        node_id = f"pipeline_run:{pipeline_run_id}"
        if not self._first_visit(node_id):
            return node_id
        try:
            run = self.client.pipelines.get_run(pipeline_run_id)
        except InvalidInput:
            raise NotFound(f"pipeline run {pipeline_run_id!r} does not exist") from None
        if not self._add(
            node_id, "pipeline_run", f"{run.name} ({run.status})", _pipeline_attrs(run)
        ):
            return node_id
        if run.run_id:
            try:
                tracked = self.client.tracking.get_run(run.run_id)
            except NotFound:
                self.graph.notes.append(f"pipeline run {run.id}'s tracked run is gone")
            else:
                self._run_links(node_id, tracked)
        for step in run.steps:
            self._step(node_id, step)
        return node_id

    def _step(self, pipeline_node: str, step: StepRun) -> None:
        node_id = f"step:{step.id}"
        if not self._add(node_id, "step", f"{step.invocation} ({step.status})", _step_attrs(step)):
            return
        self._expanded.add(node_id)
        self._link(pipeline_node, node_id, "ran")
        if step.run_id is None:
            return
        self._step_of_run[step.run_id] = node_id
        try:
            run = self.client.tracking.get_run(step.run_id)
        except NotFound:
            return
        self._run_links(node_id, run)
        self._registered(node_id, run.id)

    # --- dataset versions ----------------------------------------------------------------------

    def _dataset_by_id(self, dataset_version_id: str) -> str:
        try:
            version = self.client.datasets.get_by_id(dataset_version_id)
        except NotFound:
            node_id = f"dataset_version:{dataset_version_id}"
            self._add(node_id, "dataset_version", dataset_version_id, {"deleted": True})
            return node_id
        return self.dataset_version(version)

    def dataset_version(self, version: Any, *, downstream: bool = False) -> str:
        node_id = f"dataset_version:{version.id}"
        if not self._first_visit(node_id):
            return node_id
        if not self._add(
            node_id,
            "dataset_version",
            version.ref,
            {
                "dataset": version.dataset,
                "number": version.number,
                "content_hash": version.content_hash,
                "files": version.file_count,
                "size": version.total_size,
                "source": version.source,
                "message": version.message,
                "aliases": list(version.aliases),
                "created_by": version.created_by,
                "created_at": version.created_at,
            },
        ):
            return node_id
        if version.parent_id:
            self._link(node_id, self._dataset_by_id(version.parent_id), "derived_from")
        if version.produced_by_run_id:
            try:
                run = self.client.tracking.get_run(version.produced_by_run_id)
            except NotFound:
                self.graph.notes.append(f"{version.ref}'s producing run is gone")
            else:
                self._link(node_id, self.run(run), "produced_by")
        if downstream:
            for run_id in self.client.datasets.runs_using(version):
                try:
                    run = self.client.tracking.get_run(run_id)
                except NotFound:
                    continue
                self._link(node_id, self.run(run, downstream=True), "used_by")
        return node_id

    def _read_by(self, run_id: str) -> list[str]:
        """The dataset versions ``run_id`` declared as inputs. The data service answers by
        version (``runs_using``), so the first call scans the versions once."""
        if self._reads is None:
            self._reads = {}
            for scanned, version in enumerate(self._all_versions(), 1):
                if scanned > _SCANNED_VERSIONS:
                    self.graph.notes.append(
                        f"only the first {_SCANNED_VERSIONS} dataset versions were searched for "
                        "the runs that read them"
                    )
                    break
                for user in self.client.datasets.runs_using(version):
                    self._reads.setdefault(user, []).append(version.id)
        return self._reads.get(run_id, [])

    def _all_versions(self) -> Iterator[Any]:
        for dataset in self.client.datasets.list_datasets():
            if dataset.version_count:
                yield from self.client.datasets.versions(dataset.name)


# --- attributes ----------------------------------------------------------------------------------


def _run_attrs(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "name": run.name,
        "status": str(run.status.value),
        "experiment_id": run.experiment_id,
        "user": run.user,
        "entry_point": run.entry_point,
        "parent_run_id": run.parent_run_id,
        "step": run.tags.get(_STEP_TAG),
        "start_time": run.start_time,
        "end_time": run.end_time,
    }


def _pipeline_attrs(run: PipelineRun) -> dict[str, Any]:
    return {
        "pipeline_run_id": run.id,
        "pipeline": run.pipeline,
        "name": run.name,
        "status": run.status,
        "run_id": run.run_id,
        "params": dict(run.params),
        "executor": run.executor,
        "resumed_from": run.resumed_from,
        "error": run.error,
        "result": run.result.to_dict() if run.result else None,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def _step_attrs(step: StepRun) -> dict[str, Any]:
    return {
        "step_run_id": step.id,
        "invocation": step.invocation,
        "step": step.step,
        "status": step.status,
        "run_id": step.run_id,
        "cached_from": step.cached_from,
        "cache_reason": step.cache_reason,
        "attempts": step.attempts,
        "duration_ms": step.duration_ms,
        "outputs": [ref.to_dict() for ref in step.outputs],
        "error": step.error,
    }


def _int(value: Any) -> int | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else int(value)


def _float(value: Any) -> float | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else float(value)
