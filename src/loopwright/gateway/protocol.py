"""What both backends provide for the gateway's control plane (``client.gateway``)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .entities import GatewayRoute, SecretInfo, UsageSummary

__all__ = ["Gateway"]


class Gateway(Protocol):
    """Routes, secrets and usage of the LLM gateway."""

    def create_route(self, name: str, config: Mapping[str, Any]) -> GatewayRoute:
        """A new route ``name`` (the ``model`` callers send) with ``config``."""
        ...

    def update_route(
        self, name: str, config: Mapping[str, Any], *, expect_revision: int | None = None
    ) -> GatewayRoute:
        """Replace the route's configuration (only at ``expect_revision``, when given)."""
        ...

    def delete_route(self, name: str) -> None:
        """Remove the route (its usage rows stay)."""
        ...

    def get_route(self, name: str) -> GatewayRoute:
        """The route called ``name``."""
        ...

    def list_routes(self) -> builtins.list[GatewayRoute]:
        """Every route, by name."""
        ...

    def set_secret(self, name: str, value: str) -> SecretInfo:
        """Store (or replace) a secret, encrypted; only its mask comes back."""
        ...

    def list_secrets(self) -> builtins.list[SecretInfo]:
        """Every secret's name and mask."""
        ...

    def delete_secret(self, name: str) -> None:
        """Remove a secret no route names."""
        ...

    def usage(
        self,
        *,
        route: str | None = None,
        user: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        group_by: Sequence[str] = ("route", "target", "user"),
    ) -> builtins.list[UsageSummary]:
        """Requests, tokens, cost and latency summed per group."""
        ...
