"""References: a dataset version, or a model version's training data, sketched once and stored.

A source is pinned before anything is built (``churn@latest`` becomes ``dataset:churn@v3``,
``models:/churn@champion`` becomes ``model:churn/7``), and one pinned source has one stored
reference: building it again returns the stored one, so monitors never recompute a reference.

The sketch is built over the reference's feature columns, renamed ``input.<col>`` to match the
prediction log; the target is left out (a model version's signature names its inputs; a dataset
version's ``target`` tag names its target). For a model version whose package loads safely (the
registry's verifying loader, never ``trusted``), every reference row is scored, in batches, and
the outputs are sketched as ``output.<name>``, so prediction drift has a reference as exact as
the features'. A package that does not load safely (it would unpickle, or its flavor is not
installed) gives a reference without outputs, and ``Reference.note`` says why.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import AlreadyExists, BlobNotFound, InvalidInput, NotFound
from ..errors import IntegrityError as BlobCorrupt
from ..store import limits
from ..store import schema as t
from ..store.audit import append_event
from ._window import INPUT, OUTPUT
from .entities import Reference

if TYPE_CHECKING:
    import pyarrow as pa

    from ..registry.entities import ModelVersion
    from ..store.home import Store
    from .sketch import ReferenceSketch

__all__ = ["ReferenceBook", "check_reference_spec"]

_ref = t.monitor_references.c
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<ref>[^/@]+)|@(?P<alias>[^/@]+))$")
_DATASET = re.compile(r"^(?P<name>[^@\s]+)@(?P<ref>[^@\s]+)$")
_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:@/-]{{0,{limits.MONITOR_NAME - 1}}}$")
_DATA_SUFFIXES = (".parquet", ".pq", ".csv")
# Rows scored per model call while sketching outputs: bounded memory for large references.
SCORE_BATCH_ROWS = 50_000
TARGET_TAG = "target"


def check_reference_spec(spec: object) -> str:
    """``spec`` if it names a reference a monitor can use, else InvalidInput with the forms."""
    if (
        isinstance(spec, str)
        and len(spec) <= 600
        and (spec == "auto" or _MODEL_URI.match(spec) or _DATASET.match(spec))
    ):
        return spec
    raise InvalidInput(
        f"reference {str(spec)[:100]!r} must be 'auto' (the training data of the model version "
        "serving the window, from lineage), a dataset version NAME@VERSION (e.g. "
        "'churn-train@v3') or a model version models:/NAME/VERSION"
    )


class ReferenceBook:
    """Build, find and load stored references.

    Args:
        store: the metadata and blob stores.
        actor: who builds are recorded as.
        clock: the time in UTC milliseconds.
    """

    def __init__(self, store: Store, *, actor: str, clock: Callable[[], int]) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor
        self._clock = clock

    # --- building ------------------------------------------------------------------------------

    def build(self, source: str, *, name: str | None = None) -> Reference:
        """The reference of ``source`` (``NAME@VERSION`` or ``models:/NAME/VERSION``): the
        stored one if that pinned source was built before, else built and stored now."""
        from ..registry.service import RegistryService

        if not isinstance(source, str) or source == "auto":
            raise InvalidInput(
                f"reference source {source!r} must be a dataset version NAME@VERSION or a "
                "model version models:/NAME/VERSION ('auto' is a monitor's setting)"
            )
        check_reference_spec(source)
        if name is not None:
            _check_name(name)
        match = _MODEL_URI.match(source)
        if match is not None:
            registry = RegistryService(self.store, actor=self._actor, clock=self._clock)
            ref = match["ref"] if match["ref"] is not None else f"@{match['alias']}"
            return self.for_model_version(registry.resolve(match["name"], ref), name=name)
        return self._for_dataset(source, name)

    def for_model_version(self, version: ModelVersion, *, name: str | None = None) -> Reference:
        """The reference of ``version``'s training data (the dataset version its lineage
        names), with its outputs sketched when its package loads safely."""
        pinned = f"model:{version.model}/{version.version}"
        found = self._by_source(pinned)
        if found is not None:
            return found
        if not version.dataset_version_ids:
            raise InvalidInput(
                f"model version {version.model}/{version.version} names no training data in "
                "its lineage; register it from a run that declared its dataset version as an "
                "input (run.log_input), or give the monitor a reference NAME@VERSION"
            )
        # Several inputs: the first by id (UUIDv7, so the oldest declared) is the training set.
        dataset = self._datasets().get_by_id(version.dataset_version_ids[0])
        table = self._read_dataset(dataset)
        inputs, note = _model_inputs(table, version, dataset.tags.get(TARGET_TAG))
        features = _renamed(table.select(inputs), INPUT)
        outputs, output_note = self._score(version, table.select(inputs))
        if outputs is not None:
            features = _joined(features, _renamed(outputs, OUTPUT))
        notes = "; ".join(n for n in (note, output_note) if n) or None
        return self._store(pinned, name, features, dataset.id, version.id, notes)

    def _for_dataset(self, source: str, name: str | None) -> Reference:
        dataset = self._datasets().get(source)
        pinned = f"dataset:{dataset.ref}"
        found = self._by_source(pinned)
        if found is not None:
            return found
        table = self._read_dataset(dataset)
        target = dataset.tags.get(TARGET_TAG)
        inputs = [c for c in table.column_names if c != target]
        note = None if target is None else f"target column {target!r} left out"
        features = _renamed(table.select(inputs), INPUT)
        return self._store(pinned, name, features, dataset.id, None, note)

    def _store(
        self,
        source: str,
        name: str | None,
        table: pa.Table,
        dataset_version_id: str | None,
        model_version_id: str | None,
        note: str | None,
    ) -> Reference:
        from .sketch import ReferenceSketch

        if table.num_columns == 0 or table.num_rows == 0:
            raise InvalidInput(
                f"reference source {source!r} has no rows or no feature columns "
                f"({table.num_rows} rows, columns {table.column_names}); pick a dataset "
                "version with data"
            )
        sketch = ReferenceSketch.build(table)
        blob = self.store.blobs.put_bytes(sketch.to_bytes())
        name = name or _default_name(source)
        row = {
            "id": new_id(),
            "name": name,
            "source": source,
            "dataset_version_id": dataset_version_id,
            "model_version_id": model_version_id,
            "sketch_blob": blob.hash,
            # The sketch's names: a vector output is listed by position (predict_proba[0]).
            "columns_json": json.dumps(
                {"columns": [*sketch.columns, *sketch.skipped], "note": note}
            ),
            "rows": table.num_rows,
            "created_by": self._actor,
            "created_at": self._clock(),
        }
        try:
            with self.db.write() as conn:
                # A concurrent build of the same source that committed first wins: its row.
                same = conn.execute(
                    sa.select(t.monitor_references)
                    .where(_ref.source == source)
                    .order_by(_ref.created_at, _ref.id)
                    .limit(1)
                ).first()
                if same is not None:
                    return _reference(same)
                named = conn.execute(
                    sa.select(t.monitor_references).where(_ref.name == name)
                ).first()
                if named is not None and named.source == source:
                    return _reference(named)  # committed since the check above (PostgreSQL)
                if named is not None:
                    raise AlreadyExists(
                        f"reference {name!r} already exists (for another source); pick "
                        "another name or leave it out"
                    )
                conn.execute(t.monitor_references.insert(), row)
                append_event(
                    conn,
                    actor=self._actor,
                    action="monitor_reference.create",
                    subject_type="monitor_reference",
                    subject_id=row["id"],
                    after={k: v for k, v in row.items() if k != "columns_json"},
                )
        except sa.exc.IntegrityError:
            # PostgreSQL: a concurrent build of the same source (same default name) committed
            # after this transaction's check; the unique name refused this insert.
            found = self._by_source(source)
            if found is None:
                raise
            return found
        return _reference(SimpleNamespace(**row))

    # --- reading -------------------------------------------------------------------------------

    def list(self) -> list[Reference]:
        """Every stored reference, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.monitor_references).order_by(_ref.created_at.desc(), _ref.id.desc())
            ).all()
        return [_reference(row) for row in rows]

    def get_by_id(self, reference_id: str) -> Reference:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.monitor_references).where(_ref.id == reference_id)
            ).first()
        if row is None:
            raise NotFound(
                f"monitor reference id {reference_id!r} does not exist (deleted?); build it "
                "again with build_reference"
            )
        return _reference(row)

    def sketch(self, reference: Reference) -> ReferenceSketch:
        """The stored sketch of ``reference``; InvalidInput naming the reference if its blob is
        not a sketch (corrupted or foreign), NotFound if the blob is gone, IntegrityError naming
        it if the blob store finds the blob damaged."""
        from .sketch import ReferenceSketch

        try:
            data = self.store.blobs.read_bytes(reference.sketch_blob)
        except (BlobNotFound, FileNotFoundError) as exc:  # the store raises BlobNotFound
            raise NotFound(
                f"the sketch of reference {reference.name!r} (blob "
                f"{reference.sketch_blob[:12]}) is missing from the blob store; build the "
                "reference again under a new name"
            ) from exc
        except BlobCorrupt as exc:  # the blob store's own message names a hash, not the reference
            raise BlobCorrupt(
                f"the sketch of reference {reference.name!r} is damaged in the blob store ({exc}); "
                "restore the blob, or build the reference again under a new name"
            ) from exc
        try:
            return ReferenceSketch.from_bytes(data)
        except InvalidInput as exc:
            raise InvalidInput(
                f"the sketch of reference {reference.name!r} (blob {reference.sketch_blob[:12]}) "
                f"cannot be read: {exc}; build the reference again under a new name"
            ) from exc

    def _by_source(self, source: str) -> Reference | None:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.monitor_references)
                .where(_ref.source == source)
                .order_by(_ref.created_at, _ref.id)
                .limit(1)
            ).first()
        return None if row is None else _reference(row)

    # --- data ----------------------------------------------------------------------------------

    def _datasets(self) -> Any:
        from ..data.service import DatasetService

        return DatasetService(self.store)

    def _read_dataset(self, version: Any) -> pa.Table:
        """The dataset version's Parquet and CSV files as one table (other files are not data)."""
        import pyarrow as pa

        files = [f.path for f in self._datasets().files(version)]
        data = [p for p in files if p.lower().endswith(_DATA_SUFFIXES)]
        if not data:
            raise InvalidInput(
                f"dataset version {version.ref} holds no Parquet or CSV files "
                f"({', '.join(files[:5]) or 'no files'}); a reference needs tabular data"
            )
        with tempfile.TemporaryDirectory(prefix="lw-reference-") as folder:
            self._datasets().download(version, folder)
            tables = [_read_file(Path(folder) / path) for path in data]
        try:
            return pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(
                f"the files of dataset version {version.ref} do not share a schema ({exc}); "
                "a reference needs one table"
            ) from exc

    def _score(self, version: ModelVersion, table: pa.Table) -> tuple[pa.Table | None, str | None]:
        """The model version's outputs on every row of ``table``, or None and why not."""
        from ..registry.loading import load_model
        from ..registry.service import RegistryService

        label = f"{version.model}/{version.version}"
        registry = RegistryService(self.store, actor=self._actor, clock=self._clock)
        try:
            with tempfile.TemporaryDirectory(prefix="lw-reference-model-") as folder:
                package = registry.download_package(version, Path(folder) / "package")
                model = load_model(str(package), trusted=False)
                parts = [
                    _scored(model, batch.to_pandas())
                    for batch in table.to_batches(max_chunksize=SCORE_BATCH_ROWS)
                ]
        except Exception as exc:  # any failure: a reference without outputs
            return None, (
                f"outputs not sketched: model version {label} did not load or score safely "
                f"({type(exc).__name__}: {str(exc)[:300]})"
            )
        import pyarrow as pa

        return pa.concat_tables(parts, promote_options="permissive"), None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"reference name {str(name)[:80]!r} must be 1-{limits.MONITOR_NAME} letters, "
            "digits, '.', '_', ':', '@', '/' or '-', starting with a letter or digit "
            "(e.g. 'churn-train-v3')"
        )
    return name


