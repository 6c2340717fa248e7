"""Lineage end to end: from a prediction, a run, a model version or a dataset version to what
made it (``loopwright lineage SUBJECT``).

:func:`lineage` walks the records through client calls only, so it answers the same on the
embedded store and through a server. From the subject it follows provenance: a prediction's log
row to its deployment and model version; a model version to the loop iteration that produced it
(and that iteration's trigger), its source run, its gate results and approval requests; a run to
its pipeline run and the pipeline's steps, the git commit it ran at and the dataset versions it
read; a dataset version to its parent versions and the run that produced it. From a subject
that is a dataset version or a run it also follows one step downstream: the runs that read the
dataset, the model versions the run registered.

Example:
    >>> import loopwright as lw
    >>> from loopwright.loop.lineage import lineage
    >>> client = lw.connect(home="lw-doc-lineage")
    >>> with client.start_run(experiment="demo") as run:
    ...     pass
    >>> graph = lineage(client, run.id)
    >>> graph.nodes[0].kind
    'run'
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidInput, LimitExceeded, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from ..client import Client
    from ..loop.entities import Iteration, Loop
    from ..pipelines.entities import PipelineRun, StepRun
    from ..registry.entities import ModelVersion
    from ..tracking.entities import Run

__all__ = ["KINDS", "Edge", "LineageGraph", "Node", "SubjectKind", "lineage"]

SubjectKind = Literal["prediction", "run", "pipeline_run", "model_version", "dataset_version"]
KINDS: tuple[str, ...] = ("prediction", "run", "pipeline_run", "model_version", "dataset_version")

# A walk stops adding nodes past this many (a dataset read by thousands of runs) and says so.
MAX_NODES = 500
# Iterations of one loop searched for the one that produced a model version.
_ITERATIONS = 1000
# Dataset versions scanned to find what a run read (the data service answers by version).
_SCANNED_VERSIONS = 2000
_LOG_COLUMNS = (
    "request_id",
    "row",
    "timestamp",
    "deployment",
    "variant",
    "model",
    "model_version",
    "latency_ms",
    "status",
)
_PIPELINE_RUN_TAG = "loopwright.pipeline_run"
_STEP_TAG = "loopwright.step"
_HEX_ID = re.compile(r"[0-9a-f]{32}")
_VERSION = re.compile(r"v?(\d+)")


@dataclass(frozen=True)
class Node:
    """One record in the graph. ``id`` is ``<kind>:<key>`` (``model_version:churn/3``);
    ``attrs`` holds its fields as JSON values (times in UTC milliseconds)."""

    id: str
    kind: str
    label: str
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "label": self.label, "attrs": dict(self.attrs)}


@dataclass(frozen=True)
class Edge:
    """``src`` relates to ``dst`` as ``relation`` says, read from ``src``: a model version
    ``produced_by`` an iteration, a dataset version ``used_by`` a run."""

    src: str
    dst: str
    relation: str

    def to_dict(self) -> dict[str, str]:
        return {"src": self.src, "dst": self.dst, "relation": self.relation}


@dataclass
class LineageGraph:
    """The records reached from ``root`` (the subject's node), in the order they were found.

    ``notes`` say what could not be followed and why (a walk cut at :data:`MAX_NODES`, a
    dataset scan cut short), so a missing link is never silent.
    """

    subject: str
    root: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def out(self, node_id: str) -> list[tuple[Edge, Node]]:
        """The edges leaving ``node_id`` with the nodes they reach, in order."""
        nodes = {node.id: node for node in self.nodes}
        return [(edge, nodes[edge.dst]) for edge in self.edges if edge.src == node_id]

    def of_kind(self, kind: str) -> list[Node]:
        return [node for node in self.nodes if node.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "root": self.root,
            "nodes": [node.to_dict() for node in self.nodes],
            "edges": [edge.to_dict() for edge in self.edges],
            "notes": list(self.notes),
        }


def lineage(
    client: Client,
    subject: str,
    *,
    kind: SubjectKind | None = None,
    since: datetime | timedelta = timedelta(days=7),
    deployment: str | None = None,
) -> LineageGraph:
    """The lineage graph of ``subject``.

    The subject's kind is read from its form, then confirmed by a lookup (``kind`` forces it):

    - ``models:/NAME/3``, ``models:/NAME@ALIAS``, ``NAME@3``: a model version;
    - ``NAME@v3``: a dataset version, else a model version (``NAME@ALIAS``: a model alias,
      else a dataset alias); the dataset's own spelling wins when both exist;
    - 32 hex digits: a run, else a pipeline run, else a prediction's request id;
    - anything else: a prediction's request id.

    A prediction is searched in the prediction log from ``since`` (a time, or a span before
    now; default 7 days) to now, newest day first, in ``deployment`` or every logged
    deployment. ``NotFound`` names what was tried.
    """
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"lineage kind {kind!r} is not one of {', '.join(KINDS)}")
    subject = subject.strip()
    if not subject:
        raise InvalidInput("lineage needs a subject: a request id, run id, NAME@3 or DATASET@v3")
    walk = _Walk(client, subject)
    root = walk.start(subject, kind, _moment(since), deployment)
    walk.graph.root = root
    return walk.graph


def _moment(since: datetime | timedelta) -> datetime:
    if isinstance(since, timedelta):
        return datetime.now(UTC) - since
    return since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)


class _Walk:
    """One walk: the graph being built and what each lookup already answered."""

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

    # --- the subject -------------------------------------------------------------------------

    def start(self, subject: str, kind: str | None, since: datetime, deployment: str | None) -> str:
        if kind == "prediction":
            return self._prediction(subject, since, deployment)
        if kind == "run":
            return self._run(self._get_run(subject), downstream=True)
        if kind == "pipeline_run":
            return self._pipeline_run(subject)
        if kind == "model_version":
            version = self._find_model_version(subject, strict=True)
            assert version is not None  # strict: raised otherwise
            return self._model_version(version)
        if kind == "dataset_version":
            return self._dataset_version(self._find_dataset(subject, strict=True), downstream=True)
        if subject.startswith("models:/") or "@" in subject:
            return self._by_ref(subject)
        if _HEX_ID.fullmatch(subject):
            try:
                return self._run(self._get_run(subject), downstream=True)
            except NotFound:
                pass
            try:
                return self._pipeline_run(subject)
            except NotFound:
                pass
        try:
            return self._prediction(subject, since, deployment)
        except NotFound as exc:
            if not _HEX_ID.fullmatch(subject):
                raise
            raise NotFound(
                f"{subject!r} is no run id, pipeline run id or logged request id; {exc.message}"
            ) from None

    def _by_ref(self, subject: str) -> str:
        name, _, ref = subject.rpartition("@")
        dataset_first = not subject.startswith("models:/") and bool(re.fullmatch(r"v\d+", ref))
        if dataset_first:
            found = self._find_dataset(subject, strict=False)
            if found is not None:
                return self._dataset_version(found, downstream=True)
        version = self._find_model_version(subject, strict=False)
        if version is not None:
            return self._model_version(version)
        if not dataset_first and not subject.startswith("models:/"):
            found = self._find_dataset(subject, strict=False)
            if found is not None:
                return self._dataset_version(found, downstream=True)
        raise NotFound(
            f"{subject!r} names no model version and no dataset version; write NAME@3 or "
            f"models:/NAME/3 for a model version, DATASET@v3 for a dataset version (name "
            f"{name!r}, version or alias {ref!r})"
        )

    # --- lookups -------------------------------------------------------------------------------

    def _get_run(self, run_id: str) -> Run:
        try:
            return self.client.tracking.get_run(run_id)
        except InvalidInput:
            raise NotFound(f"run {run_id!r} does not exist") from None

    def _find_model_version(self, subject: str, *, strict: bool) -> ModelVersion | None:
        text = subject.removeprefix("models:/")
        if "@" in text:
            name, _, ref = text.rpartition("@")
        else:
            name, _, ref = text.rpartition("/")
        if not name or not ref:
            if strict:
                raise InvalidInput(
                    f"{subject!r} is not a model version; write NAME@3, models:/NAME/3 or "
                    "models:/NAME@ALIAS"
                )
            return None
        number = _VERSION.fullmatch(ref)
        try:
            return self.client.registry.resolve(name, int(number[1]) if number else ref)
        except (NotFound, InvalidInput):
            if strict:
                raise
            return None

    def _find_dataset(self, subject: str, *, strict: bool) -> Any:
        name, _, ref = subject.rpartition("@")
        candidates = [subject]
        if ref.isdigit():
            candidates.append(f"{name}@v{ref}")
        for candidate in candidates:
            try:
                return self.client.datasets.get(candidate)
            except (NotFound, InvalidInput):
                continue
        if strict:
            raise NotFound(f"dataset version {subject!r} does not exist; write DATASET@v3")
        return None

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
        node = Node(node_id, kind, label, _json(attrs))
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

    def _prediction(self, request_id: str, since: datetime, deployment: str | None) -> str:
        rows, searched = self._find_request(request_id, since, deployment)
        if rows is None:
            where = f"deployment {deployment!r}" if deployment else f"{searched} deployment(s)"
            raise NotFound(
                f"no prediction with request id {request_id!r} in the prediction log of {where} "
                f"since {since:%Y-%m-%d %H:%M} UTC; widen --since or name --deployment"
            )
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
                self._link(node_id, self._model_version(found), "predicted_by")
        return node_id

    def _find_request(
        self, request_id: str, since: datetime, deployment: str | None
    ) -> tuple[pd.DataFrame | None, int]:
        logged = self.client.prediction_log.deployments()
        names = [
            d.name
            for d in logged
            if (deployment is None or d.name == deployment) and (d.last is None or d.last >= since)
        ]
        if deployment is not None and deployment not in {d.name for d in logged}:
            raise NotFound(f"deployment {deployment!r} has nothing in the prediction log")
        for low, high in _days(since, datetime.now(UTC)):
            for name in names:
                frame = self._read(name, low, high)
                hit = frame[frame["request_id"] == request_id]
                if len(hit):
                    return hit.sort_values("row"), len(names)
        return None, len(names)

    def _read(self, deployment: str, low: datetime, high: datetime | None) -> pd.DataFrame:
        """The log's fixed columns in ``[low, high)``; halved while a server says it is too
        much for one read (down to an hour)."""
        try:
            return self.client.prediction_log.read(
                deployment, since=low, until=high, columns=list(_LOG_COLUMNS)
            )
        except LimitExceeded:
            end = high or datetime.now(UTC) + timedelta(minutes=1)
            if end - low <= timedelta(hours=1):
                raise
            middle = low + (end - low) / 2
            import pandas as pd

            return pd.concat(
                [self._read(deployment, low, middle), self._read(deployment, middle, high)]
            )

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

    def _model_version(self, version: ModelVersion) -> str:
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
                self._link(node_id, self._run(run), "trained_in")
        for dataset_id in version.dataset_version_ids:
            self._link(node_id, self._dataset_by_id(dataset_id), "trained_on")
        for result in self.client.gates.results(model=version.model, version=version.version):
            self._link(node_id, self._gate_result(result), "gated_by")
        for request in self.client.registry.requests(status=None, model=version.model):
            if request.version == version.version:
                self._link(node_id, self._approval(request), "approval")
        # Feature views (issue 15) attach here and at runs, once the feature store records
        # which views a training run read.
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
                "dataset": result.dataset,
                "champion_version": result.champion_version,
                "pipeline_run_id": result.pipeline_run_id,
                "created_by": result.created_by,
                "created_at": result.created_at,
            },
        )
        if self._first_visit(node_id) and result.dataset_version_id:
            self._link(node_id, self._dataset_by_id(result.dataset_version_id), "evaluated_on")
        return node_id

    def _approval(self, request: Any) -> str:
        node_id = f"approval_request:{request.id}"
        decisions = getattr(request, "decisions", ()) or ()
        self._add(
            node_id,
            "approval_request",
            f"{request.action} {request.target}: {request.status}",
            {
                "action": request.action,
                "target": request.target,
                "status": request.status,
                "requested_by": request.requested_by,
                "comment": request.comment,
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
                "history": [list(step) for step in iteration.history],
                "created_at": iteration.created_at,
                "finished_at": iteration.finished_at,
            },
        ):
            return node_id
        trigger = f"trigger:{iteration.id}"
        self._add(
            trigger,
            "trigger",
            iteration.trigger,
            {"trigger": iteration.trigger, "detail": iteration.trigger_detail},
        )
        self._link(node_id, trigger, "triggered_by")
        if iteration.pipeline_run_id:
            self._link(node_id, self._pipeline_run(iteration.pipeline_run_id), "trained_by")
        if iteration.gate_result_id:
            self._link(
                node_id, self._gate_result(self.client.gates.get(iteration.gate_result_id)), "gate"
            )
        if iteration.approval_request_id:
            request = self.client.registry.get_request(iteration.approval_request_id)
            self._link(node_id, self._approval(request), "approval")
        return node_id

    # --- runs and pipelines --------------------------------------------------------------------

    def _run(self, run: Run, *, downstream: bool = False) -> str:
        """The run's node, or its step's node when the run is a pipeline step."""
        pipeline_run_id = run.tags.get(_PIPELINE_RUN_TAG)
        if pipeline_run_id is None and _STEP_TAG in run.tags and run.parent_run_id:
            parent = self.client.tracking.get_run(run.parent_run_id)
            pipeline_run_id = parent.tags.get(_PIPELINE_RUN_TAG)
        if pipeline_run_id and _STEP_TAG in run.tags:
            pipeline_node = self._pipeline_run(pipeline_run_id)
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
            self._link(node_id, self._pipeline_run(pipeline_run_id), "part_of")
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
            self._link(node_id, self._model_version(version), "registered")

    def _pipeline_run(self, pipeline_run_id: str) -> str:
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
        return self._dataset_version(version)

    def _dataset_version(self, version: Any, *, downstream: bool = False) -> str:
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
                self._link(node_id, self._run(run), "produced_by")
        if downstream:
            for run_id in self.client.datasets.runs_using(version):
                try:
                    run = self.client.tracking.get_run(run_id)
                except NotFound:
                    continue
                self._link(node_id, self._run(run, downstream=True), "used_by")
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


def _days(since: datetime, now: datetime) -> Iterator[tuple[datetime, datetime | None]]:
    """``[since, now]`` in one-day windows, newest first (the newest open-ended)."""
    high: datetime | None = None
    low = now - timedelta(days=1)
    while True:
        yield max(low, since), high
        if low <= since:
            return
        high, low = low, low - timedelta(days=1)


def _int(value: Any) -> int | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else int(value)


def _float(value: Any) -> float | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else float(value)


def _json(value: Any) -> Any:
    """Attributes as plain JSON values (tuples as lists, datetimes as ISO text)."""
    if isinstance(value, Mapping):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
