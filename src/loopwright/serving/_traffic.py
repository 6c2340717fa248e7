"""Traffic policies checked and normalised before they are stored.

:func:`check_policy` turns what a caller gives (variants, maybe a strategy and a sticky header)
into the one stored form: the strategy named, live weights summing to 1, shadows after the live
variants. Whether the model URIs name versions that exist (and may take traffic) is the
service's business, in the transaction of the change.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ..registry.loading import ModelUri, parse_model_uri
from ..store import limits
from .entities import LIVE, SHADOW, STRATEGIES, Variant

__all__ = ["Policy", "check_header", "check_name", "check_policy", "model_uri_of"]

# Deployment names sit in URL paths, folder names of the prediction log and metric labels.
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.DEPLOYMENT_NAME - 1}}}")
_VARIANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")  # RFC 9110 token, as header names are
MAX_VARIANTS = 20
MAX_URI = 1000


@dataclass(frozen=True)
class Policy:
    """A checked traffic policy: what a deployment row and each revision row store."""

    strategy: str
    variants: tuple[Variant, ...]
    sticky_header: str | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "variants": [
                    {"name": v.name, "model_uri": v.model_uri, "weight": v.weight, "role": v.role}
                    for v in self.variants
                ],
                "sticky_header": self.sticky_header,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, strategy: str, text: str) -> Policy:
        data: dict[str, Any] = json.loads(text)
        variants = tuple(
            Variant(v["name"], v["model_uri"], float(v["weight"]), v["role"])
            for v in data["variants"]
        )
        return cls(strategy, variants, data.get("sticky_header"))


def check_name(name: object) -> str:
    """``name`` if it can name a deployment, else :class:`InvalidInput` saying what can."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"deployment name {str(name)[:80]!r} must be 1-{limits.DEPLOYMENT_NAME} letters, "
            "digits, '.', '_' or '-', starting with a letter or digit (e.g. 'churn-api')"
        )
    return name


def check_header(header: object) -> str:
    """``header`` if it is a valid HTTP header name (a token), else :class:`InvalidInput`."""
    if not isinstance(header, str) or not _TOKEN.fullmatch(header):
        raise InvalidInput(
            f"sticky header {str(header)[:80]!r} is not an HTTP header name: use 1-100 letters, "
            "digits or !#$%&'*+.^_`|~- (e.g. 'X-User-Id')"
        )
    return header


def model_uri_of(uri: object, variant: str) -> ModelUri:
    """The parsed ``models:/`` URI of a variant; other URIs are refused (they name no version
    the registry can approve or an alias can move)."""
    if not isinstance(uri, str):
        raise InvalidInput(f"variant {variant!r}: model URI must be a string, not {uri!r}")
    limits.check_text(f"variant {variant!r} model URI", uri, limit=MAX_URI)  # NUL, surrogates
    parsed = parse_model_uri(uri)
    if parsed.kind != "models":
        raise InvalidInput(
            f"variant {variant!r}: {uri!r} is not a registry URI; a deployment serves "
            "models:/<name>@<alias>, models:/<name>/<version> or models:/<name>/<stage>"
        )
    return parsed


def check_policy(
    variants: Sequence[Variant],
    strategy: str | None = None,
    sticky_header: str | None = None,
    *,
    check_uri: Callable[[object, str], object] | None = None,
) -> Policy:
    """The stored form of a traffic policy, or :class:`InvalidInput` naming the fix.

    The strategy, when not given, follows the live variants: ``primary`` alone is ``primary``,
    ``primary`` and ``canary`` are ``canary``, anything else is ``ab``. ``check_uri`` checks
    what a variant points at (default: a ``models:/`` URI; the LLM gateway's targets differ).

    Example:
        >>> policy = check_policy([Variant("a", "models:/m/1", 3), Variant("b", "models:/m/2", 1)])
        >>> policy.strategy, [v.weight for v in policy.variants]
        ('ab', [0.75, 0.25])
    """
    if isinstance(variants, Variant) or not isinstance(variants, Sequence) or not variants:
        raise InvalidInput("a traffic policy needs at least one variant (a live 'primary')")
    if len(variants) > MAX_VARIANTS:
        raise InvalidInput(f"a traffic policy has at most {MAX_VARIANTS} variants")
    names: set[str] = set()
    for variant in variants:
        _check_variant(variant, check_uri or model_uri_of)
        if variant.name in names:
            raise InvalidInput(f"variant name {variant.name!r} appears twice; names are unique")
        names.add(variant.name)
    live = [v for v in variants if v.role == LIVE]
    shadows = [v for v in variants if v.role == SHADOW]
    strategy = _strategy(live) if strategy is None else strategy
    _check_strategy(strategy, live)
    if sticky_header is not None:
        check_header(sticky_header)
        if strategy != "ab":
            raise InvalidInput(
                f"a sticky header keeps callers on one A/B variant; strategy {strategy!r} has "
                "none (drop --sticky-header or use strategy 'ab')"
            )
    return Policy(strategy, _weighted(strategy, live) + tuple(shadows), sticky_header)