def _default_name(source: str) -> str:
    """The source itself (``model:churn/7``), shortened with its hash if too long."""
    if len(source) <= limits.MONITOR_NAME:
        return source
    import hashlib

    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    return f"{source[: limits.MONITOR_NAME - 13]}-{digest}"


def _model_inputs(
    table: pa.Table, version: ModelVersion, target: str | None
) -> tuple[list[str], str | None]:
    """The columns of the training table the model takes, and what was left out."""
    names = _signature_inputs(version.signature)
    if names:
        missing = [n for n in names if n not in table.column_names]
        if missing:
            raise InvalidInput(
                f"the training data of model version {version.model}/{version.version} lacks "
                f"the signature's input column(s) {missing}; give the monitor a reference "
                "NAME@VERSION that holds them"
            )
        left = [c for c in table.column_names if c not in names]
    else:
        names = [c for c in table.column_names if c != target]
        left = [] if target is None else [target]
    return names, (f"column(s) {left} left out (not model inputs)" if left else None)


def _signature_inputs(signature: Any) -> list[str]:
    if not isinstance(signature, Mapping):
        return []
    inputs = signature.get("inputs") or []
    names = [item.get("name") for item in inputs if isinstance(item, Mapping)]
    if not names or any(not isinstance(n, str) for n in names):
        return []  # a tensor signature: its inputs are not columns
    return [str(n) for n in names]


