"""MLflow's request messages (``service.proto``, ``model_registry.proto``) as pydantic models.

POST/PATCH/DELETE requests carry them as JSON, GET requests in the query string. Fields keep
MLflow's names; unknown fields are ignored, as MLflow's server ignores them. int64 values may
arrive as numbers or strings, doubles also as ``"NaN"``/``"Infinity"``, enums as names or
numbers.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..._numbers import is_number
from ...errors import InvalidInput
from ...tracking.entities import RunStatus
from ..api import _schemas
from .errors import missing_value

__all__ = [
    "KeyValue",
    "RunRef",
    "enum_name",
    "run_status",
    "view_type",
]

_RUN_STATUSES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_VIEW_TYPES = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


def enum_name(value: str | int, names: dict[int, str], what: str) -> str:
    """An enum given by name or number, as its name."""
    if isinstance(value, int) or (isinstance(value, str) and is_number(value)):
        found = names.get(int(value))
    else:
        found = value if value in names.values() else None
    if found is None:
        raise InvalidInput(f"{what} {value!r} is not one of {', '.join(names.values())}")
    return found


def run_status(value: str | int) -> RunStatus:
    return RunStatus(enum_name(value, _RUN_STATUSES, "run status"))


def view_type(value: str | int | None) -> str:
    return "ACTIVE_ONLY" if value is None else enum_name(value, _VIEW_TYPES, "view type")


# Every string: no NUL (PostgreSQL cannot store it); every int64: within BIGINT.
Str = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
Int64 = _schemas.Int64
# A proto enum sent as its number: an int32.
Enum32 = _schemas.Int32
MAX_SEARCH_RUNS = 50000  # MLflow's cap on runs/search's max_results


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")


class KeyValue(Message):
    key: Str
    value: Str = ""


class RunRef(Message):
    """Names a run by ``run_id`` (or the older ``run_uuid``)."""

    run_id: Str | None = None
    run_uuid: Str | None = None

    @property
    def run(self) -> str:
        found = self.run_id or self.run_uuid
        if not found:
            raise InvalidInput(missing_value("run_id"))
        return found


# --- experiments ---------------------------------------------------------------------------


class CreateExperiment(Message):
    name: Str
    artifact_location: Str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentRef(Message):
    experiment_id: Str


class ExperimentByName(Message):
    experiment_name: Str


class UpdateExperiment(Message):
    experiment_id: Str
    new_name: Str | None = None


class SetExperimentTag(Message):
    experiment_id: Str
    key: Str
    value: Str = ""


class DeleteExperimentTag(Message):
    experiment_id: Str
    key: Str


class SearchExperiments(Message):
    max_results: Int64 | None = None
    page_token: Str | None = None
    filter: Str | None = None
    order_by: list[Str] = Field(default_factory=list)
    view_type: Str | Int64 | None = None


# --- runs ----------------------------------------------------------------------------------


class CreateRun(Message):
    experiment_id: Str | None = None
    user_id: Str | None = None
    run_name: Str | None = None
    start_time: Int64 | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class UpdateRun(RunRef):
    status: Str | Int64 | None = None
    end_time: Int64 | None = None
    run_name: Str | None = None


class SearchRuns(Message):
    experiment_ids: list[Str] = Field(default_factory=list)
    filter: Str | None = None
    run_view_type: Str | Int64 | None = None
    max_results: Annotated[int, Field(ge=-(2**63), le=MAX_SEARCH_RUNS)] = 1000
    order_by: list[Str] = Field(default_factory=list)
    page_token: Str | None = None


class MetricIn(Message):
    key: Str
    value: float
    timestamp: Int64  # required, as MLflow's server requires it
    step: Int64 = 0
    model_id: Str | None = None
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class LogMetric(RunRef, MetricIn):
    pass


class LogParam(RunRef):
    key: Str
    value: Str


class SetTag(RunRef):
    key: Str
    value: Str = ""


class DeleteTag(RunRef):
    key: Str


class LogBatch(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class LogModel(RunRef):
    model_json: Str | None = None


class DatasetIn(Message):
    name: Str
    digest: Str
    source_type: Str | None = None
    source: Str | None = None
    schema_: Str | None = Field(default=None, alias="schema")
    profile: Str | None = None


class DatasetInputIn(Message):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: DatasetIn


class ModelInputIn(Message):
    model_id: Str


class ModelOutputIn(Message):
    model_id: Str
    step: Int64 = 0


class LogInputs(RunRef):
    datasets: list[DatasetInputIn] = Field(default_factory=list)
    models: list[ModelInputIn] = Field(default_factory=list)


class LogOutputs(RunRef):
    models: list[ModelOutputIn] = Field(default_factory=list)


class GetMetricHistory(RunRef):
    metric_key: Str
    page_token: Str | None = None
    max_results: Int64 | None = None


class GetMetricHistoryBulkInterval(Message):
    run_ids: list[Str] = Field(default_factory=list)
    metric_key: Str
    start_step: Int64 | None = None
    end_step: Int64 | None = None
    max_results: Int64 | None = None


class RunArtifact(RunRef):
    path: Str


class ListArtifacts(RunRef):
    path: Str | None = None
    page_token: Str | None = None


# --- logged models -------------------------------------------------------------------------


class CreateLoggedModel(Message):
    experiment_id: Str
    name: Str | None = None
    model_type: Str | None = None
    source_run_id: Str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class FinalizeLoggedModel(Message):
    status: Str | Int64


class LoggedModelTags(Message):
    tags: list[KeyValue] = Field(default_factory=list)


class LoggedModelParams(Message):
    params: list[KeyValue] = Field(default_factory=list)


class OrderByIn(Message):
    field_name: Str
    ascending: bool = True
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class DatasetFilterIn(Message):
    dataset_name: Str | None = None
    dataset_digest: Str | None = None


class SearchLoggedModels(Message):
    experiment_ids: list[Str] = Field(default_factory=list)
    filter: Str | None = None
    datasets: list[DatasetFilterIn] = Field(default_factory=list)
    max_results: Int64 | None = None
    order_by: list[OrderByIn] = Field(default_factory=list)
    page_token: Str | None = None


class ListLoggedModelArtifacts(Message):
    artifact_directory_path: Str | None = None
    page_token: Str | None = None


# --- registry ------------------------------------------------------------------------------


class ModelRef(Message):
    name: Str


class CreateRegisteredModel(ModelRef):
    tags: list[KeyValue] = Field(default_factory=list)
    description: Str | None = None


class UpdateRegisteredModel(ModelRef):
    description: Str | None = None


class RenameRegisteredModel(ModelRef):
    new_name: Str


class SearchRegistry(Message):
    filter: Str | None = None
    max_results: Int64 | None = None
    order_by: list[Str] = Field(default_factory=list)
    page_token: Str | None = None


class LatestVersions(ModelRef):
    stages: list[Str] = Field(default_factory=list)


class CreateModelVersion(ModelRef):
    source: Str
    run_id: Str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: Str | None = None
    description: Str | None = None
    model_id: Str | None = None


class VersionRef(ModelRef):
    version: Str

    @property
    def number(self) -> int:
        if not re.fullmatch(r"[0-9]{1,9}", self.version):
            raise InvalidInput(f"version {self.version[:20]!r} must be a positive integer")
        return int(self.version)


class VersionArtifact(VersionRef):
    path: Str


class UpdateModelVersion(VersionRef):
    description: Str | None = None


class TransitionStage(VersionRef):
    stage: Str
    archive_existing_versions: bool = False


class ModelTag(ModelRef):
    key: Str
    value: Str = ""


class VersionTag(VersionRef):
    key: Str
    value: Str = ""


class ModelTagKey(ModelRef):
    key: Str


class VersionTagKey(VersionRef):
    key: Str


class SetAlias(VersionRef):
    alias: Str


class AliasRef(ModelRef):
    alias: Str
