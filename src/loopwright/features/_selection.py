"""What a feature selection resolves to: the view versions, features and columns to fetch.

A :class:`Selection` is what the offline store, the online store and serving need to know about
a selection (a feature service ref or feature refs), resolved once against the stored
definitions by :meth:`DefinitionStore.resolve <loopwright.features.definition_store.
DefinitionStore.resolve>`: plain frozen data, so a resolved selection can be cached and shared.

A view appears at most twice in ``views``: once with the features asked, and once ``hidden``
with its other features when an on-demand view reads it (an on-demand view gets every feature
of its source views, under the plain feature names).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .entities import FeatureDefinition

__all__ = ["OnDemandPick", "Selection", "ViewPick", "select"]


@dataclass(frozen=True)
class ViewPick:
    """The features picked from one feature view version."""

    name: str
    version: int
    spec: Mapping[str, Any]
    join_keys: tuple[tuple[str, str], ...]  # (column, dtype) of all its entities, in order
    features: tuple[tuple[str, str], ...]  # (feature, dtype) picked, in the order asked
    columns: tuple[str, ...]  # output column per picked feature
    defaults: Mapping[str, Any]  # feature -> declared default (only those declared)
    ttl_seconds: int | None  # None: unlimited
    source: Mapping[str, Any]  # the source spec
    hidden: bool = False  # fetched only as input of on-demand views


@dataclass(frozen=True)
class OnDemandPick:
    """The features picked from one on-demand feature view version."""

    name: str
    version: int
    spec: Mapping[str, Any]
    features: tuple[tuple[str, str], ...]
    columns: tuple[str, ...]
    request_fields: tuple[tuple[str, str], ...]
    sources: tuple[str, ...]  # view names


@dataclass(frozen=True)
class Selection:
    """A resolved selection: views (hidden ones only feed on-demand views), on-demand views,
    and the output's columns, join keys and request fields, each in order of first use."""

    service: str | None  # "svc@v2" or None
    views: tuple[ViewPick, ...]
    on_demand: tuple[OnDemandPick, ...]
    feature_refs: tuple[str, ...]  # view:feature, as asked (expanded *)
    columns: tuple[str, ...]  # output feature columns in order (no hidden)
    join_keys: tuple[tuple[str, str], ...]  # union over views, in order of first use
    request_fields: tuple[tuple[str, str], ...]


# (name, version or None for the newest) -> the feature view or on-demand view version.
ViewLookup = Callable[[str, "int | None"], "FeatureDefinition"]
# the entity version of a name at the time (the newest).
EntityLookup = Callable[[str], "FeatureDefinition"]


def parse_refs(features: Sequence[str]) -> list[tuple[str, str]]:
    """Feature refs ``view:feature`` / ``view:*`` as (view, feature) pairs."""
    if isinstance(features, str) or not features:
        raise InvalidInput("features must be a service ref or a non-empty list of view:feature")
    pairs = []
    for ref in features:
        view, sep, feature = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        if not sep or not view or not feature:
            raise InvalidInput(
                f"feature ref {ref!r} is not view:feature (or view:* for all of a view's)"
            )
        pairs.append((view, feature))
    return pairs


