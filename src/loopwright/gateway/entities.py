"""The LLM gateway as values: routes, their upstream targets, limits, guardrails, usage.

A :class:`RouteConfig` is what one route name (the ``model`` callers send) resolves to: live
targets split by a deployment-style policy (``primary``, ``canary``, ``ab`` with a sticky
header), fallbacks tried in order when the chosen target keeps failing, retry and timeout
settings, per-user limits and budgets, and guardrail checks before and after the call.

Example:
    >>> target = Target("primary", "http://127.0.0.1:8000/v1", "llama-3")
    >>> target.price is None, target.weight
    (True, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ENDPOINTS",
    "GatewayRoute",
    "GuardrailSpec",
    "Limits",
    "Price",
    "RouteConfig",
    "SecretInfo",
    "Target",
    "UsageRecord",
    "UsageSummary",
]

# The OpenAI-compatible endpoints the gateway serves, by the name usage rows keep.
ENDPOINTS = ("chat", "completions", "embeddings")


@dataclass(frozen=True)
class Price:
    """USD per million tokens, as providers list them."""

    input_per_1m: float = 0.0
    output_per_1m: float = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_1m + completion_tokens * self.output_per_1m) / 1e6


@dataclass(frozen=True)
class Target:
    """One OpenAI-compatible upstream (vLLM, TGI, a hosted API) and the model asked of it.

    Attributes:
        name: unique within the route (``primary``, ``canary``, A/B names, fallback names).
        base_url: the upstream's API root, ending before ``/chat/completions`` (``…/v1``).
        model: the model name sent upstream (callers send the route's name).
        secret: the name of a stored secret sent as ``Authorization: Bearer``, or None.
        weight: the live share (as deployments: canary ``p``; A/B weights); unused for
            fallbacks.
        timeout_s: per attempt, connect to last byte of a JSON answer or to the first byte of
            a stream.
        price: per-model prices for the usage's cost (None: cost unknown).
        prompt: a prompt version or alias (``prompts:/support@production``) the gateway
            renders with the caller's ``prompt_variables`` (``gateway.prompt_targets``).
    """

    name: str
    base_url: str
    model: str
    secret: str | None = None
    weight: float = 1.0
    timeout_s: float = 60.0
    price: Price | None = None
    prompt: str | None = None


@dataclass(frozen=True)
class Limits:
    """Per user and route; None is no limit. Days are UTC days."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None
    usd_per_day: float | None = None

    @property
    def daily(self) -> bool:
        return self.tokens_per_day is not None or self.usd_per_day is not None


@dataclass(frozen=True)
class GuardrailSpec:
    """One check of a route: ``check`` names a built-in or registered check, ``stage`` is
    ``pre`` (the request's text) or ``post`` (the answer's), ``mode`` ``block`` or
    ``annotate``; ``params`` are the check's own."""

    check: str
    stage: str = "post"
    mode: str = "block"
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.check


@dataclass(frozen=True)
class RouteConfig:
    """What a route does; checked by :func:`loopwright.gateway.config.check_route`."""

    targets: tuple[Target, ...]
    strategy: str
    sticky_header: str | None = None
    fallbacks: tuple[Target, ...] = ()
    retries: int = 2
    backoff_s: float = 0.05
    limits: Limits = Limits()
    guardrails: tuple[GuardrailSpec, ...] = ()
    min_role: str = "viewer"
    description: str | None = None

    def target(self, name: str) -> Target | None:
        return next((t for t in (*self.targets, *self.fallbacks) if t.name == name), None)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(t.secret for t in (*self.targets, *self.fallbacks) if t.secret)


@dataclass(frozen=True)
class GatewayRoute:
    """A stored route: its name, configuration and revision."""

    name: str
    config: RouteConfig
    revision: int
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int


@dataclass(frozen=True)
class SecretInfo:
    """A stored secret as it may be shown: never its value, only a mask."""

    name: str
    mask: str
    created_by: str
    created_at: int
    updated_by: str
    updated_at: int


@dataclass(frozen=True)
class UsageRecord:
    """One gateway request, as the usage table keeps it.

    ``estimated`` is true when the upstream reported no usage (a stream without its final
    usage chunk): the tokens are then counted from what was sent and streamed.
    """

    id: str
    route: str
    target: str
    user: str
    endpoint: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    estimated: bool
    cost_usd: float | None
    latency_ms: float
    stream: bool
    trace_id: str | None
    created_at: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class UsageSummary:
    """Usage summed over a group (route, target, user: None where not grouped by it)."""

    route: str | None
    target: str | None
    user: str | None
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    estimated_requests: int
    cost_usd: float
    mean_latency_ms: float

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
