"""The expectation catalogue: each kind's parameters, and its evaluation as DuckDB SQL.

Every column-value check of a suite becomes one ``count(*) FILTER (WHERE …)`` in a single scan of
the table (DuckDB reads only the columns named); uniqueness and custom SQL add a query each, and a
failing expectation one more, ``LIMIT 5``, for its examples. If the shared scan fails (a value
that cannot be compared with a column, say), each expectation is re-run alone so that only the
broken ones fail, with the error as their observation.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from ._sql import sql_ident, sql_literal

__all__ = ["KINDS", "TYPE_FAMILIES", "evaluate", "normalize", "reason"]

Outcome = tuple[bool, dict[str, Any]]

TYPE_FAMILIES = ("integer", "float", "string", "boolean", "timestamp", "date")
_INTS = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
_FAMILY_OF = {name: "integer" for name in _INTS | {"U" + name for name in _INTS}}
_FAMILY_OF |= {"FLOAT": "float", "DOUBLE": "float", "DECIMAL": "float", "VARCHAR": "string"}
_FAMILY_OF |= {"ENUM": "string", "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp"}
_FAMILY_OF |= {f"TIMESTAMP{s}": "timestamp" for s in ("_S", "_MS", "_NS", " WITH TIME ZONE")}
_EXAMPLES = 5
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")

# --- parameters: each checker returns the value to store, or raises InvalidInput("must …") ----


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _column(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"must be a column name, not {value!r}")
    return value


def _columns(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InvalidInput(f"must be a non-empty list of column names, not {value!r}")
    names = tuple(_column(item) for item in value)
    if len(set(names)) != len(names):
        raise InvalidInput(f"names a column twice: {list(names)}")
    return names


def _fraction(value: Any) -> float:
    if not _number(value) or not 0 <= value <= 1:
        raise InvalidInput(f"must be a number from 0 to 1, not {value!r}")
    return float(value)


def _count(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise InvalidInput(f"must be a whole number >= 0, not {value!r}")
    return value


def _bound(value: Any) -> Any:
    """A number, or a date or time (stored as ISO text; DuckDB casts it to the column's type)."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, str) or (_number(value) and math.isfinite(value)):
        return value
    raise InvalidInput(f"must be a finite number or an ISO date/time, not {value!r}")


def _values(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise InvalidInput(f"must be a list of values, not {value!r}")
    items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
    for item in items:
        if not (isinstance(item, str | bool) or (_number(item) and math.isfinite(item))):
            raise InvalidInput(
                f"may hold strings, numbers and booleans, not {item!r} (nulls: use not_null)"
            )
    if not items:
        raise InvalidInput("must not be empty")
    return tuple(items)


def _family(value: Any) -> str:
    if value not in TYPE_FAMILIES:
        raise InvalidInput(f"must be one of {', '.join(TYPE_FAMILIES)}, not {value!r}")
    return str(value)


def _with_duckdb(check: Callable[[Any], Any], problem: str) -> Any:
    """``check(connection)`` on a scratch DuckDB; its error becomes InvalidInput(problem: why)."""
    import duckdb

    with duckdb.connect() as con:
        try:
            return check(con)
        except duckdb.Error as error:
            raise InvalidInput(f"{problem}: {reason(error)}") from None


def _pattern(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"must be a regular expression, not {value!r}")
    test = lambda con: con.execute("SELECT regexp_matches('', ?)", [value])  # noqa: E731
    _with_duckdb(test, f"{value!r} is not a regular expression DuckDB (RE2) can compile")
    return value


def _query(value: Any) -> str:
    import duckdb

    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"must be a SQL query, not {value!r}")
    statements = _with_duckdb(lambda con: con.extract_statements(value), "is not valid SQL")
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise InvalidInput("must be one SELECT statement over the table 'data'")
    return value.strip().rstrip(";").rstrip()


def duration_seconds(value: Any) -> float:
    """Seconds in ``90``, ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"`` or ``"1h30m"``."""
    text = value.replace(" ", "") if isinstance(value, str) else ""
    parts = _DURATION.findall(text)
    seconds = sum(float(n) * _UNITS[unit] for n, unit in parts) if text else value
    if "".join(n + unit for n, unit in parts) == text and _number(seconds) and seconds > 0:
        return float(seconds)
    raise InvalidInput(f"must be a duration like 3600, '90s', '15m', '24h' or '7d', not {value!r}")


def _max_age(value: Any) -> Any:
    duration_seconds(value)
    return value


def parse_now(value: Any) -> datetime.datetime:
    """``now`` as an aware UTC datetime: None (the current time), ISO text or epoch seconds."""
    if value is None:
        return datetime.datetime.now(datetime.UTC)
    if _number(value):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    moment = value if isinstance(value, datetime.datetime) else None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.datetime.fromisoformat(value)
    if moment is None:
        raise InvalidInput(f"must be an ISO timestamp or epoch seconds, not {value!r}")
    return moment.replace(tzinfo=moment.tzinfo or datetime.UTC).astimezone(datetime.UTC)


def _now(value: Any) -> Any:
    return value if value is None or _number(value) else parse_now(value).isoformat()


def _expect(value: Any) -> str:
    if value not in ("zero_rows", "true"):
        raise InvalidInput(f"must be 'zero_rows' or 'true', not {value!r}")
    return str(value)


def _ordered(params: Mapping[str, Any]) -> None:
    low: Any = params.get("min")
    high: Any = params.get("max")
    if low is None and high is None:
        raise InvalidInput("give min, max or both")
    comparable = type(low) is type(high) or (_number(low) and _number(high))
    if comparable and low > high:
        raise InvalidInput(f"min {low!r} is greater than max {high!r}")


def _one_key(params: Mapping[str, Any]) -> None:
    if ("column" in params) == ("columns" in params):
        raise InvalidInput("give either column or columns (a compound key)")


_REQUIRED = object()
_MOSTLY = (_fraction, 1.0)


@dataclass(frozen=True)
class Kind:
    """One expectation kind: its parameters as ``name: (checker, default)``, and a rule across
    them."""

    params: Mapping[str, tuple[Callable[[Any], Any], Any]]
    rule: Callable[[Mapping[str, Any]], None] | None = None


KINDS: Mapping[str, Kind] = {
    "column_exists": Kind({"column": (_column, _REQUIRED)}),
    "column_type": Kind({"column": (_column, _REQUIRED), "type": (_family, _REQUIRED)}),
    "not_null": Kind({"column": (_column, _REQUIRED), "mostly": _MOSTLY}),
    "between": Kind(
        {"column": (_column, _REQUIRED), "min": (_bound, None), "max": (_bound, None)}
        | {"mostly": _MOSTLY},
        _ordered,
    ),
    "in_set": Kind(
        {"column": (_column, _REQUIRED), "values": (_values, _REQUIRED), "mostly": _MOSTLY}
    ),
    "unique": Kind({"column": (_column, None), "columns": (_columns, None)}, _one_key),
    "matches_regex": Kind(
        {"column": (_column, _REQUIRED), "pattern": (_pattern, _REQUIRED), "mostly": _MOSTLY}
    ),
    "row_count_between": Kind({"min": (_count, None), "max": (_count, None)}, _ordered),
    "fresh": Kind(
        {"column": (_column, _REQUIRED), "max_age": (_max_age, "24h"), "now": (_now, None)}
    ),
    "sql": Kind({"query": (_query, _REQUIRED), "expect": (_expect, "zero_rows")}),
}


def normalize(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Checked parameters, without those equal to their defaults (so that equal suites hash
    alike); raises InvalidInput naming an unknown kind or parameter, or a bad value."""
    spec = KINDS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise InvalidInput(f"unknown expectation {kind!r}{_did_you_mean(kind, KINDS)}")
    if not isinstance(params, Mapping):
        raise InvalidInput(f"expectation {kind!r}: parameters must be a mapping, not {params!r}")
    normalized: dict[str, Any] = {}
    for name, given in params.items():
        if name not in spec.params:
            known = _did_you_mean(name, spec.params)
            raise InvalidInput(f"expectation {kind!r} has no parameter {name!r}{known}")
        check, default = spec.params[name]
        try:
            value = check(given)
        except InvalidInput as error:
            raise InvalidInput(f"expectation {kind!r}: {name} {error.message}") from None
        if default is _REQUIRED or value != default or type(value) is not type(default):
            normalized[name] = value
    missing = [n for n, (_, d) in spec.params.items() if d is _REQUIRED and n not in normalized]
    if missing:
        raise InvalidInput(f"expectation {kind!r} needs parameter {missing[0]!r}")
    if spec.rule is not None:
        try:
            spec.rule(normalized)
        except InvalidInput as error:
            raise InvalidInput(f"expectation {kind!r}: {error.message}") from None
    return normalized


def _did_you_mean(name: object, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; {f'did you mean {close[0]!r}? ' if close else ''}choices: {', '.join(known)}"


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class _Plan:
    """How one expectation is answered: aggregates in the shared scan, then ``finish``."""

    exprs: list[str]
    finish: Callable[[Any, Sequence[Any], int], Outcome]


def _known(success: bool, observed: dict[str, Any]) -> _Plan:
    """A plan whose outcome the table's schema already decides."""
    return _Plan([], lambda con, values, rows: (success, observed))


def evaluate(con: Any, expectations: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Outcome]:
    """Evaluate ``(kind, params)`` pairs over the view ``data`` of the DuckDB connection ``con``."""
    import duckdb

    columns = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE data)").fetchall())
    plans = [_plan(kind, params, columns) for kind, params in expectations]
    shared: Sequence[Any] | None
    try:
        shared = _select(con, ["count(*)", *(e for plan in plans for e in plan.exprs)]).fetchone()
    except duckdb.Error:
        shared = None  # some expression is broken: run each plan alone, to fail only that one
    rows = shared[0] if shared else _select(con, ["count(*)"]).fetchone()[0]
    outcomes: list[Outcome] = []
    position = 1
    for plan in plans:
        values = shared[position : position + len(plan.exprs)] if shared else ()
        position += len(plan.exprs)
        try:
            if shared is None and plan.exprs:
                values = _select(con, plan.exprs).fetchone()
            outcomes.append(plan.finish(con, values, rows))
        except duckdb.Error as error:
            outcomes.append((False, {"error": reason(error)}))
    return outcomes


def _plan(kind: str, params: Mapping[str, Any], columns: Mapping[str, str]) -> _Plan:
    names = [params["column"]] if "column" in params else list(params.get("columns", ()))
    if kind == "column_exists":
        found = names[0] in columns
        return _known(found, {"exists": found, "columns": list(columns)})
    for name in names:
        if name not in columns:
            shown = ", ".join(list(columns)[:50]) + (", …" if len(columns) > 50 else "")
            error = f"column {name!r} does not exist; columns: {shown}"
            return _known(False, {"error": error})
    column, dtype = (sql_ident(names[0]), columns[names[0]]) if names else ("", "")
    mostly = params.get("mostly", 1.0)
    if kind == "column_type":
        family = _FAMILY_OF.get(dtype.split("(")[0], dtype.lower())
        return _known(family == params["type"], {"type": dtype, "family": family})
    if kind == "not_null":
        return _values_plan(f"{column} IS NULL", "*", mostly, of_all=True)
    if kind == "between":
        low, high = params.get("min"), params.get("max")
        inside = [f"{column} >= {sql_literal(low)}"] if low is not None else []
        inside += [f"{column} <= {sql_literal(high)}"] if high is not None else []
        return _values_plan(f"NOT ({' AND '.join(inside)})", column, mostly)
    if kind == "in_set":
        listed = ", ".join(sql_literal(value) for value in params["values"])
        return _values_plan(f"{column} NOT IN ({listed})", column, mostly)
    if kind == "matches_regex":
        text = column if dtype == "VARCHAR" else f"CAST({column} AS VARCHAR)"
        pattern = sql_literal(params["pattern"])
        return _values_plan(f"NOT regexp_matches({text}, {pattern})", column, mostly)
    if kind == "unique":
        return _unique_plan([sql_ident(name) for name in names], compound="columns" in params)
    if kind == "row_count_between":
        return _Plan([], lambda con, values, rows: _row_count(params, rows))
    if kind == "fresh":
        return _fresh_plan(column, dtype, params)
    return _Plan([], lambda con, values, rows: _custom_sql(con, params))


def _values_plan(unexpected: str, shown: str, mostly: float, of_all: bool = False) -> _Plan:
    """Count the rows where ``unexpected`` holds; nulls are elements only for not_null."""

    def finish(con: Any, values: Sequence[Any], rows: int) -> Outcome:
        elements, bad = (rows if of_all else values[0]), values[-1]
        observed: dict[str, Any] = {"element_count": elements, "unexpected_count": bad}
        observed["unexpected_fraction"] = bad / elements if elements else 0.0
        # Rows for not_null; else the smallest distinct values (determinate, and not 5 alike).
        what = ["*"] if of_all else [f"DISTINCT {shown}"]
        order = "" if of_all else "1"
        examples = (
            _select(con, what, where=unexpected, order=order, limit=_EXAMPLES) if bad else None
        )
        observed["examples"] = _records(examples, whole=of_all)
        return bad <= (1 - mostly) * elements + 1e-9, observed

    counted = [] if of_all else [f"count({shown})"]
    return _Plan([*counted, f"count(*) FILTER (WHERE {unexpected})"], finish)


def _unique_plan(keys: list[str], compound: bool) -> _Plan:
    """Rows whose key repeats; rows with a null in the key are skipped, as by SQL's UNIQUE."""
    present = " AND ".join(f"{key} IS NOT NULL" for key in keys)
    listed = ", ".join(keys)
    groups = f"(SELECT {listed}, count(*) AS n FROM data WHERE {present} GROUP BY ALL)"  # noqa: S608

    def finish(con: Any, values: Sequence[Any], rows: int) -> Outcome:
        every = "count(*) OVER (), sum(n) OVER ()"
        found = _select(con, [listed, every], source=groups, where="n > 1", limit=_EXAMPLES)
        names = [column[0] for column in found.description][: len(keys)]
        found = found.fetchall()
        repeated, bad = (found[0][-2], int(found[0][-1])) if found else (0, 0)
        examples = [dict(zip(names, row, strict=False)) if compound else row[0] for row in found]
        observed = {"element_count": values[0], "unexpected_count": bad}
        observed["unexpected_fraction"] = bad / values[0] if values[0] else 0.0
        observed |= {"duplicated_keys": repeated, "examples": _example_value(examples)}
        return bad == 0, observed

    return _Plan([f"count(*) FILTER (WHERE {present})"], finish)


def _row_count(params: Mapping[str, Any], rows: int) -> Outcome:
    low, high = params.get("min"), params.get("max")
    fits = (low is None or rows >= low) and (high is None or rows <= high)
    return fits, {"row_count": rows}


def _fresh_plan(column: str, dtype: str, params: Mapping[str, Any]) -> _Plan:
    if _FAMILY_OF.get(dtype) not in ("timestamp", "date"):
        error = f"column {column} has type {dtype}; fresh needs a timestamp or date column"
        return _known(False, {"error": error})
    # Naive timestamps are taken as UTC; epoch_us of a TIMESTAMPTZ is the true instant already.
    newest = f"max({column})" if "ZONE" in dtype else f"CAST(max({column}) AS TIMESTAMP)"

    def finish(con: Any, values: Sequence[Any], rows: int) -> Outcome:
        now = parse_now(params.get("now"))
        limit = duration_seconds(params.get("max_age", "24h"))
        observed: dict[str, Any] = {"now": now.isoformat(), "max_age_seconds": limit}
        if values[0] is None:
            return False, {"max": None, **observed, "error": "the column has no values"}
        latest = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        latest += datetime.timedelta(microseconds=values[0])
        age = (now - latest).total_seconds()
        return age <= limit, {"max": latest.isoformat(), "age_seconds": age, **observed}

    return _Plan([f"epoch_us({newest})"], finish)


def _custom_sql(con: Any, params: Mapping[str, Any]) -> Outcome:
    query = f"(\n{params['query']}\n)"  # newlines: a trailing -- comment must not eat the ")"
    if params.get("expect", "zero_rows") == "zero_rows":
        bad = _select(con, ["count(*)"], source=query).fetchone()[0]
        examples = _select(con, ["*"], source=query, limit=_EXAMPLES) if bad else None
        return bad == 0, {"unexpected_count": bad, "examples": _records(examples, whole=True)}
    rows = _select(con, ["*"], source=query, limit=2).fetchall()
    if len(rows) != 1 or len(rows[0]) != 1 or not isinstance(rows[0][0], bool | None):
        shape = f"{len(rows)} row(s) of {len(rows[0]) if rows else 0} column(s)"
        return False, {"error": f"expect 'true' needs one row with one boolean; got {shape}"}
    return rows[0][0] is True, {"value": rows[0][0]}


def _select(
    con: Any,
    exprs: Sequence[str],
    source: str = "data",
    where: str = "",
    order: str = "",
    limit: int = 0,
) -> Any:
    """Run ``SELECT exprs FROM source …``; every name in the parts went through _ident, every value
    through _literal."""
    sql = f"SELECT {', '.join(exprs)} FROM {source}"  # noqa: S608
    sql += f" WHERE {where}" if where else ""
    sql += f" ORDER BY {order}" if order else ""
    return con.execute(sql + (f" LIMIT {limit}" if limit else ""))


def _records(cursor: Any, *, whole: bool) -> list[Any]:
    """The rows of an executed query: dicts for ``whole`` rows, else the first column's values."""
    if cursor is None:
        return []
    rows = cursor.fetchall()
    if not whole:
        return [_example_value(row[0]) for row in rows]
    names = [column[0] for column in cursor.description]
    return [_example_value(dict(zip(names, row, strict=True))) for row in rows]


def reason(error: BaseException) -> str:
    """A DuckDB error's first paragraph on one line (without its echo of the SQL)."""
    return "; ".join(str(error).strip().split("\n\n")[0].splitlines())


def _example_value(value: Any) -> Any:
    """A value shown as evidence: exact as text where JSON has no exact form (decimals, NaN).

    Unlike :func:`loopwright.data._sql.jsonable` (statistics), an example keeps what was seen.
    """
    if isinstance(value, dict):
        return {str(key): _example_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_example_value(item) for item in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    finite = isinstance(value, float) and math.isfinite(value)
    return value if finite or value is None or isinstance(value, str | int) else str(value)
