"""A trace monitor's settings checked at the edge, and its stored form.

A trace monitor is a ``monitors`` row like any other: ``spec_json`` holds the common settings
(window, schedule, tests, thresholds, alert rules, webhook) under the same keys, plus
``"kind": "traces"`` and a ``"traces"`` document with what is particular to LLM traffic. The
``deployment`` column holds what the monitor watches in one word (the deployment, else the
gateway route, else the prompt's name), so listings by deployment find it.

Every check raises :class:`~loopwright.errors.InvalidInput` naming the field and the fix.

Example:
    >>> check_scorer_spec('builtin:max_length:{"limit": 800}')
    ('max_length', {'limit': 800})
    >>> window_bounds("0/1000")
    (0, 1000)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .._numbers import is_number
from ..errors import InvalidInput
from ..store import limits
from .entities import AlertRule, Monitor
from .llm_entities import AlertAction, TraceMonitor, TraceSelection

__all__ = [
    "FEATURES",
    "KIND",
    "check_actions",
    "check_baseline",
    "check_scorer_spec",
    "check_selection",
    "is_trace_spec",
    "scorer_column",
    "trace_monitor",
    "traces_document",
    "window_bounds",
]

KIND = "traces"
# The per-trace figures compared with the baseline (scores come as ``score.<scorer name>``).
FEATURES = (
    "input_chars",
    "output_chars",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
)
MAX_SCORERS = 20
MAX_ACTIONS = 10
MAX_PER_PASS = 10_000
MAX_WINDOW_TRACES = 200_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_PROMPT = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:/(?P<version>[1-9][0-9]*)|@(?P<alias>[A-Za-z0-9][A-Za-z0-9._-]*))?"
)
_SCORER = re.compile(r"(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255})(?:/(?P<version>[1-9][0-9]*))?")
_EXPERIMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_trace_spec(spec: Mapping[str, Any]) -> bool:
    """Whether a stored monitor spec is a trace monitor's."""
    return spec.get("kind") == KIND


def check_selection(selection: object) -> TraceSelection:
    if not isinstance(selection, TraceSelection):
        raise InvalidInput(
            f"traces {selection!r} must be a TraceSelection (e.g. "
            "TraceSelection(gateway_route='support-chat', prompt='support@production'))"
        )
    for field, value in (
        ("gateway_route", selection.gateway_route),
        ("deployment", selection.deployment),
    ):
        if value is not None and (not isinstance(value, str) or not _NAME.fullmatch(value)):
            raise InvalidInput(
                f"{field} {str(value)[:80]!r} must be a name of letters, digits, '.', '_' or '-'"
            )
    if selection.prompt is not None and (
        not isinstance(selection.prompt, str) or not _PROMPT.fullmatch(selection.prompt)
    ):
        raise InvalidInput(
            f"prompt {str(selection.prompt)[:80]!r} must be NAME, NAME/VERSION or NAME@ALIAS "
            "(e.g. 'support@production')"
        )
    if isinstance(selection.experiment_ids, str) or not all(
        isinstance(e, str) and _EXPERIMENT.fullmatch(e) for e in selection.experiment_ids
    ):
        raise InvalidInput(
            f"experiment_ids {selection.experiment_ids!r} must be a list of experiment ids"
        )
    if not (
        selection.gateway_route
        or selection.prompt
        or selection.deployment
        or selection.experiment_ids
    ):
        raise InvalidInput(
            "a trace monitor needs a selection: a gateway route, a prompt (NAME, NAME/3, "
            "NAME@ALIAS), a deployment or experiment ids"
        )
    return TraceSelection(
        selection.gateway_route,
        selection.prompt,
        selection.deployment,
        tuple(dict.fromkeys(selection.experiment_ids)),
    )


def prompt_parts(prompt: str) -> tuple[str, int | None, str | None]:
    """``(name, version, alias)`` of a checked selection's prompt."""
    match = _PROMPT.fullmatch(prompt)
    assert match is not None
    version = match["version"]
    return match["name"], None if version is None else int(version), match["alias"]


