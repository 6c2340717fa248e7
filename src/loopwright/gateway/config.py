"""A route's configuration checked at the edge: a mapping (JSON, YAML, a REST body) in, a
:class:`RouteConfig` out, or :class:`InvalidInput` naming the field and the fix.

The traffic split is the deployments' own policy check (``serving._traffic.check_policy``):
``primary`` alone, ``primary`` + ``canary`` (canary weight ``p``), or ``ab`` with weights and an
optional sticky header; only what a variant points at differs (an upstream target here).

Example:
    >>> config = check_route({"targets": [
    ...     {"name": "primary", "base_url": "http://127.0.0.1:8000/v1", "model": "a"},
    ...     {"name": "canary", "base_url": "http://127.0.0.1:8001/v1", "model": "b",
    ...      "weight": 0.1}]})
    >>> config.strategy, [t.weight for t in config.targets]
    ('canary', [0.9, 0.1])
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput
from ..governance.users import ROLES
from ..serving._traffic import check_policy
from ..serving.entities import Variant
from ..store import limits
from .entities import GuardrailSpec, Limits, Price, RouteConfig, Target
from .prompt_targets import check_prompt_uri

__all__ = ["check_route", "check_route_name", "config_from_json", "config_to_dict"]

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/-]{{0,{limits.DEPLOYMENT_NAME - 1}}}")
_SECRET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_ROUTE_KEYS = {
    "targets", "strategy", "sticky_header", "fallbacks", "retries", "backoff_s", "limits",
    "guardrails", "min_role", "description",
}  # fmt: skip
_TARGET_KEYS = {"name", "base_url", "model", "secret", "weight", "timeout_s", "price", "prompt"}
_LIMIT_KEYS = {"requests_per_minute", "tokens_per_minute", "tokens_per_day", "usd_per_day"}
_GUARD_KEYS = {"check", "stage", "mode", "params", "name"}
MAX_TARGETS = 20
MAX_GUARDRAILS = 20


def check_route_name(name: object) -> str:
    """``name`` if it can name a route (the ``model`` callers send), else InvalidInput."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"route name {str(name)[:80]!r} must be 1-{limits.DEPLOYMENT_NAME} letters, digits, "
            "'.', '_', ':', '/' or '-', starting with a letter or digit (e.g. 'chat-default')"
        )
    return name


def check_secret_name(name: object) -> str:
    if not isinstance(name, str) or not _SECRET.fullmatch(name):
        raise InvalidInput(
            f"secret name {str(name)[:80]!r} must be 1-100 letters, digits, '.', '_' or '-' "
            "(e.g. 'openai-key')"
        )
    return name


def check_route(doc: Mapping[str, Any]) -> RouteConfig:
    """The checked configuration of a route (see the module)."""
    _only("route", doc, _ROUTE_KEYS)
    live = _targets("targets", doc.get("targets"), required=True)
    fallbacks = _targets("fallbacks", doc.get("fallbacks", []) or [], required=False)
    names = [t.name for t in (*live, *fallbacks)]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise InvalidInput(f"target names must be unique across targets and fallbacks: {doubled}")
    strategy = doc.get("strategy")
    if strategy is not None and not isinstance(strategy, str):
        raise InvalidInput(f"strategy must be 'primary', 'canary' or 'ab', not {strategy!r}")
    sticky = doc.get("sticky_header")
    policy = check_policy(
        [Variant(t.name, t.base_url, t.weight) for t in live],
        strategy,
        sticky,
        check_uri=lambda uri, variant: None,  # the targets are checked above
    )
    weights = {v.name: v.weight for v in policy.variants}
    live = tuple(_replace_weight(t, weights[t.name]) for t in live)
    description = doc.get("description")
    if description is not None:
        limits.check_text("route description", description, limit=limits.REGISTRY_TAG_VALUE)
    min_role = doc.get("min_role", "viewer")
    if min_role not in ROLES:
        raise InvalidInput(f"min_role {min_role!r} is not one of {', '.join(ROLES)}")
    return RouteConfig(
        targets=live,
        strategy=policy.strategy,
        sticky_header=policy.sticky_header,
        fallbacks=fallbacks,
        retries=_int("retries", doc.get("retries", 2), low=0, high=10),
        backoff_s=_number("backoff_s", doc.get("backoff_s", 0.05), low=0, high=30),
        limits=_limits(doc.get("limits") or {}),
        guardrails=_guardrails(doc.get("guardrails") or []),
        min_role=min_role,
        description=description,
    )


def config_to_dict(config: RouteConfig) -> dict[str, Any]:
    """The JSON-able form :func:`check_route` reads back to an equal configuration."""
    # Guardrails by hand: their params hold compiled patterns and validators (names with "_")
    # that asdict would deep-copy and JSON cannot hold.
    doc = asdict(replace(config, guardrails=()))
    doc["guardrails"] = [
        {"check": g.check, "stage": g.stage, "mode": g.mode, "name": g.name,
         "params": {k: v for k, v in g.params.items() if not k.startswith("_")}}
        for g in config.guardrails
    ]  # fmt: skip
    for target in (*doc["targets"], *doc["fallbacks"]):
        if target["price"] is None:
            del target["price"]
        if target["prompt"] is None:
            del target["prompt"]
    for target in doc["fallbacks"]:
        del target["weight"]
    return doc


