"""Materialization: each online view's newest rows, from its source into the online store.

A run reads the newest row per entity with event time in ``[start, end]`` (the offline store's
``_sources.latest_rows``, in Arrow batches, never the whole source in memory), writes the rows
in batches (a row older than the stored one is skipped: late data never rolls a value back)
and only then records itself in ``feature_materializations``. A process killed mid-run leaves
the rows it wrote (each batch is one transaction; readers see old or new rows, never a torn
one) and no record, so the next incremental run starts from the same watermark and redoes the
window.

The *watermark* of a view in a store is the newest end of a run that covered everything before
its end: an incremental run, or a window run without a start. It lives in the metadata store,
not in the definition, so applying the view again never resets it (Feast #2905) unless the
new version loads other rows (its entities, source or features' names and types changed): then
its first incremental run loads everything (:func:`loaded_since`). A window with
a start (``--start``) loads that window only and leaves the watermark alone, since it says
nothing of the time before its start.

Late data (Feast #4133: incremental runs miss rows that arrive after their event time's window
was loaded): an incremental run of a view with a TTL starts one TTL before the watermark, so a
row arriving late is loaded by the next run if it can still be served. A row older than that
never can: its event time is more than a TTL before the watermark, which is before now, so a
lookup would find it outside the TTL. A view without a TTL starts at the watermark; rows that
arrive later with older event times need a window run (``--start``) to be loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import InvalidInput
from ..store import schema as t
from .entities import Freshness, Materialization, MaterializationMode

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import Settings
    from ..data.protocol import Datasets
    from ..store.home import Store
    from ._selection import ViewPick
    from .definition_store import DefinitionStore
    from .online.base import OnlineStore

__all__ = [
    "freshness",
    "incremental_start",
    "materialize",
    "online_views",
    "record",
    "watermark",
    "write_args",
]

_m = t.feature_materializations.c


def materialize(
    definitions: DefinitionStore,
    online: OnlineStore,
    db: Store,
    views: Sequence[str] | None,
    *,
    start_ms: int | None,
    end_ms: int | None,
    incremental: bool,
    datasets: Datasets,
    settings: Settings,
    actor: str,
    progress: Callable[[int], None] | None = None,
    clock: Callable[[], int] | None = None,
    batch_rows: int = 100_000,
) -> list[Materialization]:
    """Load ``views`` (None: every online feature view) into ``online``, one after another.

    ``start_ms``/``end_ms`` bound the event times (None: from the beginning, to now);
    ``incremental`` starts each view at its watermark instead (everything before is loaded),
    less its TTL so that late rows are loaded too (:func:`incremental_start`).
    ``progress`` is called after each batch (``batch_rows`` rows read at most) with the rows
    that batch wrote.

    Raises:
        InvalidInput: ``incremental`` with a start, start after end, a view that is not
            online; the source cannot be read (as ``latest_rows`` says).
        NotFound: an unknown view.
    """
    if incremental and start_ms is not None:
        raise InvalidInput(
            "materialize: an incremental run starts at each view's watermark; pass either a "
            "start or incremental, not both"
        )
    clock = clock or now_ms
    started = clock()
    end = started if end_ms is None else end_ms
    # Recorded as the run's end, and so the watermark: never past now. A future end would
    # put the watermark ahead of rows still to come, and later incremental runs would skip
    # them (rows up to ``end`` are still loaded).
    covered = min(end, started)
    if start_ms is not None and start_ms > end:
        raise InvalidInput(f"materialize: start ({start_ms} ms) is after end ({end} ms); swap them")
    done = []
    for name in online_views(definitions, views):
        pick = definitions.resolve([f"{name}:*"]).views[0]
        start = (
            incremental_start(db, pick, online.name, loaded_since(definitions, pick))
            if incremental
            else start_ms
        )
        written, newest = _load(pick, online, start, end, datasets, settings, progress, batch_rows)
        mode: MaterializationMode = "incremental" if incremental else "window"
        done.append(
            record(db, pick, online.name, mode, start, covered, written, newest, actor, clock())
        )
    return done


def online_views(definitions: DefinitionStore, views: Sequence[str] | None) -> list[str]:
    """The names of ``views`` (checked: each an online feature view), or of every online one.

    Raises:
        NotFound: an unknown view. InvalidInput: a view with ``online`` False.
    """
    if views is None:
        found = definitions.list("feature_view")
        return [view.name for view in found if view.spec.get("online", True)]
    for name in views:
        view = definitions.get(name, kind="feature_view")
        if not view.spec.get("online", True):
            raise InvalidInput(
                f"feature view {name!r} is offline only (online: false); set online=True and "
                "apply it to load it into the online store"
            )
    return list(dict.fromkeys(views))


def _load(
    pick: ViewPick,
    online: OnlineStore,
    start_ms: int | None,
    end_ms: int,
    datasets: Datasets,
    settings: Settings,
    progress: Callable[[int], None] | None,
    batch_size: int,
) -> tuple[int, int | None]:
    """Write the view's newest rows in the window; returns (rows written, newest event)."""
    from ._sources import latest_rows

    written, newest = 0, None
    batches = latest_rows(
        pick.source,
        pick,
        start_ms=start_ms,
        end_ms=end_ms,
        datasets=datasets,
        settings=settings,
        batch_rows=batch_size,
    )
    for batch in _checked_batches(batches, pick.name):
        if not batch.num_rows:
            continue
        keys, events, created, values = write_args(batch, pick)
        count = online.write(pick.name, keys, events, created, values, pick.version)
        written += count
        top = max(events)
        newest = top if newest is None else max(newest, top)
        if progress is not None:
            progress(count)
    return written, newest


