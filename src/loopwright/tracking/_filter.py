"""The columns of run search, declared for the one filter language.

The language itself (lexer, parser, SQL and in-memory back-ends) is
:mod:`loopwright.store.filters`.

Metrics are numbers; params, tags and the string attributes are strings; ``start_time``
(``created``) and ``end_time`` are integers. A bare name is an attribute, as in MLflow.

Example:
    >>> parse_filter("metrics.auc > 0.9 and params.model = 'rf'")
    [Comparison(entity='metrics', key='auc', op='>', value=0.9), Comparison(entity='params', ...)]
"""

from __future__ import annotations

from collections.abc import Sequence

from ..store.filters import (
    NUMBER_OPS,
    STRING_OPS,
    Comparison,
    Entity,
    Field,
    Filter,
    Kind,
    OrderKey,
    Schema,
    parse,
    parse_order_list,
)
from ..store.filters import parse_order_by as _parse_order_by

__all__ = [
    "ATTRIBUTES",
    "NUMERIC_ATTRIBUTES",
    "NUMERIC_OPS",
    "RUN_SCHEMA",
    "STRING_OPS",
    "Clause",
    "OrderKey",
    "is_numeric",
    "parse_filter",
    "parse_order_by",
    "parse_run_filter",
    "parse_run_order",
]

Clause = Comparison
NUMERIC_OPS = NUMBER_OPS
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
ATTRIBUTES = frozenset({"run_id", "run_name", "status", "user_id", "experiment_id"}) | (
    NUMERIC_ATTRIBUTES
)
RUN_SCHEMA = Schema(
    (
        Entity(
            "attributes",
            frozenset({"attributes", "attribute", "attr", "run"}),
            fields={
                key: Field(Kind.INTEGER if key in NUMERIC_ATTRIBUTES else Kind.STRING)
                for key in ATTRIBUTES
            },
            # MLflow's alternate spellings (SearchUtils._ALTERNATE_*_ATTRIBUTES).
            aliases={
                "created": "start_time",
                "Created": "start_time",
                "run name": "run_name",
                "Run name": "run_name",
                "Run Name": "run_name",
            },
        ),
        Entity("metrics", frozenset({"metric", "metrics"}), Kind.NUMBER),
        Entity("params", frozenset({"param", "params", "parameter", "parameters"})),
        Entity("tags", frozenset({"tag", "tags"})),
    ),
    example="metrics.acc > 0.9",
)


def is_numeric(entity: str, key: str) -> bool:
    return RUN_SCHEMA.kind(entity, key) is not Kind.STRING


def parse_run_filter(filter_string: str) -> Filter:
    """Parse a run filter; raises ``InvalidInput`` pointing at the first bad token."""
    return parse(filter_string, RUN_SCHEMA)


def parse_filter(filter_string: str) -> list[Clause]:
    """The comparisons of a run filter, in order."""
    return list(parse_run_filter(filter_string).comparisons)


def parse_order_by(order_by: str) -> OrderKey:
    """Parse one run ``order_by`` item such as ``"metrics.auc DESC"``."""
    return _parse_order_by(order_by, RUN_SCHEMA)


def parse_run_order(order_by: Sequence[str]) -> list[OrderKey]:
    """Parse a run ``order_by`` list (bounded, no column twice)."""
    return parse_order_list(order_by, RUN_SCHEMA)
