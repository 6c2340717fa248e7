"""What applying validated specs changes: versions, pins, diffs and breaking changes.

Pure functions over the newest stored versions (a snapshot read in the caller's transaction):
the definition store plans with them before showing a plan and again, inside its write
transaction, before applying it, so what is written matches what is stored at that moment.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .entities import Change, FeatureDefinition
from .spec import KINDS, Kind, spec_digest

__all__ = ["Planned", "breaking_reasons", "plan_changes", "spec_diff"]

Newest = Mapping[tuple[str, str], FeatureDefinition]
_VIEWS: tuple[Kind, ...] = ("feature_view", "on_demand_feature_view")


@dataclass(frozen=True)
class Planned:
    """One definition of a plan: its final spec (a service's with ``pins``) and digest."""

    change: Change
    spec: Mapping[str, Any]
    digest: str


def spec_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, a: str, b: str) -> str:
    """A unified diff of two specs as indented canonical JSON (sorted keys)."""

    def lines(spec: Mapping[str, Any] | None) -> list[str]:
        if spec is None:
            return []
        return json.dumps(spec, sort_keys=True, indent=2).splitlines(keepends=True)

    return "".join(difflib.unified_diff(lines(old), lines(new), fromfile=a, tofile=b))


def breaking_reasons(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Why replacing ``old`` by ``new`` breaks readers (empty: it does not): a changed type, a
    removed feature, changed join keys, or a view's changed entities."""
    reasons: list[str] = []
    if new["kind"] == "entity":
        before = [(k["name"], k["dtype"]) for k in old["join_keys"]]
        after = [(k["name"], k["dtype"]) for k in new["join_keys"]]
        if before != after:
            reasons.append(f"join keys change {_keys(before)} -> {_keys(after)}")
        return tuple(reasons)
    if new["kind"] == "feature_view" and old["entities"] != new["entities"]:
        reasons.append(f"entities change {old['entities']} -> {new['entities']}")
    if new["kind"] in _VIEWS:
        after_types = {f["name"]: f["dtype"] for f in new["features"]}
        for feature in old["features"]:
            name, dtype = feature["name"], feature["dtype"]
            if name not in after_types:
                reasons.append(f"feature {name!r} is removed")
            elif after_types[name] != dtype:
                reasons.append(f"feature {name!r} changes type {dtype} -> {after_types[name]}")
    return tuple(reasons)


def _keys(keys: Sequence[tuple[str, str]]) -> str:
    return "(" + ", ".join(f"{name} {dtype}" for name, dtype in keys) + ")"


def plan_changes(specs: Sequence[Mapping[str, Any]], newest: Newest) -> list[Planned]:
    """The plan of validated ``specs`` (dependency order) against the ``newest`` versions.

    Services get ``pins``: the versions, after this apply, of the views they pick and of the
    source views of their on-demand views. A stored service not in ``specs`` whose pins would
    change is planned as an update too, so it keeps serving the views' newest versions.
    """
    planned: list[Planned] = []
    after: dict[tuple[str, str], int] = {key: d.version for key, d in newest.items()}
    given = {(spec["kind"], spec["name"]) for spec in specs}

    def add(spec: Mapping[str, Any]) -> None:
        key = (spec["kind"], spec["name"])
        old = newest.get(key)
        digest = spec_digest(spec)
        kind: Kind = spec["kind"]
        if old is not None and old.digest == digest:
            change = Change(kind, spec["name"], "unchanged", old.version, old.version)
        elif old is None:
            diff = spec_diff(None, spec, "", f"{spec['name']}@v1")
            change = Change(kind, spec["name"], "add", None, 1, diff)
            after[key] = 1
        else:
            to = old.version + 1
            diff = spec_diff(old.spec, spec, f"{old.name}@v{old.version}", f"{old.name}@v{to}")
            change = Change(
                kind, spec["name"], "update", old.version, to, diff,
                breaking_reasons(old.spec, spec),
            )  # fmt: skip
            after[key] = to
        planned.append(Planned(change, spec, digest))

    for spec in specs:
        if spec["kind"] != "feature_service":
            add(spec)
    services = [dict(s) for s in specs if s["kind"] == "feature_service"]
    services += [
        {k: v for k, v in d.spec.items() if k != "pins"}
        for key, d in sorted(newest.items())
        if d.kind == "feature_service" and key not in given
    ]
    for service in services:
        pins = _pins(service, newest, specs, after)
        if (service["kind"], service["name"]) not in given:
            old = newest[(service["kind"], service["name"])]
            if old.spec.get("pins") == pins:
                continue  # a stored service none of whose views change: not part of the plan
            _check_still_served(service, specs)
        add({**service, "pins": pins})
    order = {kind: i for i, kind in enumerate(KINDS)}
    planned.sort(key=lambda p: order[p.change.kind])
    return planned


def _pins(
    service: Mapping[str, Any], newest: Newest, specs: Sequence[Mapping[str, Any]],
    after: Mapping[tuple[str, str], int],
) -> dict[str, int]:  # fmt: skip
    """The versions (after this apply) of the views a service reads, by view name."""
    batch = {(s["kind"], s["name"]): s for s in specs}
    pins: dict[str, int] = {}
    for pick in service["features"]:
        name = pick["view"]
        for kind in _VIEWS:
            if (kind, name) not in after:
                continue
            pins[name] = after[(kind, name)]
            if kind == "on_demand_feature_view":
                odfv = batch.get((kind, name)) or newest[(kind, name)].spec
                for source in odfv["sources"]:
                    pins[source] = after[("feature_view", source)]
    return dict(sorted(pins.items()))


def _check_still_served(service: Mapping[str, Any], specs: Sequence[Mapping[str, Any]]) -> None:
    """A stored service re-pinned to changed views must still find the features it picks."""
    batch = {s["name"]: s for s in specs if s["kind"] in _VIEWS}
    for pick in service["features"]:
        view = batch.get(pick["view"])
        if view is None:
            continue
        have = {f["name"] for f in view["features"]}
        gone = [f for f in pick["features"] if f != "*" and f not in have]
        if gone:
            raise InvalidInput(
                f"feature service {service['name']!r} picks {', '.join(map(repr, gone))} of "
                f"view {pick['view']!r}, which this apply removes; apply the service without "
                "them in the same apply"
            )