def _renamed(table: pa.Table, prefix: str) -> pa.Table:
    return table.rename_columns([f"{prefix}{name}" for name in table.column_names])


def _joined(left: pa.Table, right: pa.Table) -> pa.Table:
    for name, column in zip(right.column_names, right.columns, strict=True):
        left = left.append_column(name, column)
    return left


def _scored(model: Any, frame: Any) -> pa.Table:
    """The outputs serving logs for ``frame``: ``predict``, and ``predict_proba`` (a list of
    class probabilities per row, tested position by position) when the model has it."""
    import numpy as np
    import pyarrow as pa

    table = _outputs(model.predict(frame))
    if not hasattr(model, "predict_proba") or "predict_proba" in table.column_names:
        return table
    try:
        proba = np.asarray(model.predict_proba(frame), dtype=np.float64)
    except Exception:  # probabilities are extra: a model that cannot give them keeps predict
        return table
    if proba.ndim != 2 or len(proba) != len(frame):
        return table
    column = pa.FixedSizeListArray.from_arrays(pa.array(proba.ravel()), proba.shape[1])
    if table.num_columns == 0:
        return pa.table({"predict_proba": column})
    return table.append_column("predict_proba", column)


def _outputs(prediction: Any) -> pa.Table:
    """A prediction as named output columns, as serving logs them: a frame gives one column
    per frame column, a 1-D array the ``predict`` column; a 2-D array from ``predict`` is
    left out (``_scored`` adds ``predict_proba`` as serving logs it)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(prediction, pd.DataFrame):
        return pa.Table.from_pandas(prediction, preserve_index=False)
    if isinstance(prediction, dict):
        return pa.table({str(k): np.asarray(v) for k, v in prediction.items()})
    values = np.asarray(prediction)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        return pa.table({})
    return pa.table({"predict": values})


def _read_file(path: Path) -> pa.Table:
    if path.suffix.lower() == ".csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path)
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _reference(row: Any) -> Reference:
    document = json.loads(row.columns_json)
    if isinstance(document, list):  # a plain list of columns: no note
        document = {"columns": document, "note": None}
    return Reference(
        id=row.id,
        name=row.name,
        source=row.source,
        dataset_version_id=row.dataset_version_id,
        model_version_id=row.model_version_id,
        sketch_blob=row.sketch_blob,
        columns=tuple(document["columns"]),
        rows=int(row.rows),
        created_by=row.created_by,
        created_at=int(row.created_at),
        note=document.get("note"),
    )
