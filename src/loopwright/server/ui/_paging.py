"""A list page's ``?offset=&limit=``, read from text so that a bad value is a 400 page naming it
(FastAPI's own validation would answer JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from ..._numbers import is_number
from ...errors import InvalidInput

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "MAX_OFFSET", "Offset", "Paging", "newest_only", "paging"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10**12  # past every list's length, and well inside SQL's 64-bit OFFSET
# ``?offset=`` taken by FastAPI (the pages that keep their query parameters typed).
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


@dataclass(frozen=True)
class Paging:
    offset: int
    limit: int


def _count(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    if not is_number(text) or len(text) > 15:  # int() refuses > 4,300
        raise InvalidInput(f"{name} {text!r} is not a whole number from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"{name} {value} is outside {low} to {high}; ask for a smaller page")
    return value


def paging(offset: str | None, limit: str | None) -> Paging:
    """``offset`` (0 or more) and ``limit`` (1 to :data:`MAX_LIMIT`, default 50)."""
    return Paging(
        offset=_count("offset", offset, 0, 0, MAX_OFFSET),
        limit=_count("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT),
    )


def newest_only(page: Paging, most: int, what: str, api: str) -> Paging:
    """``page``, refused when it reaches past the ``most`` newest ``what`` a service lists at
    once (older ones are the API's, at ``api``)."""
    if page.offset + page.limit >= most:
        raise InvalidInput(
            f"offset {page.offset} is past the newest {most:,} {what} this page lists; "
            f"use the API ({api}) for older ones"
        )
    return page
