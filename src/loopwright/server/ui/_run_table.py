"""The runs table of an experiment page: its query (filter, sort, paging) read from the URL and
checked, one page of runs found through run search, and the columns the page's runs have.

Sorting and paging happen in SQL (run search's ``order_by`` and page token); only the page's
runs are loaded.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...errors import InvalidInput
from ...tracking.entities import Run
from ...tracking.search import _fingerprint, _page_token

__all__ = ["MAX_COLUMNS", "RunQuery", "caret_of", "columns_of", "page_token"]

DEFAULT_LIMIT, MAX_LIMIT = 50, 500
MAX_COLUMNS = 12
# Sort keys of the table's fixed columns -> run search's attribute names.
ATTRIBUTE_SORTS = {"start_time": "start_time", "name": "run_name", "status": "status"}
_ENTITY_SORT = re.compile(r"^(metrics|params)\.(.+)$", re.S)
_AT = re.compile(r"at character (\d+)\)")


@dataclass(frozen=True)
class RunQuery:
    """What the runs table shows: ``filter`` (search language), ``sort`` (``start_time``,
    ``name``, ``status``, ``metrics.<key>`` or ``params.<key>``), ``desc``, ``offset``,
    ``limit``."""

    filter: str = ""
    sort: str = "start_time"
    desc: bool = True
    offset: int = 0
    limit: int = DEFAULT_LIMIT

    @classmethod
    def of(cls, query: Mapping[str, str]) -> RunQuery:
        """Read and check the URL's query; raises ``InvalidInput`` naming the bad parameter."""
        sort = query.get("sort") or "start_time"
        if sort not in ATTRIBUTE_SORTS and not _ENTITY_SORT.match(sort):
            raise InvalidInput(
                f"sort {sort!r} is not a column: use start_time, name, status, "
                "metrics.<key> or params.<key>"
            )
        desc = query.get("desc", "1" if sort == "start_time" and "sort" not in query else "")
        if desc not in ("", "0", "1"):
            raise InvalidInput(f"desc must be 1 or 0, not {desc!r}")
        return cls(
            filter=query.get("filter", "").strip(),
            sort=sort,
            desc=desc == "1",
            offset=_whole(query, "offset", 0, 0, 2**40),
            limit=_whole(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        )

    @property
    def order_by(self) -> list[str]:
        """The sort as run search's ``order_by`` (validated by search's parser)."""
        direction = " DESC" if self.desc else " ASC"
        if self.sort in ATTRIBUTE_SORTS:
            return [f"attributes.{ATTRIBUTE_SORTS[self.sort]}{direction}"]
        entity, _, key = self.sort.partition(".")
        return [f"{entity}.`{key.replace('`', '``')}`{direction}"]

    def params(self) -> dict[str, str | int | None]:
        """The query as the page's links keep it (defaults left out)."""
        return {
            "filter": self.filter or None,
            "sort": None if self.sort == "start_time" and self.desc else self.sort,
            "desc": "1" if self.desc and self.sort != "start_time" else None,
            "limit": None if self.limit == DEFAULT_LIMIT else self.limit,
        }


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


def page_token(
    experiment_ids: Sequence[str], filter_string: str, order_by: Sequence[str], offset: int
) -> str | None:
    """Run search's token for the page starting at ``offset`` (None: the first page), so a
    table can jump to any page by its offset."""
    if offset == 0:
        return None
    return _page_token(
        offset, _fingerprint(list(experiment_ids), filter_string, order_by, ("active",))
    )


def caret_of(message: str) -> int | None:
    """The 0-based character the filter parser's message points at (it says "at character N")."""
    found = _AT.search(message.partition("\n")[0])
    return None if found is None else int(found.group(1)) - 1


def columns_of(runs: Sequence[Run], sort: str) -> tuple[list[str], list[str]]:
    """(shown, hidden) columns as ``metrics.<key>`` / ``params.<key>``: the keys the page's runs
    hold, most common first, metrics before params, at most :data:`MAX_COLUMNS` shown (the
    sorted column always)."""
    metrics = Counter(f"metrics.{k}" for run in runs for k in run.metrics)
    params = Counter(f"params.{k}" for run in runs for k in run.params)
    ordered = [k for k, _ in sorted(metrics.items(), key=lambda kv: (-kv[1], kv[0]))]
    ordered += [k for k, _ in sorted(params.items(), key=lambda kv: (-kv[1], kv[0]))]
    if _ENTITY_SORT.match(sort) and sort in ordered:
        ordered.remove(sort)
        ordered.insert(0, sort)
    return ordered[:MAX_COLUMNS], ordered[MAX_COLUMNS:]
