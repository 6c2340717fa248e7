"""How fresh each view is in the online store: the figures a gauge shows, and the threshold
check behind the freshness alert.

:func:`recorded` reads what every materialization and push recorded
(``feature_materializations``: the newest event time written, per view and online store) with
one grouped query, so a Prometheus scrape never touches the online store itself, and it covers
every store a view was loaded into (the gauge's ``store`` label). :func:`check` says which
views are stale: older than ``max_age`` when given, else than the view's TTL (past it the
online store serves the view's values as ``outside_ttl``, i.e. missing); a view without TTL
and without ``max_age`` is never stale. Monitoring turns the verdicts into alerts
(``monitoring/feature_freshness.py``); this module sits below it and knows nothing of alerts.

Example:
    >>> from loopwright.features.entities import Freshness
    >>> fresh = Freshness("driver_stats", "sqlite:/x", 1_000, 2_000, 7_201_000, ttl_seconds=3600)
    >>> [(v.view, v.stale, v.threshold_seconds) for v in check([fresh])]
    [('driver_stats', True, 3600.0)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import InvalidInput
from ..store import schema as t
from .entities import Freshness

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = ["GAUGE", "Staleness", "check", "gauge_samples", "recorded"]

GAUGE = "loopwright_feature_freshness_seconds"
_f, _d = t.feature_materializations.c, t.feature_definitions.c


@dataclass(frozen=True)
class Staleness:
    """One view's verdict in one online store. ``threshold_seconds``: the age past which it is
    stale (``max_age`` or the view's TTL; None: no threshold, never stale); ``reason`` says
    in a sentence why it is stale ("" when it is not)."""

    view: str
    store: str
    age_seconds: float | None
    threshold_seconds: float | None
    stale: bool
    reason: str = ""


def recorded(db: Database, *, now_ms: int, views: Sequence[str] | None = None) -> list[Freshness]:
    """Per (view, online store) loaded at least once: the newest event time and the last load
    time recorded, the age at ``now_ms``, and the TTL of the view's newest version; by view,
    then store.

    Cheap enough for every scrape: the table holds a row per materialization run and a single
    row per (view, store) for all its pushes (features/push.py), so streaming pushes do not
    grow it (200k rows took 60 ms a read, 1,005 take 0.6 ms, SQLite).
    """
    query = (
        sa.select(
            _f.view,
            _f.store,
            sa.func.max(_f.newest_event_at).label("newest"),
            sa.func.max(_f.created_at).label("loaded"),
        )
        .group_by(_f.view, _f.store)
        .order_by(_f.view, _f.store)
    )
    if views is not None:
        query = query.where(_f.view.in_(list(views)))
    with db.read() as conn:
        rows = conn.execute(query).all()
        ttls = _ttls(conn, sorted({row.view for row in rows}))
    return [
        Freshness(
            view=row.view,
            store=row.store,
            newest_event_at=None if row.newest is None else int(row.newest),
            last_loaded_at=None if row.loaded is None else int(row.loaded),
            checked_at=now_ms,
            ttl_seconds=ttls.get(row.view),
        )
        for row in rows
    ]


def _ttls(conn: sa.Connection, views: Sequence[str]) -> dict[str, int]:
    """Each view's TTL in seconds from its newest version (unlimited views are left out)."""
    if not views:
        return {}
    newest = (
        sa.select(_d.name, sa.func.max(_d.version).label("version"))
        .where(_d.kind == "feature_view", _d.name.in_(list(views)))
        .group_by(_d.name)
        .subquery()
    )
    query = sa.select(_d.name, _d.spec_json).join(
        newest,
        sa.and_(
            _d.kind == "feature_view", _d.name == newest.c.name, _d.version == newest.c.version
        ),
    )
    out: dict[str, int] = {}
    for name, text in conn.execute(query):
        ttl = json.loads(text).get("ttl_seconds")
        if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0:
            out[name] = ttl
    return out


def check(freshness: Sequence[Freshness], *, max_age: float | None = None) -> list[Staleness]:
    """Which views are stale: age past ``max_age`` seconds (when given) or past the view's TTL.

    A view never loaded (no newest event) is stale when it has a threshold: it serves nothing.

    Raises:
        InvalidInput: ``max_age`` is not a positive number of seconds.
    """
    if max_age is not None and (
        isinstance(max_age, bool)
        or not isinstance(max_age, Real)
        or not math.isfinite(max_age)
        or max_age <= 0
    ):
        raise InvalidInput(
            f"freshness max_age {max_age!r} must be a positive number of seconds (e.g. 3600)"
        )
    verdicts: list[Staleness] = []
    for item in freshness:
        threshold, basis = (
            (float(max_age), "the max age asked for")
            if max_age is not None
            else (None if item.ttl_seconds is None else float(item.ttl_seconds), "its TTL")
        )
        age = item.age_seconds
        reason = ""
        if threshold is not None and age is None:
            reason = f"feature view {item.view!r} was never loaded into {item.store}"
        elif threshold is not None and age is not None and age > threshold:
            reason = (
                f"feature view {item.view!r} in {item.store} is {age:,.0f} s old, past "
                f"{basis} of {threshold:,.0f} s"
            )
        verdicts.append(Staleness(item.view, item.store, age, threshold, bool(reason), reason))
    return verdicts


def gauge_samples(freshness: Sequence[Freshness]) -> list[tuple[tuple[str, str], float]]:
    """``((view, store), age_seconds)`` for :data:`GAUGE`; views never loaded have no sample
    (an age they do not have would read as fresh or as stale)."""
    return [
        ((item.view, item.store), float(age))
        for item in freshness
        if (age := item.age_seconds) is not None
    ]
