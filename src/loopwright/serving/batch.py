"""Batch scoring: a model over Parquet, CSV or a dataset version, into Parquet parts.

``predict_batch`` (and ``client.predict_batch``, ``loopwright predict``) streams the input as
Arrow record batches of at most ``batch_rows`` rows, so memory stays bounded whatever the
input's size; checks each batch against the model's signature before the model sees it; and
writes one Parquet part per work unit (``part-00000.parquet`` ...): the kept input columns,
the prediction columns as serving names them (``predict``, ``predict_proba`` ...), and
``model`` and ``model_version``.

The output appears whole or not at all: parts are written into a hidden staging folder beside
the output (each part through a temporary file and a rename), and the folder is renamed into
place once every part is written. A killed job leaves only the staging folder
(``.<output>.<host>.<pid>.<random>.partial``), never a half-written output; the next job
writing that output removes it.

Example:
    >>> result = client.predict_batch("models:/churn@champion", "customers.parquet",
    ...                               "scores/", executor="process", workers=2)  # doctest: +SKIP
    >>> result.rows, result.model_version  # doctest: +SKIP
    (1000000, 3)
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInput, SignatureError
from ..paths import safe_join
from ._batch_executors import EXECUTORS, open_executor
from ._batch_input import (
    PARQUET,
    WorkUnit,
    data_format,
    find_files,
    one_format,
    plan_units,
    unit_schema,
)
from ._batch_output import check_output, new_folder, new_staging, publish
from ._batch_score import (
    MODEL_COLUMN,
    VERSION_COLUMN,
    ScoreTask,
    csv_types,
    loaded_model,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from ..client import Client
    from ..data.entities import DatasetVersion
    from ..tracking import ActiveRun
    from .model import ServedModel
    from .sources import ModelSource

__all__ = ["BatchResult", "is_dataset_ref", "predict_batch"]

DEFAULT_BATCH_ROWS = 65_536
# Units of at most this many rows: a part per million rows keeps parts easy to handle, and
# several units per worker keep the workers busy until the end.
MAX_UNIT_ROWS = 1_000_000
UNITS_PER_WORKER = 4
_DATASET_REF = re.compile(r"^[^/\\@]+@[^/\\@]+$")


@dataclass(frozen=True)
class BatchResult:
    """What a batch-scoring job did.

    Attributes:
        output: the output folder (Parquet parts).
        rows: rows scored; ``batches``: record batches predicted; ``parts``: files written.
        seconds: wall time of reading, predicting and writing.
        model: the model's name; ``model_version`` its registry version (``None``: a folder).
        model_uri: the URI as given; ``package_hash`` the package scored with.
        input: the input as given; ``input_version`` the dataset version's ``name@vN``.
        executor, workers: where the units ran.
        dataset_version: the output registered as a dataset version (``register=``), else None.
        run_id: the run recording the job's lineage (``register=``), else None.
    """

    output: Path
    rows: int
    batches: int
    parts: int
    seconds: float
    model: str
    model_version: int | None
    model_uri: str
    package_hash: str
    input: str
    input_version: str | None
    executor: str
    workers: int
    dataset_version: DatasetVersion | None = None
    run_id: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else math.inf


def predict_batch(
    client: Client | None,
    model_uri: str,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    executor: str = "local",
    workers: int | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    keep_columns: Sequence[str] = (),
    outputs: Sequence[str] = ("predict",),
    register: str | None = None,
    overwrite: bool = False,
    trusted: bool = False,
    ray_address: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> BatchResult:
    """Score ``input`` with ``model_uri`` into the folder ``output``.

    Args:
        client: resolves ``models:/`` and ``runs:/`` URIs and dataset versions, and registers
            the output; ``None`` for a package folder and files.
        model_uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/ID/PATH`` or a
            package folder (an alias is resolved once: every worker scores the same version).
        input: a Parquet file, folder or glob; CSV files; or a dataset version
            (``name@v3``, ``name@alias``).
        output: the folder to create; an existing one is refused unless ``overwrite``.
        executor: ``local`` (this process), ``process`` (``workers`` processes) or ``ray``.
        workers: processes, this one included (default: the CPUs), or Ray tasks at once
            (default: as Ray schedules).
        batch_rows: rows per record batch: the memory bound and the model's call size.
        keep_columns: input columns copied into the output (ids to join on).
        outputs: what the model gives per row: ``predict``, and ``predict_proba`` if it has it.
        register: store the output as a new version of this dataset, with lineage (a run in
            experiment ``batch-scoring``, see ``_batch_lineage``).
        trusted: allow packages that unpickle data or run packaged code.
        ray_address: the Ray cluster for ``executor="ray"`` (default: a local Ray).
        progress: called with (rows just scored, total rows or ``None`` if unknown).

    Raises:
        NotFound: no such model, input or dataset version.
        AlreadyExists: ``output`` exists and ``overwrite`` is false.
        SignatureError: the input's columns do not match the signature (before any scoring),
            or a batch's values do not (the message names its rows and the column).
        ModelFailed: the model raised, or a worker process died.
    """
    from .sources import resolve_source

    _check_parameters(executor, workers, batch_rows, register, client)
    target = Path(output).absolute()
    check_output(target, input, overwrite=overwrite)
    started = time.perf_counter()
    source = resolve_source(model_uri, client, trusted=trusted)
    count = _worker_count(executor, workers)
    target.parent.mkdir(parents=True, exist_ok=True)
    cleanup: list[Path] = []
    run: ActiveRun | None = None
    try:
        input_name, input_version, files, fmt = _input_files(client, input, target.parent, cleanup)
        units, total = _plan(files, fmt, input_name, count, batch_rows)
        if executor != "ray":  # no more processes than units (Ray's 0: as it schedules)
            count = min(count, len(units))
        with open_executor(executor, source, workers=count, ray_address=ray_address) as runner:
            # While the workers start (and load the model), this process checks the input.
            served = loaded_model(source)
            wanted = served.check_outputs(outputs)
            keep = tuple(dict.fromkeys(keep_columns))
            _check_names(keep, wanted)
            _check_columns(served, unit_schema(units[0], csv_types(served)), keep, input_name)
            if register is not None:
                assert client is not None
                from ._batch_lineage import start_scoring_run

                settings = {"executor": executor, "workers": count, "batch_rows": batch_rows}
                run = start_scoring_run(client, source, input_name, input_version, settings)
            staging = new_staging(target)
            cleanup.append(staging)
            tasks = [ScoreTask(u, source, str(staging), wanted, keep, batch_rows) for u in units]
            report = progress or (lambda rows, total: None)
            parts = runner(tasks, lambda rows: report(rows, total))
        publish(staging, target, overwrite=overwrite)
        result = BatchResult(
            output=target,
            rows=sum(part.rows for part in parts),
            batches=sum(part.batches for part in parts),
            parts=sum(part.path is not None for part in parts),
            seconds=time.perf_counter() - started,
            model=served.name,
            model_version=served.version,
            model_uri=model_uri,
            package_hash=served.loaded.manifest.hash,
            input=input_name,
            input_version=None if input_version is None else input_version.ref,
            executor=executor,
            workers=count,
        )
        if run is not None:
            assert client is not None and register is not None
            result = _register(client, run, register, result, source)
        return result
    except BaseException as exc:
        if run is not None:
            from ..tracking import RunStatus

            run.end(RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        for folder in cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def is_dataset_ref(input: str | os.PathLike[str]) -> bool:
    """Whether ``input`` names a dataset version (``name@v3``) rather than files: it has the
    form and no such file exists."""
    text = os.fspath(input)
    return bool(_DATASET_REF.match(text)) and not Path(text).exists()


def _check_parameters(
    executor: str,
    workers: int | None,
    batch_rows: int,
    register: str | None,
    client: Client | None,
) -> None:
    if batch_rows < 1:
        raise InvalidInput(f"batch_rows must be at least 1, not {batch_rows}")
    if executor not in EXECUTORS:
        raise InvalidInput(f"executor {executor!r} is unknown; use one of {', '.join(EXECUTORS)}")
    if workers is not None and workers < 1:
        raise InvalidInput(f"workers must be at least 1, not {workers}")
    if register is not None and client is None:
        raise InvalidInput(f"registering the output as {register!r} needs a store or server")


def _worker_count(executor: str, workers: int | None) -> int:
    """Workers as given; by default one (local), the CPUs (process), or 0: as Ray schedules."""
    if workers is not None:
        return workers
    if executor == "local":
        return 1
    return 0 if executor == "ray" else (os.cpu_count() or 1)


def _plan(
    files: Sequence[str], fmt: str, input_name: str, workers: int, batch_rows: int
) -> tuple[list[WorkUnit], int | None]:
    """The input's work units (several per worker), and its rows if the footers tell them."""
    total = _total_rows(files, fmt)
    units = plan_units(files, fmt, _unit_rows(total, workers or (os.cpu_count() or 1), batch_rows))
    if not units:
        raise InvalidInput(f"input {input_name!r} has no rows to score")
    return units, total


