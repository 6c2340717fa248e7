"""The offline store: point-in-time correct training sets, out of core, on DuckDB.

:func:`historical` registers the entity rows and each view's source with a DuckDB connection
bounded by ``settings.query_memory`` (spilling into the work folder), runs the join of
``features/_pit.py``, computes the on-demand views with their own code over Arrow batches of
some 64k rows, and writes the result to one Parquet file batch by batch: nothing holds the whole
result in Python.

Example:
    >>> ts = historical(selection, entity_df, timestamp_field="event_timestamp",  # doctest: +SKIP
    ...                 full_feature_names=False, datasets=datasets, settings=settings,
    ...                 workdir=Path("/tmp/work"))
    >>> ts.to_pandas()  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data._sql import sql_literal
from ..errors import InvalidInput, NotFound
from . import _pit
from ._sources import (
    column_types,
    connect,
    explained_error,
    local_files,
    register_source,
    time_expr,
)
from .entities import TrainingSet
from .spec import DTYPES

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ..config import Settings
    from ..data.protocol import Datasets
    from ._selection import OnDemandPick, Selection

__all__ = ["historical"]

_BATCH_ROWS = 65_536


def historical(
    selection: Selection,
    entity_rows: Any,
    *,
    timestamp_field: str,
    full_feature_names: bool,
    datasets: Datasets,
    settings: Settings,
    workdir: Path,
    progress: Callable[[int], None] | None = None,
) -> TrainingSet:
    """A training set for ``entity_rows`` (a pandas DataFrame, a pyarrow Table, a local
    Parquet/CSV file or a dataset ref): every row, in order, with its columns, then the
    selection's feature columns (see ``Features.get_historical_features``). ``progress`` is
    called with the number of rows of each batch written.

    ``full_feature_names`` is already applied in ``selection``'s columns; it is taken for
    the signature's symmetry with the protocol.

    Raises:
        InvalidInput: a join key or the timestamp column is missing or of a type that cannot
            be read as declared; an entity column has a feature column's name.
    """
    del full_feature_names  # resolved into selection.columns by the definition store
    workdir.mkdir(parents=True, exist_ok=True)
    # DuckDB's spill files and sources downloaded from a remote blob store, removed at the end
    scratch = workdir / f"scratch-{uuid.uuid4().hex[:12]}"
    out = workdir / f"training-set-{uuid.uuid4().hex[:12]}.parquet"
    con = connect(settings, scratch / "spill")
    try:
        sources, entity_columns, given = _register_entities(
            con, entity_rows, timestamp_field, datasets, scratch
        )
        views = _register_views(con, selection, datasets, settings, scratch, sources)
        _create_entities(con, selection, timestamp_field)
        clashes = set(entity_columns) & {c for view in views for c in view.columns}
        clashes |= set(entity_columns) & {c for pick in selection.on_demand for c in pick.columns}
        if clashes:
            raise InvalidInput(
                f"the entity rows have columns named like features: {sorted(clashes)}; rename "
                "them or pass full_feature_names=True"
            )
        query = _pit.join_query(views, selection.join_keys, entity_columns)
        reader = con.sql(query).to_arrow_reader(_BATCH_ROWS)
        rows = _write(reader, out, selection, views, entity_columns, given, progress)
    except BaseException as error:
        out.unlink(missing_ok=True)
        explained = explained_error(error, settings, "the training set")
        if explained is error:
            raise
        raise explained from error
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return TrainingSet(
        path=out,
        rows=rows,
        columns=(*entity_columns, *selection.columns),
        features=selection.feature_refs,
        # on-demand views too: their code is part of what the set was built from (lineage)
        views={
            **{pick.name: pick.version for pick in selection.views},
            **{pick.name: pick.version for pick in selection.on_demand},
        },
        service=selection.service,
        sources=tuple(sources),
        timestamp_field=timestamp_field,
    )


def _register_views(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    datasets: Datasets,
    settings: Settings,
    scratch: Path,
    sources: list[str],
) -> list[_pit.JoinedView]:
    """Register each view's source and its ``__fv<i>`` relation; adds the dataset versions
    read to ``sources``."""
    views = []
    for i, pick in enumerate(selection.views):
        relation = f"__source{i}"
        read = register_source(
            con, pick.source, name=relation, datasets=datasets, settings=settings,
            workdir=scratch,
        )  # fmt: skip
        sources += [version for version in read if version not in sources]
        sql, created = _pit.view_relation(i, pick, column_types(con, relation), relation)
        con.execute(sql)
        columns = (
            tuple(f"__hidden{i}_{j}" for j in range(len(pick.features)))
            if pick.hidden
            else pick.columns
        )
        views.append(_pit.JoinedView(pick, f"__fv{i}", created, columns))
    return views


def _register_entities(
    con: duckdb.DuckDBPyConnection,
    entity_rows: Any,
    timestamp_field: str,
    datasets: Datasets,
    workdir: Path,
) -> tuple[list[str], list[str], pa.Schema | None]:
    """Register the entity rows as ``__entity_src`` with a ``__row`` column (their order);
    returns the dataset version ids read, the entity columns and, for rows given as a table,
    its schema (times in another zone than UTC are written back in theirs)."""
    import pandas as pd
    import pyarrow as pa

    sources: list[str] = []
    given = None
    if isinstance(entity_rows, pd.DataFrame):
        entity_rows = pa.Table.from_pandas(entity_rows, preserve_index=False)
    if isinstance(entity_rows, pa.Table):
        given = entity_rows.schema
        con.register("__entity_src", _numbered(entity_rows))
    elif isinstance(entity_rows, os.PathLike):
        # A str is never read as a local file: through a server it comes from the caller,
        # and a viewer must not read the server's files (give a pathlib.Path for a file).
        if not os.path.isfile(entity_rows):
            raise NotFound(f"entity rows file {os.fspath(entity_rows)!r} does not exist")
        _register_entity_files(con, [os.fspath(entity_rows)])
    elif isinstance(entity_rows, str):
        version = datasets.get(entity_rows)
        paths = _dataset_paths(datasets, version, workdir)
        _register_entity_files(con, paths)
        sources.append(version.id)
    else:
        raise InvalidInput(
            f"entity rows of type {type(entity_rows).__name__} are not supported; give a pandas "
            "DataFrame, a pyarrow Table, a Parquet file path or a dataset ref"
        )
    types = column_types(con, "__entity_src")
    if timestamp_field not in types:
        raise InvalidInput(
            f"the entity rows have no timestamp column {timestamp_field!r} (columns: "
            f"{', '.join(c for c in types if c != '__row')}); add it or pass timestamp_field"
        )
    entity_columns = [column for column in types if column != "__row"]
    return sources, entity_columns, given


def _dataset_paths(datasets: Datasets, version: Any, workdir: Path) -> list[str]:
    entries = [e for e in datasets.files(version) if e.path.lower().endswith((".parquet", ".pq"))]
    if not entries:
        raise InvalidInput(
            f"dataset version {version.ref} has no Parquet files to read entity rows from"
        )
    return local_files(datasets, version, entries, workdir)


def _numbered(table: pa.Table) -> pa.Table:
    """``table`` with ``__row``, its rows' positions."""
    import numpy as np
    import pyarrow as pa

    return table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _register_entity_files(con: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> None:
    """Entity rows from Parquet (row order: file, then row in file) or one CSV file."""
    suffix = os.path.splitext(paths[0].lower().removesuffix(".gz"))[1] if paths else ""
    if len(paths) == 1 and suffix in (".csv", ".tsv"):
        # A CSV file of entity rows is read whole (its rows have no numbers to order by)
        import pyarrow.csv as pacsv

        delimiter = "\t" if suffix == ".tsv" else ","
        table = pacsv.read_csv(paths[0], parse_options=pacsv.ParseOptions(delimiter=delimiter))
        con.register("__entity_src", _numbered(table))
        return
    # __row only orders the rows (file, then row in file): no window over all of them
    parts = [
        f"SELECT * EXCLUDE (file_row_number), {i} * {1 << 40} + file_row_number AS __row "  # noqa: S608
        f"FROM read_parquet({sql_literal(path)}, file_row_number = true)"
        for i, path in enumerate(paths)
    ]
    con.execute(f"CREATE OR REPLACE TEMP VIEW __entity_src AS {' UNION ALL BY NAME '.join(parts)}")


def _create_entities(
    con: duckdb.DuckDBPyConnection, selection: Selection, timestamp_field: str
) -> None:
    """``__entities``: the entity rows with ``__ts`` (naive UTC) and the join keys cast to
    their dtypes (``__j<i>``)."""
    types = column_types(con, "__entity_src")
    ts = time_expr(
        types,
        timestamp_field,
        what=f"timestamp column {timestamp_field!r}",
        where="the entity rows",
    )
    items = [f"{ts} AS __ts", *_pit.entity_keys_sql(selection.join_keys, types)]
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW __entities AS SELECT *, {', '.join(items)} "  # noqa: S608
        "FROM __entity_src"
    )