def _weighted(strategy: str, live: Sequence[Variant]) -> tuple[Variant, ...]:
    """Live variants with their stored weights: canary ``p`` leaves ``1 - p`` to the primary
    (whatever weight the primary was given); A/B weights are scaled to sum to 1."""
    if strategy == "canary":
        p = next(v.weight for v in live if v.name == "canary")
        if not 0 < p < 1:
            raise InvalidInput(
                f"canary weight {p} must be between 0 and 1 exclusive (e.g. 0.2 for 20 %)"
            )
        share = {"primary": 1 - p, "canary": p}
        return tuple(Variant(v.name, v.model_uri, share[v.name], LIVE) for v in live)
    # Scaled by the largest first: weights near the float maximum would overflow their sum.
    top = max(float(v.weight) for v in live)
    total = math.fsum(float(v.weight) / top for v in live)
    weighted = tuple(
        Variant(v.name, v.model_uri, float(v.weight) / top / total, LIVE) for v in live
    )
    for given, stored in zip(live, weighted, strict=True):
        if stored.weight == 0:
            raise InvalidInput(
                f"live variant {given.name!r}: weight {given.weight} is so small beside the "
                "others that its share rounds to 0 (remove the variant or give it more weight)"
            )
    return weighted


def _check_variant(variant: object, check_uri: Callable[[object, str], object]) -> None:
    if not isinstance(variant, Variant):
        raise InvalidInput(f"variants must be Variant objects, not {type(variant).__name__}")
    if not isinstance(variant.name, str) or not _VARIANT.fullmatch(variant.name):
        raise InvalidInput(
            f"variant name {str(variant.name)[:80]!r} must be 1-64 letters, digits, '_' or '-', "
            "starting with a letter or digit (e.g. 'canary', 'model-b')"
        )
    if variant.role not in (LIVE, SHADOW):
        raise InvalidInput(
            f"variant {variant.name!r}: role {variant.role!r} is not {LIVE!r} or {SHADOW!r}"
        )
    weight = variant.weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not _finite(weight):
        raise InvalidInput(f"variant {variant.name!r}: weight must be a finite number")
    if variant.role == SHADOW and not 0 < weight <= 1:
        raise InvalidInput(
            f"shadow variant {variant.name!r}: weight {weight} is the share of requests copied "
            "to it and must be in (0, 1] (e.g. 0.1 for 10 %)"
        )
    if variant.role == LIVE and not weight > 0:
        raise InvalidInput(
            f"live variant {variant.name!r}: weight {weight} must be > 0 (remove the variant "
            "to send it no traffic)"
        )
    check_uri(variant.model_uri, variant.name)


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an int past the float range
        return False


def _strategy(live: Sequence[Variant]) -> str:
    names = sorted(v.name for v in live)
    if names == ["primary"]:
        return "primary"
    if names == ["canary", "primary"]:
        return "canary"
    return "ab"


def _check_strategy(strategy: str, live: Sequence[Variant]) -> None:
    names = sorted(v.name for v in live)
    if strategy not in STRATEGIES:
        raise InvalidInput(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "primary" and names != ["primary"]:
        raise InvalidInput(
            f"strategy 'primary' needs exactly one live variant named 'primary'; got "
            f"{', '.join(names) or 'none'}"
        )
    if strategy == "canary" and names != ["canary", "primary"]:
        raise InvalidInput(
            f"strategy 'canary' needs live variants 'primary' and 'canary'; got "
            f"{', '.join(names) or 'none'}"
        )
    if strategy == "ab" and len(names) < 2:
        raise InvalidInput(
            f"strategy 'ab' needs at least two live variants; got {', '.join(names) or 'none'} "
            "(one live variant must be named 'primary': strategy 'primary')"
        )
