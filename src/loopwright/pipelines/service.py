"""Pipeline records on the metadata store: the embedded :class:`~.protocol.Pipelines`.

A pipeline run is a tracked run (experiment: the one given, else the pipeline function's name);
each step run that executes is a nested run of it. Every record call is one short write
transaction in raw SQL (``store/statements.py``): a step's start inserts its nested run (copying
the pipeline run's experiment, code version and environment in the same statement), its tags
and its ``step_runs`` row; its end writes the step's buffered metrics, ends the nested run and
updates the row in one commit.

A ``running`` run whose process is gone (no heartbeat for ``HEARTBEAT_STALE_MS``, or its pid
dead on this host) is marked ``killed`` when it is read: its tracked run and its running steps'
runs end ``KILLED``, its running step runs ``failed``, so ``resume`` can take over.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> pipelines = PipelineService(open_store(resolve_settings(home="lw-doc-pipelines")))
    >>> run = pipelines.start_run("flows.train:training", params={"n": 3})
    >>> step = pipelines.start_step(run.id, invocation="load", step="load", cache_key="k1",
    ...                             cache_reason="no earlier run")
    >>> pipelines.finish_step(step.id, "completed").status
    'completed'
    >>> pipelines.find_cached("k1").id == step.id
    True
    >>> pipelines.finish_run(run.id, "completed").steps[0].invocation
    'load'
"""

from __future__ import annotations

import builtins
import json
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import Conflict, InvalidInput, NotFound
from ..store import limits, statements
from ..store import schema as t
from ..store.limits import check_text
from ..store.upsert import insert_ignore, upsert
from . import _checks as checks
from . import _rows as stored
from .entities import (
    HEARTBEAT_STALE_MS,
    ArtifactRef,
    PipelineRun,
    PipelineStatus,
    StepRun,
    StepStatus,
)

if TYPE_CHECKING:
    from ..store.blobs import BlobInfo
    from ..store.home import Store
    from ..tracking.capture import RunContext
    from ..tracking.entities import Run
    from ..tracking.protocol import Tracking

__all__ = ["PipelineService"]

_HOST = socket.gethostname()
_RUN_STATUSES = ("running", "completed", "failed", "killed")
_ENDS = {"completed": "FINISHED", "failed": "FAILED", "killed": "KILLED"}
_STEP_ENDS = ("completed", "failed")
_SERVED = ("cached", "resumed")
_SERVABLE = ("completed", "cached", "resumed")
_ID_LIMIT = 100  # ids looked up (longer ones cannot exist)
_p, _s = t.pipeline_runs.c, t.step_runs.c