def check_scorer_spec(spec: object) -> tuple[str, dict[str, Any]] | str:
    """A built-in as ``(name, arguments)``, or a registered scorer's ``name[/version]``."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInput(
            f"scorer {spec!r} must be a registered scorer ('correctness/2') or a built-in "
            "('builtin:json_valid', 'builtin:max_length:{\"limit\": 800}')"
        )
    if spec.startswith("builtin:"):
        from ..evaluation.builtins import BUILTINS

        name, _, args = spec.removeprefix("builtin:").partition(":")
        if name not in BUILTINS:
            raise InvalidInput(
                f"scorer {spec!r}: no built-in {name!r}; built-ins: {', '.join(sorted(BUILTINS))}"
            )
        try:
            arguments = json.loads(args) if args else {}
        except ValueError as exc:
            raise InvalidInput(
                f"scorer {spec!r}: the arguments after '{name}:' must be a JSON object ({exc})"
            ) from None
        if not isinstance(arguments, dict):
            raise InvalidInput(f"scorer {spec!r}: the arguments must be a JSON object")
        return name, arguments
    if not _SCORER.fullmatch(spec):
        raise InvalidInput(
            f"scorer {spec[:80]!r} must be a registered scorer's NAME or NAME/VERSION, or "
            "'builtin:NAME[:{json arguments}]'"
        )
    return spec


def scorer_column(name: str) -> str:
    """The drift column of a scorer's values."""
    return f"score.{name}"


def check_baseline(baseline: object, selection: TraceSelection) -> str:
    if not isinstance(baseline, str):
        raise InvalidInput(f"baseline {baseline!r} must be a string")
    if baseline == "approved":
        if selection.prompt is None or "@" not in selection.prompt:
            raise InvalidInput(
                "baseline 'approved' follows a prompt alias to the evaluation run of the version "
                "it points at: select the traces by prompt NAME@ALIAS (e.g. "
                "prompt='support@production'), or give baseline 'evaluation:RUN_ID' or "
                "'window:SINCE/UNTIL'"
            )
        return baseline
    kind, _, rest = baseline.partition(":")
    if kind == "evaluation" and re.fullmatch(r"[0-9a-f]{32}", rest):
        return baseline
    if kind == "window":
        window_bounds(rest)  # raises naming the form
        return baseline
    raise InvalidInput(
        f"baseline {baseline[:100]!r} must be 'approved', 'evaluation:RUN_ID' (32 hex) or "
        "'window:SINCE/UNTIL' (ISO times or UTC ms, e.g. "
        "'window:2026-12-01T00:00:00Z/2026-12-02T00:00:00Z')"
    )


def window_bounds(text: str) -> tuple[int, int]:
    """``SINCE/UNTIL`` (ISO 8601 times or UTC ms) as ``(start, end)`` in UTC ms."""
    since, slash, until = text.partition("/")
    if not slash:
        raise InvalidInput(
            f"baseline window {text[:100]!r} must be SINCE/UNTIL (ISO times or UTC ms, e.g. "
            "'2026-12-01T00:00:00Z/2026-12-02T00:00:00Z')"
        )
    start, end = _moment(since), _moment(until)
    if start >= end:
        raise InvalidInput(f"baseline window {text[:100]!r} ends before it starts")
    return start, end


