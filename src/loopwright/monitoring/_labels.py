"""Delayed ground truth: labels stored per deployment, request id and row, joined to the log.

Labels arrive after the predictions they grade (hours or weeks later), one per logged row:
``(deployment, request_id, row)`` is the key, so logging a label again replaces it. A label is a
JSON scalar (a finite number, a string or a bool), stored as JSON text so a class label keeps
its type. Within one call a key given twice keeps its last label (as a dict would).

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> book = LabelBook(open_store(resolve_settings(home="lw-doc-labels")))
    >>> book.log("churn-api", {"r1": 1, "r2": 0})
    LabelImport(deployment='churn-api', rows=2, updated=0)
    >>> book.log("churn-api", {"r2": 1}).updated
    1
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import now_ms
from ..errors import InvalidInput, NotFound
from ..serving._log_files import check_deployment_name
from ..store import limits
from ..store import schema as t
from ..store.audit import append_event
from ..store.upsert import upsert
from .entities import LabelImport

if TYPE_CHECKING:
    import pandas as pd

    from ..store.home import Store

__all__ = ["MAX_LABEL_CHARS", "MAX_ROW", "LabelBook", "read_label_file"]

MAX_LABEL_CHARS = 1000  # a label is a class or a number; a longer string is a mistake
MAX_ROW = 2**31 - 1  # the log's ``row`` is int32
_BATCH = 5000  # rows per INSERT ... ON CONFLICT statement
_IN_CHUNK = 900  # request ids per IN list (well under SQLite's 32766 parameters)
_PG_CHUNK = 20_000  # request ids per array parameter (PostgreSQL)
_SHOWN = 5  # bad values quoted in an error

_g = t.ground_truth.c


class LabelBook:
    """Store, read and join a deployment's labels.

    Args:
        store: the metadata store.
        actor: who label imports are audited as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.db = store.db
        self._actor = actor
        self._clock = clock or now_ms

    def log(self, deployment: str, labels: Mapping[str, object] | pd.DataFrame) -> LabelImport:
        """Store ``labels``: ``{request_id: label}`` (row 0 of each request) or a frame with
        ``request_id``, ``label`` and optionally ``row``. All or nothing, in one transaction;
        ``updated`` counts the labels that replaced earlier ones."""
        name = check_deployment(deployment)
        keyed = _checked(labels)
        now = self._clock()
        with self.db.write() as conn:
            if conn.dialect.driver == "psycopg":  # PostgreSQL through psycopg 3: COPY
                updated = _copy_upsert(conn, name, keyed, now)
            else:
                updated = self._existing(conn, name, keyed)
                rows = [
                    {
                        "deployment": name,
                        "request_id": rid,
                        "row": row,
                        "label_json": text,
                        "logged_at": now,
                    }
                    for (rid, row), text in keyed.items()
                ]
                for start in range(0, len(rows), _BATCH):
                    upsert(
                        conn,
                        t.ground_truth,
                        rows[start : start + _BATCH],
                        update=["label_json", "logged_at"],
                    )
            append_event(
                conn,
                actor=self._actor or self.store.actor,
                action="labels.log",
                subject_type="deployment",
                subject_id=name,
                after={"rows": len(keyed), "updated": updated},
            )
        return LabelImport(name, len(keyed), updated)

    def read(
        self, deployment: str, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> pd.DataFrame:
        """The labels logged in ``[since_ms, until_ms)``: ``request_id``, ``row``, ``label``,
        ``logged_at`` (UTC milliseconds), oldest first."""
        import pandas as pd

        name = check_deployment(deployment)
        query = sa.select(_g.request_id, _g.row, _g.label_json, _g.logged_at).where(
            _g.deployment == name
        )
        if since_ms is not None:
            query = query.where(_g.logged_at >= limits.check_int64("since_ms", since_ms))
        if until_ms is not None:
            query = query.where(_g.logged_at < limits.check_int64("until_ms", until_ms))
        with self.db.read() as conn:
            found = conn.execute(query.order_by(_g.logged_at, _g.request_id, _g.row)).all()
        return pd.DataFrame(
            {
                "request_id": pd.Series([r.request_id for r in found], dtype=object),
                "row": pd.Series([r.row for r in found], dtype="int64"),
                "label": pd.Series([json.loads(r.label_json) for r in found], dtype=object),
                "logged_at": pd.Series([r.logged_at for r in found], dtype="int64"),
            }
        )

    def join(self, deployment: str, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (prediction-log rows with ``request_id`` and ``row``) with a ``label``
        column: the stored label of each row, None where there is none yet. Only the labels of
        the frame's request ids are read."""
        import pandas as pd

        name = check_deployment(deployment)
        missing = [c for c in ("request_id", "row") if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"the frame to join labels to has no {' or '.join(map(repr, missing))} column; "
                "pass prediction-log rows (they have request_id and row)"
            )
        ids = [i for i in frame["request_id"].dropna().unique().tolist() if isinstance(i, str)]
        found: dict[tuple[str, int], object] = {}
        with self.db.read() as conn:
            postgres = conn.dialect.name == "postgresql"
            for chunk in _chunks(ids, _PG_CHUNK if postgres else _IN_CHUNK):
                query = sa.select(_g.request_id, _g.row, _g.label_json).where(
                    _g.deployment == name, _among(chunk, postgres)
                )
                for r in conn.execute(query):
                    found[(r.request_id, r.row)] = json.loads(r.label_json)
        out = frame.drop(columns=["label"], errors="ignore").copy()
        rows = pd.to_numeric(frame["row"], errors="coerce").fillna(-1).astype("int64").tolist()
        out["label"] = pd.Series(
            [found.get((rid, row)) for rid, row in zip(frame["request_id"], rows, strict=True)],
            index=frame.index,
            dtype=object,
        )
        return out

    def _existing(
        self, conn: sa.Connection, deployment: str, keyed: Mapping[tuple[str, int], str]
    ) -> int:
        """How many of ``keyed``'s keys already have a label (read in the write transaction)."""
        ids = list(dict.fromkeys(rid for rid, _ in keyed))
        count = 0
        for chunk in _chunks(ids, _IN_CHUNK):
            query = sa.select(_g.request_id, _g.row).where(
                _g.deployment == deployment, _g.request_id.in_(chunk)
            )
            count += sum((r.request_id, r.row) in keyed for r in conn.execute(query))
        return count


def _copy_upsert(
    conn: sa.Connection, deployment: str, keyed: Mapping[tuple[str, int], str], now: int
) -> int:
    """PostgreSQL: COPY the labels into a temporary table, upsert from it in one statement and
    count the updates as that statement reports them (an updated row has a non-zero ``xmax``).
    Multi-row INSERTs spent most of 8-13 s per 100k labels in psycopg's conversion of their
    5,000-parameter queries, and looking the keys up first took minutes while the table's
    statistics were stale after a large import."""
    raw: Any = conn.connection.driver_connection  # psycopg's, in this transaction
    with raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE lw_labels_in (request_id text, row_number integer, "
            "label_json text) ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY lw_labels_in (request_id, row_number, label_json) FROM STDIN"
        ) as copy:
            for (rid, row), text in keyed.items():
                copy.write_row((rid, row, text))
        cursor.execute(
            """WITH stored AS (
                INSERT INTO ground_truth (deployment, request_id, "row", label_json, logged_at)
                SELECT %s, request_id, row_number, label_json, %s FROM lw_labels_in
                ON CONFLICT (deployment, request_id, "row")
                DO UPDATE SET label_json = excluded.label_json, logged_at = excluded.logged_at
                RETURNING xmax <> 0 AS updated
            ) SELECT count(*) FILTER (WHERE updated) FROM stored""",
            (deployment, now),
        )
        return int(cursor.fetchone()[0])


def _among(ids: Sequence[str], postgres: bool) -> sa.ColumnElement[bool]:
    """``request_id`` is one of ``ids``: on PostgreSQL one array parameter (``= ANY``), which
    psycopg sends as is; an IN list of thousands of parameters cost more to convert than the
    lookups took."""
    if not postgres:
        return _g.request_id.in_(ids)
    from sqlalchemy.dialects.postgresql import ARRAY

    return _g.request_id == sa.any_(sa.bindparam("ids", list(ids), type_=ARRAY(sa.String)))


def check_deployment(name: object) -> str:
    """``name`` if it can name a deployment's labels (a prediction log folder name that fits
    the ``ground_truth`` column), else :class:`InvalidInput`."""
    check_deployment_name(name)
    return limits.check_text("deployment name", name, limit=limits.DEPLOYMENT_NAME)


def read_label_file(path: str | Path) -> pd.DataFrame:
    """The labels in a Parquet (``.parquet``, ``.pq``) or CSV (``.csv``) file: columns
    ``request_id``, ``label`` and optionally ``row``, checked as :meth:`LabelBook.log` will.

    Request ids are read as text (a CSV's ``0012`` stays ``'0012'``).
    """
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise NotFound(f"label file {str(path)!r} does not exist (or is not a file)")
    suffix = file.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            frame = pq.read_table(file).to_pandas()
            if "request_id" in frame.columns and not _all_text(frame["request_id"]):
                raise InvalidInput(
                    f"label file {file.name!r}: column 'request_id' must hold strings; cast it "
                    "to text before writing the file"
                )
        elif suffix == ".csv":
            frame = pd.read_csv(file, dtype={"request_id": str}, keep_default_na=False)
            frame = frame.replace({"": None})
        else:
            raise InvalidInput(
                f"label file {file.name!r} is neither Parquet (.parquet, .pq) nor CSV (.csv)"
            )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"label file {file.name!r} cannot be read: {exc}") from None
    missing = [c for c in ("request_id", "label") if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"label file {file.name!r} has no {' or '.join(map(repr, missing))} column; "
            f"columns: {', '.join(map(str, frame.columns)) or 'none'} (expected request_id, "
            "label and optionally row)"
        )
    wanted = [c for c in ("request_id", "row", "label") if c in frame.columns]
    frame = frame[wanted]
    _checked(frame)  # the errors come now, naming the file's rows, not at log time
    return frame


# --- checking -----------------------------------------------------------------------------------


def _checked(labels: object) -> dict[tuple[str, int], str]:
    """``{(request_id, row): label as JSON}`` of what ``log`` was given, or InvalidInput naming
    the first bad values; a key given twice keeps its last label."""
    if isinstance(labels, Mapping):
        ids: Sequence[object] = list(labels.keys())
        rows: Sequence[object] = [0] * len(ids)
        values: Sequence[object] = list(labels.values())
    elif _is_frame(labels):
        frame: Any = labels
        missing = [c for c in ("request_id", "label") if c not in frame.columns]
        if missing:
            raise InvalidInput(
                f"the labels frame has no {' or '.join(map(repr, missing))} column; give "
                "request_id, label and optionally row"
            )
        ids = frame["request_id"].tolist()
        rows = frame["row"].tolist() if "row" in frame.columns else [0] * len(ids)
        values = frame["label"].tolist()
    else:
        raise InvalidInput(
            f"labels must be a mapping {{request_id: label}} or a DataFrame with request_id and "
            f"label columns, not {type(labels).__name__}"
        )
    if not ids:
        raise InvalidInput("no labels given; pass at least one {request_id: label}")
    bad_ids = [i for i in ids if not _fits_id(i)]
    if bad_ids:
        raise InvalidInput(
            f"{len(bad_ids)} request id(s) are not strings of 1-{limits.REQUEST_ID} characters "
            f"(no NUL, valid Unicode), e.g. {_quoted(bad_ids)}"
        )
    checked_rows = [_row(r) for r in rows]
    bad_rows = [r for r, c in zip(rows, checked_rows, strict=True) if c is None]
    if bad_rows:
        raise InvalidInput(
            f"{len(bad_rows)} row number(s) are not whole numbers in 0..{MAX_ROW}, e.g. "
            f"{_quoted(bad_rows)} (row is the row within a multi-row request; default 0)"
        )
    texts = [_label_json(v) for v in values]
    bad_labels = [v for v, text in zip(values, texts, strict=True) if text is None]
    if bad_labels:
        raise InvalidInput(
            f"{len(bad_labels)} label(s) are not finite numbers, strings (at most "
            f"{MAX_LABEL_CHARS} characters) or booleans, e.g. {_quoted(bad_labels)}; drop "
            "unlabelled rows rather than sending null or NaN"
        )
    keyed: dict[tuple[str, int], str] = {}
    for rid, row, text in zip(ids, checked_rows, texts, strict=True):
        keyed[(str(rid), int(row))] = str(text)  # type: ignore[arg-type]
    return keyed


def _fits_id(value: object) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= limits.REQUEST_ID:
        return False
    try:
        limits.check_text("request id", value, limit=limits.REQUEST_ID)
    except InvalidInput:
        return False
    return True


def _row(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        number = int(
            float(value)
        )  # a float column of whole numbers (pandas makes one from ints + NaN)
    else:
        return None
    return number if 0 <= number <= MAX_ROW else None


def _label_json(value: object) -> str | None:
    """The label as JSON, or None if it is not a scalar a label can be."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:  # NumPy scalars (what a frame's column gives)
            value = value.item()
        except (TypeError, ValueError):
            return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return json.dumps(number) if math.isfinite(number) else None
    if isinstance(value, str):
        if not value or len(value) > MAX_LABEL_CHARS:
            return None
        try:
            limits.check_text("label", value, limit=MAX_LABEL_CHARS)
        except InvalidInput:
            return None
        return json.dumps(value)
    return None


def _is_frame(value: object) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _all_text(column: Any) -> bool:
    return bool(column.map(lambda v: v is None or isinstance(v, str)).all())


def _quoted(values: Sequence[object]) -> str:
    return ", ".join(repr(v)[:60] for v in values[:_SHOWN])


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
