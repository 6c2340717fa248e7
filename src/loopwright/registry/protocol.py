"""The registry capability as a protocol: what both backends of ``client.registry`` provide.

:class:`~loopwright.registry.service.RegistryService` (embedded) and
:class:`~loopwright.remote.registry.RemoteRegistry` (over a server, acting as the token's user)
implement it with the same signatures; ``tests/test_service_parity.py`` compares all three.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .entities import (
    AliasChange,
    ApprovalPolicy,
    ApprovalRequest,
    ModelVersion,
    RegisteredModel,
    Stage,
)

__all__ = ["Registry"]


class Registry(Protocol):
    """Registered models, versions, aliases, stages and approvals."""

    def register(
        self,
        name: str,
        package_dir: str | os.PathLike[str] | None = None,
        *,
        model_uri: str | None = None,
        run_id: str | None = None,
        artifact_path: str = "model",
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        dataset_version_ids: Sequence[str] | None = None,
        source: str | None = None,
    ) -> ModelVersion:
        """Register a new version of ``name`` from ``model_uri`` (what ``run.log_model``
        returns; also accepted in place of ``package_dir``), a package folder or a run."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def get_version_by_id(self, version_id: str) -> ModelVersion: ...

    def resolve(self, name: str, ref: int | str) -> ModelVersion:
        """The loadable version ``ref`` names: a number (``3``), ``latest``, a stage
        (``Production``: its newest version there), an alias, or ``@<alias>`` (only an alias,
        e.g. one named ``production``; models:/name@alias). Deleted versions are refused."""
        ...

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        """The model's versions, oldest first."""
        ...

    def search_versions(self, filter_string: str = "") -> list[ModelVersion]:
        """Versions matching e.g. ``"name = 'churn' AND stage = 'Production'"`` (columns: name,
        version, run_id, source, stage, status, tags.<key>; MLflow's spellings too); deleted ones
        only if ``status`` is named."""
        ...

    def package_files(self, version: ModelVersion) -> list[tuple[str, str, int]]:
        """``(path, blob_hash, size)`` of every file of the version's package, by path."""
        ...

    def download_package(self, version: ModelVersion, dst: str | os.PathLike[str]) -> Path:
        """Write the package into folder ``dst`` (new or empty), every file verified."""
        ...

    def pin_source(
        self,
        name: str,
        version: int,
        folder: str | os.PathLike[str] | None = None,
        *,
        trusted: bool = False,
    ) -> ModelVersion:
        """Fetch an external version's files (from ``folder``, else from its source), check
        them into a package and attach it: the version then loads like any other."""
        ...

    def update_version(
        self, name: str, version: int, *, description: str | None
    ) -> ModelVersion: ...

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> ModelVersion: ...

    def delete_version_tag(self, name: str, version: int, key: str) -> ModelVersion: ...

    def delete_version(self, name: str, version: int) -> ModelVersion:
        """Mark the version DELETED: it stays listed for history but cannot be loaded, aliased or
        staged. Refused while it has an alias or is in Production."""
        ...

    def create_model(
        self,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> RegisteredModel:
        """Register a model name. Without ``policy`` it gets the default (the server's or store's
        ``default_approval_policy`` setting: ``protect``, where Production and the ``champion``
        alias need one approval from an approver, or ``none``)."""
        ...

    def get_model(self, name: str) -> RegisteredModel: ...

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        ...

    def search_models(self, filter_string: str = "") -> list[RegisteredModel]:
        """Models matching e.g. ``"name LIKE 'churn%' AND tags.team = 'risk'"``, by name."""
        ...

    def update_model(self, name: str, *, description: str | None) -> RegisteredModel: ...

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename the model; versions, aliases, stages and requests move with it. While its policy
        protects an alias it has or a stage in use, only an enabled admin may rename it."""
        ...

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel: ...

    def delete_model_tag(self, name: str, key: str) -> RegisteredModel: ...

    def set_policy(self, name: str, policy: ApprovalPolicy) -> RegisteredModel:
        """Replace the model's approval policy (open requests keep the rule they had)."""
        ...

    def set_card_info(self, name: str, **fields: str | Sequence[str] | None) -> RegisteredModel:
        """Set model-card sections (``intended_use=...``, ``limitations=...``; None removes one);
        the others are kept. ``CARD_FIELDS`` lists the sections."""
        ...

    def delete_model(self, name: str) -> None:
        """Delete the model, its versions and requests. Refused while a version has an alias or is
        in Production (delete the aliases and archive the version first)."""
        ...

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> AliasChange:
        """Point ``alias`` at ``version`` (moving it if it exists), or open an approval request if
        the model's policy protects ``alias:<alias>``; returns the version or the request."""
        ...

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias``; a protected alias may be deleted only by an enabled admin."""
        ...

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        archive_existing: bool = False,
        comment: str | None = None,
    ) -> ModelVersion | ApprovalRequest:
        """Move ``version`` to ``stage`` (see ``TRANSITIONS`` in ``registry._changes``), or open an
        approval request if the policy protects ``stage:<stage>``."""
        ...

    def requests(
        self, status: str | None = "pending", model: str | None = None
    ) -> list[ApprovalRequest]:
        """Requests with ``status`` (None: any), oldest first, optionally for one model."""
        ...

    def get_request(self, request_id: str) -> ApprovalRequest:
        """One request with its decisions (marked expired first if it is past its expiry)."""
        ...

    def approve(self, request_id: str, comment: str | None = None) -> ApprovalRequest:
        """Approve as the acting user; the last approval needed applies the change."""
        ...

    def reject(self, request_id: str, comment: str) -> ApprovalRequest:
        """Reject as the acting user, saying why; the request closes and nothing changes."""
        ...

    @property
    def actor(self) -> str:
        """Who changes are recorded as: the ``actor`` given, else the store's user."""
        ...
