"""Page tokens for the listings paged in memory (experiments, logged models, registry searches).

A token holds the offset of the next page and a fingerprint of the search that made it, so a
token passed back with other arguments is refused rather than silently misapplied.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from ...errors import InvalidInput

__all__ = ["MAX_RESULTS", "page", "read_offset"]

MAX_RESULTS = 50_000  # as MLflow's server caps a search page (SEARCH_MAX_RESULTS_THRESHOLD)

T = TypeVar("T")


def _fingerprint(search: object) -> str:
    text = json.dumps(search, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_offset(token: str | None, search: object) -> int:
    """The offset a token of this search points at (0 without a token)."""
    if not token:
        return 0
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        data = None
    offset = data.get("offset") if isinstance(data, dict) else None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInput("page_token is not a token this search returned; pass it unchanged")
    if data.get("search") != _fingerprint(search):
        raise InvalidInput(
            "page_token belongs to a search with other arguments; repeat the same search, "
            "or omit the token to start over"
        )
    return offset


def page(
    items: Sequence[T], offset: int, max_results: int, search: object
) -> tuple[list[T], str | None]:
    """``items[offset : offset + max_results]`` and the next page's token (None at the end)."""
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidInput(f"max_results must be from 1 to {MAX_RESULTS}, not {max_results}")
    end = offset + max_results
    token = None
    if end < len(items):
        data = json.dumps({"offset": end, "search": _fingerprint(search)}).encode()
        token = base64.urlsafe_b64encode(data).decode("ascii")
    return list(items[offset:end]), token
