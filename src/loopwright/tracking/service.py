"""Tracking on the metadata and blob stores: experiments, runs, params, metrics, tags, artifacts.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> tracking = TrackingService(open_store(resolve_settings(home="lw-doc-tracking")))
    >>> run = tracking.create_run(experiment="demo", name="first")
    >>> tracking.log_metrics(run.id, {"loss": 0.5})
    >>> tracking.get_run(run.id).metrics["loss"].value
    0.5
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import Conflict, InvalidInput, NotFound
from ..store import schema as t
from ..store import statements
from ..store.audit import append_event
from ..store.blobs import BlobInfo
from ..store.home import Store
from ..store.upsert import insert_ignore, upsert
from ._buffered import BufferedMetricsMixin
from ._round_trip import read_all
from ._sql_sink import SqlSink
from ._validate import check_key, checked_params, checked_tags, experiment_name, run_name
from ._writer import MetricWriter
from .artifacts import ArtifactsMixin
from .capture import (
    CodeVersion,
    Environment,
    RunContext,
    capture_environment,
    current_code_version,
    entry_point,
)
from .entities import Metric, Run, RunList, RunStatus
from .experiments import ExperimentsMixin
from .remote_runs import RemoteRunsMixin
from .run_rows import (
    METRICS_SQL,
    PARAMS_SQL,
    TAGS_SQL,
    full_rows_from,
    full_rows_query,
    insert_run,
    insert_run_if_active,
    run_from_row,
)
from .search import RunPage, search_run_ids

__all__ = ["DEFAULT_EXPERIMENT", "TrackingService"]

DEFAULT_EXPERIMENT = "Default"
_HOST = socket.gethostname()


class TrackingService(ExperimentsMixin, ArtifactsMixin, RemoteRunsMixin, BufferedMetricsMixin):
    """Experiments and runs on one :class:`~loopwright.store.home.Store`."""

    def __init__(self, store: Store, *, flush_interval: float = 1.0, capture: bool = True) -> None:
        self.store = store
        self.db = store.db
        self.writer: MetricWriter[sa.Connection] = MetricWriter(
            SqlSink(store.db), interval=flush_interval
        )
        self._loggable: set[str] = set()
        self._experiment_ids: dict[str, str] = {}
        self._artifact_locations: dict[str, str | None] = {}  # never change once created
        self._recorded: set[tuple[str, str]] = set()  # environment and blob rows written
        self._diff_blob: tuple[bytes, BlobInfo] | None = None  # the last captured diff, stored
        self.capture = capture

    def close(self) -> None:
        """Write buffered metrics and stop the writer thread."""
        self.writer.close()

    # --- runs ----------------------------------------------------------------------------

    def create_run(
        self,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a RUNNING run in ``experiment`` (created if missing)."""
        return self._create_run(
            experiment=experiment, name=name, tags=tags, parent_run_id=parent_run_id
        )

    def _create_run(
        self,
        *,
        experiment: str,
        name: str | None,
        tags: Mapping[str, object] | None,
        parent_run_id: str | None,
        context: RunContext | None = None,
    ) -> Run:
        """:meth:`create_run`, recording ``context`` (a server's remote client's) if given, else
        this process's own (when capture is on)."""
        name = run_name(name)
        tag_values = checked_tags(tags)
        experiment_id = self._experiment_id(experiment_name(experiment))
        run_id = new_id()
        now = now_ms()
        row: dict[str, Any] = {
            "id": run_id,
            "experiment_id": experiment_id,
            "name": name or f"run-{run_id[-8:]}",
            "status": RunStatus.RUNNING.value,
            "lifecycle_stage": "active",
            "parent_run_id": parent_run_id,
            "user": self.store.actor,
            "host": _HOST if context is None else context.host,
            "entry_point": entry_point() if context is None else context.entry_point,
            "start_time": now,
            "heartbeat_at": now,
        }
        tag_rows = [(run_id, key, value) for key, value in tag_values.items()]
        context_rows: dict[sa.Table, list[dict[str, Any]]] = {}
        if context is not None:
            context_rows = self._context_fields(row, now, context.code, context.environment)
        elif self.capture:
            code, env = current_code_version(), capture_environment()
            context_rows = self._context_fields(row, now, code, env)
        # PostgreSQL, nothing but the run and its tags: one round trip (run_rows). If the
        # experiment changed, nothing was written and the checked transaction below says how.
        fast = parent_run_id is None and not context_rows and self.db.dialect == "postgresql"
        for _attempt in range(2):
            if fast and insert_run_if_active(self.db, row, tag_rows, experiment_name=experiment):
                break
            fast = False
            with self.db.write() as conn:
                current = self._experiment_still(conn, experiment_id, experiment)
                if current:
                    if parent_run_id is not None:
                        self._require_run(conn, parent_run_id)
                    for table, rows in context_rows.items():
                        insert_ignore(conn, table, rows)
                    insert_run(conn, row, tag_rows)
            if current:
                break
            # Renamed or deleted by another process since it was cached: look it up again
            # (outside the transaction: the lookup may need to write).
            self._experiment_ids.pop(experiment, None)
            row["experiment_id"] = experiment_id = self._experiment_id(experiment)
        else:
            raise Conflict(f"experiment {experiment!r} keeps changing under this run; retry")
        self._recorded.update(
            (table.name, r.get("id") or r["hash"])
            for table, rows in context_rows.items()
            for r in rows
        )
        self._loggable.add(run_id)
        return Run(
            id=run_id,
            experiment_id=experiment_id,
            name=row["name"],
            status=RunStatus.RUNNING,
            lifecycle_stage="active",
            start_time=now,
            end_time=None,
            user=row["user"],
            host=row["host"],
            entry_point=row["entry_point"],
            parent_run_id=parent_run_id,
            error=None,
            heartbeat_at=now,
            git_commit=row.get("git_commit"),
            git_branch=row.get("git_branch"),
            git_dirty=row.get("git_dirty"),
            environment_id=row.get("environment_id"),
            tags=dict(tag_values),
        )

    def _context_fields(
        self, row: dict[str, Any], now: int, code: CodeVersion, env: Environment | None
    ) -> dict[sa.Table, list[dict[str, Any]]]:
        """Fill the run row's code and environment columns; return rows still to record.

        Capture is cached per process, the diff blob is stored before the transaction opens (no
        file I/O under the write lock), and the environment and blob rows are written only the
        first time this service sees them.
        """
        pending: dict[sa.Table, list[dict[str, Any]]] = {}
        diff_hash = None
        if code.diff:
            if self._diff_blob is None or self._diff_blob[0] is not code.diff:
                self._diff_blob = (code.diff, self.store.blobs.put_bytes(code.diff))
            info = self._diff_blob[1]
            diff_hash = info.hash
            if ("blobs", info.hash) not in self._recorded:
                pending[t.blobs] = [{"hash": info.hash, "size": info.size, "created_at": now}]
        if env is not None and ("environments", env.id) not in self._recorded:
            pending[t.environments] = [
                {
                    "id": env.id,
                    "python_version": env.python_version,
                    "packages_json": env.packages_json,
                    "created_at": now,
                }
            ]
        row.update(
            git_commit=code.commit,
            git_branch=code.branch,
            git_dirty=code.dirty,
            git_diff_blob=diff_hash,
            environment_id=None if env is None else env.id,
        )
        return pending

    def _heartbeat(self, run_id: str) -> None:
        """Mark a remote client's run alive now (a server calls this while the run is open)."""
        r = t.runs.c
        with self.db.write() as conn:
            done = conn.execute(
                t.runs.update()
                .where(r.id == run_id, r.status == RunStatus.RUNNING.value)
                .values(heartbeat_at=now_ms())
            )
            if done.rowcount == 0:
                self._require_run(conn, run_id)  # ended meanwhile: nothing to keep alive

    def get_run(self, run_id: str) -> Run:
        runs = self.get_runs([run_id])
        if not runs:
            raise NotFound(
                f"run {run_id!r} does not exist; `loopwright runs list` shows recent runs"
            )
        return runs[0]

    def get_environment(self, environment_id: str) -> Environment:
        """The Python version and packages a run recorded (``run.environment_id``)."""
        e = t.environments.c
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(e.python_version, e.packages_json).where(e.id == environment_id)
            ).first()
        if row is None:
            raise NotFound(f"environment {environment_id!r} does not exist")
        return Environment(environment_id, row.python_version, json.loads(row.packages_json))

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs in the order of ``run_ids`` (missing ids are left out), in four queries."""
        self.writer.flush()
        found: dict[str, Run] = {}
        for start in range(0, len(run_ids), 900):
            found.update(self._load_runs(list(run_ids[start : start + 900])))
        return [found[run_id] for run_id in run_ids if run_id in found]

    def _load_runs(self, ids: list[str]) -> dict[str, Run]:
        params: dict[str, dict[str, str]] = {run_id: {} for run_id in ids}
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in ids}
        metrics: dict[str, dict[str, Metric]] = {run_id: {} for run_id in ids}
        marks = statements.marks(len(ids))
        # Raw SQL, as run_rows: these run on every get_run; on PostgreSQL in one round trip.
        full, param_rows, tag_rows, metric_rows = read_all(
            self.db,
            [
                full_rows_query(ids),
                (PARAMS_SQL.format(marks), ids),
                (TAGS_SQL.format(marks), ids),
                (METRICS_SQL.format(marks), ids),
            ],
        )
        rows = full_rows_from(full)
        for run_id, key, value in param_rows:
            params[run_id][key] = value
        for run_id, key, value in tag_rows:
            tags[run_id][key] = value
        for run_id, key, value, is_nan, step, timestamp in metric_rows:
            metrics[run_id][key] = Metric(key, math.nan if is_nan else value, step, timestamp)
        return {
            row.id: run_from_row(
                row, params=params[row.id], metrics=metrics[row.id], tags=tags[row.id]
            )
            for row in rows
        }

    def list_runs(self, *, experiment: str | None = None, limit: int = 100) -> list[Run]:
        """The newest runs first, optionally of one experiment."""
        query = sa.select(t.runs.c.id).where(t.runs.c.lifecycle_stage == "active")
        if experiment is not None:
            query = query.where(
                t.runs.c.experiment_id == self.get_experiment_by_name(experiment).id
            )
        query = query.order_by(t.runs.c.start_time.desc(), t.runs.c.id.desc()).limit(limit)
        with self.db.read() as conn:
            ids = conn.execute(query).scalars().all()
        return self.get_runs(ids)

    def search_runs(
        self,
        filter_string: str = "",
        *,
        experiments: Sequence[str] | None = None,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
        run_view_type: str = "ACTIVE_ONLY",
    ) -> RunList:
        """Runs matching an MLflow filter (``"metrics.auc > 0.9 and params.model = 'rf'"``).

        ``experiments`` are names; None searches all. Pass ``next_page_token`` back for more.
        """
        if experiments is not None:
            experiment_ids = [self.get_experiment_by_name(name).id for name in experiments]
        elif run_view_type.upper() == "ACTIVE_ONLY":
            # Runs of a deleted experiment stay hidden until it is restored.
            experiment_ids = [e.id for e in self.list_experiments()]
        else:
            experiment_ids = None
        page = self._search_run_ids(
            experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            run_view_type=run_view_type,
        )
        return RunList(self.get_runs(page.run_ids), page.next_page_token)

    def _search_run_ids(self, experiment_ids: Sequence[str] | None, **search: Any) -> RunPage:
        """One page of matching run ids (:func:`~.search.search_run_ids` takes ``search``), for
        a server that formats the runs itself."""
        self.writer.flush()
        with self.db.read() as conn:
            return search_run_ids(conn, experiment_ids=experiment_ids, **search)

    def end_run(
        self, run_id: str, status: RunStatus = RunStatus.FINISHED, *, error: str | None = None
    ) -> None:
        """Flush the run's metrics, then record its end (all points are durable on return)."""
        if not status.is_terminal:
            raise InvalidInput(f"end_run needs a terminal status, not {status.value}")
        self.writer.untrack(run_id)

        def finish(conn: sa.Connection) -> None:
            done = statements.execute(
                conn,
                "UPDATE runs SET status = ?, end_time = ?, error = ? WHERE id = ?",
                (status.value, now_ms(), error, run_id),
            )
            if done == 0:
                raise NotFound(f"run {run_id!r} does not exist; it cannot be ended")

        self.writer.flush(then=finish)
        self.writer.raise_dropped(run_id)

    def set_lifecycle(self, run_id: str, stage: str) -> None:
        """Soft-delete (``"deleted"``) or restore (``"active"``) a run."""
        if stage not in ("active", "deleted"):
            raise InvalidInput(f"lifecycle stage must be 'active' or 'deleted', not {stage!r}")
        self.writer.flush()
        with self.db.write() as conn:
            before = self._require_run(conn, run_id).lifecycle_stage
            conn.execute(
                t.runs.update()
                .where(t.runs.c.id == run_id)
                .values(lifecycle_stage=stage, deleted_at=now_ms() if stage == "deleted" else None)
            )
            append_event(
                conn,
                actor=self.store.actor,
                action="run." + ("delete" if stage == "deleted" else "restore"),
                subject_type="run",
                subject_id=run_id,
                before={"lifecycle_stage": before},
                after={"lifecycle_stage": stage},
            )
        self._loggable.discard(run_id)

    def use_dataset(self, run_id: str, dataset_version_id: str, context: str = "training") -> None:
        """Record that the run read a dataset version (lineage)."""
        with self.db.write() as conn:
            self._require_active(conn, run_id)
            found = conn.execute(
                sa.select(t.dataset_versions.c.id).where(
                    t.dataset_versions.c.id == dataset_version_id
                )
            ).first()
            if found is None:
                raise NotFound(f"dataset version {dataset_version_id!r} does not exist")
            insert_ignore(
                conn,
                t.run_inputs,
                [
                    {
                        "run_id": run_id,
                        "dataset_version_id": dataset_version_id,
                        "context": context,
                        "created_at": now_ms(),
                    }
                ],
            )

    # --- logging -------------------------------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        """Record parameters; a key logged again must keep its value (params are immutable)."""
        checked = checked_params(params)
        if not checked:
            return
        self.require_loggable(run_id)
        values = [v for key, value in checked.items() for v in (run_id, key, value)]
        columns = ("run_id", "key", "value")
        # RETURNING names the keys that went in: only keys logged before need reading back.
        suffix = " ON CONFLICT DO NOTHING RETURNING key"
        insert = statements.insert_text("params", columns, len(checked), suffix)
        with self.db.write() as conn:
            inserted = {key for (key,) in statements.fetch(conn, insert, values)}
            logged = [key for key in checked if key not in inserted]
            if not logged:
                return
            select = (
                "SELECT key, value FROM params WHERE run_id = ? AND key IN ("  # noqa: S608
                + statements.marks(len(logged))
                + ")"
            )
            for key, old in statements.fetch(conn, select, [run_id, *logged]):
                if old != checked[key]:  # raising rolls back the whole call
                    raise InvalidInput(
                        f"param {key!r} of run {run_id} is already {old!r} and cannot change to "
                        f"{checked[key]!r}; params are immutable, log a new run instead"
                    )

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        rows = [{"run_id": run_id, "key": k, "value": v} for k, v in checked_tags(tags).items()]
        self.require_loggable(run_id)
        with self.db.write() as conn:
            upsert(conn, t.run_tags, rows, update=["value"])

    def require_loggable(self, run_id: str) -> None:
        """Raise unless ``run_id`` is an active run (checked once per run and process)."""
        if run_id in self._loggable:
            return
        with self.db.read() as conn:
            self._require_active(conn, run_id)
        self._loggable.add(run_id)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of one metric, by step then time."""
        check_key("metric", key)
        self.writer.flush()
        m = t.metrics.c
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                sa.select(m.key, m.value, m.is_nan, m.step, m.timestamp)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp)
            ).all()
        return [Metric(r.key, math.nan if r.is_nan else r.value, r.step, r.timestamp) for r in rows]
