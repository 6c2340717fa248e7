"""``RemoteDeployments``: deployments over the server's REST API (the ``Deployments`` protocol)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..serving.entities import Deployment, DeploymentRevision, ServingInstance, Variant
from ._http import Http, quote_path

__all__ = ["RemoteDeployments"]


def _variants(data: Any) -> tuple[Variant, ...]:
    return tuple(Variant(v["name"], v["model_uri"], float(v["weight"]), v["role"]) for v in data)


def _deployment(data: Any) -> Deployment:
    return Deployment(
        name=data["name"],
        strategy=data["strategy"],
        variants=_variants(data["variants"]),
        sticky_header=data["sticky_header"],
        revision=data["revision"],
        description=data["description"],
        created_by=data["created_by"],
        created_at=data["created_at"],
        updated_by=data["updated_by"],
        updated_at=data["updated_at"],
    )


def _revision(data: Any) -> DeploymentRevision:
    return DeploymentRevision(
        deployment=data["deployment"],
        revision=data["revision"],
        strategy=data["strategy"],
        variants=_variants(data["variants"]),
        sticky_header=data["sticky_header"],
        action=data["action"],
        actor=data["actor"],
        created_at=data["created_at"],
    )


def _instance(data: Any) -> ServingInstance:
    return ServingInstance(
        data["deployment"],
        data["url"],
        data["pid"],
        data["host"],
        data["started_at"],
        data["seen_at"],
    )


class RemoteDeployments:
    """Create and change deployments on a Loopwright server (changes need an editor token)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def create(self, name: str, model_uri: str, *, description: str | None = None) -> Deployment:
        """A new deployment sending all traffic to ``model_uri`` (strategy ``primary``)."""
        body = {"name": name, "model_uri": model_uri, "description": description}
        return _deployment(self._http.post("/deployments", body))

    def get(self, name: str) -> Deployment:
        """The deployment called ``name`` as it is now."""
        return _deployment(self._http.get(self._path(name)))

    def list(self) -> list[Deployment]:
        """Every deployment, by name."""
        return [_deployment(d) for d in self._http.get("/deployments")]

    def set_traffic(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        strategy: str | None = None,
        sticky_header: str | None = None,
        expect_revision: int | None = None,
    ) -> Deployment:
        """Replace the traffic policy (strategy inferred from the variants when not given);
        with ``expect_revision``, only if the deployment is still at that revision."""
        body = {
            "variants": [
                {"name": v.name, "model_uri": v.model_uri, "weight": v.weight, "role": v.role}
                for v in variants
            ],
            "strategy": strategy,
            "sticky_header": sticky_header,
            "expect_revision": expect_revision,
        }
        answer = self._http.request("PUT", f"{self._path(name)}/traffic", json_body=body)
        return _deployment(answer)

    def promote(self, name: str) -> Deployment:
        """Make the canary the primary (moving the alias the primary follows, if it follows one)."""
        return _deployment(self._http.post(f"{self._path(name)}/promote"))

    def rollback(self, name: str, to_revision: int | None = None) -> Deployment:
        """Restore the traffic policy of ``to_revision`` (default: the one before the current)."""
        body = {"to_revision": to_revision}
        return _deployment(self._http.post(f"{self._path(name)}/rollback", body))

    def history(self, name: str) -> builtins.list[DeploymentRevision]:
        """Every revision of the deployment's traffic policy, oldest first."""
        return [_revision(r) for r in self._http.get(f"{self._path(name)}/history")]

    def delete(self, name: str) -> None:
        """Remove the deployment (its history stays in the audit log)."""
        self._http.request("DELETE", self._path(name))

    def heartbeat(self, name: str, url: str, pid: int, host: str) -> ServingInstance:
        """Record that a serving process at ``url`` serves deployment ``name`` now."""
        body = {"url": url, "pid": pid, "host": host}
        return _instance(self._http.post(f"{self._path(name)}/heartbeat", body))

    def instances(self, name: str) -> builtins.list[ServingInstance]:
        """The serving processes that reported themselves recently for deployment ``name``."""
        return [_instance(i) for i in self._http.get(f"{self._path(name)}/instances")]

    @staticmethod
    def _path(name: str) -> str:
        # Every character of the name escaped ('/' too): it is one path segment.
        return f"/deployments/{quote_path(name).replace('/', '%2F')}"
