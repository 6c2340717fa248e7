r"""MLflow's run-filter and order-by language, parsed by hand so errors can point at the bad token.

Grammar (keywords are case-insensitive)::

    filter     := [comparison (AND comparison)*]
    comparison := column operator value
    order_by   := column [ASC | DESC]
    column     := [entity "."] key          # no entity: an attribute, as in MLflow
    entity     := metric(s) | param(s) | parameter(s) | tag(s) | attribute(s) | attr | run
    key        := bare | `quoted` | "quoted" | 'quoted'   # bare keys may hold . - / and letters
    value      := number | string | "(" string ("," string)* ")"
    string     := '...' | "..."            # '' or \' is a quote inside '...', \\ a backslash

Numeric columns (metrics, ``start_time``/``created``, ``end_time``) take ``= != > >= < <=`` and a
number; string columns (params, tags, the other attributes) take ``= != LIKE ILIKE IN NOT IN`` and
quoted strings. In LIKE patterns ``%`` and ``_`` are wildcards and a backslash makes the next
``%``, ``_`` or backslash literal.

Example:
    >>> parse_filter("metrics.auc > 0.9 and params.model = 'rf'")
    [Clause(entity='metrics', key='auc', op='>', value=0.9), Clause(entity='params', ...)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from ..errors import InvalidInput

__all__ = [
    "ATTRIBUTES",
    "NUMERIC_ATTRIBUTES",
    "NUMERIC_OPS",
    "STRING_OPS",
    "Clause",
    "OrderKey",
    "is_numeric",
    "parse_filter",
    "parse_order_by",
]

NUMERIC_OPS = ("=", "!=", ">", ">=", "<", "<=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
ATTRIBUTES = frozenset({"run_id", "run_name", "status", "user_id", "experiment_id"}) | (
    NUMERIC_ATTRIBUTES
)
# MLflow's alternate spellings (SearchUtils._ALTERNATE_*_ATTRIBUTES).
_ATTRIBUTE_ALIASES = {
    "created": "start_time",
    "Created": "start_time",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
}
_ENTITIES = {
    **dict.fromkeys(("metric", "metrics"), "metrics"),
    **dict.fromkeys(("param", "params", "parameter", "parameters"), "params"),
    **dict.fromkeys(("tag", "tags"), "tags"),
    **dict.fromkeys(("attribute", "attributes", "attr", "run"), "attributes"),
}
_SYMBOL_OPS = frozenset({"=", "!=", ">", ">=", "<", "<="})
_ALL_OPS = ", ".join(dict.fromkeys(NUMERIC_OPS + STRING_OPS))
_QUOTES = "`\"'"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[\w.\-/]+")
_SYMBOLS = re.compile(r"[!<>=]+")
_BARE_VALUE = re.compile(r"[^\s()'\"`,]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
_COMPARISON_HINT = "a comparison such as metrics.acc > 0.9"
_SNIPPET = 60  # characters of context shown either side of the caret


@dataclass(frozen=True)
class Clause:
    """One comparison of a filter: ``entity`` is metrics, params, tags or attributes; ``op`` is
    upper-case (``"NOT IN"``); ``value`` is a float or int for numeric columns, a string, or a
    tuple of strings for IN / NOT IN."""

    entity: str
    key: str
    op: str
    value: str | float | tuple[str, ...]


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` item."""

    entity: str
    key: str
    ascending: bool


def is_numeric(entity: str, key: str) -> bool:
    return entity == "metrics" or (entity == "attributes" and key in NUMERIC_ATTRIBUTES)


class _Scanner:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> NoReturn:
        raise InvalidInput(_pointed_message(self.what, self.text, message, self.pos, pos))

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def match(self, pattern: re.Pattern[str]) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None:
            return ""
        self.pos = found.end()
        return found.group()

    def quoted(self) -> str:
        """A quoted name or string; the quote is doubled or backslashed to stand for itself."""
        start, quote = self.pos, self.text[self.pos]
        chars: list[str] = []
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            after = self.text[self.pos + 1 : self.pos + 2]
            if char == "\\" and after in (quote, "\\"):
                chars.append(after)
                self.pos += 2
            elif char == quote and after == quote:
                chars.append(quote)
                self.pos += 2
            elif char == quote:
                self.pos += 1
                return "".join(chars)
            else:
                chars.append(char)
                self.pos += 1
        self.fail(f"unterminated quote: no closing {quote} for the one opened here", start)


def _pointed_message(what: str, text: str, message: str, here: int, pos: int | None) -> str:
    pos = here if pos is None else pos
    found = "the end" if pos >= len(text) else repr(text[pos:].split(maxsplit=1)[0][:20])
    shown = re.sub(r"\s", " ", text)  # keep the caret aligned under tabs and newlines
    left = max(0, pos - _SNIPPET)
    snippet = ("…" if left else "") + shown[left : pos + _SNIPPET]
    snippet += "…" if pos + _SNIPPET < len(shown) else ""
    caret = " " * (pos - left + (1 if left else 0)) + "^"
    return (
        f"invalid {what}: {message} (found {found} at character {pos + 1})\n"
        f"    {snippet}\n    {caret}"
    )


