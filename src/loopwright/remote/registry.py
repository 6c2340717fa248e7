"""``RemoteRegistry``: the registry service's methods, over the server's REST API.

Same methods and signatures as :class:`~loopwright.registry.service.RegistryService`. The server
acts as the user the token belongs to, so approvals keep separation of duties: whoever
registered a version or opened a request cannot approve it, whichever client they use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, UnverifiedSource
from ..paths import safe_join
from ..registry._versions import package_source
from ..registry.entities import (
    AliasChange,
    ApprovalPolicy,
    ApprovalRequest,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from . import _codec
from ._http import Http, quote_path

if TYPE_CHECKING:
    from ._store import RemoteSession

__all__ = ["RemoteRegistry"]


def _change(data: dict[str, Any]) -> ModelVersion | ApprovalRequest:
    if data["applied"]:
        return _codec.model_version(data["version"])
    return _codec.approval_request(data["request"])


class RemoteRegistry:
    """Registered models, versions, aliases, stages and approvals on a Loopwright server."""

    def __init__(self, http: Http, session: RemoteSession) -> None:
        self._http = http
        self._session = session

    @property
    def actor(self) -> str:
        """Who changes are recorded as: the user of this client's token."""
        return self._session.actor

    # --- models ----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> RegisteredModel:
        """Register a model name (with ``policy``: then set it, which needs the admin role)."""
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        created = _codec.registered_model(self._http.post("/models", body))
        return created if policy is None else self.set_policy(name, policy)

    def get_model(self, name: str) -> RegisteredModel:
        return _codec.registered_model(self._http.get(f"/models/{name}"))

    def list_models(self) -> list[RegisteredModel]:
        return [_codec.registered_model(m) for m in self._http.get("/models")]

    def search_models(self, filter_string: str = "") -> list[RegisteredModel]:
        found = self._http.get("/models", filter=filter_string or None)
        return [_codec.registered_model(m) for m in found]

    def update_model(self, name: str, *, description: str | None) -> RegisteredModel:
        data = self._patch(f"/models/{name}", {"description": description})
        return _codec.registered_model(data)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        data = self._http.post(f"/models/{name}/rename", {"new_name": new_name})
        return _codec.registered_model(data)

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        data = self._put(f"/models/{name}/tags/{quote_path(key)}", {"value": str(value)})
        return _codec.registered_model(data)

    def delete_model_tag(self, name: str, key: str) -> RegisteredModel:
        data = self._http.request("DELETE", f"/models/{name}/tags/{quote_path(key)}")
        return _codec.registered_model(data)

    def set_policy(self, name: str, policy: ApprovalPolicy) -> RegisteredModel:
        self._put(f"/models/{name}/policy", policy.to_dict())
        return self.get_model(name)

    def set_card_info(self, name: str, **fields: str | Sequence[str] | None) -> RegisteredModel:
        body = {k: v if v is None or isinstance(v, str) else list(v) for k, v in fields.items()}
        return _codec.registered_model(self._patch(f"/models/{name}/card", {"fields": body}))

    def delete_model(self, name: str) -> None:
        self._http.request("DELETE", f"/models/{name}")

    # --- versions --------------------------------------------------------------------------

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
        """Register the package a run logged (its ``model_uri``, or ``run_id`` +
        ``artifact_path``) as a new version."""
        package_dir, run_id, artifact_path = package_source(
            package_dir, model_uri, run_id, artifact_path
        )
        if package_dir is not None or run_id is None:
            raise InvalidInput(
                "over a server, register a model from a run: log it with run.log_model(...) "
                "and pass run_id (and artifact_path); registering a local folder needs the "
                "embedded store"
            )
        body = {
            "run_id": run_id,
            "artifact_path": artifact_path,
            "description": description,
            "tags": dict(tags or {}),
            "metrics": None if metrics is None else dict(metrics),
            "dataset_version_ids": None
            if dataset_version_ids is None
            else list(dataset_version_ids),
            "source": source,
        }
        return _codec.model_version(self._http.post(f"/models/{name}/versions", body))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return _codec.model_version(self._http.get(f"/models/{name}/versions/{int(version)}"))

    def get_version_by_id(self, version_id: str) -> ModelVersion:
        return _codec.model_version(self._http.get(f"/model-versions/{version_id}"))

    def resolve(self, name: str, ref: int | str) -> ModelVersion:
        """The loadable version ``ref`` names: a number, ``latest``, a stage or an alias."""
        return _codec.model_version(
            self._http.get(f"/models/{name}/resolve/{quote_path(str(ref))}")
        )

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        found = self._http.get(f"/models/{name}/versions", include_deleted=include_deleted)
        return [_codec.model_version(v) for v in found]

    def search_versions(self, filter_string: str = "") -> list[ModelVersion]:
        found = self._http.get("/model-versions", filter=filter_string or None)
        return [_codec.model_version(v) for v in found]

    def package_files(self, version: ModelVersion) -> list[tuple[str, str, int]]:
        """``(path, blob_hash, size)`` of every file of the version's package, by path."""
        found = self._http.get(f"/models/{version.model}/versions/{version.version}/files")
        return [(f["path"], f["blob_hash"], f["size"]) for f in found]

    def download_package(self, version: ModelVersion, dst: str | os.PathLike[str]) -> Path:
        """Write the package into folder ``dst`` (new or empty), every file verified."""
        target = Path(dst)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InvalidInput(f"{str(target)!r} is not an empty folder; pick a new folder")
        if version.external:
            raise UnverifiedSource.of(version.model, version.version, version.source, "downloaded")
        base = f"/models/{version.model}/versions/{version.version}/files"
        for path, blob_hash, _size in self.package_files(version):
            dest = safe_join(target, path, what="package path")
            self._http.download(f"{base}/{quote_path(path)}", dest, blob_hash)
        target.mkdir(parents=True, exist_ok=True)
        return target

    def pin_source(
        self,
        name: str,
        version: int,
        folder: str | os.PathLike[str] | None = None,
        *,
        trusted: bool = False,
    ) -> ModelVersion:
        """Pin an external version from its source as the server stores it (a run's or a logged
        model's files); files elsewhere are pinned with the embedded store."""
        if folder is not None:
            raise InvalidInput(
                "over a server, pin a version from the source the server stores; pinning from "
                "a local folder needs the embedded store"
            )
        data = self._http.post(f"/models/{name}/versions/{int(version)}/pin", {"trusted": trusted})
        return _codec.model_version(data)

    def update_version(self, name: str, version: int, *, description: str | None) -> ModelVersion:
        data = self._patch(f"/models/{name}/versions/{int(version)}", {"description": description})
        return _codec.model_version(data)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> ModelVersion:
        path = f"/models/{name}/versions/{int(version)}/tags/{quote_path(key)}"
        return _codec.model_version(self._put(path, {"value": str(value)}))

    def delete_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        path = f"/models/{name}/versions/{int(version)}/tags/{quote_path(key)}"
        return _codec.model_version(self._http.request("DELETE", path))

    def delete_version(self, name: str, version: int) -> ModelVersion:
        data = self._http.request("DELETE", f"/models/{name}/versions/{int(version)}")
        return _codec.model_version(data)

    # --- aliases and stages ----------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> AliasChange:
        """Point ``alias`` at ``version``, or open an approval request if it is protected."""
        body = {"version": int(version), "comment": comment}
        data = self._put(f"/models/{name}/aliases/{quote_path(alias)}", body)
        if data["applied"]:
            return AliasChange(_codec.model_version(data["version"]))
        return AliasChange(
            self.get_version(name, version), _codec.approval_request(data["request"])
        )

    def delete_alias(self, name: str, alias: str) -> None:
        self._http.request("DELETE", f"/models/{name}/aliases/{quote_path(alias)}")

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        archive_existing: bool = False,
        comment: str | None = None,
    ) -> ModelVersion | ApprovalRequest:
        """Move ``version`` to ``stage``, or open an approval request if it is protected."""
        body = {"stage": str(stage), "archive_existing": archive_existing, "comment": comment}
        return _change(self._http.post(f"/models/{name}/versions/{int(version)}/stage", body))

    # --- approvals -------------------------------------------------------------------------

    def requests(
        self, status: str | None = "pending", model: str | None = None
    ) -> list[ApprovalRequest]:
        """Requests with ``status`` (None: any), oldest first, optionally for one model."""
        found = self._http.get("/approvals", status=status or "any", model=model)
        return [_codec.approval_request(r) for r in found]

    def get_request(self, request_id: str) -> ApprovalRequest:
        return _codec.approval_request(self._http.get(f"/approvals/{request_id}"))

    def approve(self, request_id: str, comment: str | None = None) -> ApprovalRequest:
        """Approve as this client's user; the last approval needed applies the change."""
        data = self._http.post(f"/approvals/{request_id}/approve", {"comment": comment})
        return _codec.approval_request(data)

    def reject(self, request_id: str, comment: str) -> ApprovalRequest:
        """Reject as this client's user, saying why; nothing changes."""
        if not isinstance(comment, str) or not comment.strip():
            raise InvalidInput("a rejection needs a comment saying why (reject(request_id, '...'))")
        data = self._http.post(f"/approvals/{request_id}/reject", {"comment": comment})
        return _codec.approval_request(data)

    # --- plumbing --------------------------------------------------------------------------

    def _put(self, path: str, body: object) -> Any:
        return self._http.request("PUT", path, json_body=body)

    def _patch(self, path: str, body: object) -> Any:
        return self._http.request("PATCH", path, json_body=body)
