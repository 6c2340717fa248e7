"""Push: rows written straight into the online store (streaming updates), checked first.

Rows carry the view's join keys, its source's event time column (and optionally its created
time column) and every feature of the view. Each column must already be of its declared type's
family: an int64 feature takes integers (any width), a float64 one integers or floats, a string
one strings; a string ``"12"`` for a number is refused rather than parsed, as is a float with a
fraction for an integer. A row older than the stored row of its key is skipped, as in
materialization, so a late or replayed event never rolls a value back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._ids import now_ms
from ..errors import InvalidInput
from .entities import Materialization
from .materialize import online_views
from .spec import FIRST_MS, LAST_MS

if TYPE_CHECKING:
    import pyarrow as pa

    from ..store.home import Store
    from .definition_store import DefinitionStore
    from .online.base import OnlineStore

__all__ = ["push", "push_record_id", "to_table"]


def push(
    definitions: DefinitionStore,
    online: OnlineStore,
    db: Store,
    view: str,
    rows: Any,
    *,
    actor: str,
    clock: Callable[[], int] | None = None,
) -> Materialization:
    """Write ``rows`` (a DataFrame, an Arrow table or batch, a list of row dicts or a dict of
    columns) for ``view`` into ``online``. Returns this push's record (its rows and newest
    event time); ``feature_materializations`` keeps one ``push`` row per view and online store
    (id :func:`push_record_id`) that sums every push, dated by the latest.

    Raises:
        InvalidInput: a column is missing or of another type, a join key or event time is
            null, or the view is offline only.
        NotFound: an unknown view.
    """
    import pyarrow.compute as pc

    online_views(definitions, [view])
    pick = definitions.resolve([f"{view}:*"]).views[0]
    table = to_table(rows, view)
    event_field = pick.source["timestamp_field"]
    created_field = pick.source.get("created_timestamp_field")
    needed = [*(name for name, _ in pick.join_keys), event_field, *(f for f, _ in pick.features)]
    missing = [name for name in needed if name not in table.column_names]
    if missing:
        raise InvalidInput(
            f"rows pushed to {view!r} lack {', '.join(map(repr, missing))}; a row needs the "
            f"join keys, the event time {event_field!r} and every feature of the view"
        )
    keys = [_checked(table, name, dtype, view, nullable=False) for name, dtype in pick.join_keys]
    events = _times(table, event_field, view, nullable=False)
    created = (
        _times(table, created_field, view, nullable=True)
        if created_field and created_field in table.column_names
        else [None] * table.num_rows
    )
    columns = {name: _checked(table, name, dtype, view) for name, dtype in pick.features}
    import pyarrow as pa

    values = pa.table(columns).to_pylist() if columns else [{}] * table.num_rows
    key_rows = list(zip(*(key.to_pylist() for key in keys), strict=True))
    written = online.write(view, key_rows, events, created, values, pick.version)
    newest = int(pc.max(pa.array(events, pa.int64())).as_py()) if events else None
    done = Materialization(
        id=push_record_id(view, online.name),
        view=view,
        view_version=pick.version,
        store=online.name,
        mode="push",
        start_at=None,
        end_at=None,
        rows=written,
        newest_event_at=newest,
        created_by=actor,
        created_at=(clock or now_ms)(),
    )
    _record(db, done)
    return done


def push_record_id(view: str, store: str) -> str:
    """The id of the one ``feature_materializations`` row that every push of ``view`` into
    ``store`` updates: a digest of both, so concurrent first pushes collide on the primary key
    and the database merges them (no unique index on (view, store, mode) needed)."""
    digest = hashlib.blake2b(f"{view}\0{store}\0push".encode(), digest_size=16)
    return digest.hexdigest()


def _record(db: Store, done: Materialization) -> None:
    """Add ``done`` to its view's push row: rows summed, the newest event time the greatest,
    the version, author and time of the latest push. One row per (view, store), not one per
    push: streaming pushes would grow the table without bound, and freshness reads it on every
    metrics scrape. One ``INSERT ... ON CONFLICT DO UPDATE``: atomic on SQLite and PostgreSQL."""
    from ..store import schema as t

    table = t.feature_materializations
    with db.db.write() as conn:
        statement: Any
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(table)
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            statement = sqlite_insert(table)
        statement = statement.values(done.to_dict())
        new, old = statement.excluded, table.c
        statement = statement.on_conflict_do_update(
            index_elements=[old.id],
            set_={
                "rows": old.rows + new.rows,
                "newest_event_at": _greatest(old.newest_event_at, new.newest_event_at),
                "created_at": _greatest(old.created_at, new.created_at),
                "view_version": new.view_version,
                "created_by": new.created_by,
            },
        )
        conn.execute(statement)


def _greatest(old: Any, new: Any) -> Any:
    """The greater of two nullable values (SQLite's max() and PostgreSQL's greatest() differ
    on NULL)."""
    import sqlalchemy as sa

    return sa.case((new.is_(None), old), (old.is_(None), new), (new > old, new), else_=old)


def to_table(rows: Any, view: str) -> pa.Table:
    """``rows`` as an Arrow table.

    Raises:
        InvalidInput: ``rows`` is none of the accepted shapes, or its columns are ragged.
    """
    import pyarrow as pa

    try:
        if isinstance(rows, pa.Table):
            return rows
        if isinstance(rows, pa.RecordBatch):
            return pa.Table.from_batches([rows])
        if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
            return pa.Table.from_pandas(rows, preserve_index=False)
        if isinstance(rows, Mapping):
            return pa.table(dict(rows))
        if isinstance(rows, list | tuple) and all(isinstance(row, Mapping) for row in rows):
            return pa.Table.from_pylist(list(rows))
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InvalidInput(f"rows pushed to {view!r} cannot be read as a table: {exc}") from exc
    raise InvalidInput(
        f"rows pushed to {view!r} must be a DataFrame, an Arrow table, a list of row dicts or a "
        f"dict of columns, not {type(rows).__name__}"
    )


def _family(arrow_type: pa.DataType, dtype: str) -> bool:
    """Whether a column of ``arrow_type`` may be cast to ``dtype`` without reinterpreting."""
    import pyarrow.types as at

    if at.is_null(arrow_type):
        return True
    if dtype in ("int32", "int64"):
        return bool(at.is_integer(arrow_type))
    if dtype in ("float32", "float64"):
        return bool(at.is_integer(arrow_type) or at.is_floating(arrow_type))
    if dtype == "bool":
        return bool(at.is_boolean(arrow_type))
    if dtype == "string":
        return bool(at.is_string(arrow_type) or at.is_large_string(arrow_type))
    if dtype == "bytes":
        return bool(at.is_binary(arrow_type) or at.is_large_binary(arrow_type))
    return bool(at.is_timestamp(arrow_type) or at.is_date(arrow_type))


def _checked(
    table: pa.Table, name: str, dtype: str, view: str, *, nullable: bool = True
) -> pa.ChunkedArray:
    """Column ``name`` cast (safely) to ``dtype``'s Arrow type."""
    import pyarrow as pa

    from .spec import DTYPES

    column = table.column(name)
    what = f"column {name!r} pushed to {view!r}"
    if not _family(column.type, dtype):
        raise InvalidInput(f"{what} is {column.type}, not {dtype}; convert it before pushing")
    try:
        target = pa.timestamp("us", tz="UTC") if dtype == "timestamp" else DTYPES[dtype]
        cast = column.cast(pa.type_for_alias(target) if isinstance(target, str) else target)
    except pa.ArrowInvalid as exc:
        raise InvalidInput(f"{what} does not fit {dtype}: {exc}") from exc
    if not nullable and cast.null_count:
        raise InvalidInput(f"{what} has {cast.null_count} null value(s); every row needs one")
    return cast


