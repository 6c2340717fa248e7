"""Server JSON back into the domain entities, so remote calls return the same objects as local
ones (``Run``, ``ModelVersion``, ``ApprovalRequest`` …).

The server's response models mirror the entities field for field; only nested entities, enums,
tuples and non-finite floats (sent as ``"NaN"``/``"Infinity"``) need converting. The functions
take ownership of the decoded dict they are given.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from ..data.entities import Dataset, DatasetVersion, FileEntry
from ..registry.entities import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalRule,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from ..store.audit import AuditEvent, ChainReport
from ..tracking.entities import Artifact, Experiment, Metric, Run, RunStatus

if TYPE_CHECKING:
    from ..data.validation import ValidationResult

__all__ = [
    "approval_request",
    "artifact",
    "audit_event",
    "chain_report",
    "dataset",
    "dataset_version",
    "experiment",
    "file_entry",
    "metric",
    "model_version",
    "registered_model",
    "run",
    "validation_result",
]

Json = dict[str, Any]
T = TypeVar("T")


def _known(cls: type[T], data: Json, **overrides: Any) -> T:
    """``cls`` from the fields it has (a newer server may send more), with ``overrides``."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names}, **overrides)


def _float(value: Any) -> float:
    return float(value)  # "NaN", "Infinity" and "-Infinity" parse as well as numbers


def experiment(data: Json) -> Experiment:
    return _known(Experiment, data)


def metric(data: Json) -> Metric:
    return Metric(data["key"], _float(data["value"]), data["step"], data["timestamp"])


def artifact(data: Json) -> Artifact:
    return _known(Artifact, data)


def run(data: Json) -> Run:
    metrics = {key: metric(m) for key, m in data.pop("metrics").items()}
    return _known(Run, data, status=RunStatus(data.pop("status")), metrics=metrics)


def _rule(data: Json) -> ApprovalRule:
    return ApprovalRule(data["target"], data["approvals"], data["role"], data.get("gate"))


def registered_model(data: Json) -> RegisteredModel:
    policy = data.pop("policy")
    rules = tuple(_rule(r) for r in policy["rules"])
    return _known(RegisteredModel, data, policy=ApprovalPolicy(rules, policy["expires_after_s"]))


def model_version(data: Json) -> ModelVersion:
    return _known(
        ModelVersion,
        data,
        stage=Stage(data.pop("stage")),
        metrics={k: _float(v) for k, v in data.pop("metrics").items()},
        aliases=tuple(data.pop("aliases")),
        dataset_version_ids=tuple(data.pop("dataset_version_ids")),
    )


def approval_request(data: Json) -> ApprovalRequest:
    return _known(
        ApprovalRequest,
        data,
        rule=_rule(data.pop("rule")),
        decisions=tuple(_known(ApprovalDecision, d) for d in data.pop("decisions")),
    )


def audit_event(data: Json) -> AuditEvent:
    return _known(AuditEvent, data)


def chain_report(data: Json) -> ChainReport:
    return _known(ChainReport, data)


def dataset(data: Json) -> Dataset:
    return _known(Dataset, data)


def dataset_version(data: Json) -> DatasetVersion:
    return _known(DatasetVersion, data, aliases=tuple(data.pop("aliases")))


def file_entry(data: Json) -> FileEntry:
    return _known(FileEntry, data)


def validation_result(data: dict[str, Any]) -> ValidationResult:
    """A ``ValidationResult`` from its ``to_dict()`` form (the expectations are re-checked)."""
    from ..data.validation import Expectation, ExpectationResult, ValidationResult

    results = tuple(
        ExpectationResult(Expectation(r["kind"], r["params"]), r["success"], r["observed"])
        for r in data["results"]
    )
    return ValidationResult(data["suite"], data["suite_version"], data["success"], results)
