"""One work unit scored into one output part: what every executor runs, in whichever process.

A worker gets a :class:`ScoreTask`: the unit's rows and the model's :class:`ModelSource` (the
verified package folder in the local model cache, never a pickled model). It loads the package
once per process, reads the unit batch by batch, checks each batch against the signature
(``ServedModel.prepare``: the error names the batch's rows and the column), predicts, and
writes the part through a temporary file renamed into place, so a killed worker leaves no
half-written part.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, ModelFailed, SignatureError
from ._batch_input import WorkUnit, read_unit

if TYPE_CHECKING:
    import pyarrow as pa

    from .model import ServedModel
    from .sources import ModelSource

__all__ = [
    "MODEL_COLUMN",
    "VERSION_COLUMN",
    "PartResult",
    "ScoreTask",
    "csv_types",
    "loaded_model",
    "model_columns",
    "part_name",
    "score_unit",
]

MODEL_COLUMN = "model"
VERSION_COLUMN = "model_version"


@dataclass(frozen=True)
class ScoreTask:
    """What a worker needs to score one unit (plain values: it crosses process boundaries)."""

    unit: WorkUnit
    source: ModelSource
    staging: str
    outputs: tuple[str, ...]
    keep_columns: tuple[str, ...]
    batch_rows: int


@dataclass(frozen=True)
class PartResult:
    """A scored unit: its rows and batches, and its part file (``None``: the unit was empty)."""

    index: int
    rows: int
    batches: int
    path: str | None


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


@functools.lru_cache(maxsize=4)
def loaded_model(source: ModelSource) -> ServedModel:
    """The model of ``source``, loaded (and hash-verified) once per process.

    Cached because a process scores many units (a Ray worker many tasks) with one model.
    """
    from .sources import load_source

    return load_source(source)


def model_columns(served: ServedModel) -> tuple[str, ...] | None:
    """The input columns the model's signature names; ``None``: read every column."""
    signature = served.signature
    if signature is None or signature.is_tensor_based:
        return None
    return tuple(spec.name for spec in signature.inputs if spec.name is not None)


def csv_types(served: ServedModel) -> dict[str, str]:
    """The signature's column types, by column (what CSV columns are read as)."""
    signature = served.signature
    if signature is None or signature.is_tensor_based:
        return {}
    return {spec.name: spec.type for spec in signature.inputs if spec.name is not None}


def score_unit(task: ScoreTask, on_batch: Callable[[int], None] | None = None) -> PartResult:
    """Score ``task.unit`` into ``<staging>/part-NNNNN.parquet``; ``on_batch(rows)`` after each
    batch written.

    Raises:
        SignatureError: a batch does not match the signature (the message names its rows).
        InvalidInput: a batch has missing values the model refuses, or unreadable rows.
        ModelFailed: the model raised on a batch.
    """
    import pyarrow.parquet as pq

    served = loaded_model(task.source)
    wanted = model_columns(served)
    columns = None if wanted is None else list(dict.fromkeys([*wanted, *task.keep_columns]))
    target = Path(task.staging) / part_name(task.unit.index)
    temp = target.with_name(f".{target.name}.tmp")
    writer: pq.ParquetWriter | None = None
    rows = batches = 0
    try:
        reading = read_unit(task.unit, columns, task.batch_rows, csv_types(served))
        for offset, batch in reading:
            if batch.num_rows == 0:
                continue
            table = _scored(served, task, batch, offset, wanted)
            if writer is None:
                writer = pq.ParquetWriter(temp, table.schema)
            elif table.schema != writer.schema:
                table = _conformed(table, writer.schema, task.unit.describe(offset, offset + 1))
            writer.write_table(table)
            rows += batch.num_rows
            batches += 1
            if on_batch is not None:
                on_batch(batch.num_rows)
        if writer is None:
            return PartResult(task.unit.index, 0, 0, None)
        writer.close()
        writer = None
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, target)
    finally:
        if writer is not None:
            writer.close()
        temp.unlink(missing_ok=True)
    return PartResult(task.unit.index, rows, batches, str(target))


def _scored(
    served: ServedModel,
    task: ScoreTask,
    batch: pa.RecordBatch,
    offset: int,
    wanted: tuple[str, ...] | None,
) -> pa.Table:
    """One batch's output table: kept input columns, the predictions, model and version."""
    import pyarrow as pa

    from ._log_table import _array

    where = task.unit.describe(offset, offset + batch.num_rows)
    names = batch.schema.names
    features = batch if wanted is None else batch.select([n for n in names if n in wanted])
    try:
        prepared = served.prepare(features.to_pandas())
    except SignatureError as exc:
        raise SignatureError(f"{where}: {exc.message}", exc.problems) from None
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc.message}") from None
    try:
        outputs: Mapping[str, Any] = served.run(prepared.data, task.outputs)
    except ModelFailed as exc:
        raise ModelFailed(f"{where}: {exc.message}") from exc.__cause__
    columns: dict[str, pa.Array] = {name: batch.column(name) for name in task.keep_columns}
    for name, values in outputs.items():
        columns[name] = _array(values)
    columns[MODEL_COLUMN] = pa.repeat(served.name, batch.num_rows)
    version = served.version
    columns[VERSION_COLUMN] = (
        pa.nulls(batch.num_rows, pa.int64())
        if version is None
        else pa.repeat(pa.scalar(version, pa.int64()), batch.num_rows)
    )
    return pa.table(columns)


def _conformed(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` in the part's schema (set by its first batch), or an error naming the column."""
    import pyarrow as pa

    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError):
        differing = [
            f"{field.name!r} is {field.type}, earlier rows {schema.field(field.name).type}"
            if field.name in schema.names
            else f"{field.name!r} is new"
            for field in table.schema
            if field.name not in schema.names or schema.field(field.name).type != field.type
        ]
        raise InvalidInput(
            f"{where}: the predictions changed type within one part ({'; '.join(differing)}); "
            "make the model return one type"
        ) from None