def select(
    picks: Sequence[tuple[str, Sequence[str]]], *, service: str | None,
    pins: Mapping[str, int] | None, full_feature_names: bool, view: ViewLookup,
    entity: EntityLookup,
) -> Selection:  # fmt: skip
    """The selection of ``picks`` ((view name, features or ``["*"]``), in the order asked).

    Views are taken at their ``pins`` (a service's) or newest. Raises InvalidInput for an
    unknown feature or two features sharing an output column (naming both refs and the fix),
    NotFound (from the lookups) for an unknown view.
    """
    asked: dict[str, list[tuple[str, str]]] = {}  # view -> (feature, dtype), in order asked
    definitions: dict[str, FeatureDefinition] = {}
    order: list[str] = []
    for name, features in picks:
        definition = definitions.get(name) or view(name, (pins or {}).get(name))
        definitions[name] = definition
        fields = {f["name"]: f for f in definition.spec["features"]}
        wanted = list(fields) if "*" in features else list(features)
        chosen = asked.setdefault(name, [])
        if name not in order:
            order.append(name)
        for feature in wanted:
            if feature not in fields:
                raise InvalidInput(
                    f"view {definition.ref} has no feature {feature!r}; it has {', '.join(fields)}"
                )
            if all(feature != f for f, _ in chosen):
                chosen.append((feature, fields[feature]["dtype"]))
    feature_refs = tuple(f"{name}:{f}" for name in order for f, _ in asked[name])
    column_of = {
        ref: (ref.replace(":", "__", 1) if full_feature_names else ref.split(":", 1)[1])
        for ref in feature_refs
    }
    _check_collisions(column_of)

    on_demand: list[OnDemandPick] = []
    needed: dict[str, None] = {}  # source views of on-demand views, in order of first use
    for name in order:
        d = definitions[name]
        if d.kind != "on_demand_feature_view":
            continue
        on_demand.append(
            OnDemandPick(
                name=name, version=d.version, spec=d.spec, features=tuple(asked[name]),
                columns=tuple(column_of[f"{name}:{f}"] for f, _ in asked[name]),
                request_fields=tuple((f["name"], f["dtype"]) for f in d.spec["request_schema"]),
                sources=tuple(d.spec["sources"]),
            )
        )  # fmt: skip
        needed.update(dict.fromkeys(d.spec["sources"]))
    views: list[ViewPick] = []
    for name in order:
        if definitions[name].kind == "feature_view":
            columns = [column_of[f"{name}:{f}"] for f, _ in asked[name]]
            views.append(_view_pick(definitions[name], asked[name], columns, False, entity))
    for name in needed:
        d = definitions.get(name) or view(name, (pins or {}).get(name))
        shown = {f for f, _ in asked.get(name, [])}
        rest = [(f["name"], f["dtype"]) for f in d.spec["features"] if f["name"] not in shown]
        if rest:
            views.append(_view_pick(d, rest, [f for f, _ in rest], True, entity))
    join_keys: dict[str, str] = {}
    for pick in views:
        for key, dtype in pick.join_keys:
            if join_keys.setdefault(key, dtype) != dtype:
                raise InvalidInput(
                    f"join key {key!r} is {join_keys[key]} in one view and {dtype} in view "
                    f"{pick.name!r}; entities sharing a join key must agree on its type"
                )
    request: dict[str, str] = {}
    for odfv in on_demand:
        for field, dtype in odfv.request_fields:
            if request.setdefault(field, dtype) != dtype:
                raise InvalidInput(
                    f"request field {field!r} has two types ({request[field]}, {dtype}) in "
                    f"on-demand view {odfv.name!r} and another"
                )
    return Selection(
        service=service,
        views=tuple(views),
        on_demand=tuple(on_demand),
        feature_refs=feature_refs,
        columns=tuple(column_of[ref] for ref in feature_refs),
        join_keys=tuple(join_keys.items()),
        request_fields=tuple(request.items()),
    )


def _check_collisions(column_of: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for ref, column in column_of.items():
        if column in seen:
            raise InvalidInput(
                f"features {seen[column]} and {ref} would both be column {column!r}; pass "
                "full_feature_names=True (columns view__feature) or pick one of them"
            )
        seen[column] = ref


def _view_pick(
    d: FeatureDefinition, features: Sequence[tuple[str, str]], columns: Sequence[str],
    hidden: bool, entity: EntityLookup,
) -> ViewPick:  # fmt: skip
    declared = {f["name"]: f.get("default") for f in d.spec["features"]}
    keys = tuple(
        (key["name"], key["dtype"])
        for name in d.spec["entities"]
        for key in entity(name).spec["join_keys"]
    )
    return ViewPick(
        name=d.name,
        version=d.version,
        spec=d.spec,
        join_keys=keys,
        features=tuple(features),
        columns=tuple(columns),
        defaults={f: declared[f] for f, _ in features if declared.get(f) is not None},
        ttl_seconds=d.spec.get("ttl_seconds") or None,
        source=d.spec["source"],
        hidden=hidden,
    )
