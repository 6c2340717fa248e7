"""What a feature selection resolves to: the view versions, features and columns to fetch.

A :class:`Selection` is what the offline store, the online store and serving need to know about
a selection (a feature service ref or feature refs), resolved once against the stored
definitions by :meth:`DefinitionStore.resolve <loopwright.features.definition_store.
DefinitionStore.resolve>`: plain frozen data, so a resolved selection can be cached and shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OnDemandPick", "Selection", "ViewPick"]


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