def _register(
    client: Client, run: ActiveRun, name: str, result: BatchResult, source: ModelSource
) -> BatchResult:
    """The output stored as a version of dataset ``name``, produced by ``run`` (then ended)."""
    from dataclasses import replace

    from ._batch_lineage import register_output

    run.log_metrics(
        {"rows": result.rows, "seconds": result.seconds, "rows_per_second": result.rows_per_second}
    )
    version = register_output(client, run, name, result.output, source, result.input)
    run.end()
    return replace(result, dataset_version=version, run_id=run.id)


def _input_files(
    client: Client | None,
    input: str | os.PathLike[str],
    scratch: Path,
    cleanup: list[Path],
) -> tuple[str, DatasetVersion | None, list[str], str]:
    """The input's name, its dataset version (if it is one), the local data files to read
    and their format. A dataset version is downloaded (verified) into a scratch folder; its
    files other than Parquet and CSV (a README, a schema) are not data."""
    text = os.fspath(input)
    if not is_dataset_ref(text):
        files, fmt = find_files(text)
        return text, None, files, fmt
    if client is None:
        raise InvalidInput(
            f"input {text!r} names a dataset version, which needs a store or server; pass a "
            f"client, or give a file path (./{text} if it is one)"
        )
    version = client.datasets.get(text)
    paths = [entry.path for entry in client.datasets.files(version)]
    data = [path for path in paths if data_format(path) is not None]
    if not data:
        raise InvalidInput(
            f"dataset version {version.ref} holds no Parquet or CSV files "
            f"({', '.join(paths[:5]) or 'no files'}); score a version with data files"
        )
    fmt = one_format(data, f"dataset version {version.ref}")
    folder = new_folder(scratch, ".lw-input")
    cleanup.append(folder)
    client.datasets.download(version, folder)
    files = [str(safe_join(folder, path, what="dataset path")) for path in data]
    return version.ref, version, files, fmt


