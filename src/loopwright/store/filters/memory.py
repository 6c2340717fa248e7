r"""The in-memory back-end: a parsed filter as a predicate over Python records.

A record is seen through a :data:`Lookup`, ``(entity, key) -> value``, returning None when the
record lacks the column. Semantics match the SQL back-end: a record lacking the column matches no
comparison (unless its entity gives the key an ``absent_values`` entry, then it is read as that
value); NaN matches no comparison; strings compare case-sensitively except ILIKE.

Example:
    >>> from loopwright.store.filters import Entity, Field, Schema, parse
    >>> names = Entity("attributes", frozenset(), fields={"name": Field()})
    >>> schema = Schema((names,), example="name = 'a'")
    >>> check = predicate(parse(r"name LIKE 'a\_%'", schema))
    >>> check(lambda entity, key: "a_b"), check(lambda entity, key: "axb")
    (True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._ast import SYMBOL_OPS, Comparison, Filter
from ._like import like_matches, like_parts

__all__ = ["Lookup", "matches", "predicate"]

Lookup = Callable[[str, str], Any]


def predicate(filter: Filter) -> Callable[[Lookup], bool]:
    """A function telling whether a record (seen through a :data:`Lookup`) matches."""
    checks = [(c, filter.absent_value(c)) for c in filter.comparisons]

    def check(lookup: Lookup) -> bool:
        for comparison, absent in checks:
            found = lookup(comparison.entity, comparison.key)
            if found is None:
                found = absent
            if found is None or not matches(comparison, found):
                return False
        return True

    return check


def matches(comparison: Comparison, found: Any) -> bool:
    """Whether the present value ``found`` satisfies ``comparison``."""
    op, value = comparison.op, comparison.value
    if isinstance(value, tuple):
        return (str(found) in value) == (op == "IN")
    if isinstance(value, str):
        if op in ("LIKE", "ILIKE"):
            return like_matches(like_parts(value), str(found), fold_case=op == "ILIKE")
        return bool(SYMBOL_OPS[op](str(found), value))
    number = _number(found)
    return number is not None and bool(SYMBOL_OPS[op](number, value))


def _number(found: Any) -> int | float | None:
    if isinstance(found, bool):
        return None
    if not isinstance(found, int | float):
        try:
            found = float(found)
        except (TypeError, ValueError):
            return None
    return None if isinstance(found, float) and math.isnan(found) else found
