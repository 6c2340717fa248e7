"""``RemoteGates``: gate results over the server's ``/api/v1/gates`` (the ``Gates`` protocol).

A gate is evaluated where it is called (``loop/gates.py`` reads the model and the holdout through
the client); only its result travels, and the server records it in one transaction.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import InvalidInput
from ..loop.entities import GateResult, RuleOutcome
from ._http import Http

if TYPE_CHECKING:
    from ..loop.entities import GateSpec

__all__ = ["RemoteGates", "gate_result"]

Json = dict[str, Any]


def gate_result(data: Json) -> GateResult:
    return GateResult(
        id=data["id"],
        gate=data["gate"],
        model=data["model"],
        version=int(data["version"]),
        dataset_version_id=data["dataset_version_id"],
        dataset=data["dataset"],
        champion_version=data["champion_version"],
        passed=bool(data["passed"]),
        outcomes=tuple(
            RuleOutcome(
                o["rule"],
                None if o["value"] is None else float(o["value"]),
                o["passed"],
                o["detail"],
            )
            for o in data["outcomes"]
        ),
        reason=data["reason"],
        spec=data["spec"],
        pipeline_run_id=data["pipeline_run_id"],
        created_by=data["created_by"],
        created_at=int(data["created_at"]),
        subject=data.get("subject", "model"),
        evaluation_run_id=data.get("evaluation_run_id"),
        dataset_digest=data.get("dataset_digest"),
        scorers=data.get("scorers") or {},
    )


class RemoteGates:
    """Gate results on a Loopwright server (recording needs an editor token; reading, a viewer)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def record(
        self,
        spec: GateSpec,
        *,
        model: str,
        version: int,
        dataset_version_id: str,
        outcomes: Sequence[RuleOutcome],
        champion_version: int | None = None,
        pipeline_run_id: str | None = None,
    ) -> GateResult:
        """Store a result and tag the model version with its verdict; audited."""
        body = {
            "spec": spec.to_dict(),
            "model": model,
            "version": version,
            "dataset_version_id": dataset_version_id,
            "outcomes": [_outcome(o) for o in outcomes],
            "champion_version": champion_version,
            "pipeline_run_id": pipeline_run_id,
        }
        return gate_result(self._http.post("/gates/results", body))

    def get(self, result_id: str) -> GateResult:
        """One result."""
        if not isinstance(result_id, str) or not result_id:
            raise InvalidInput(f"gate result id {result_id!r} must be a non-empty id")
        return gate_result(self._http.get(f"/gates/results/{quote(result_id, safe='')}"))

    def check_evaluation(
        self,
        spec: GateSpec | dict[str, Any],
        subject: str,
        evaluation_run_id: str,
        *,
        pipeline_run_id: str | None = None,
    ) -> GateResult:
        """Have the server check an evaluation gate on ``subject`` with a recorded evaluation
        run and record the result (the outcomes are computed there, not sent)."""
        from ..loop.evaluation_gates import spec_of

        body = {
            "spec": spec_of(spec).to_dict(),
            "subject": subject,
            "evaluation_run_id": evaluation_run_id,
            "pipeline_run_id": pipeline_run_id,
        }
        return gate_result(self._http.post("/gates/evaluations", body))

    def results(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        limit: int = 50,
        prompt: str | None = None,
    ) -> builtins.list[GateResult]:
        """Results, newest first, optionally of one model or prompt (and version)."""
        found = self._http.get(
            "/gates/results", model=model, version=version, limit=limit, prompt=prompt
        )
        return [gate_result(r) for r in found]


def _outcome(o: RuleOutcome) -> Json:
    if not isinstance(o, RuleOutcome):
        raise InvalidInput(f"outcomes must be RuleOutcome values, not {type(o).__name__}")
    value = o.value
    if value is not None and not math.isfinite(value) and not o.passed:
        value = None  # as the embedded store keeps it: JSON holds no NaN
    return {"rule": o.rule, "value": value, "passed": o.passed, "detail": o.detail}
