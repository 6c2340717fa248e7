"""``RemoteGateway``: the LLM gateway's control plane over the server's REST API (the
``Gateway`` protocol)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from ..gateway.config import check_route
from ..gateway.entities import GatewayRoute, SecretInfo, UsageSummary
from ._http import Http, quote_path

__all__ = ["RemoteGateway"]


def _route(data: Any) -> GatewayRoute:
    return GatewayRoute(
        data["name"], check_route(data["config"]), data["revision"], data["created_by"],
        data["created_at"], data["updated_by"], data["updated_at"],
    )  # fmt: skip


def _secret(data: Any) -> SecretInfo:
    return SecretInfo(
        data["name"], data["mask"], data["created_by"], data["created_at"],
        data["updated_by"], data["updated_at"],
    )  # fmt: skip


class RemoteGateway:
    """Routes, secrets and usage of a Loopwright server's gateway."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def create_route(self, name: str, config: Mapping[str, Any]) -> GatewayRoute:
        """A new route ``name`` (the ``model`` callers send) with ``config``."""
        return _route(self._http.post("/gateway/routes", {"name": name, "config": dict(config)}))

    def update_route(
        self, name: str, config: Mapping[str, Any], *, expect_revision: int | None = None
    ) -> GatewayRoute:
        """Replace the route's configuration (only at ``expect_revision``, when given)."""
        body = {"config": dict(config), "expect_revision": expect_revision}
        return _route(self._http.request("PUT", self._path(name), json_body=body))

    def delete_route(self, name: str) -> None:
        """Remove the route (its usage rows stay)."""
        self._http.request("DELETE", self._path(name))

    def get_route(self, name: str) -> GatewayRoute:
        """The route called ``name``."""
        return _route(self._http.get(self._path(name)))

    def list_routes(self) -> builtins.list[GatewayRoute]:
        """Every route, by name."""
        return [_route(r) for r in self._http.get("/gateway/routes")]

    def set_secret(self, name: str, value: str) -> SecretInfo:
        """Store (or replace) a secret, encrypted; only its mask comes back."""
        path = f"/gateway/secrets/{quote_path(name)}"
        return _secret(self._http.request("PUT", path, json_body={"value": value}))

    def list_secrets(self) -> builtins.list[SecretInfo]:
        """Every secret's name and mask."""
        return [_secret(s) for s in self._http.get("/gateway/secrets")]

    def delete_secret(self, name: str) -> None:
        """Remove a secret no route names."""
        self._http.request("DELETE", f"/gateway/secrets/{quote_path(name)}")

    def usage(
        self,
        *,
        route: str | None = None,
        user: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        group_by: Sequence[str] = ("route", "target", "user"),
    ) -> builtins.list[UsageSummary]:
        """Requests, tokens, cost and latency summed per group (a viewer: their own)."""
        rows = self._http.get(
            "/gateway/usage", route=route, user=user, since_ms=since_ms, until_ms=until_ms,
            group_by=",".join(group_by),
        )  # fmt: skip
        return [
            UsageSummary(
                r["route"], r["target"], r["user"], r["requests"], r["errors"],
                r["prompt_tokens"], r["completion_tokens"], r["estimated_requests"],
                r["cost_usd"], r["mean_latency_ms"],
            )
            for r in rows
        ]  # fmt: skip

    @staticmethod
    def _path(name: str) -> str:
        return f"/gateway/routes/{quote_path(name)}"