def _column(scan: _Scanner, expected: str) -> tuple[str, str]:
    """``entity.key`` or a bare attribute name; returns the canonical (entity, key)."""
    start = scan.pos
    if scan.peek() and scan.peek() in _QUOTES:
        name = scan.quoted()
    else:
        name = scan.match(_WORD)
        if not name or (name.upper() in ("AND", "OR") and scan.peek() != "."):
            scan.fail(f"expected {expected}", start)
    if scan.peek() == ".":
        entity = _ENTITIES.get(name)
        if entity is None:
            scan.fail(
                f"unknown entity {name!r}: use metrics.<key>, params.<key>, tags.<key> or "
                "attributes.<key>",
                start,
            )
        scan.pos += 1
        key_pos = scan.pos
        key = scan.quoted() if scan.peek() and scan.peek() in _QUOTES else scan.match(_BARE_KEY)
        if not key:
            scan.fail(f"expected a key after {name!r}. (quote keys with spaces: `my key`)", key_pos)
    else:
        entity, key, key_pos = "attributes", name, start
    if entity == "attributes":
        key = _ATTRIBUTE_ALIASES.get(key, key)
        if key not in ATTRIBUTES:
            scan.fail(
                f"unknown attribute {key!r}: attributes are {', '.join(sorted(ATTRIBUTES))} "
                "(metrics, params and tags need their prefix, e.g. params.lr)",
                key_pos,
            )
    return entity, key


def _operator(scan: _Scanner) -> str:
    start = scan.pos
    symbol = scan.match(_SYMBOLS)
    if symbol:
        if symbol not in _SYMBOL_OPS:
            scan.fail(f"unknown operator {symbol!r}: expected one of {_ALL_OPS}", start)
        return symbol
    word = scan.match(_WORD).upper()
    if word in ("LIKE", "ILIKE", "IN"):
        return word
    if word == "NOT":
        scan.skip_ws()
        if scan.match(_WORD).upper() == "IN":
            return "NOT IN"
    scan.fail(f"expected an operator ({_ALL_OPS})", start)


def _string(scan: _Scanner, label: str) -> str:
    if scan.peek() and scan.peek() in "'\"":
        return scan.quoted()
    scan.fail(f"expected a quoted string for {label}, e.g. 'value' or \"value\"")


def _number(scan: _Scanner, label: str, integral: bool) -> float:
    start = scan.pos
    token = scan.match(_BARE_VALUE)
    if not _NUMBER.fullmatch(token):
        scan.fail(f"expected a number for {label}", start)
    # Times stay exact integers; an over-long literal becomes a float rather than overflow.
    return int(token) if integral and _INTEGER.fullmatch(token) else float(token)


def _value(scan: _Scanner, entity: str, key: str, op: str) -> str | float | tuple[str, ...]:
    label = f"{entity}.{key}"
    if op not in ("IN", "NOT IN"):
        if is_numeric(entity, key):
            return _number(scan, label, integral=entity == "attributes")
        return _string(scan, label)
    if scan.peek() != "(":
        scan.fail(f"expected '(' and a list of quoted strings after {op}")
    scan.pos += 1
    items: list[str] = []
    while True:
        scan.skip_ws()
        items.append(_string(scan, label))
        scan.skip_ws()
        if scan.peek() == ")":
            scan.pos += 1
            return tuple(items)
        if scan.peek() != ",":
            scan.fail("expected ',' or ')' in the list of values")
        scan.pos += 1


def _comparison(scan: _Scanner) -> Clause:
    entity, key = _column(scan, _COMPARISON_HINT)
    scan.skip_ws()
    op_pos = scan.pos
    op = _operator(scan)
    numeric = is_numeric(entity, key)
    allowed = NUMERIC_OPS if numeric else STRING_OPS
    if op not in allowed:
        kind = "a number" if numeric else "a string"
        scan.fail(
            f"operator {op} does not apply to {entity}.{key} ({kind}); use one of "
            + ", ".join(allowed),
            op_pos,
        )
    scan.skip_ws()
    return Clause(entity, key, op, _value(scan, entity, key, op))


def parse_filter(filter_string: str) -> list[Clause]:
    """Parse an MLflow search filter; raises ``InvalidInput`` pointing at the first bad token."""
    if not isinstance(filter_string, str):
        raise InvalidInput(f"filter_string must be a string, not {type(filter_string).__name__}")
    scan = _Scanner(filter_string, "filter")
    scan.skip_ws()
    clauses: list[Clause] = []
    while scan.pos < len(scan.text):
        clauses.append(_comparison(scan))
        scan.skip_ws()
        if scan.pos == len(scan.text):
            break
        start = scan.pos
        word = scan.match(_WORD).upper()
        if word == "OR":
            scan.fail("OR is not supported: MLflow filters join comparisons with AND only", start)
        if word != "AND":
            scan.fail("expected AND or the end of the filter", start)
        scan.skip_ws()
        if scan.pos == len(scan.text):
            scan.fail(f"expected {_COMPARISON_HINT} after AND")
    return clauses


def parse_order_by(order_by: str) -> OrderKey:
    """Parse one MLflow ``order_by`` item such as ``"metrics.auc DESC"``."""
    if not isinstance(order_by, str):
        raise InvalidInput(f"order_by items must be strings, not {type(order_by).__name__}")
    scan = _Scanner(order_by, "order_by")
    scan.skip_ws()
    entity, key = _column(scan, "a column such as metrics.acc or attributes.start_time")
    scan.skip_ws()
    start = scan.pos
    direction = scan.match(_WORD).upper() or "ASC"
    if direction not in ("ASC", "DESC"):
        scan.fail("expected ASC, DESC or the end of the order_by item", start)
    scan.skip_ws()
    if scan.pos < len(scan.text):
        scan.fail("expected the end of the order_by item")
    return OrderKey(entity, key, direction == "ASC")