def _moment(text: str) -> int:
    text = text.strip()
    if is_number(text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"baseline time {text[:60]!r} is neither UTC ms nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def check_actions(actions: object, selection: TraceSelection) -> list[AlertAction]:
    if isinstance(actions, str | bytes) or not isinstance(actions, Sequence):
        raise InvalidInput(f"actions {actions!r} must be a list of AlertAction")
    if len(actions) > MAX_ACTIONS:
        raise InvalidInput(f"at most {MAX_ACTIONS} actions, got {len(actions)}")
    checked = []
    for action in actions:
        if not isinstance(action, AlertAction):
            raise InvalidInput(
                f"action {action!r} must be an AlertAction (e.g. AlertAction('rollback', "
                "alias='production'))"
            )
        if action.kind not in ("reevaluate", "rollback"):
            raise InvalidInput(f"action kind {action.kind!r} must be 'reevaluate' or 'rollback'")
        if action.on is not None:
            AlertRule.parse(action.on)
        alias = action.alias
        if selection.prompt is None:
            raise InvalidInput(
                f"a {action.kind} action acts on the monitored prompt: select the traces by "
                "prompt NAME@ALIAS"
            )
        name, _, selected_alias = prompt_parts(selection.prompt)
        alias = alias or selected_alias
        if alias is None:
            raise InvalidInput(
                f"a {action.kind} action needs the prompt alias it acts on: give alias=... or "
                f"select prompt '{name}@ALIAS'"
            )
        if action.kind == "reevaluate" and not (
            action.dataset and action.endpoint and action.model
        ):
            raise InvalidInput(
                "a reevaluate action needs dataset (an evaluation dataset), endpoint (an "
                "OpenAI-compatible base URL, e.g. the gateway's http://host:8080/v1) and model "
                "(the model or gateway route to call)"
            )
        if action.endpoint is not None and not action.endpoint.startswith(("http://", "https://")):
            raise InvalidInput(f"action endpoint {action.endpoint[:100]!r} must be an http(s) URL")
        rule = None if action.on is None else AlertRule.parse(action.on).key
        checked.append(
            AlertAction(action.kind, rule, alias, action.dataset, action.endpoint, action.model)
        )
    return checked


def check_rate(sample_rate: object) -> float:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, int | float)
        or not math.isfinite(sample_rate)
        or not 0 < sample_rate <= 1
    ):
        raise InvalidInput(f"sample_rate {sample_rate!r} must be a number in (0, 1]")
    return float(sample_rate)


def check_count(what: str, value: object, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidInput(f"{what} {value!r} must be a whole number from 1 to {most}")
    return value


def check_trace_thresholds(thresholds: object) -> dict[str, float]:
    """Thresholds by TEST or TEST:COLUMN, where columns are this kind's (``score.x``,
    ``latency_ms`` ...)."""
    from ._monitors import known_tests

    if thresholds is None:
        return {}
    if not isinstance(thresholds, Mapping):
        raise InvalidInput(
            f"thresholds {thresholds!r} must map TEST or TEST:COLUMN to a number, e.g. "
            "{'psi': 0.2, 'psi:latency_ms': 0.3}"
        )
    known = known_tests()
    checked = {}
    for key, value in thresholds.items():
        test = key.partition(":")[0] if isinstance(key, str) else None
        if test not in known or len(str(key)) > limits.KEY:
            raise InvalidInput(
                f"threshold key {str(key)[:80]!r} must be TEST or TEST:COLUMN (e.g. 'psi' or "
                f"'psi:score.correctness'); tests: {', '.join(known)}"
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"threshold {key!r}: {value!r} is not a finite number")
        checked[key] = float(value)
    return checked


def traces_document(
    selection: TraceSelection,
    *,
    sample_rate: float,
    scorers: Sequence[str],
    baseline: str,
    actions: Sequence[AlertAction],
    max_scored_per_pass: int,
    max_window_traces: int,
) -> dict[str, Any]:
    """The ``"traces"`` part of the stored spec."""
    return {
        "selection": selection.to_dict(),
        "sample_rate": sample_rate,
        "scorers": list(scorers),
        "baseline": baseline,
        "actions": [a.to_dict() for a in actions],
        "max_scored_per_pass": max_scored_per_pass,
        "max_window_traces": max_window_traces,
    }


def watched(selection: TraceSelection) -> str:
    """The one word the ``deployment`` column holds for a trace monitor."""
    if selection.deployment:
        return selection.deployment
    if selection.gateway_route:
        return selection.gateway_route
    if selection.prompt:
        return prompt_parts(selection.prompt)[0][: limits.DEPLOYMENT_NAME]
    return "traces"


def trace_monitor(monitor: Monitor, spec: Mapping[str, Any]) -> TraceMonitor:
    """A stored trace monitor from its :class:`Monitor` and stored spec."""
    from .llm_codec import trace_monitor_of

    return trace_monitor_of(monitor, spec[KIND])
