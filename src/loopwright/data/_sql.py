"""Quoting and value conversion shared by the DuckDB code (profiles and validation).

Every identifier and literal that enters generated SQL goes through these two functions.
"""

from __future__ import annotations

import datetime
import decimal
import math
import os
from typing import Any

__all__ = ["jsonable", "sql_ident", "sql_literal"]


def sql_ident(name: str) -> str:
    """A quoted identifier: any column name, quotes and all, is safe."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """A SQL literal: booleans and numbers as written, everything else as a quoted string."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    return "'" + text.replace("'", "''") + "'"


def jsonable(value: Any) -> Any:
    """A DuckDB value as plain JSON: non-finite floats become None, times ISO 8601 strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return jsonable(float(value))
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    return str(value)  # UUID, interval and the like
