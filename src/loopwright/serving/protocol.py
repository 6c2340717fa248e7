"""What every backend provides for deployments (the embedded service and the HTTP client)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Protocol

from .entities import Deployment, DeploymentRevision, ServingInstance, Variant

__all__ = ["Deployments"]


class Deployments(Protocol):
    """Named endpoints with traffic policies, stored, audited and changed while serving."""

    def create(self, name: str, model_uri: str, *, description: str | None = None) -> Deployment:
        """A new deployment sending all traffic to ``model_uri`` (strategy ``primary``)."""
        ...

    def get(self, name: str) -> Deployment:
        """The deployment called ``name`` as it is now."""
        ...

    def list(self) -> list[Deployment]:
        """Every deployment, by name."""
        ...

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
        ...

    def promote(self, name: str) -> Deployment:
        """Make the canary the primary (moving the alias the primary follows, if it follows one)."""
        ...

    def rollback(self, name: str, to_revision: int | None = None) -> Deployment:
        """Restore the traffic policy of ``to_revision`` (default: the one before the current)."""
        ...

    def history(self, name: str) -> builtins.list[DeploymentRevision]:
        """Every revision of the deployment's traffic policy, oldest first."""
        ...

    def delete(self, name: str) -> None:
        """Remove the deployment (its history stays in the audit log)."""
        ...

    def heartbeat(self, name: str, url: str, pid: int, host: str) -> ServingInstance:
        """Record that a serving process at ``url`` serves deployment ``name`` now."""
        ...

    def instances(self, name: str) -> builtins.list[ServingInstance]:
        """The serving processes that reported themselves recently for deployment ``name``."""
        ...
