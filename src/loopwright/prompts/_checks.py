"""Checks of what a prompt version is made of, before anything is written."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput
from ..registry._models import check_policy
from ..registry.entities import ApprovalPolicy
from ..store import limits
from ._template import canonical_json

__all__ = ["check_document", "check_name", "check_prompt_policy"]

# MLflow's PROMPT_NAME_RULE: letters, digits, '_', '.', '-' (no '/', '@', ':' of URIs).
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def check_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= limits.PROMPT_NAME
        or not _NAME.fullmatch(name)
        or not name.strip(".")
    ):
        raise InvalidInput(
            f"prompt name {name!r} must be 1-{limits.PROMPT_NAME} letters, digits, '_', '.' or "
            "'-', not only dots (e.g. 'support-answer')"
        )
    return name


def check_document(what: str, value: object) -> dict[str, Any] | None:
    """A JSON object (model config, response format) as stored; None stays None.

    A pydantic model class is accepted for a response format, as MLflow accepts it: its JSON
    schema is stored.
    """
    if value is None:
        return None
    schema = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema):
        value = schema()
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be a mapping (a JSON object), not {type(value).__name__}")
    try:
        text = canonical_json(dict(value))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} must be plain JSON (no NaN, no other objects): {exc}") from None
    if len(text) > limits.REGISTRY_TAG_VALUE:
        raise InvalidInput(
            f"{what} has {len(text)} characters of JSON; the cap is {limits.REGISTRY_TAG_VALUE}"
        )
    checked: dict[str, Any] = json.loads(text)
    return checked


def check_prompt_policy(policy: object) -> ApprovalPolicy:
    """A policy for a prompt: the registry's checks, and only alias targets (prompts have no
    stages and take no traffic themselves)."""
    checked = check_policy(policy, gates=True)
    for rule in checked.rules:
        if not rule.target.startswith("alias:"):
            raise InvalidInput(
                f"a prompt's policy protects aliases only ('alias:<name>'), not {rule.target!r}"
            )
    return checked
