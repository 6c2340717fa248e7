"""The gateway's split is the deployments' rule: weights, layout by name, sticky hashes."""

from __future__ import annotations

import random
from collections import Counter

from loopwright.gateway._split import Split
from loopwright.gateway.config import check_route
from loopwright.serving.routing import sticky_point


def test_weights_give_the_proportions() -> None:
    targets = [
        {"name": "primary", "base_url": "http://a/v1", "model": "a"},
        {"name": "canary", "base_url": "http://b/v1", "model": "b", "weight": 0.2},
    ]
    split = Split("chat", check_route({"targets": targets}), uniform=random.Random(7).random)
    counts = Counter(split.choose({}).name for _ in range(10_000))
    assert abs(counts["canary"] / 10_000 - 0.2) < 0.02


def test_sticky_callers_land_where_their_hash_says() -> None:
    targets = [
        {"name": "a", "base_url": "http://a/v1", "model": "a", "weight": 1},
        {"name": "b", "base_url": "http://b/v1", "model": "b", "weight": 1},
    ]
    config = check_route({"targets": targets, "sticky_header": "X-User"})
    split, other = Split("chat", config), Split("chat", config)
    for user in (f"u{i}" for i in range(200)):
        chosen = split.choose({"x-user": user}).name
        assert other.choose({"x-user": user}).name == chosen  # any process agrees
        assert chosen == ("a" if sticky_point("chat", user) < 0.5 else "b")
    alone = [{**targets[0], "name": "primary"}]
    assert Split("chat", check_route({"targets": alone})).choose({}).name == "primary"
