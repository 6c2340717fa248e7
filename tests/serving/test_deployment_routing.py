"""The router's choice alone: weights, stickiness, shadows (no models, no server).

A route's slot is only read for its key here, so plain objects stand in for loaded models.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from loopwright.errors import InvalidInput
from loopwright.serving.routing import ModelSlot, Route, Router, sticky_point


def _route(variant: str, weight: float, version: int = 1) -> Route:
    model: Any = SimpleNamespace(name="clf", version=version)
    return Route(variant, weight, ModelSlot(model, batcher=None))  # type: ignore[arg-type]


def _five_sigma(n: int, p: float) -> float:
    return 5 * math.sqrt(n * p * (1 - p))


def test_weights_split_random_traffic_within_five_sigma_and_are_normalised() -> None:
    # Weights 5:3:2 (not summing to 1) mean 50/30/20.
    live = [_route("a", 5, 1), _route("b", 3, 2), _route("c", 2, 3)]
    router = Router("churn", 4, live, [], None, uniform=random.Random(7).random)
    n = 10_000
    counts = Counter(router.choose({}).variant for _ in range(n))
    for name, share in {"a": 0.5, "b": 0.3, "c": 0.2}.items():
        assert abs(counts[name] - n * share) < _five_sigma(n, share), counts
    assert router.resolved == {"a": ("clf", 1), "b": ("clf", 2), "c": ("clf", 3)}
    assert router.describe() == "a clf v1 50%, b clf v2 30%, c clf v3 20%"


def test_one_live_variant_takes_everything_without_drawing() -> None:
    def never() -> float:
        raise AssertionError("a single variant needs no random draw")

    router = Router("churn", 1, [_route("primary", 1.0)], [], None, uniform=never)
    assert {router.choose({}).variant for _ in range(10)} == {"primary"}


def test_a_sticky_header_keeps_each_caller_on_one_variant_and_absent_is_random() -> None:
    live = [_route("a", 0.5), _route("b", 0.3, 2), _route("c", 0.2, 3)]
    router = Router("churn", 2, live, [], "X-User")
    users = [f"user-{i}" for i in range(2000)]
    first = {user: router.choose({"x-user": user}).variant for user in users}
    for user in users[:200]:
        assert {router.choose({"x-user": user}).variant for _ in range(5)} == {first[user]}
    # The point is a stable hash: another router of the deployment (another process, a
    # restart) places every caller the same way.
    again = Router("churn", 3, live, [], "x-user")
    assert all(again.choose({"x-user": u}).variant == v for u, v in first.items())
    shares = Counter(first.values())
    for name, share in {"a": 0.5, "b": 0.3, "c": 0.2}.items():
        assert abs(shares[name] - 2000 * share) < _five_sigma(2000, share), shares
    # Without the header, callers are spread at random.
    assert {router.choose({}).variant for _ in range(200)} == {"a", "b", "c"}


def test_moving_weight_moves_only_the_callers_in_the_shifted_share() -> None:
    before = Router("churn", 1, [_route("a", 0.5), _route("b", 0.5, 2)], [], "x-user")
    after = Router("churn", 2, [_route("a", 0.4), _route("b", 0.6, 2)], [], "x-user")
    users = [f"u{i}" for i in range(4000)]
    placed = {
        u: (before.choose({"x-user": u}).variant, after.choose({"x-user": u}).variant)
        for u in users
    }
    moved = [u for u in users if placed[u][0] != placed[u][1]]
    assert {placed[u] for u in moved} == {("a", "b")}  # only from the share a gave up
    assert abs(len(moved) - 400) < _five_sigma(4000, 0.1)


def test_sticky_points_are_uniform_stable_and_differ_per_deployment() -> None:
    points = [sticky_point("churn", f"user-{i}") for i in range(5000)]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(points) / len(points) - 0.5) < 0.02
    assert sticky_point("churn", "ada") == sticky_point("churn", "ada")
    assert sticky_point("churn", "ada") != sticky_point("fraud", "ada")
    assert sticky_point("churn", "\udcff") == sticky_point("churn", "\udcff")  # any header text


def test_shadows_get_their_share_of_copies() -> None:
    shadows = [_route("always", 1.0, 5), _route("tenth", 0.1, 6)]
    router = Router(
        "churn", 1, [_route("primary", 1.0)], shadows, None, uniform=random.Random(3).random
    )
    n = 10_000
    copies = Counter(r.variant for _ in range(n) for r in router.shadow_copies())
    assert copies["always"] == n
    assert abs(copies["tenth"] - n * 0.1) < _five_sigma(n, 0.1)
    assert router.describe().endswith("always clf v5 (copy 100%), tenth clf v6 (copy 10%)")


def test_a_live_variant_without_weight_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput, match=r"churn.*revision 2.*\('b', 0\)"):
        Router("churn", 2, [_route("a", 1.0), _route("b", 0)], [], None)


def test_seeding_the_random_module_does_not_fix_the_choices() -> None:
    # A model or library that calls random.seed() in the serving process (every predict, say)
    # must not make every request land on the same variant.
    router = Router(
        "churn", 1, [_route("a", 0.5), _route("b", 0.5, 2)], [_route("s", 0.5, 3)], None
    )
    runs = []
    for _ in range(2):
        random.seed(0)
        runs.append(
            [router.choose({}).variant for _ in range(64)]
            + [len(router.shadow_copies()) for _ in range(64)]
        )
    assert runs[0] != runs[1]


def test_listing_the_same_variants_in_another_order_moves_no_sticky_caller() -> None:
    a, b, c = _route("a", 0.5), _route("b", 0.3, 2), _route("c", 0.2, 3)
    before = Router("churn", 1, [a, b, c], [], "x-user")
    after = Router("churn", 2, [c, a, b], [], "x-user")
    users = [f"u{i}" for i in range(2000)]
    assert all(
        before.choose({"x-user": u}).variant == after.choose({"x-user": u}).variant for u in users
    )
    assert [r.variant for r in after.live] == ["c", "a", "b"]  # as the policy lists them
