"""The registry's domain objects: registered models, versions, approvals and policies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "AliasChange",
    "ApprovalDecision",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalRule",
    "ModelVersion",
    "RegisteredModel",
    "Stage",
]


class Stage(StrEnum):
    """MLflow's lifecycle stages. Allowed moves are listed in ``registry.service``."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


@dataclass(frozen=True)
class ApprovalRule:
    """``approvals`` decisions from users holding ``role`` (or ``admin``) are needed for ``target``.

    ``target`` is ``"stage:Production"``, ``"alias:<name>"`` or ``"traffic"`` (a version may
    take live traffic in a deployment only if approved for it; see ``serving.deployments``).
    ``gate`` (prompts' alias rules): the version's latest result of this evaluation gate must
    have passed before a request can open (``loopwright.loop.evaluation_gates``).
    """

    target: str
    approvals: int = 1
    role: str = "approver"
    gate: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target, "approvals": self.approvals, "role": self.role,
        }  # fmt: skip
        if self.gate is not None:
            out["gate"] = self.gate
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalRule:
        gate = data.get("gate")
        return cls(
            str(data["target"]),
            int(data.get("approvals", 1)),
            str(data.get("role", "approver")),
            None if gate is None else str(gate),
        )


@dataclass(frozen=True)
class ApprovalPolicy:
    """What needs approval for one registered model, and how long a request stays open.

    The default policy protects ``stage:Production``, the ``champion`` alias and live traffic
    with one approval from an ``approver``; requests expire after seven days.
    """

    rules: tuple[ApprovalRule, ...] = (
        ApprovalRule("stage:Production"),
        ApprovalRule("alias:champion"),
        ApprovalRule("traffic"),
    )
    expires_after_s: int = 7 * 24 * 3600

    def rule_for(self, target: str) -> ApprovalRule | None:
        return next((rule for rule in self.rules if rule.target == target), None)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "expires_after_s": self.expires_after_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ApprovalPolicy:
        return cls(
            tuple(ApprovalRule.from_dict(r) for r in data.get("rules", ())),
            int(data.get("expires_after_s", 7 * 24 * 3600)),
        )


@dataclass(frozen=True)
class RegisteredModel:
    id: str
    name: str
    description: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)  # alias -> version number
    latest_version: int | None = None
    policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    card: Mapping[str, Any] = field(default_factory=dict)  # intended_use, limitations, ...


@dataclass(frozen=True)
class ModelVersion:
    """An immutable registered version: its package, where it came from and how it did."""

    id: str
    model: str  # registered model name
    version: int
    run_id: str | None
    source: str | None  # "runs:/<id>/model", "mlflow:<path>", a folder ...
    status: str  # READY | DELETED
    stage: Stage
    flavor: str | None
    package_hash: str | None
    signature: Mapping[str, Any] | None
    metrics: Mapping[str, float]
    description: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    dataset_version_ids: tuple[str, ...] = ()
    # "package": a verified package stored here. "external": only ``source`` is known (an
    # MLflow client registered a URI whose files are elsewhere); it loads once pinned.
    source_kind: str = "package"

    @property
    def external(self) -> bool:
        """Whether the version's files are elsewhere, unverified (``Registry.pin_source``)."""
        return self.source_kind == "external"

    @property
    def ref(self) -> str:
        """``models:/name/3``, the URI that loads this version."""
        return f"models:/{self.model}/{self.version}"


@dataclass(frozen=True)
class ApprovalDecision:
    id: str
    request_id: str
    actor: str
    role: str | None
    decision: str  # approve | reject
    comment: str | None
    created_at: int


@dataclass(frozen=True)
class ApprovalRequest:
    """A pending (or resolved) request to move a version to a protected stage or alias.

    ``subject_kind`` says what the version is of: ``model`` (``model`` is the registered
    model's name) or ``prompt`` (``model`` is the prompt's name; see ``loopwright.prompts``).
    """

    id: str
    model: str
    version: int
    version_id: str
    action: str  # "stage" | "alias" | "traffic"
    target: str  # "Production" | alias name | "traffic"
    status: str  # pending | approved | rejected | expired | cancelled
    requested_by: str
    comment: str | None
    rule: ApprovalRule
    created_at: int
    expires_at: int | None
    resolved_at: int | None
    decisions: tuple[ApprovalDecision, ...] = ()
    archive_existing: bool = False  # a stage request: archive the target stage's other versions
    subject_kind: str = "model"

    @property
    def approvals(self) -> int:
        return sum(1 for d in self.decisions if d.decision == "approve")


@dataclass(frozen=True)
class AliasChange:
    """What ``set_alias`` did. ``applied``: the alias points at ``version`` now. Otherwise the
    model's policy protects the alias, nothing moved, and ``request`` is the approval request
    opened to move it to ``version``."""

    version: ModelVersion
    request: ApprovalRequest | None = None

    @property
    def applied(self) -> bool:
        return self.request is None