def _checked_batches(batches: Iterator[pa.RecordBatch], view: str) -> Iterator[pa.RecordBatch]:
    """``batches``, with a source DuckDB or Arrow cannot read (a corrupt file, a column of
    another type) reported as InvalidInput naming the view, not as the engine's exception."""
    import duckdb
    import pyarrow as pa

    try:
        yield from batches
    except (duckdb.Error, pa.ArrowException) as exc:
        raise InvalidInput(
            f"materialize: the source of feature view {view!r} cannot be read ({exc}); fix the "
            "source data or the view's source and run again"
        ) from exc


def write_args(
    batch: pa.RecordBatch, pick: ViewPick
) -> tuple[list[tuple[Any, ...]], list[int], list[int | None], list[dict[str, Any]]]:
    """A ``latest_rows`` batch as the online store's write arguments: keys, event times,
    created times and value dicts (Python values: Arrow's to_pylist, no pandas)."""
    key_columns = [batch.column(name).to_pylist() for name, _ in pick.join_keys]
    keys = list(zip(*key_columns, strict=True))
    events: list[int] = batch.column("__event_ms").to_pylist()
    created: list[int | None] = batch.column("__created_ms").to_pylist()
    names = [feature for feature, _ in pick.features]
    values: list[dict[str, Any]] = batch.select(names).to_pylist() if names else [{}] * len(keys)
    return keys, events, created, values


def record(
    db: Store,
    pick: ViewPick,
    store: str,
    mode: MaterializationMode,
    start_ms: int | None,
    end_ms: int | None,
    rows: int,
    newest_event_ms: int | None,
    actor: str,
    at: int,
) -> Materialization:
    """Record a load in ``feature_materializations`` (after its rows are in the store)."""
    done = Materialization(
        id=new_id(),
        view=pick.name,
        view_version=pick.version,
        store=store,
        mode=mode,
        start_at=start_ms,
        end_at=end_ms,
        rows=rows,
        newest_event_at=newest_event_ms,
        created_by=actor,
        created_at=at,
    )
    with db.db.write() as conn:
        conn.execute(t.feature_materializations.insert(), done.to_dict())
    return done


def incremental_start(db: Store, pick: ViewPick, store: str, since_version: int) -> int | None:
    """Where an incremental run starts: the watermark of the runs of versions from
    ``since_version`` on, less the view's TTL (late rows still servable are loaded; see the
    module's docstring). None: from the beginning."""
    mark = watermark(db, pick.name, store, since_version)
    if mark is None or not pick.ttl_seconds:
        return mark
    return mark - pick.ttl_seconds * 1000


def loaded_since(definitions: DefinitionStore, pick: ViewPick) -> int:
    """The oldest version of ``pick``'s view from which on every version loads the same rows
    (:func:`_loaded_shape`): runs of versions before it loaded other columns or sources, so
    their end is no watermark for this one (a new feature would stay empty for every key not
    updated since)."""
    shape = _loaded_shape(pick.spec)
    since = pick.version
    for older in definitions.versions(pick.name, kind="feature_view"):  # newest first
        if older.version >= pick.version:
            continue
        if _loaded_shape(older.spec) != shape:
            break
        since = older.version
    return since


def _loaded_shape(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    """What decides the rows a run loads: entities, source, features' names and types (not a
    description, tags, TTL or a default, which a re-apply may change freely)."""
    features = [(f.get("name"), f.get("dtype")) for f in spec.get("features", [])]
    return (spec.get("entities"), spec.get("source"), features)


def watermark(db: Store, view: str, store: str, since_version: int = 1) -> int | None:
    """Where an incremental run of ``view`` into ``store`` starts: the newest end of a run of
    a version from ``since_version`` on that loaded everything before its end (None: no such
    run, start from the beginning)."""
    covering = sa.or_(_m.mode == "incremental", sa.and_(_m.mode == "window", _m.start_at.is_(None)))
    query = sa.select(sa.func.max(_m.end_at)).where(
        _m.view == view, _m.store == store, _m.view_version >= since_version, covering
    )
    with db.db.read() as conn:
        value = conn.execute(query).scalar_one_or_none()
    return None if value is None else int(value)


def freshness(
    definitions: DefinitionStore,
    online: OnlineStore,
    db: Store,
    views: Sequence[str] | None,
    *,
    now_ms: int,
) -> list[Freshness]:
    """Per online view: the newest event time in ``online`` (asked of the store itself, so a
    push or a load by another process counts) and when it was last loaded."""
    names = online_views(definitions, views)
    query = (
        sa.select(_m.view, sa.func.max(_m.created_at))
        .where(_m.store == online.name, _m.view.in_(names))
        .group_by(_m.view)
    )
    with db.db.read() as conn:
        loaded = {view: int(at) for view, at in conn.execute(query)} if names else {}
    found = []
    for name in names:
        spec = definitions.get(name, kind="feature_view").spec
        found.append(
            Freshness(
                view=name,
                store=online.name,
                newest_event_at=online.newest_event_ms(name),
                last_loaded_at=loaded.get(name),
                checked_at=now_ms,
                ttl_seconds=spec.get("ttl_seconds") or None,
            )
        )
    return found
