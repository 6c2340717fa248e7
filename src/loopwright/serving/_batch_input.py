"""Batch scoring's input: files found, cut into work units, read back as bounded Arrow batches.

An input is a Parquet file, folder or glob, CSV files (a folder, glob or file), or a dataset
version that holds them. Parquet is cut by row groups: a unit is a run of consecutive row
groups of one file, about ``target_rows`` rows, so several processes can score one large file;
a CSV file is one unit (it cannot be split without reading it). Units are numbered in file
order, then row order, and each unit writes the output part of that number, so the output's
order does not depend on which worker finished first.

Reading holds about one row group (Parquet) or one block (CSV, 16 MiB) plus one batch of
``batch_rows`` rows, never the unit.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CSV",
    "PARQUET",
    "WorkUnit",
    "data_format",
    "find_files",
    "one_format",
    "plan_units",
    "read_unit",
    "unit_schema",
]

PARQUET = "parquet"
CSV = "csv"
_SUFFIXES = {".parquet": PARQUET, ".pq": PARQUET, ".csv": CSV}
CSV_BLOCK_BYTES = 16 << 20
# Signature column types read from CSV as these Arrow types, so a block whose values look like
# integers does not give a column another type than the next block's.
_CSV_TYPES = {
    "boolean": "bool_",
    "integer": "int64",
    "long": "int64",
    "float": "float64",
    "double": "float64",
    "string": "string",
}


@dataclass(frozen=True)
class WorkUnit:
    """Rows of one input file that one worker scores into output part ``index``.

    Attributes:
        index: the output part's number (``part-00003.parquet``).
        path: the input file.
        format: ``parquet`` or ``csv``.
        row_groups: the Parquet row groups, in order (empty for CSV: the whole file).
        first_row: the number, within the file, of the unit's first row (for messages).
        rows: the unit's rows; ``None`` for CSV (unknown until read).
    """

    index: int
    path: str
    format: str
    row_groups: tuple[int, ...] = ()
    first_row: int = 0
    rows: int | None = None

    def describe(self, start: int, stop: int) -> str:
        """``rows 200-299 of data.parquet``: rows ``start``..``stop`` of the unit, for messages."""
        first = self.first_row + start
        return f"rows {first}-{self.first_row + stop - 1} of {self.path}"


def find_files(spec: str | os.PathLike[str]) -> tuple[list[str], str]:
    """The input files ``spec`` names (a file, a folder, or a glob) and their one format.

    Raises:
        NotFound: nothing matches.
        InvalidInput: files of no known format, or Parquet and CSV mixed.
    """
    text = os.fspath(spec)
    path = Path(text)
    if path.is_dir():
        found = [str(p) for p in sorted(path.rglob("*")) if p.is_file() and _visible(p, path)]
    elif path.is_file():
        found = [str(path)]
    elif glob.has_magic(text):
        found = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
    else:
        raise NotFound(f"input {text!r} does not exist; give a Parquet or CSV file, folder or glob")
    if not found:
        raise NotFound(f"input {text!r} holds no files; give a Parquet or CSV file, folder or glob")
    unknown = [p for p in found if data_format(p) is None]
    if unknown:
        raise InvalidInput(
            f"input {text!r} holds {unknown[0]!r}, which is neither Parquet (.parquet, .pq) nor "
            "CSV (.csv); point the input at the data files only"
        )
    return found, one_format(found, f"input {text!r}")


def data_format(path: str) -> str | None:
    """``parquet`` or ``csv`` by the file's suffix; ``None`` for any other file."""
    return _SUFFIXES.get(Path(path).suffix.lower())


def one_format(paths: Sequence[str], what: str) -> str:
    """The one format of data files ``paths``; mixing Parquet and CSV is refused."""
    formats = {data_format(p) for p in paths}
    if len(formats) > 1:
        raise InvalidInput(f"{what} mixes Parquet and CSV files; score each format on its own")
    return formats.pop() or PARQUET