def _times(table: pa.Table, name: str, view: str, *, nullable: bool) -> list[Any]:
    """A time column as UTC milliseconds: timestamps (naive: UTC), dates, or integers taken
    as milliseconds (the protocol's unit for times)."""
    import pyarrow as pa
    import pyarrow.types as at

    column = table.column(name)
    if at.is_null(column.type) and nullable:  # every value None: no created times
        return [None] * table.num_rows
    if at.is_integer(column.type):
        millis = column.cast(pa.int64())
    elif at.is_timestamp(column.type) or at.is_date(column.type):
        # Milliseconds as a floor (not toward zero): a time before 1970 stays in its ms.
        micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
        millis = pa.chunked_array([[None if m is None else m // 1000 for m in micros]], pa.int64())
    else:
        raise InvalidInput(
            f"time column {name!r} pushed to {view!r} is {column.type}; give timestamps or "
            "UTC milliseconds"
        )
    if not nullable and millis.null_count:
        raise InvalidInput(
            f"time column {name!r} pushed to {view!r} has {millis.null_count} null value(s); "
            "every row needs its event time"
        )
    _check_range(millis, name, view)
    times: list[Any] = millis.to_pylist()
    return times


def _check_range(millis: pa.ChunkedArray, name: str, view: str) -> None:
    """Refuse times outside the years 1-9999: integers in another unit (ns, us) would be
    taken as far-future milliseconds, and one such row hides every later real row of its key
    in the online store (and overflows the Redis store's fixed-width header)."""
    import pyarrow.compute as pc

    low, high = pc.min_max(millis).values()
    if low.as_py() is None:  # no values
        return
    if low.as_py() < FIRST_MS or high.as_py() > LAST_MS:
        bad = low.as_py() if low.as_py() < FIRST_MS else high.as_py()
        raise InvalidInput(
            f"time column {name!r} pushed to {view!r} has {bad}, outside the years 1-9999 "
            "as UTC milliseconds; integer times are milliseconds since 1970 (divide "
            "nanoseconds by 1,000,000, microseconds by 1,000) or give timestamps"
        )
