"""``RemoteLoops``: loops and their iterations over the server's ``/api/v1/loops`` (the ``Loops``
protocol). Transitions are compare-and-set in the server's database, as embedded, so drivers on
different machines never make one move twice. A gate spec given as a file is read here, where
the file is, and sent as a mapping."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidInput
from ..loop.entities import GateRule, GateSpec, Iteration, Loop, Trigger
from ._http import Http

if TYPE_CHECKING:
    from ..loop.entities import IterationState

__all__ = ["RemoteLoops", "iteration", "loop"]

Json = dict[str, Any]


def loop(data: Json) -> Loop:
    gates = data["gates"]
    return Loop(
        id=data["id"],
        name=data["name"],
        deployment=data["deployment"],
        model=data["model"],
        pipeline=data["pipeline"],
        params=dict(data["params"]),
        gates=None if gates is None else _gate_spec(gates),
        triggers=tuple(Trigger(t["kind"], t["spec"], t["text"]) for t in data["triggers"]),
        canary_percent=float(data["canary_percent"]),
        canary_window_ms=data["canary_window_ms"],
        metric=data["metric"],
        margin=float(data["margin"]),
        min_samples=data["min_samples"],
        max_error_rate=float(data["max_error_rate"]),
        max_compare_ms=data["max_compare_ms"],
        require_approval=data["require_approval"],
        status=data["status"],
        cwd=data["cwd"],
        description=data["description"],
        created_by=data["created_by"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
    )


def _gate_spec(data: Json) -> GateSpec:
    return GateSpec(
        name=data["name"],
        dataset=data["dataset"],
        target=data["target"],
        rules=tuple(
            GateRule(r["namespace"], r["name"], r["op"], float(r["threshold"]), r["text"])
            for r in data["rules"]
        ),
        sensitive=tuple(data["sensitive"]),
        champion=data["champion"],
        task=data["task"],
        latency_rows=data["latency_rows"],
    )


def iteration(data: Json) -> Iteration:
    return Iteration(
        id=data["id"],
        loop=data["loop"],
        number=data["number"],
        state=data["state"],
        trigger=data["trigger"],
        trigger_detail=data["trigger_detail"],
        pipeline_run_id=data["pipeline_run_id"],
        model_version=data["model_version"],
        gate_result_id=data["gate_result_id"],
        approval_request_id=data["approval_request_id"],
        canary_revision=data["canary_revision"],
        canary_started_at=data["canary_started_at"],
        comparison=data["comparison"],
        reason=data["reason"],
        lease_owner=data["lease_owner"],
        lease_until=data["lease_until"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        finished_at=data["finished_at"],
        history=tuple((state, at) for state, at in data["history"]),
    )


def _path(name: str) -> str:
    from ..loop.service import _check_name

    return f"/loops/{quote(_check_name(name), safe='')}"  # refused here, as embedded


def _iteration_path(iteration_id: str) -> str:
    if not isinstance(iteration_id, str) or not iteration_id.isalnum() or len(iteration_id) > 32:
        raise InvalidInput(
            f"iteration id {str(iteration_id)[:40]!r} is not an iteration id (32 hex digits)"
        )
    return f"/loops/-/iterations/{iteration_id}"


def _ms(what: str, value: object) -> int:
    if not isinstance(value, timedelta):
        raise InvalidInput(f"{what} {value!r} must be a timedelta (e.g. timedelta(hours=1))")
    return int(value.total_seconds() * 1000)


class RemoteLoops:
    """Loops on a Loopwright server (changes and driving need an editor token; reading, a
    viewer)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def create(
        self,
        name: str,
        *,
        deployment: str,
        pipeline: str,
        triggers: Sequence[str] = ("manual",),
        gates: GateSpec | Mapping[str, Any] | str | Path | None = None,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        canary_percent: float = 10.0,
        canary_window: timedelta = timedelta(hours=1),
        metric: str | None = None,
        margin: float = 0.01,
        min_samples: int = 100,
        max_error_rate: float = 0.05,
        max_compare: timedelta = timedelta(hours=24),
        require_approval: bool = True,
        cwd: str | None = None,
        description: str | None = None,
    ) -> Loop:
        """A new active loop (see the embedded ``LoopService.create``)."""
        from ..loop.service import _check_name

        _check_name(name)
        if isinstance(triggers, str):
            raise InvalidInput(f"triggers {triggers!r} must be a list of trigger texts")
        if gates is not None and not isinstance(gates, GateSpec):
            from ..loop.gates import load_gate_spec

            gates = load_gate_spec(gates)  # a file is read here, where it is
        body = {
            "name": name,
            "deployment": deployment,
            "pipeline": pipeline,
            "triggers": list(triggers),
            "gates": None if gates is None else gates.to_dict(),
            "model": model,
            "params": {} if params is None else dict(params),
            "canary_percent": canary_percent,
            "canary_window_ms": _ms("canary_window", canary_window),
            "metric": metric,
            "margin": margin,
            "min_samples": min_samples,
            "max_error_rate": max_error_rate,
            "max_compare_ms": _ms("max_compare", max_compare),
            "require_approval": require_approval,
            "cwd": cwd,
            "description": description,
        }
        return loop(self._http.post("/loops", body))

    def get(self, name: str) -> Loop:
        return loop(self._http.get(_path(name)))

    def list(self) -> builtins.list[Loop]:
        """Every loop, by name."""
        return [loop(item) for item in self._http.get("/loops")]

    def pause(self, name: str) -> Loop:
        return loop(self._http.post(f"{_path(name)}/pause"))

    def resume(self, name: str) -> Loop:
        return loop(self._http.post(f"{_path(name)}/resume"))

    def delete(self, name: str) -> None:
        self._http.request("DELETE", _path(name))

    def start_iteration(
        self, name: str, *, trigger: str = "manual", detail: str | None = None
    ) -> Iteration:
        body = {"trigger": trigger, "detail": detail}
        return iteration(self._http.post(f"{_path(name)}/iterations", body))

    def get_iteration(self, iteration_id: str) -> Iteration:
        return iteration(self._http.get(_iteration_path(iteration_id)))

    def iterations(
        self, name: str | None = None, *, active: bool | None = None, limit: int = 50
    ) -> builtins.list[Iteration]:
        """Iterations (of one loop), newest first."""
        if name is not None:
            _path(name)
        found = self._http.get("/loops/-/iterations", loop=name, active=active, limit=limit)
        return [iteration(item) for item in found]

    def transition(
        self,
        iteration_id: str,
        *,
        expect: IterationState,
        to: IterationState,
        reason: str | None = None,
        **fields: Any,
    ) -> Iteration:
        body = {"expect": expect, "to": to, "reason": reason, "fields": fields}
        return iteration(self._http.post(f"{_iteration_path(iteration_id)}/transition", body))

    def update(self, iteration_id: str, *, expect: IterationState, **fields: Any) -> Iteration:
        body = {"expect": expect, "fields": fields}
        return iteration(self._http.post(f"{_iteration_path(iteration_id)}/update", body))

    def lease(self, iteration_id: str, *, owner: str, ttl: timedelta) -> Iteration | None:
        body = {"owner": owner, "ttl_ms": _ms("ttl", ttl)}
        answer = self._http.post(f"{_iteration_path(iteration_id)}/lease", body)
        return None if answer["iteration"] is None else iteration(answer["iteration"])