def config_from_json(text: str) -> RouteConfig:
    return check_route(json.loads(text))


def _replace_weight(target: Target, weight: float) -> Target:
    return replace(target, weight=weight)


def _only(what: str, doc: object, keys: set[str]) -> None:
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"{what} must be an object, not {type(doc).__name__}")
    unknown = sorted(set(doc) - keys)
    if unknown:
        raise InvalidInput(f"{what}: unknown field(s) {unknown}; known: {sorted(keys)}")


def _targets(field: str, items: object, *, required: bool) -> tuple[Target, ...]:
    if items is None and required:
        raise InvalidInput(f"a route needs at least one target in {field!r}")
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InvalidInput(f"{field} must be a list of targets")
    if required and not items:
        raise InvalidInput(f"a route needs at least one target in {field!r}")
    if len(items) > MAX_TARGETS:
        raise InvalidInput(f"{field}: at most {MAX_TARGETS} targets")
    return tuple(_target(f"{field}[{i}]", item) for i, item in enumerate(items))


def _target(where: str, doc: object) -> Target:
    _only(where, doc, _TARGET_KEYS)
    assert isinstance(doc, Mapping)
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
        raise InvalidInput(
            f"{where}: name {str(name)[:80]!r} must be 1-64 letters, digits, '_' or '-' "
            "(e.g. 'primary', 'canary', 'backup')"
        )
    base_url = _base_url(f"{where} ({name})", doc.get("base_url"))
    model = doc.get("model")
    if not isinstance(model, str) or not model or len(model) > 200:
        raise InvalidInput(f"{where} ({name}): model must be the upstream's model name (1-200)")
    limits.check_text(f"{where} model", model, limit=200)
    secret = doc.get("secret")
    if secret is not None:
        check_secret_name(secret)
    price = doc.get("price")
    return Target(
        name=name,
        base_url=base_url,
        model=model,
        secret=secret,
        weight=_number(f"{where} weight", doc.get("weight", 1.0), low=0, high=1e9),
        timeout_s=_number(f"{where} timeout_s", doc.get("timeout_s", 60.0), low=0.001, high=3600),
        price=None if price is None else _price(f"{where} price", price),
        prompt=check_prompt_uri(f"{where} ({name})", doc.get("prompt")),
    )


def _base_url(where: str, url: object) -> str:
    if not isinstance(url, str) or len(url) > 1000:
        raise InvalidInput(f"{where}: base_url must be an http(s) URL such as http://host:8000/v1")
    limits.check_text(f"{where} base_url", url, limit=1000)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{where}: base_url {url!r} must be http:// or https:// with a host")
    if parts.username or parts.password:
        # Credentials in a URL would be stored in clear and shown: they belong in a secret.
        raise InvalidInput(
            f"{where}: base_url carries credentials; store them with `loopwright gateway "
            "secrets set` and name the secret in the target"
        )
    if parts.query or parts.fragment:
        raise InvalidInput(f"{where}: base_url {url!r} must have no query or fragment")
    return url.rstrip("/")


def _price(where: str, doc: object) -> Price:
    _only(where, doc, {"input_per_1m", "output_per_1m"})
    assert isinstance(doc, Mapping)
    return Price(
        _number(f"{where} input_per_1m", doc.get("input_per_1m", 0), low=0, high=1e6),
        _number(f"{where} output_per_1m", doc.get("output_per_1m", 0), low=0, high=1e6),
    )


def _limits(doc: object) -> Limits:
    _only("limits", doc, _LIMIT_KEYS)
    assert isinstance(doc, Mapping)

    def count(key: str) -> int | None:
        value = doc.get(key)
        return None if value is None else _int(f"limits.{key}", value, low=1, high=10**12)

    usd = doc.get("usd_per_day")
    return Limits(
        requests_per_minute=count("requests_per_minute"),
        tokens_per_minute=count("tokens_per_minute"),
        tokens_per_day=count("tokens_per_day"),
        usd_per_day=None if usd is None else _number("limits.usd_per_day", usd, low=0, high=1e9),
    )


def _guardrails(items: object) -> tuple[GuardrailSpec, ...]:
    from .guardrails import check_spec

    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InvalidInput("guardrails must be a list of checks")
    if len(items) > MAX_GUARDRAILS:
        raise InvalidInput(f"a route has at most {MAX_GUARDRAILS} guardrails")
    specs = []
    for i, doc in enumerate(items):
        _only(f"guardrails[{i}]", doc, _GUARD_KEYS)
        assert isinstance(doc, Mapping)
        params = doc.get("params") or {}
        if not isinstance(params, Mapping):
            raise InvalidInput(f"guardrails[{i}].params must be an object")
        spec = GuardrailSpec(
            check=str(doc.get("check")),
            stage=str(doc.get("stage", "post")),
            mode=str(doc.get("mode", "block")),
            params=dict(params),
            name=doc.get("name"),
        )
        specs.append(check_spec(spec, f"guardrails[{i}]"))
    return tuple(specs)


def _number(where: str, value: object, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInput(f"{where} must be between {low} and {high}, not {value!r}")
    return number


def _int(where: str, value: object, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{where} must be a whole number from {low} to {high}, not {value!r}")
    return value
