"""Deployments as values: a named endpoint, its traffic policy and its history.

A deployment sends each request to one of its *live* variants, chosen by the policy's
``strategy``, and copies a share of requests to its *shadow* variants, whose answers are logged
and never returned:

- ``primary``: one live variant named ``primary`` with weight 1;
- ``canary``: ``primary`` with weight ``1 - p`` and ``canary`` with weight ``p`` (0 < p < 1);
- ``ab``: two or more live variants named by the user, weights > 0 summing to 1; with a
  ``sticky_header`` a caller's header value (a user id, say) keeps it on one variant.

A variant names a model URI: ``models:/churn@champion`` follows the alias (moving the alias,
after its approval, hot-swaps the served model), ``models:/churn/3`` pins a version.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "LIVE",
    "SHADOW",
    "STRATEGIES",
    "Deployment",
    "DeploymentRevision",
    "ServingInstance",
    "Variant",
]

LIVE = "live"
SHADOW = "shadow"
STRATEGIES = ("primary", "canary", "ab")


@dataclass(frozen=True)
class Variant:
    """One model behind a deployment and its share of requests.

    Attributes:
        name: unique within the deployment (``primary``, ``canary``, A/B names, shadow names).
        model_uri: ``models:/NAME@ALIAS`` (follows the alias) or ``models:/NAME/VERSION``.
        weight: live: the share of traffic it answers (live weights sum to 1); shadow: the
            share of requests copied to it.
        role: ``live`` or ``shadow``.
    """

    name: str
    model_uri: str
    weight: float
    role: str = LIVE


@dataclass(frozen=True)
class Deployment:
    """A named endpoint and its current traffic policy (revision ``revision``)."""

    name: str
    strategy: str
    variants: tuple[Variant, ...]
    sticky_header: str | None
    revision: int
    description: str | None
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int

    @property
    def live(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.role == LIVE)

    @property
    def shadows(self) -> tuple[Variant, ...]:
        return tuple(v for v in self.variants if v.role == SHADOW)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class DeploymentRevision:
    """One state a deployment's traffic policy had, and the change that made it.

    ``action`` is ``create``, ``set-traffic``, ``promote`` or ``rollback``.
    """

    deployment: str
    revision: int
    strategy: str
    variants: tuple[Variant, ...]
    sticky_header: str | None
    action: str
    actor: str
    created_at: int


@dataclass(frozen=True)
class ServingInstance:
    """A serving process that reported itself serving a deployment (``loopwright serve``).

    ``seen_at`` is its latest heartbeat; instances silent for longer than the heartbeat
    timeout are not listed.
    """

    deployment: str
    url: str
    pid: int
    host: str
    started_at: int
    seen_at: int
