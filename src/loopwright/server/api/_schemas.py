"""The bodies of the native API: strict request models and the response models built from entities.

Requests are strict (no coercion, no unknown fields), so a malformed body is a 400 that names the
field, never a 500. Responses mirror the domain entities field for field (``RunOut`` is a ``Run``)
and are built with ``Model.of(entity)``; non-finite floats travel as ``"NaN"``/``"Infinity"``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ...store import limits

__all__ = [
    "AliasIn",
    "ApprovalDecisionOut",
    "ApprovalPolicyOut",
    "ApprovalRequestOut",
    "ApprovalRuleOut",
    "ArtifactOut",
    "AuditEventOut",
    "BatchIn",
    "CardIn",
    "ChainReportOut",
    "ChangeOut",
    "DatasetOut",
    "DatasetVersionIn",
    "DatasetVersionOut",
    "DecisionIn",
    "DescriptionIn",
    "EnvironmentOut",
    "ExperimentIn",
    "ExperimentNameIn",
    "ExperimentOut",
    "FileEntryIn",
    "FileEntryOut",
    "IdentityOut",
    "MetricOut",
    "MetricPointIn",
    "MetricsIn",
    "ModelIn",
    "ModelVersionOut",
    "PackageFileOut",
    "ParamsIn",
    "PolicyIn",
    "RegisteredModelOut",
    "RejectIn",
    "RenameIn",
    "RuleIn",
    "RunContextIn",
    "RunEndIn",
    "RunIn",
    "RunInputIn",
    "RunListOut",
    "RunOut",
    "RunSearchIn",
    "StageIn",
    "TagIn",
    "TagsIn",
    "VersionIn",
]


class Body(BaseModel):
    """A request body: strict types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Out(BaseModel):
    """A response body, read from an entity's attributes."""

    model_config = ConfigDict(from_attributes=True, ser_json_inf_nan="strings")

    @classmethod
    def of(cls, entity: object) -> Self:
        return cls.model_validate(entity, from_attributes=True)


# --- identity ----------------------------------------------------------------------------------


class IdentityOut(Out):
    user: str
    role: str


# --- tracking ----------------------------------------------------------------------------------


# Lengths and ranges come from store/limits.py, as the services check them: the same body is
# refused (400) here as the embedded API refuses the same call.
Int64 = Annotated[int, Field(ge=limits.INT64_MIN, le=limits.INT64_MAX)]
# An int the store keeps in an INTEGER column (versions, revisions, counts, offsets).
Int32 = Annotated[int, Field(ge=-limits.INT32_MAX - 1, le=limits.INT32_MAX)]


def _near_float(value: object) -> object:
    """An int past 64 bits as the float it is near: sqlite3 binds a Python int as a 64-bit
    INTEGER whatever the column, and refuses a larger one with an OverflowError."""
    if type(value) is int and not limits.INT64_MIN <= value <= limits.INT64_MAX:
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"{str(value)[:20]}... is not a finite number") from None
    return value


# A number: a float, or an int kept as one while it fits in 64 bits.
Number = Annotated[float | Int64, BeforeValidator(_near_float)]


class ExperimentIn(Body):
    name: str = Field(min_length=1, max_length=limits.EXPERIMENT_NAME)
    description: str | None = None


class ExperimentNameIn(Body):
    name: str = Field(min_length=1, max_length=limits.EXPERIMENT_NAME)


class ExperimentOut(Out):
    id: str
    name: str
    description: str | None
    lifecycle_stage: str
    created_at: int
    updated_at: int
    tags: dict[str, str] = {}


class RunContextIn(Body):
    """Where a remote client's run executes: recorded instead of the server's own context."""

    host: str | None = Field(default=None, max_length=500)
    entry_point: str | None = Field(default=None, max_length=4096)
    git_commit: str | None = Field(default=None, max_length=64)
    git_branch: str | None = Field(default=None, max_length=500)
    git_dirty: bool | None = None
    python_version: str | None = Field(default=None, max_length=100)
    packages: dict[str, str] | None = None


class RunIn(Body):
    experiment: str = Field(default="Default", min_length=1, max_length=limits.EXPERIMENT_NAME)
    name: str | None = Field(default=None, max_length=limits.RUN_NAME)
    tags: dict[str, str] = {}
    parent_run_id: str | None = None
    context: RunContextIn | None = None


class MetricPointIn(Body):
    key: str = Field(min_length=1, max_length=limits.KEY)
    value: float
    step: Int64 = 0
    timestamp: Int64


class MetricOut(Out):
    key: str
    value: float
    step: int
    timestamp: int


class MetricsIn(Body):
    metrics: list[MetricPointIn] = Field(max_length=100_000)


class ParamsIn(Body):
    params: dict[str, str]


class TagsIn(Body):
    tags: dict[str, str]


class BatchIn(Body):
    metrics: list[MetricPointIn] = Field(default=[], max_length=100_000)
    params: dict[str, str] = {}
    tags: dict[str, str] = {}


class RunEndIn(Body):
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"
    error: str | None = None


class RunInputIn(Body):
    dataset_version_id: str = Field(min_length=1)
    context: str = Field(default="training", min_length=1, max_length=100)


class RunSearchIn(Body):
    filter: str = ""
    experiments: list[str] | None = None
    order_by: list[str] = []
    max_results: int = Field(default=1000, ge=1, le=50_000)
    page_token: str | None = None
    run_view_type: Literal["ACTIVE_ONLY", "DELETED_ONLY", "ALL"] = "ACTIVE_ONLY"