def _check_names(keep: Sequence[str], outputs: Sequence[str]) -> None:
    reserved = {*outputs, MODEL_COLUMN, VERSION_COLUMN}
    clashes = [name for name in keep if name in reserved]
    if clashes:
        raise InvalidInput(
            f"kept column(s) {', '.join(map(repr, clashes))} would clash with the output's "
            f"columns {', '.join(sorted(reserved))}; rename them in the input"
        )


def _check_columns(served: ServedModel, schema: pa.Schema, keep: Sequence[str], name: str) -> None:
    """The input's columns against the signature and ``keep``, before anything is scored."""
    missing = [column for column in keep if column not in schema.names]
    if missing:
        raise InvalidInput(
            f"input {name!r} has no column {', '.join(map(repr, missing))} to keep; "
            f"its columns: {', '.join(schema.names)}"
        )
    signature = served.signature
    if signature is None:
        return
    try:
        signature.validate(schema.empty_table().to_pandas(), what=served.label)
    except SignatureError as exc:
        raise SignatureError(f"input {name!r}: {exc.message}", exc.problems) from None


def _total_rows(files: Sequence[str], fmt: str) -> int | None:
    """The input's rows from Parquet footers (CSV: unknown without reading it)."""
    if fmt != PARQUET:
        return None
    import pyarrow.parquet as pq

    return sum(int(pq.read_metadata(path).num_rows) for path in files)


def _unit_rows(total: int | None, workers: int, batch_rows: int) -> int:
    if total is None:
        return MAX_UNIT_ROWS
    share = math.ceil(total / (workers * UNITS_PER_WORKER)) if workers > 1 else MAX_UNIT_ROWS
    return max(batch_rows, min(MAX_UNIT_ROWS, share))
