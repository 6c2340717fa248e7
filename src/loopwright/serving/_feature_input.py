"""Features at inference: a request carrying only entity keys, completed from the online store.

A model version tagged ``loopwright.feature_service = svc@vN`` (the service its training set
came from, copied from the run at registration) is served so that a request may carry only the
service's entity join keys (plus the request fields its on-demand views read). Before the
model runs, :meth:`FeatureInput.complete` fetches the service's features for all the request's
rows in one online lookup (``Features.get_online_features``: one round trip per view, on-demand
features computed there by the same code as offline) and adds them as columns; the signature
check then puts the columns in the model's order.

A value the online store does not have is never a silent zero: the feature's declared default
fills it; else, if the model's signature marks the column optional, it stays missing (NaN);
else the request is refused (:class:`InvalidInput`, 400) naming the entity and the feature. A
request that already carries every feature column the model takes is served as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ..features.protocol import Features
    from ..registry.packaging.signature import Signature

__all__ = ["FeatureInput"]

_SHOWN = 5  # problems named in one refusal
_FLOATS = ("float32", "float64")
_INTS = ("int32", "int64")


@dataclass(frozen=True)
class _Column:
    """One feature column the lookup gives: its output ``name``, where it comes from, its
    type, its declared default (``None``: none), whether the model may take it missing and
    whether the model takes it at all (its signature names it)."""

    name: str
    view: str
    feature: str
    dtype: str
    default: Any
    optional: bool
    taken: bool


class FeatureInput:
    """Completes requests of one served model with the features of its feature ``service``.

    Built by :meth:`load` (the service's definitions read once); :meth:`complete` runs per
    request: one online lookup for all its rows.
    """

    def __init__(
        self,
        features: Features,
        service: str,
        columns: Sequence[_Column],
        join_keys: Sequence[str],
        request_fields: Sequence[str],
        *,
        full_feature_names: bool,
        label: str,
    ) -> None:
        self.features = features
        self.service = service
        self.columns = tuple(columns)
        self.join_keys = tuple(join_keys)
        self.request_fields = tuple(request_fields)
        self.full_feature_names = full_feature_names
        self.label = f"{label} (feature service {service!r})"
        # The columns the model takes from the lookup: a request holding them all needs none.
        self.model_columns = frozenset(c.name for c in self.columns if c.taken)

    @classmethod
    def load(
        cls, features: Features, service: str, signature: Signature | None, label: str
    ) -> FeatureInput:
        """The input step of ``service`` (``svc@vN``) for a model taking ``signature``.

        A tensor signature takes no feature columns: such a model is served as it is.

        Raises:
            NotFound: the service or one of its views is not defined.
        """
        definition = features.get(service, kind="feature_service")
        pins: Mapping[str, int] = definition.spec.get("pins") or {}
        specs: list[tuple[str, Mapping[str, Any], list[str]]] = []
        for item in definition.spec.get("features", ()):
            view = str(item["view"])
            specs.append((view, _view_spec(features, view, pins.get(view)), list(item["features"])))
        join_keys: dict[str, None] = {}
        request_fields: dict[str, None] = {}
        for _, spec, _ in specs:
            # An on-demand view's source views may be outside the service (fetched hidden):
            # their entities' keys are still the request's.
            sources = [
                spec,
                *(_view_spec(features, str(v), pins.get(v)) for v in spec.get("sources", ())),
            ]
            for source in sources:
                for entity in source.get("entities", ()):
                    entity_spec = features.get(str(entity), kind="entity").spec
                    for key in entity_spec.get("join_keys", ()):
                        join_keys[str(key["name"])] = None
            for field in spec.get("request_schema", ()):
                request_fields[str(field["name"])] = None
        taken = (
            {}
            if signature is None or signature.is_tensor_based
            else {str(spec.name): spec.required for spec in signature.inputs}
        )
        picked = [
            (view, field)
            for view, spec, names in specs
            for field in spec.get("features", ())
            if "*" in names or field["name"] in names
        ]
        full = any(f"{view}__{field['name']}" in taken for view, field in picked)
        columns = []
        for view, field in picked:
            name = f"{view}__{field['name']}" if full else str(field["name"])
            columns.append(
                _Column(
                    name,
                    view,
                    str(field["name"]),
                    str(field.get("dtype", "")),
                    field.get("default"),
                    optional=not taken.get(name, True),
                    taken=signature is None or name in taken,
                )
            )
        return cls(
            features,
            definition.ref,
            columns,
            list(join_keys),
            list(request_fields),
            full_feature_names=full,
            label=label,
        )

    def needs_lookup(self, data: Any) -> bool:
        """Whether ``data`` lacks a feature column (a table only: tensors go as they are)."""
        columns = getattr(data, "columns", None)
        if columns is None:
            return False
        return not self.model_columns.issubset(str(c) for c in columns)

    def complete(self, data: Any) -> Any:
        """``data`` with the service's feature columns added: its keys, its request data and
        the features as served (what the prediction log records); ``data`` itself when it
        needs no lookup (see :meth:`needs_lookup`).

        It runs on the event loop, between the choice of a deployment's variant and the
        submit to it, where nothing may await (the watcher could retire the variant's slot
        meanwhile); the embedded online store answers 100 entities in under a millisecond.

        Raises:
            InvalidInput: a join key column is missing, or a feature has no online value for
                an entity, no default and the model requires it (naming both).
        """
        if not self.needs_lookup(data):
            return data
        have = {str(c) for c in data.columns}
        absent = [key for key in self.join_keys if key not in have]
        if absent:
            raise InvalidInput(
                f"the request for {self.label} has no entity key column "
                f"{', '.join(map(repr, absent))}; send it (the features are then read from "
                f"the online store) or send every feature column: "
                f"{', '.join(sorted(self.model_columns))}"
            )
        sent = [name for name in (*self.join_keys, *self.request_fields) if name in have]
        rows = {name: data[name].tolist() for name in sent}
        online = self.features.get_online_features(
            rows, self.service, full_feature_names=self.full_feature_names
        )
        import numpy as np
        import pandas as pd

        # Built once from arrays: a copy and a column insert per feature cost ~2.5x as much.
        completed = {str(name): data[name].to_numpy() for name in data.columns}
        problems: list[str] = []
        for column in self.columns:
            if column.name in have:
                continue  # the request's own value wins over the store's
            values = online.values[column.name]
            missing = _missing_rows(values, column.dtype, np)
            if missing:
                values = list(values)
                for row in missing:
                    if column.default is not None:
                        values[row] = column.default
                    elif column.taken and not column.optional:
                        status = _status(online.statuses, column.name, row)
                        entity = self._entity(rows, row)
                        problems.append(f"{entity}: {column.feature!r} ({status})")
            completed[column.name] = _typed(values, column.dtype, np)
        if problems:
            shown = "; ".join(problems[:_SHOWN]) + (" ..." if len(problems) > _SHOWN else "")
            raise InvalidInput(
                f"the online store has no value for {self.label} of: {shown}; materialize or "
                "push the entities' rows (loopwright features materialize), or declare a "
                "default on the feature"
            )
        return pd.DataFrame(completed, copy=False)

    def _entity(self, rows: Mapping[str, list[Any]], row: int) -> str:
        keys = ", ".join(f"{key}={rows[key][row]!r}" for key in self.join_keys)
        return f"entity {keys} (row {row})"


def _view_spec(features: Features, view: str, version: int | None) -> Mapping[str, Any]:
    """A view's spec (the service's pinned version), a feature view or an on-demand one."""
    ref = view if version is None else f"{view}@v{version}"
    try:
        return features.get(ref, kind="feature_view").spec
    except NotFound:
        return features.get(ref, kind="on_demand_feature_view").spec


def _missing_rows(values: Sequence[Any], dtype: str, np: Any) -> list[int]:
    """The rows of ``values`` without a value (None, or NaN for a float feature)."""
    if dtype in _FLOATS:
        return [int(i) for i in np.flatnonzero(np.isnan(np.array(values, dtype="float64")))]
    if None not in values:  # one scan in C: most requests miss nothing
        return []
    return [row for row, value in enumerate(values) if value is None]


def _status(statuses: Mapping[str, Sequence[str]], column: str, row: int) -> str:
    of_column = statuses.get(column, ())
    return of_column[row] if row < len(of_column) else "not_found"


def _typed(values: Sequence[Any], dtype: str, np: Any) -> Any:
    """A column of ``values`` in the feature's type (as the training set has it), so the
    model sees what it saw offline; missing values left are NaN (numbers) or None."""
    if dtype in _FLOATS:
        return np.array(values, dtype="float64").astype(dtype, copy=False)  # None -> NaN
    has_none = None in values
    if dtype in _INTS and has_none:
        return np.array(values, dtype="float64")
    if dtype in _INTS or (dtype == "bool" and not has_none):
        return np.array(values, dtype=dtype)
    return np.array(values, dtype=object)