def plan_units(files: Sequence[str], fmt: str, target_rows: int) -> list[WorkUnit]:
    """The files cut into units of about ``target_rows`` rows (whole row groups; CSV: files)."""
    if fmt == CSV:
        return [WorkUnit(i, path, CSV) for i, path in enumerate(files)]
    import pyarrow.parquet as pq

    units: list[WorkUnit] = []
    for path in files:
        metadata = _parquet_metadata(pq, path)
        groups: list[int] = []
        first = rows = 0
        for group in range(metadata.num_row_groups):
            count = metadata.row_group(group).num_rows
            if groups and rows + count > target_rows:
                units.append(WorkUnit(len(units), path, PARQUET, tuple(groups), first, rows))
                first, groups, rows = first + rows, [], 0
            groups.append(group)
            rows += count
        if groups:
            units.append(WorkUnit(len(units), path, PARQUET, tuple(groups), first, rows))
    return units


def unit_schema(unit: WorkUnit, column_types: Mapping[str, str]) -> pa.Schema:
    """The columns a unit's file holds (Parquet: its schema; CSV: its header, typed)."""
    import pyarrow.parquet as pq

    if unit.format == PARQUET:
        return _parquet_metadata(pq, unit.path).schema.to_arrow_schema()
    with _csv_reader(unit.path, None, column_types) as reader:
        return reader.schema


def read_unit(
    unit: WorkUnit,
    columns: Sequence[str] | None,
    batch_rows: int,
    column_types: Mapping[str, str],
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """The unit's rows as batches of at most ``batch_rows``, each with its first row's offset
    within the unit. ``columns``: only those of these the file has (``None``: all; a missing
    one is for the signature check to name); ``column_types``: signature types of CSV columns
    (see ``_CSV_TYPES``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if columns is not None:
        present = set(unit_schema(unit, column_types).names)
        columns = [name for name in columns if name in present]
    offset = 0
    if unit.format == PARQUET:
        # Neither pre-buffering nor threads: both read row groups ahead of the batch asked
        # for, and over a unit of many row groups that held ~5x the memory of one batch.
        with pq.ParquetFile(unit.path, pre_buffer=False) as parquet:
            batches: Iterator[pa.RecordBatch] = parquet.iter_batches(
                batch_size=batch_rows,
                row_groups=list(unit.row_groups),
                columns=columns,
                use_threads=False,
            )
            for batch in batches:
                yield offset, batch
                offset += batch.num_rows
        return
    with _csv_reader(unit.path, columns, column_types) as reader:
        while True:
            try:
                block = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise InvalidInput(
                    f"{unit.path} after row {unit.first_row + offset - 1}: cannot read the CSV: "
                    f"{exc}; fix the file, or convert it to Parquet"
                ) from None
            for start in range(0, block.num_rows, batch_rows):
                batch = block.slice(start, batch_rows)
                yield offset, batch
                offset += batch.num_rows


def _csv_reader(
    path: str, columns: Sequence[str] | None, column_types: Mapping[str, str]
) -> pa.csv.CSVStreamingReader:
    import pyarrow as pa
    import pyarrow.csv as csv

    types = {name: getattr(pa, _CSV_TYPES[kind])() for name, kind in column_types.items()}
    try:
        return csv.open_csv(
            path,
            read_options=csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=csv.ConvertOptions(
                column_types=types,
                include_columns=list(columns) if columns is not None else None,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise InvalidInput(
            f"cannot read {path} as CSV: {exc}; fix the file, or convert it to Parquet"
        ) from None


def _parquet_metadata(pq: Any, path: str) -> pa.parquet.FileMetaData:
    import pyarrow as pa

    try:
        return pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{path} is not a readable Parquet file: {exc}") from None


def _visible(path: Path, root: Path) -> bool:
    # Hidden files and folders (.DS_Store, a writer's .part.tmp) and Spark's _SUCCESS are not data.
    return not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)
