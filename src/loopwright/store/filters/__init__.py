"""One filter language for every search: MLflow's filter and ``order_by`` syntax.

A domain declares a :class:`Schema` (which entities and attributes exist, with their kinds);
:func:`parse` turns a filter into typed :class:`Comparison` nodes checked against it, and two
back-ends evaluate them: :mod:`.sql` as SQLAlchemy WHERE terms, :mod:`.memory` as a predicate over
Python records. Both give the same answers, LIKE escapes and quoting included.

Example:
    >>> schema = Schema(
    ...     (Entity("attributes", frozenset(), fields={"name": Field()}),
    ...      Entity("tags", frozenset({"tags"}))),
    ...     example="name = 'churn'",
    ... )
    >>> [c.entity for c in parse("name LIKE 'churn%' AND tags.team = 'risk'", schema).comparisons]
    ['attributes', 'tags']
"""

from ._ast import NUMBER_OPS as NUMBER_OPS
from ._ast import STRING_OPS as STRING_OPS
from ._ast import Comparison as Comparison
from ._ast import Entity as Entity
from ._ast import Field as Field
from ._ast import Filter as Filter
from ._ast import Kind as Kind
from ._ast import OrderKey as OrderKey
from ._ast import Schema as Schema
from ._ast import Value as Value
from ._parser import MAX_COMPARISONS as MAX_COMPARISONS
from ._parser import MAX_FILTER_CHARS as MAX_FILTER_CHARS
from ._parser import MAX_ORDER_KEYS as MAX_ORDER_KEYS
from ._parser import MAX_PATTERN_CHARS as MAX_PATTERN_CHARS
from ._parser import parse as parse
from ._parser import parse_order_by as parse_order_by
from ._parser import parse_order_list as parse_order_list

__all__ = [
    "MAX_COMPARISONS",
    "MAX_FILTER_CHARS",
    "MAX_ORDER_KEYS",
    "MAX_PATTERN_CHARS",
    "NUMBER_OPS",
    "STRING_OPS",
    "Comparison",
    "Entity",
    "Field",
    "Filter",
    "Kind",
    "OrderKey",
    "Schema",
    "Value",
    "parse",
    "parse_order_by",
    "parse_order_list",
]
