"""Route configurations: the deployments' split rules over targets, and every refusal naming
the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from loopwright.errors import InvalidInput
from loopwright.gateway.config import check_route, check_route_name, config_to_dict


def _target(name: str = "primary", **extra: Any) -> dict[str, Any]:
    return {"name": name, "base_url": "http://127.0.0.1:8000/v1/", "model": "m", **extra}


def test_a_full_configuration_round_trips() -> None:
    doc = {
        "targets": [_target("a", weight=3, price={"input_per_1m": 1}), _target("b", weight=1)],
        "sticky_header": "X-User",
        "fallbacks": [_target("backup", timeout_s=5)],
        "retries": 3,
        "limits": {"requests_per_minute": 10, "usd_per_day": 2.5},
        "guardrails": [
            {"check": "regex", "params": {"patterns": ["a+"]}, "mode": "annotate"},
            {"check": "json_schema", "params": {"schema": {"type": "object"}}},
        ],
        "min_role": "editor",
        "description": "two models",
    }
    config = check_route(doc)
    assert config.strategy == "ab" and [t.weight for t in config.targets] == [0.75, 0.25]
    assert config.targets[0].base_url == "http://127.0.0.1:8000/v1"  # trailing slash dropped
    assert config.targets[0].price is not None and config.targets[0].price.output_per_1m == 0
    again = check_route(config_to_dict(config))
    assert config_to_dict(again) == config_to_dict(config)
    assert "_compiled" not in str(config_to_dict(config))


def test_the_split_is_the_deployments_policy() -> None:
    assert check_route({"targets": [_target()]}).strategy == "primary"
    canary = check_route({"targets": [_target(), _target("canary", weight=0.1)]})
    assert (canary.strategy, [t.weight for t in canary.targets]) == ("canary", [0.9, 0.1])
    with pytest.raises(InvalidInput, match=r"canary weight 2\.0 must be between 0 and 1"):
        check_route({"targets": [_target(), _target("canary", weight=2)]})
    with pytest.raises(InvalidInput, match="sticky header keeps callers on one A/B"):
        check_route({"targets": [_target()], "sticky_header": "X-User"})


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "at least one target"),
        ({"targets": "x"}, "must be a list of targets"),
        ({"targets": [_target()], "extra": 1}, r"unknown field\(s\) \['extra'\]"),
        ({"targets": [_target(), _target()]}, "unique across targets and fallbacks"),
        ({"targets": [_target(base_url="file:///etc/passwd")]}, "http:// or https://"),
        ({"targets": [_target(base_url="http://k:s@h/v1")]}, "carries credentials"),
        ({"targets": [_target(base_url="http://h/v1?key=s")]}, "no query or fragment"),
        ({"targets": [_target(name="../x")]}, "letters, digits"),
        ({"targets": [_target(model="")]}, "model must be"),
        ({"targets": [_target(secret="a b")]}, "secret name"),
        ({"targets": [_target(timeout_s=0)]}, "timeout_s must be between"),
        ({"targets": [_target(weight=True)]}, "weight must be a number"),
        ({"targets": [_target()], "retries": 11}, "retries must be a whole number"),
        ({"targets": [_target()], "limits": {"requests_per_minute": 0}}, "from 1 to"),
        ({"targets": [_target()], "limits": {"rpm": 1}}, "unknown field"),
        ({"targets": [_target()], "min_role": "root"}, "min_role 'root'"),
        ({"targets": [_target()], "guardrails": [{"check": "regex"}]}, "params.patterns"),
        (
            {
                "targets": [_target()],
                "guardrails": [{"check": "regex", "params": {"patterns": ["("]}}],
            },
            "does not compile",
        ),
        ({"targets": [_target()], "guardrails": [{"check": "pii", "stage": "mid"}]}, "stage"),
        ({"targets": [_target()], "guardrails": [{"check": "pii", "mode": "log"}]}, "mode"),
        (
            {
                "targets": [_target()],
                "guardrails": [{"check": "json_schema", "stage": "pre", "params": {"schema": {}}}],
            },
            "use stage 'post'",
        ),
        (
            {
                "targets": [_target()],
                "guardrails": [{"check": "json_schema", "params": {"schema": {"type": 5}}}],
            },
            "not a valid JSON Schema",
        ),
        ({"targets": [_target()], "guardrails": [{"check": "length"}]}, "params.max_chars"),
        (
            {
                "targets": [_target()],
                "guardrails": [{"check": "pii", "params": {"kinds": ["dna"]}}],
            },
            "pii kinds",
        ),
    ],
)
def test_bad_configurations_name_the_fix(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_route(doc)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 101, None, "a\x00"])
def test_route_names(name: Any) -> None:
    with pytest.raises(InvalidInput, match="route name"):
        check_route_name(name)
    assert check_route_name("meta/llama-3:8b") == "meta/llama-3:8b"