def _arrow_type(dtype: str) -> pa.DataType:
    import pyarrow as pa

    if dtype == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return pa.type_for_alias(DTYPES[dtype])


def _write(
    reader: pa.RecordBatchReader,
    out: Path,
    selection: Selection,
    views: Sequence[_pit.JoinedView],
    entity_columns: Sequence[str],
    given: pa.Schema | None,
    progress: Callable[[int], None] | None,
) -> int:
    """Stream the joined batches into ``out``, adding the on-demand features and dropping
    the hidden ones; returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    joined = reader.schema
    fields = [joined.field(column) for column in entity_columns]
    if given is not None:  # DuckDB gives aware times in UTC: back to the zone they came in
        fields = [
            given.field(f.name) if pa.types.is_timestamp(f.type) and f.type.tz else f
            for f in fields
        ]
    on_demand = {
        c: (pick, dtype)
        for pick in selection.on_demand
        for c, (_, dtype) in zip(pick.columns, pick.features, strict=True)
    }
    for column in selection.columns:
        if column in on_demand:
            fields.append(pa.field(column, _arrow_type(on_demand[column][1])))
        else:
            fields.append(joined.field(column))
    schema = pa.schema(fields)
    # Float features are rarely repeated: dictionary-encoding them is work thrown away when
    # the writer falls back to plain pages (some 0.3 s of CPU per 10M values written).
    dictionary = [f.name for f in schema if not pa.types.is_floating(f.type)]
    rows = 0
    with pq.ParquetWriter(out, schema, use_dictionary=dictionary) as writer:
        for batch in reader:
            computed = _on_demand(batch, selection, views) if selection.on_demand else {}
            arrays = [
                computed[field.name]
                if field.name in computed
                else batch.column(field.name).cast(field.type)
                for field in schema
            ]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += batch.num_rows
            if progress is not None:
                progress(batch.num_rows)
    return rows


def _on_demand(
    batch: pa.RecordBatch, selection: Selection, views: Sequence[_pit.JoinedView]
) -> dict[str, pa.Array]:
    """The on-demand features of one batch, by output column, typed as declared."""
    import pyarrow as pa

    from . import on_demand

    # view -> feature -> (column in the batch, declared dtype)
    by_view: dict[str, dict[str, tuple[str, str]]] = {}
    for view in views:
        names = by_view.setdefault(view.pick.name, {})
        for (feature, dtype), column in zip(view.pick.features, view.columns, strict=True):
            names.setdefault(feature, (column, dtype))
    computed: dict[str, pa.Array] = {}
    for pick in selection.on_demand:
        frame = _input_frame(batch, pick, by_view)
        result = on_demand.run(pick, frame)
        for (feature, dtype), column in zip(pick.features, pick.columns, strict=True):
            values = pa.Array.from_pandas(result[feature])
            # pandas keeps nanoseconds: a timestamp is cut to microseconds like any other
            computed[column] = values.cast(_arrow_type(dtype), safe=dtype != "timestamp")
    return computed


def _input_frame(
    batch: pa.RecordBatch,
    pick: OnDemandPick,
    by_view: Mapping[str, Mapping[str, tuple[str, str]]],
) -> Any:
    """An on-demand view's input: its request fields and its source views' features under
    their plain names (built by on_demand.input_frame, as online)."""
    from . import on_demand

    inputs = []
    for field, dtype in pick.request_fields:
        if field not in batch.schema.names:
            raise InvalidInput(
                f"on-demand view {pick.name!r} needs request field {field!r}: add it as a "
                "column of the entity rows"
            )
        inputs.append((field, dtype, batch.column(field)))
    for view in pick.sources:
        for feature, (column, dtype) in by_view.get(view, {}).items():
            inputs.append((feature, dtype, batch.column(column)))
    return on_demand.input_frame(inputs, batch.num_rows)
