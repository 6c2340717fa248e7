"""The lineage walk's LLM records: a trace, the prompt version it used, the evaluation run that
cleared that version, the gateway route that served it (a mixin of :class:`._lineage_walk.Walk`).

From a production trace the walk reaches: the prompt version its request rendered
(``rendered_with``) and the gateway route (``served_by``), deployment, model version and run it
links; from the prompt version, its gate results (``gated_by``) and approval requests
(``approval``, with each decision and the gate result that let the request open:
``cleared_by``); from an evaluation gate's result, its evaluation run (``evidence``) and from the
run the evaluation dataset version with its content hash (``evaluated_on``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ..client import Client
    from ..prompts.entities import PromptVersion
    from ..tracing.entities import Trace
    from ._lineage_graph import LineageGraph

__all__ = ["LLMWalk"]


class LLMWalk:
    """Node builders for traces, prompt versions, evaluation runs and gateway routes."""

    client: Client
    graph: LineageGraph

    if TYPE_CHECKING:  # the walk's own building blocks (Walk)

        def _add(self, node_id: str, kind: str, label: str, attrs: Mapping[str, Any]) -> bool: ...

        def _link(self, src: str, dst: str, relation: str) -> None: ...

        def _first_visit(self, node_id: str) -> bool: ...

        def _dataset_by_id(self, dataset_version_id: str) -> str: ...

        def _gate_result(self, result: Any) -> str: ...

        def _approval(self, request: Any) -> str: ...

        def model_version(self, version: Any) -> str: ...

        def run(self, run: Any, *, downstream: bool = False) -> str: ...

    def trace(self, trace: Trace) -> str:
        node_id = f"trace:{trace.trace_id}"
        if not self._first_visit(node_id):
            return node_id
        links = trace.links
        usage = trace.token_usage
        attrs = {
            "trace_id": trace.trace_id,
            "state": trace.state,
            "request_time": trace.request_time,
            "duration_ms": trace.duration_ms,
            "experiment_id": trace.experiment_id,
            "input_tokens": None if usage is None else usage.input_tokens,
            "output_tokens": None if usage is None else usage.output_tokens,
            "cost_usd": trace.cost_usd,
            "request_preview": trace.request_preview[:200],
            "prompt_versions": list(links.prompt_versions),
            "gateway_route": links.gateway_route,
            "deployment": links.deployment,
            "model_version": links.model_version,
            "run_id": links.run_id,
            "tags": dict(trace.tags),
        }
        if not self._add(node_id, "trace", f"{trace.trace_id[:12]} ({trace.state})", attrs):
            return node_id
        for ref in links.prompt_versions:
            self._link(node_id, self._prompt_ref(ref), "rendered_with")
        if links.gateway_route:
            self._link(node_id, self._gateway_route(links.gateway_route), "served_by")
        if links.deployment:
            self._link(node_id, self._deployment_name(links.deployment), "deployed_as")
        if links.model_version:
            name, _, number = links.model_version.rpartition("/")
            try:
                found = self.client.registry.get_version(name, int(number))
            except (NotFound, InvalidInput, ValueError):
                self.graph.notes.append(
                    f"trace {trace.trace_id} links model version {links.model_version}, which "
                    "the registry does not have"
                )
            else:
                self._link(node_id, self.model_version(found), "answered_by")
        if links.run_id:
            try:
                self._link(node_id, self.run(self.client.tracking.get_run(links.run_id)), "run")
            except (NotFound, InvalidInput):
                self.graph.notes.append(f"trace {trace.trace_id}'s run {links.run_id} is gone")
        return node_id

    def _prompt_ref(self, ref: str) -> str:
        """A ``name/N`` a trace links, as a prompt version node."""
        name, _, number = ref.rpartition("/")
        try:
            version = self.client.prompts.get_version(name, int(number))
        except (NotFound, InvalidInput, ValueError):
            node_id = f"prompt_version:{ref}"
            self._add(node_id, "prompt_version", ref, {"deleted": True})
            self.graph.notes.append(f"prompt version {ref} is gone (deleted since)")
            return node_id
        return self.prompt_version(version)

    def prompt_version(self, version: PromptVersion) -> str:
        ref = f"{version.name}/{version.version}"
        node_id = f"prompt_version:{ref}"
        if not self._first_visit(node_id):
            return node_id
        attrs = {
            "prompt": version.name,
            "version": version.version,
            "uri": version.uri,
            "digest": version.digest,
            "kind": version.kind,
            "variables": list(version.variables),
            "aliases": list(version.aliases),
            "commit_message": version.commit_message,
            "tags": dict(version.tags),
            "created_by": version.created_by,
            "created_at": version.created_at,
        }
        if not self._add(node_id, "prompt_version", version.uri, attrs):
            return node_id
        results = self.client.gates.results(prompt=version.name, version=version.version)
        for result in results:
            self._link(node_id, self._gate_result(result), "gated_by")
        for request in self.client.prompts.requests(status=None, prompt=version.name):
            if request.version != version.version:
                continue
            request_node = self._approval(request)
            self._link(node_id, request_node, "approval")
            cleared = _clearing_result(request, results)
            if cleared is not None:
                self._link(request_node, self._gate_result(cleared), "cleared_by")
        return node_id

    def _evaluation_run(self, run_id: str) -> str:
        node_id = f"evaluation_run:{run_id}"
        if not self._first_visit(node_id):
            return node_id
        try:
            found = self.client.evaluation.get_evaluation(run_id)
        except NotFound:
            self._add(node_id, "evaluation_run", run_id, {"deleted": True})
            return node_id
        attrs = {
            "run_id": found.run_id,
            "name": found.name,
            "target": found.target,
            "dataset_version_id": found.dataset_version_id,
            "dataset_digest": found.dataset_digest,
            "scorers": dict(found.scorers),
            "aggregates": dict(found.aggregates),
            "rows": found.rows,
            "failed_rows": found.failed_rows,
            "created_by": found.created_by,
            "created_at": found.created_at,
        }
        if self._add(node_id, "evaluation_run", found.name, attrs) and found.dataset_version_id:
            self._link(node_id, self._dataset_by_id(found.dataset_version_id), "evaluated_on")
        return node_id

    def _gateway_route(self, name: str) -> str:
        node_id = f"gateway_route:{name}"
        if not self._first_visit(node_id):
            return node_id
        try:
            route = self.client.gateway.get_route(name)
        except NotFound:
            self._add(node_id, "gateway_route", name, {"deleted": True})
            return node_id
        targets = [
            {"name": t.name, "model": t.model, "weight": t.weight, "prompt": t.prompt}
            for t in route.config.targets
        ]
        attrs = {
            "strategy": route.config.strategy,
            "revision": route.revision,
            "targets": targets,
            "updated_by": route.updated_by,
            "updated_at": route.updated_at,
        }
        self._add(node_id, "gateway_route", name, attrs)
        return node_id

    def _deployment_name(self, name: str) -> str:
        node_id = f"deployment:{name}"
        try:
            current = self.client.deployments.get(name)
        except NotFound:
            self._add(node_id, "deployment", name, {"deleted": True})
        else:
            attrs = {"strategy": current.strategy, "revision": current.revision}
            self._add(node_id, "deployment", name, attrs)
        return node_id


def _clearing_result(request: Any, results: list[Any]) -> Any:
    """The gate result that let a prompt request open: the newest result of the rule's gate
    recorded before it (results come newest first), which had to have passed."""
    gate = getattr(request.rule, "gate", None)
    if gate is None:
        return None
    for result in results:
        if result.gate == gate and result.created_at <= request.created_at:
            return result if result.passed else None
    return None
