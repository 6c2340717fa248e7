"""A step call's cache key, and the words for why it missed.

The key is the BLAKE3 digest of the canonical JSON of its parts: the code fingerprint of the
step function (``{qualname: digest}`` of it and the project code it calls), the digests of the
parameters given by value, and the digests of the inputs that came from earlier steps. The parts
are recorded with the step run (``key_parts``), so the next run can say what changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from blake3 import blake3

__all__ = ["KeyParts", "cache_key", "miss_reason", "short_value"]

KeyParts = dict[str, Any]  # {"code": {...}, "params": {...}, "inputs": {...}, "values": {...}}

_SHOWN_VALUE_CHARS = 80  # parameter values longer than this are not kept for the miss reason
_SHOWN_NAMES = 10  # changed names listed in a miss reason before "and N more"


def cache_key(parts: Mapping[str, Any]) -> str:
    """BLAKE3 of the key-bearing parts (``values`` only feeds the miss reason)."""
    keyed = {k: parts.get(k, {}) for k in ("code", "params", "inputs")}
    canonical = json.dumps(keyed, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return blake3(canonical.encode()).hexdigest()


def short_value(value: object) -> str | None:
    """A parameter's value as shown in a miss reason, or None when it is long or not JSON."""
    try:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= _SHOWN_VALUE_CHARS else None


def miss_reason(mine: Mapping[str, Any], before: Mapping[str, Any] | None, since: str) -> str:
    """Why a step call ran: what differs from the earlier step run's parts (``since`` its id)."""
    if not before:
        return "no earlier run"
    changes: list[str] = []
    code_now, code_then = mine.get("code", {}), before.get("code", {})
    changed_code = sorted(
        name for name in {*code_now, *code_then} if code_now.get(name) != code_then.get(name)
    )
    if changed_code:
        changes.append(f"code changed: {_few(changed_code)} since {since}")
    params_now, params_then = mine.get("params", {}), before.get("params", {})
    values_now, values_then = mine.get("values", {}), before.get("values", {})
    for name in sorted({*params_now, *params_then}):
        if params_now.get(name) == params_then.get(name):
            continue
        if name not in params_then:
            changes.append(f"parameter added: {name}")
        elif name not in params_now:
            changes.append(f"parameter removed: {name}")
        elif name in values_now and name in values_then:
            changes.append(f"parameter changed: {name} {values_then[name]} -> {values_now[name]}")
        else:
            changes.append(f"parameter changed: {name}")
    inputs_now, inputs_then = mine.get("inputs", {}), before.get("inputs", {})
    changed_inputs = sorted(
        name
        for name in {*inputs_now, *inputs_then}
        if inputs_now.get(name) != inputs_then.get(name)
    )
    if changed_inputs:
        changes.append(f"input changed: {_few(changed_inputs)}")
    if not changes:
        # Same key as before, yet no completed step run holds it: the earlier one failed or its
        # outputs' runs were deleted.
        return f"no cached outputs: step run {since} failed or its run was deleted"
    if len(changes) > _SHOWN_NAMES:
        changes = [*changes[:_SHOWN_NAMES], f"and {len(changes) - _SHOWN_NAMES} more changes"]
    return "; ".join(changes)


def _few(names: list[str]) -> str:
    """Names joined, the first few only (a reason stays a line, not a listing)."""
    shown = ", ".join(names[:_SHOWN_NAMES])
    more = len(names) - _SHOWN_NAMES
    return shown if more <= 0 else f"{shown} and {more} more"