class RunOut(Out):
    id: str
    experiment_id: str
    name: str
    status: str
    lifecycle_stage: str
    start_time: int
    end_time: int | None
    user: str | None
    host: str | None
    entry_point: str | None
    parent_run_id: str | None
    error: str | None
    heartbeat_at: int | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    environment_id: str | None = None
    params: dict[str, str] = {}
    metrics: dict[str, MetricOut] = {}
    tags: dict[str, str] = {}


class RunListOut(Out):
    runs: list[RunOut]
    next_page_token: str | None


class EnvironmentOut(Out):
    id: str
    python_version: str
    packages: dict[str, str]


class ArtifactOut(Out):
    path: str
    size: int
    blob_hash: str


# --- registry ----------------------------------------------------------------------------------


class ModelIn(Body):
    name: str = Field(min_length=1, max_length=limits.MODEL_NAME)
    description: str | None = None
    tags: dict[str, str] = {}


class PinIn(Body):
    """Pin an external version from its source as stored on this server."""

    trusted: bool = False


class DescriptionIn(Body):
    description: str | None


class RenameIn(Body):
    new_name: str = Field(min_length=1, max_length=limits.MODEL_NAME)


class TagIn(Body):
    value: str


class RuleIn(Body):
    target: str = Field(min_length=1)
    approvals: int = Field(default=1, ge=1, le=100)
    role: str = "approver"
    gate: str | None = Field(default=None, min_length=1, max_length=100)


class PolicyIn(Body):
    rules: list[RuleIn]
    expires_after_s: int = Field(default=7 * 24 * 3600, ge=1, le=limits.APPROVAL_EXPIRY_S)


class CardIn(Body):
    fields: dict[str, str | list[str] | None]


class VersionIn(Body):
    """A new version from a run's artifacts (``artifact_path`` holds the package)."""

    run_id: str = Field(min_length=1)
    artifact_path: str = "model"
    description: str | None = None
    tags: dict[str, str] = {}
    metrics: dict[str, float] | None = None
    dataset_version_ids: list[str] | None = None
    source: str | None = None


class AliasIn(Body):
    version: int = Field(ge=1, le=limits.INT32_MAX)
    comment: str | None = None


class StageIn(Body):
    stage: str
    archive_existing: bool = False
    comment: str | None = None


class DecisionIn(Body):
    comment: str | None = None


class RejectIn(Body):
    comment: str = Field(min_length=1)


class ApprovalRuleOut(Out):
    target: str
    approvals: int
    role: str
    gate: str | None = None


class ApprovalPolicyOut(Out):
    rules: list[ApprovalRuleOut]
    expires_after_s: int


class RegisteredModelOut(Out):
    id: str
    name: str
    description: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = {}
    aliases: dict[str, int] = {}
    latest_version: int | None = None
    policy: ApprovalPolicyOut
    card: dict[str, Any] = {}


class ModelVersionOut(Out):
    id: str
    model: str
    version: int
    run_id: str | None
    source: str | None
    status: str
    stage: str
    flavor: str | None
    package_hash: str | None
    signature: dict[str, Any] | None
    metrics: dict[str, float]
    description: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = {}
    aliases: list[str] = []
    dataset_version_ids: list[str] = []
    source_kind: str = "package"


class ApprovalDecisionOut(Out):
    id: str
    request_id: str
    actor: str
    role: str | None
    decision: str
    comment: str | None
    created_at: int


class ApprovalRequestOut(Out):
    id: str
    model: str
    version: int
    version_id: str
    action: str
    target: str
    status: str
    requested_by: str
    comment: str | None
    rule: ApprovalRuleOut
    created_at: int
    expires_at: int | None
    resolved_at: int | None
    decisions: list[ApprovalDecisionOut] = []
    archive_existing: bool = False


class ChangeOut(Out):
    """An alias move or stage transition: applied (``version``) or waiting (``request``)."""

    applied: bool
    version: ModelVersionOut | None = None
    request: ApprovalRequestOut | None = None


class PackageFileOut(Out):
    path: str
    blob_hash: str
    size: int


# --- audit -------------------------------------------------------------------------------------


class AuditEventOut(Out):
    seq: int
    id: str
    timestamp: int
    actor: str
    action: str
    subject_type: str
    subject_id: str
    before: Any
    after: Any
    prev_hash: str
    hash: str


class ChainReportOut(Out):
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    head_seq: int | None = None
    head_hash: str | None = None


# --- datasets ----------------------------------------------------------------------------------


class DatasetOut(Out):
    id: str
    name: str
    description: str | None
    created_at: int
    version_count: int = 0


class FileEntryOut(Out):
    path: str
    size: int
    hash: str


class FileEntryIn(Body):
    path: str = Field(min_length=1, max_length=4096)
    size: int = Field(ge=0, le=limits.INT64_MAX)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class DatasetVersionIn(Body):
    """A version from blobs already uploaded (``PUT /api/v1/blobs/{hash}``)."""

    files: list[FileEntryIn] = Field(min_length=1, max_length=1_000_000)
    message: str | None = None
    tags: dict[str, str] = {}
    aliases: list[str] = []
    run_id: str | None = None


class DatasetVersionOut(Out):
    id: str
    dataset: str
    number: int
    content_hash: str
    message: str | None
    parent_id: str | None
    produced_by_run_id: str | None
    file_count: int
    total_size: int
    source: str | None
    created_by: str | None
    created_at: int
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    profile: dict[str, Any] | None = None
    tags: dict[str, str] = {}
    aliases: list[str] = []