class PipelineService:
    """Pipeline runs and step runs on one :class:`~loopwright.store.home.Store`.

    Args:
        store: the metadata and blob stores.
        tracking: the tracking service on the same store, whose metric writer a step's end
            flushes (so the points a step logged are durable with its end); default: one of
            its own.
        clock: the time in UTC milliseconds (tests pass a fake one).
    """

    def __init__(
        self,
        store: Store,
        *,
        tracking: Tracking | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._db = store.db
        self._given_tracking = tracking
        self._clock = clock or now_ms

    @property
    def _tracking(self) -> Tracking:
        if self._given_tracking is None:
            from ..tracking.service import TrackingService

            self._given_tracking = TrackingService(self._store)
        return self._given_tracking

    # --- pipeline runs ---------------------------------------------------------------------

    def start_run(
        self,
        pipeline: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "inprocess",
        code_digest: str = "",
        experiment: str | None = None,
        resumed_from: str | None = None,
        host: str = "",
        pid: int = 0,
        context: RunContext | None = None,
    ) -> PipelineRun:
        return self._start_run(
            pipeline,
            name=name,
            params=params,
            executor=executor,
            code_digest=code_digest,
            experiment=experiment,
            resumed_from=resumed_from,
            host=host,
            pid=pid,
            context=context,
        )

    def _start_run(
        self,
        pipeline: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "inprocess",
        code_digest: str = "",
        experiment: str | None = None,
        resumed_from: str | None = None,
        host: str = "",
        pid: int = 0,
        context: RunContext | None = None,
    ) -> PipelineRun:
        """:meth:`start_run` recording ``context`` (the pipeline module's code version, or a
        server's remote caller's) on the tracked run; the step runs' nested runs copy it."""
        ref = checks.check_ref(pipeline)
        values, params_text = checks.checked_params(params)
        run_name = None if name is None else checks.check_name("name", name)
        executor = checks.check_name("executor", executor, 50)
        code_digest = check_text("code_digest", code_digest, limit=64, allow_empty=True)
        host = check_text("host", host, limit=255, allow_empty=True)
        pid = checks.check_pid(pid)
        if resumed_from is not None:
            self._get_row(checks.check_name("resumed_from", resumed_from, _ID_LIMIT))
        pipeline_run_id = new_id()
        run_name = run_name or f"{checks.short_name(ref)}-{pipeline_run_id[-8:]}"
        tags = {"loopwright.pipeline": ref, "loopwright.pipeline_run": pipeline_run_id}
        if resumed_from is not None:
            tags["loopwright.resumed_from"] = resumed_from
        tracked = self._create_tracked(
            experiment or checks.short_name(ref), run_name, tags, context
        )
        now = self._clock()
        row = {
            "id": pipeline_run_id,
            "pipeline": ref,
            "name": run_name,
            "status": "running",
            "run_id": tracked.id,
            "params_json": params_text,
            "executor": executor,
            "resumed_from": resumed_from,
            "code_digest": code_digest,
            "result_json": None,
            "error": None,
            "host": host,
            "pid": pid,
            "created_by": self._store.actor,
            "started_at": now,
            "heartbeat_at": now,
            "finished_at": None,
        }
        param_rows = [(tracked.id, k, checks.param_text(v)) for k, v in values.items()]
        try:
            with self._db.write() as conn:
                if param_rows:
                    statements.insert_many(conn, "params", ("run_id", "key", "value"), param_rows)
                if host and host != tracked.host:  # a server records its caller's host
                    statements.execute(
                        conn, 'UPDATE runs SET "host" = ? WHERE "id" = ?', (host, tracked.id)
                    )
                statements.execute(
                    conn, statements.insert_text("pipeline_runs", tuple(row)), [*row.values()]
                )
        except BaseException as exc:
            self._end_tracked(tracked.id, "FAILED", f"recording the pipeline run failed: {exc}")
            raise
        return stored.run_from_row(row, ())

    def _create_tracked(
        self, experiment: str, name: str, tags: dict[str, str], context: RunContext | None
    ) -> Run:
        if context is None:
            return self._tracking.create_run(experiment=experiment, name=name, tags=tags)
        from ..tracking.service import TrackingService

        # The embedded service makes its own tracking service on the store (or is given one).
        if not isinstance(self._tracking, TrackingService):
            raise InvalidInput(
                f"pipeline run {name!r}: a run context needs the embedded tracking service, "
                f"not {type(self._tracking).__name__}; start the run without context"
            )
        return self._tracking._create_run(
            experiment=experiment, name=name, tags=tags, parent_run_id=None, context=context
        )

    def heartbeat(self, pipeline_run_id: str) -> None:
        now = self._clock()
        with self._db.write() as conn:
            done = statements.execute(
                conn,
                'UPDATE pipeline_runs SET "heartbeat_at" = ? WHERE "id" = ? AND "status" = '
                "'running'",
                (now, pipeline_run_id),
            )
            if done == 0:
                self._refuse(conn, pipeline_run_id, "send a heartbeat for")
            # The tracked runs by id: an OR of subqueries makes PostgreSQL scan all runs.
            ids = stored.running_step_runs(conn, pipeline_run_id)
            ids += [
                r for (r,) in statements.fetch(conn, stored.TRACKED_RUN, (pipeline_run_id,)) if r
            ]
            if ids:  # none once the tracked run was deleted
                statements.execute(
                    conn,
                    'UPDATE runs SET "heartbeat_at" = ? WHERE "status" = \'RUNNING\' AND "id" IN ('  # noqa: S608
                    + statements.marks(len(ids))
                    + ")",
                    (now, *ids),
                )

    def finish_run(
        self,
        pipeline_run_id: str,
        status: PipelineStatus,
        *,
        result: ArtifactRef | None = None,
        error: str | None = None,
    ) -> PipelineRun:
        checks.check_choice("status", status, tuple(_ENDS))
        result_text = None
        if result is not None:
            result_text = json.dumps(checks.check_artifact("result", result).to_dict())
        message = checks.checked_error(error)
        now = self._clock()
        tracked: list[str] = []

        def finish(conn: sa.Connection) -> None:
            done = statements.execute(
                conn,
                'UPDATE pipeline_runs SET "status" = ?, "result_json" = ?, "error" = ?, '
                '"finished_at" = ? WHERE "id" = ? AND "status" IN (\'running\', \'killed\')',
                (status, result_text, message, now, pipeline_run_id),
            )
            if done == 0:
                self._refuse(conn, pipeline_run_id, "finish")
            # A step still running ends with its pipeline (the engine finishes its steps first).
            self._end_running_steps(conn, pipeline_run_id, now, "FAILED", "failed")
            rows = statements.fetch(
                conn, 'SELECT "run_id" FROM pipeline_runs WHERE "id" = ?', (pipeline_run_id,)
            )
            if rows and rows[0][0] is not None:
                tracked.append(rows[0][0])
                statements.execute(
                    conn,
                    'UPDATE runs SET "status" = ?, "end_time" = ?, "error" = ? WHERE "id" = ?',
                    (_ENDS[status], now, message, rows[0][0]),
                )

        self._tracking.writer.flush(then=finish)
        for run_id in tracked:
            self._tracking.writer.untrack(run_id)
        return self.get_run(pipeline_run_id)

    def get_run(self, pipeline_run_id: str) -> PipelineRun:
        row, steps = self._read_run(pipeline_run_id)
        reason = self._gone(row)
        if reason is not None and self._mark_killed(row, reason):
            row, steps = self._read_run(pipeline_run_id)
        return stored.run_from_row(row, steps)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: PipelineStatus | None = None,
        limit: int = 50,
    ) -> builtins.list[PipelineRun]:
        if pipeline is not None:
            check_text("pipeline", pipeline, limit=limits.PIPELINE_NAME)
        if status is not None:
            checks.check_choice("status", status, _RUN_STATUSES)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit {limit!r} must be a whole number from 1 to 10,000")
        query = sa.select(t.pipeline_runs)
        if pipeline is not None:
            query = query.where(_p.pipeline == pipeline)
        if status is not None:
            query = query.where(_p.status == status)
        query = query.order_by(_p.started_at.desc(), _p.id.desc()).limit(limit)
        with self._db.read() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        marked = False
        for row in rows:
            reason = self._gone(row)
            if reason is not None:
                marked = self._mark_killed(row, reason) or marked
        if marked:  # statuses changed: a status filter may now select other runs
            with self._db.read() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query)]
        return [stored.run_from_row(row, ()) for row in rows]

    # --- step runs -------------------------------------------------------------------------

    def start_step(
        self,
        pipeline_run_id: str,
        *,
        invocation: str,
        step: str,
        cache_key: str,
        cache_reason: str,
        inputs: Sequence[ArtifactRef] = (),
        key_parts: Mapping[str, Any] | None = None,
    ) -> StepRun:
        invocation = checks.check_name("invocation", invocation)
        step = checks.check_name("step", step)
        cache_key = checks.check_cache_key(cache_key)
        cache_reason = checks.check_reason(cache_reason)
        inputs_text = checks.check_artifacts("inputs", inputs)
        parts_text = checks.check_document("key_parts", key_parts)
        step_run_id, run_id, now = new_id(), new_id(), self._clock()
        tags = [
            (run_id, "loopwright.step", step),
            (run_id, "loopwright.cache_key", cache_key),
            (run_id, "loopwright.pipeline_run", pipeline_run_id),
        ]
        row = {
            "id": step_run_id,
            "pipeline_run_id": pipeline_run_id,
            "invocation": invocation,
            "step": step,
            "status": "running",
            "cache_key": cache_key,
            "cache_reason": cache_reason,
            "run_id": run_id,
            "cached_from": None,
            "attempts": 0,
            "inputs_json": inputs_text,
            "outputs_json": "[]",
            "key_parts_json": parts_text,
            "error": None,
            "started_at": now,
            "finished_at": None,
        }
        with self._db.write() as conn:
            values = (run_id, invocation, self._store.actor, now, now, pipeline_run_id)
            if statements.execute(conn, stored.NESTED_RUN, values) == 0:
                self._refuse(conn, pipeline_run_id, "start a step in")
            statements.insert_many(conn, "run_tags", ("run_id", "key", "value"), tags)
            statements.execute(conn, stored.STEP_INSERT, [row[c] for c in stored.STEP_COLUMNS])
        return stored.step_from_row(row)

    def finish_step(
        self,
        step_run_id: str,
        status: StepStatus,
        *,
        outputs: Sequence[ArtifactRef] = (),
        attempts: int = 1,
        error: str | None = None,
    ) -> StepRun:
        return self._finish_step(
            step_run_id, status, outputs=outputs, attempts=attempts, error=error
        )

    def _finish_step(
        self,
        step_run_id: str,
        status: StepStatus,
        *,
        outputs: Sequence[ArtifactRef] = (),
        attempts: int = 1,
        error: str | None = None,
        files: Sequence[tuple[str, BlobInfo]] = (),
    ) -> StepRun:
        """:meth:`finish_step`, recording ``files`` (artifact path, stored blob: the output files
        the embedded engine put in the blob store, durable already) as the step's tracked run's
        artifacts in the same commit: one transaction instead of ``log_artifacts``' read and
        write, and a completed step never without its artifact rows."""
        checks.check_choice("status", status, _STEP_ENDS)
        outputs_text = checks.check_artifacts("outputs", outputs)
        tries = checks.check_attempts(attempts)
        message = checks.checked_error(error)
        now = self._clock()
        found: list[dict[str, Any]] = []

        def finish(conn: sa.Connection) -> None:
            values = (status, outputs_text, tries, message, now, step_run_id)
            rows = statements.fetch(conn, stored.STEP_FINISH, values)
            if not rows:
                self._refuse_step(conn, step_run_id)
            row = dict(zip(stored.STEP_COLUMNS, rows[0], strict=True))
            if row["run_id"] is not None:
                statements.execute(
                    conn,
                    'UPDATE runs SET "status" = ?, "end_time" = ?, "error" = ? WHERE "id" = ?',
                    (_ENDS[status], now, message, row["run_id"]),
                )
                if files:
                    self._insert_artifacts(conn, row["run_id"], files, now)
            found.append(row)

        self._tracking.writer.flush(then=finish)
        if found[0]["run_id"] is not None:
            self._tracking.writer.untrack(found[0]["run_id"])
        return stored.step_from_row(found[0])

    @staticmethod
    def _insert_artifacts(
        conn: sa.Connection, run_id: str, files: Sequence[tuple[str, BlobInfo]], now: int
    ) -> None:
        """The rows ``log_artifacts`` writes: the blobs (known to gc) and the run's artifacts."""
        blobs = [{"hash": b.hash, "size": b.size, "created_at": now} for _, b in files]
        insert_ignore(conn, t.blobs, blobs)
        rows = [
            {
                "owner_type": "run",
                "owner_id": run_id,
                "path": path,
                "blob_hash": b.hash,
                "size": b.size,
                "created_at": now,
            }
            for path, b in files
        ]
        upsert(conn, t.artifacts, rows, update=["blob_hash", "size", "created_at"])

    def record_served(
        self,
        pipeline_run_id: str,
        *,
        invocation: str,
        step: str,
        cache_key: str,
        cache_reason: str,
        source: StepRun,
        status: StepStatus = "cached",
        inputs: Sequence[ArtifactRef] = (),
        key_parts: Mapping[str, Any] | None = None,
    ) -> StepRun:
        if not isinstance(source, StepRun):
            raise InvalidInput(f"source must be a StepRun, not {type(source).__name__}")
        return self._record_served(
            pipeline_run_id,
            invocation=invocation,
            step=step,
            cache_key=cache_key,
            cache_reason=cache_reason,
            source_id=source.id,
            status=status,
            inputs=inputs,
            key_parts=key_parts,
        )

    def _record_served(
        self,
        pipeline_run_id: str,
        *,
        invocation: str,
        step: str,
        cache_key: str,
        cache_reason: str,
        source_id: str,
        status: StepStatus,
        inputs: Sequence[ArtifactRef],
        key_parts: Mapping[str, Any] | None,
    ) -> StepRun:
        """:meth:`record_served` by the source's id (what the REST API receives): the outputs
        are the source's as stored, whatever the caller holds."""
        checks.check_choice("status", status, _SERVED)
        row: dict[str, Any] = {
            "id": new_id(),
            "pipeline_run_id": pipeline_run_id,
            "invocation": checks.check_name("invocation", invocation),
            "step": checks.check_name("step", step),
            "status": status,
            "cache_key": checks.check_cache_key(cache_key),
            "cache_reason": checks.check_reason(cache_reason),
            "run_id": None,
            "cached_from": checks.check_name("source id", source_id, _ID_LIMIT),
            "attempts": 0,
            "inputs_json": checks.check_artifacts("inputs", inputs),
            "outputs_json": "[]",
            "key_parts_json": checks.check_document("key_parts", key_parts),
            "error": None,
            "started_at": self._clock(),
        }
        row["finished_at"] = row["started_at"]
        with self._db.write() as conn:
            found = statements.fetch(
                conn,
                'SELECT "status", "outputs_json" FROM step_runs WHERE "id" = ?',
                (source_id,),
            )
            if not found:
                raise NotFound(f"step run {source_id!r} (the source to serve from) does not exist")
            if found[0][0] not in _SERVABLE:
                raise Conflict(
                    f"step run {source_id!r} is {found[0][0]}, so its outputs cannot be served; "
                    "serve from a completed step run"
                )
            row["outputs_json"] = found[0][1]
            state = statements.fetch(
                conn, 'SELECT "status" FROM pipeline_runs WHERE "id" = ?', (pipeline_run_id,)
            )
            if not state or state[0][0] != "running":
                self._refuse(conn, pipeline_run_id, "record a served step in")
            statements.execute(conn, stored.STEP_INSERT, [row[c] for c in stored.STEP_COLUMNS])
        return stored.step_from_row(row)

    def find_cached(self, cache_key: str) -> StepRun | None:
        key = checks.check_cache_key(cache_key)
        with self._db.read() as conn:
            found = statements.fetch(conn, stored.CACHED, (key,))
        return None if not found else stored.step_from_tuple(found[0])

    def previous_step(self, pipeline: str, invocation: str) -> StepRun | None:
        ref = check_text("pipeline", pipeline, limit=limits.PIPELINE_NAME)
        name = checks.check_name("invocation", invocation)
        with self._db.read() as conn:
            found = statements.fetch(conn, stored.PREVIOUS, (ref, name))
        return None if not found else stored.step_from_tuple(found[0])

    # --- internals -------------------------------------------------------------------------

    def _get_row(self, pipeline_run_id: str) -> dict[str, Any]:
        with self._db.read() as conn:
            found = conn.execute(sa.select(t.pipeline_runs).where(_p.id == pipeline_run_id)).first()
        if found is None:
            raise _missing(pipeline_run_id)
        return dict(found._mapping)

    def _read_run(self, pipeline_run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        checks.check_name("pipeline run id", pipeline_run_id, _ID_LIMIT)
        with self._db.read() as conn:
            found = conn.execute(sa.select(t.pipeline_runs).where(_p.id == pipeline_run_id)).first()
            if found is None:
                raise _missing(pipeline_run_id)
            steps = conn.execute(
                sa.select(t.step_runs)
                .where(_s.pipeline_run_id == pipeline_run_id)
                .order_by(_s.started_at, _s.id)
            ).all()
        return dict(found._mapping), [dict(s._mapping) for s in steps]

    def _gone(self, row: Mapping[str, Any]) -> str | None:
        """Why a ``running`` run's process is taken for dead, or None if it may be alive."""
        if row["status"] != "running":
            return None
        silent = self._clock() - row["heartbeat_at"]
        if silent > HEARTBEAT_STALE_MS:
            return (
                f"no heartbeat for {silent // 1000} s (process {row['pid']} on "
                f"{row['host'] or 'an unknown host'}); it was killed or lost"
            )
        if row["pid"] > 0 and row["host"] == _HOST and not stored.alive(row["pid"]):
            return f"its process {row['pid']} on {row['host']} is gone"
        return None

    def _mark_killed(self, row: Mapping[str, Any], reason: str) -> bool:
        """Store the run ``killed`` unless it moved meanwhile (a heartbeat or its end)."""
        # The last sign of life is the best guess of when it died.
        ended = row["heartbeat_at"]
        with self._db.write() as conn:
            done = statements.execute(
                conn,
                'UPDATE pipeline_runs SET "status" = \'killed\', "error" = ?, "finished_at" = ? '
                'WHERE "id" = ? AND "status" = \'running\' AND "heartbeat_at" = ?',
                (reason, ended, row["id"], row["heartbeat_at"]),
            )
            if done == 0:
                return False
            self._end_running_steps(conn, row["id"], ended, "KILLED", "failed")
            if row["run_id"] is not None:
                statements.execute(
                    conn,
                    'UPDATE runs SET "status" = \'KILLED\', "end_time" = ?, "error" = ? '
                    'WHERE "id" = ? AND "status" = \'RUNNING\'',
                    (ended, reason, row["run_id"]),
                )
        return True

    @staticmethod
    def _end_running_steps(
        conn: sa.Connection, pipeline_run_id: str, now: int, tracked: str, status: str
    ) -> None:
        message = "the pipeline run ended while this step was running"
        ids = stored.running_step_runs(conn, pipeline_run_id)
        if ids:
            statements.execute(
                conn,
                'UPDATE runs SET "status" = ?, "end_time" = ?, "error" = ? WHERE "status" = '  # noqa: S608
                "'RUNNING' AND \"id\" IN (" + statements.marks(len(ids)) + ")",
                (tracked, now, message, *ids),
            )
        statements.execute(
            conn,
            'UPDATE step_runs SET "status" = ?, "finished_at" = ?, "error" = ? '
            'WHERE "pipeline_run_id" = ? AND "status" = \'running\'',
            (status, now, message, pipeline_run_id),
        )

    def _end_tracked(self, run_id: str, status: str, error: str) -> None:
        with self._db.write() as conn:
            statements.execute(
                conn,
                'UPDATE runs SET "status" = ?, "end_time" = ?, "error" = ? WHERE "id" = ?',
                (status, self._clock(), checks.checked_error(error), run_id),
            )

    @staticmethod
    def _refuse(conn: sa.Connection, pipeline_run_id: str, doing: str) -> None:
        """Raise why nothing could be done to the pipeline run (inside the transaction)."""
        found = statements.fetch(
            conn, 'SELECT "status", "run_id" FROM pipeline_runs WHERE "id" = ?', (pipeline_run_id,)
        )
        if not found:
            raise _missing(pipeline_run_id)
        status, run_id = found[0]
        if status == "running" and run_id is None:
            raise Conflict(
                f"pipeline run {pipeline_run_id!r} lost its tracked run (it was deleted); cannot "
                f"{doing} it; start a new run"
            )
        raise Conflict(
            f"pipeline run {pipeline_run_id!r} is {status}; cannot {doing} it"
            + ("; `loopwright pipelines resume` runs it again" if status == "killed" else "")
        )

    @staticmethod
    def _refuse_step(conn: sa.Connection, step_run_id: str) -> None:
        found = statements.fetch(
            conn, 'SELECT "status" FROM step_runs WHERE "id" = ?', (step_run_id,)
        )
        if not found:
            raise NotFound(f"step run {step_run_id!r} does not exist")
        raise Conflict(f"step run {step_run_id!r} is already {found[0][0]}; it cannot finish again")


def _missing(pipeline_run_id: str) -> NotFound:
    return NotFound(
        f"pipeline run {pipeline_run_id!r} does not exist; `loopwright pipelines list` shows "
        "recent runs"
    )
