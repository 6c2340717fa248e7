"""Monitoring on the stores and the prediction log: the embedded :class:`Monitoring` protocol.

A monitor watches one deployment's prediction log against a reference sketch, built once. Each
run reads its window's feature and output columns into Arrow through DuckDB (a uniform sample
past ``max_window_rows``; pandas only for the labelled rows' performance), compares them with
the stored sketch, stores the run and one row per test in one transaction, then lets the alert
book open or resolve alerts (it calls the webhooks itself, after its own commit).

Example:
    >>> from datetime import timedelta
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.serving.predictions import PredictionService
    >>> from loopwright.store.home import open_store
    >>> store = open_store(resolve_settings(home="lw-doc-monitoring"))
    >>> monitoring = MonitoringService(store, PredictionService("lw-doc-monitoring/log"))
    >>> monitoring.create("churn-drift", deployment="churn-api", window=timedelta(hours=1)).window
    datetime.timedelta(seconds=3600)
    >>> monitoring.run("churn-drift").status  # nothing logged yet
    'no_data'
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import Conflict, InvalidInput, NotFound
from ..store import limits
from ..store import schema as t
from ..store.named import Audited, named_row
from . import _monitors as checks
from . import _runs
from ._ray import check_executor
from ._references import ReferenceBook, check_reference_spec
from ._window import (
    INPUT,
    OUTPUT,
    SERVED_BY,
    feature_columns,
    model_version_counts,
    read_window,
    span_ms,
)
from .entities import Monitor, MonitorRun
from .llm_service import TraceMonitorsMixin

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..serving import Predictions
    from ..store.home import Store
    from ._labels import LabelBook
    from .entities import (
        Alert,
        AlertStatus,
        DriftResult,
        LabelImport,
        Performance,
        Reference,
        RunStatus,
        Task,
        VariantComparison,
    )
    from .sketch import ReferenceSketch

__all__ = ["MAX_WINDOW_ROWS", "MonitoringService"]

logger = logging.getLogger(__name__)

MAX_HISTORY = 10_000
# A run holds its window's tested columns in memory: 5M rows of 25 numeric columns is ~1 GB.
MAX_WINDOW_ROWS = 5_000_000
_STATUSES = ("open", "resolved")
_m, _r, _res = t.monitors.c, t.monitor_runs.c, t.monitor_results.c


class MonitoringService(TraceMonitorsMixin, Audited):
    """Monitors, references and runs on the stores; labels, performance and variants on the
    prediction log.

    Args:
        store: the metadata and blob stores.
        predictions: the prediction log (a :class:`~loopwright.serving.Predictions`).
        actor: who changes are recorded as (default: the store's user).
        clock: the time in UTC milliseconds (tests pass a fake one).
        max_window_rows: past this many rows, a run tests a seeded uniform sample of that many
            rows of its window (``MonitorRun.rows`` still counts the window; the drift result's
            ``current_rows`` the sample), so a run's memory is bounded whatever the traffic.
    """

    _subject_type = "monitor"

    def __init__(
        self,
        store: Store,
        predictions: Predictions,
        *,
        actor: str | None = None,
        clock: Callable[[], int] | None = None,
        max_window_rows: int = MAX_WINDOW_ROWS,
    ) -> None:
        if isinstance(max_window_rows, bool) or not isinstance(max_window_rows, int):
            raise InvalidInput(f"max_window_rows {max_window_rows!r} must be a whole number")
        if max_window_rows < 1:
            raise InvalidInput(f"max_window_rows {max_window_rows} must be at least 1")
        self.store = store
        self.db = store.db
        self.predictions = predictions
        self._actor = actor
        self._clock = clock or now_ms
        self._max_rows = max_window_rows

    # --- monitors ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        deployment: str,
        reference: str = "auto",
        window: timedelta = timedelta(hours=1),
        every: timedelta | None = None,
        tests: Sequence[str] = (),
        columns: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        alerts: Sequence[str] = (),
        webhook: str | None = None,
        webhook_format: Literal["json", "slack"] = "json",
        task: Task | None = None,
        description: str | None = None,
    ) -> Monitor:
        """A new monitor of ``deployment``'s prediction log; an explicit reference is built
        (or found) now, so a wrong one fails here rather than at the first run."""
        spec = {
            "window_s": checks.seconds("window", window, checks.MAX_WINDOW),
            "every_s": None if every is None else checks.seconds("every", every, checks.MAX_EVERY),
            "tests": checks.check_tests(tests),
            "columns": checks.check_columns(columns),
            "thresholds": checks.check_thresholds(thresholds),
            "alerts": [rule.key for rule in checks.check_alerts(alerts)],
            "webhook": checks.check_webhook(webhook),
            "webhook_format": checks.check_choice(
                "webhook_format", webhook_format, ("json", "slack")
            ),
            "task": None if task is None else checks.check_choice("task", task, checks.TASKS),
        }
        checks.check_name(name)
        checks.check_deployment(deployment)
        check_reference_spec(reference)
        if description is not None:
            limits.check_text("monitor description", description, limit=limits.REGISTRY_TAG_VALUE)
        with self.db.read() as conn:
            if conn.execute(sa.select(_m.id).where(_m.name == name)).first() is not None:
                raise checks.exists(name)
        reference_id = None
        if reference != "auto":
            reference_id = self._references().build(reference).id
        now, actor, monitor_id = self._clock(), self._actor_name(), new_id()
        row = {
            "id": monitor_id,
            "name": name,
            "deployment": deployment,
            "reference_spec": reference,
            "reference_id": reference_id,
            "spec_json": json.dumps(spec, separators=(",", ":")),
            "description": description,
            "created_by": actor,
            "created_at": now,
            "updated_at": now,
            "last_run_at": None,
        }
        try:
            with self.db.write() as conn:
                conn.execute(t.monitors.insert(), row)
                after = {**checks.snapshot(SimpleNamespace(**row)), "reference_id": reference_id}
                self._audit(conn, "monitor.create", monitor_id, after=after)
        except sa.exc.IntegrityError:
            with self.db.read() as conn:  # two creates of one name: the unique name decides
                if conn.execute(sa.select(_m.id).where(_m.name == name)).first() is None:
                    raise
            raise checks.exists(name) from None
        return self.get(name)

    def get(self, name: str) -> Monitor:
        """The monitor called ``name``."""
        with self.db.read() as conn:
            return checks.monitor(self._row(conn, name))

    def list(self, *, deployment: str | None = None) -> builtins.list[Monitor]:
        """Every monitor (of ``deployment``), by name."""
        query = sa.select(t.monitors).order_by(_m.name)
        if deployment is not None:
            query = query.where(_m.deployment == checks.check_deployment(deployment))
        with self.db.read() as conn:
            return [checks.monitor(row) for row in conn.execute(query).all()]

    def delete(self, name: str) -> None:
        """Remove the monitor, its runs, results and alerts (the audit log keeps the record)."""
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            runs = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.monitor_runs)
                .where(_r.monitor_id == row.id)
            ).scalar_one()
            conn.execute(t.alerts.delete().where(t.alerts.c.monitor_id == row.id))
            conn.execute(t.monitor_results.delete().where(_res.monitor_id == row.id))
            conn.execute(t.monitor_runs.delete().where(_r.monitor_id == row.id))
            conn.execute(t.monitors.delete().where(_m.id == row.id))
            before = {**checks.snapshot(row), "runs": runs}
            self._audit(conn, "monitor.delete", row.id, before=before)

    def run(self, name: str, *, at: datetime | None = None, executor: str = "local") -> MonitorRun:
        """Run the monitor over ``[at - window, at)`` (default ``at``: now) and store the run.

        A window without rows gives a ``no_data`` run: nothing tested, alerts left as they are.
        A failure inside the run (the log unreadable, no reference in the lineage, a corrupted
        sketch ...) does not raise: a ``failed`` run is stored with the error and returned, so a
        scheduler's history shows it and alert rules are left as they are. Raised: an unknown
        monitor, a bad ``at``, and errors of the alert book (after the run is stored).
        ``executor="ray"`` scores the columns as Ray tasks (same result; see ``compare``).
        """
        check_executor(executor)
        monitor = self.get(name)
        if self._watches_traces(name):  # a trace monitor (llm_service): its own pass
            from .llm_service import TraceMonitorService

            llm = TraceMonitorService(self.store, actor=self._actor, clock=self._clock)
            return llm.run(name, at=at).run
        end = self._clock() if at is None else checks.ms_of(at)
        return self._store_run(monitor, *self._score_run(monitor, end, executor))

    def _watches_traces(self, name: str) -> bool:
        from .llm_spec import is_trace_spec

        with self.db.read() as conn:
            return is_trace_spec(json.loads(self._row(conn, name).spec_json))

    def backfill(
        self,
        name: str,
        *,
        since: datetime | timedelta,
        until: datetime | timedelta | None = None,
        executor: str = "local",
    ) -> builtins.list[MonitorRun]:
        """Run the monitor over every window of ``[since, until]`` (default ``until``: now), one
        window step apart (``every``, else ``window``), oldest first; each run stored as
        ``run(name, at=window end)`` stores it. ``executor="ray"`` scores windows in parallel
        on Ray (storage stays here); see ``_backfill``."""
        from ._backfill import backfill, window_ends

        check_executor(executor)
        monitor = self.get(name)
        if self._watches_traces(name):
            raise InvalidInput(
                f"monitor {name!r} watches traces: backfill is for prediction logs; run it at "
                "past times instead (run(name, at=...))"
            )
        ends = window_ends(monitor, since, until, self._clock())
        return backfill(monitor, ends, executor, self._score_run, self._store_run)

    def _score_run(
        self, monitor: Monitor, end: int, executor: str
    ) -> tuple[MonitorRun, str | None]:
        """The run of the window ending at ``end``, not stored, and the reference it used; a
        failure is the run's outcome (``failed``), not raised."""
        start = end - monitor.window_s * 1000
        started = self._clock()
        try:
            return self._pass(monitor, start, end, started, executor)
        except Exception as exc:  # recorded as the run's outcome (run's docstring)
            logger.warning("monitor %r: run failed: %s", monitor.name, exc, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"
            run = self._outcome(monitor, started, start, end, "failed", error=error[:4000])
            return run, monitor.reference_id

    def _store_run(self, monitor: Monitor, run: MonitorRun, reference_id: str | None) -> MonitorRun:
        """Store a scored run, then open or resolve its alerts."""
        started = run.started_at
        with self.db.write() as conn:
            row = self._row(conn, monitor.name, lock=True)
            _runs.insert_run(conn, row.id, run)
            last = started if row.last_run_at is None else max(row.last_run_at, started)
            conn.execute(
                t.monitors.update()
                .where(_m.id == row.id)
                .values(last_run_at=last, reference_id=reference_id)
            )
        if run.status != "ok":
            return run
        from ._alerts import AlertBook

        book = AlertBook(self.store, actor=self._actor_name(), clock=self._clock)
        opened = book.evaluate(monitor, run)
        if opened:
            run = _replace(run, alerts=tuple(opened))
            with self.db.write() as conn:
                _runs.set_run_alerts(conn, run)
        return run

    def _pass(
        self, monitor: Monitor, start: int, end: int, started: int, executor: str = "local"
    ) -> tuple[MonitorRun, str | None]:
        """The run's figures (not stored yet) and the reference it used."""
        from .sketch import vector_source

        # A position of a vector output (``output.predict_proba[1]``) is read as its list.
        wanted = None if not monitor.columns else [vector_source(c) or c for c in monitor.columns]
        # Performance scores the outputs whatever ``columns`` tests (inputs only, say): read
        # them too once the deployment has labels (who answered each row always comes).
        scored = (OUTPUT,) if wanted is not None and self._has_labels(monitor.deployment) else ()
        window = read_window(
            self.predictions, monitor.deployment, start, end, wanted,
            max_rows=self._max_rows, prefixes=scored,
        )  # fmt: skip
        table = window.table
        counts = model_version_counts(table)
        versions = tuple(label for label, _ in counts)
        if table.num_rows == 0:
            run = self._outcome(monitor, started, start, end, "no_data", model_versions=versions)
            return run, monitor.reference_id
        from .compare import compare

        reference = self._reference_for(monitor, counts)
        sketch = self._references().sketch(reference)
        columns = _tested_columns(monitor, table, sketch)
        drift = compare(
            sketch,
            table.select([c for c in table.column_names if c in _sources(columns)]),
            tests=monitor.tests,
            columns=columns,
            thresholds=monitor.thresholds,
            executor=executor,
        )
        performance = self._window_performance(monitor, table)
        run = self._outcome(
            monitor, started, start, end, "ok", rows=window.rows, model_versions=versions,
            drift=drift, performance=performance,
        )  # fmt: skip
        return run, reference.id

    def _outcome(
        self, monitor: Monitor, started: int, start: int, end: int, status: RunStatus,
        **figures: Any,
    ) -> MonitorRun:  # fmt: skip
        """A run of ``monitor`` finishing now; ``figures``: rows, model_versions, drift,
        performance, error (nothing measured by default)."""
        nothing: dict[str, Any] = {"rows": 0, "model_versions": (), "drift": None}
        return MonitorRun(
            id=new_id(), monitor=monitor.name, started_at=started, finished_at=self._clock(),
            window_start=start, window_end=end, status=status,
            **(nothing | {"performance": None} | figures),
        )  # fmt: skip

    def _reference_for(self, monitor: Monitor, counts: Sequence[tuple[str, int]]) -> Reference:
        """The monitor's reference; ``auto``: that of the model version that answered most of
        the window's rows (built on first use, then reused)."""
        references = self._references()
        if monitor.reference != "auto":
            if monitor.reference_id is not None:
                try:
                    return references.get_by_id(monitor.reference_id)
                except NotFound:
                    pass  # deleted meanwhile: built again from the spec
            return references.build(monitor.reference)
        served = [label for label, _ in counts if "/" in label]
        if not served:
            raise InvalidInput(
                f"monitor {monitor.name!r}: no logged row of the window names a registered "
                "model version, so 'auto' has no lineage to follow; give the monitor a "
                "reference NAME@VERSION"
            )
        from ..registry.service import RegistryService

        model, _, number = served[0].rpartition("/")
        registry = RegistryService(self.store, actor=self._actor_name(), clock=self._clock)
        return references.for_model_version(registry.get_version(model, int(number)))

    def _window_performance(self, monitor: Monitor, table: pa.Table) -> Performance | None:
        """Quality of the window's labelled rows; None while no row has a label."""
        if "request_id" not in table.column_names or not self._has_labels(monitor.deployment):
            return None  # checked first: the window as pandas costs as much as the drift pass
        keep = [c for c in table.column_names if c in SERVED_BY or c.startswith(OUTPUT)]
        frame = table.select(keep).to_pandas()
        joined = self._labels().join(monitor.deployment, frame)
        if joined["label"].isna().all():
            return None
        from .performance import score

        return score(joined, task=monitor.task, predictions=table.num_rows)

    def _has_labels(self, deployment: str) -> bool:
        gt = t.ground_truth.c
        with self.db.read() as conn:
            found = conn.execute(sa.select(gt.row).where(gt.deployment == deployment).limit(1))
            return found.first() is not None

    def run_due(self) -> builtins.list[MonitorRun]:
        """Run every monitor whose ``every`` has elapsed since its last run (or that never
        ran), by name. A monitor whose run raises (not a failed run: those are stored) is
        logged and skipped, so one broken monitor does not stop the others. The feature
        store's freshness alerts are checked too (``feature_freshness``: each loaded view
        against its TTL), so the scheduler keeps them current."""
        now = self._clock()
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.monitors).order_by(_m.name)).all()
        runs: builtins.list[MonitorRun] = []
        for row in rows:
            every = json.loads(row.spec_json).get("every_s")
            if every is None:
                continue
            if row.last_run_at is not None and now - row.last_run_at < every * 1000:
                continue
            try:
                runs.append(self.run(row.name))
            except NotFound:
                continue  # deleted since the listing
            except Conflict as exc:  # a trace monitor's pass already running (llm_claim)
                logger.info("monitor %r: scheduled run skipped: %s", row.name, exc)
            except Exception:  # one monitor's error must not stop the rest
                logger.exception("monitor %r: scheduled run raised", row.name)
        self._check_feature_freshness()
        return runs

    def _check_feature_freshness(self) -> None:
        from ..features.freshness import recorded
        from .feature_freshness import check_freshness

        try:
            figures = recorded(self.db, now_ms=self._clock())
            check_freshness(self.store, figures, actor=self._actor, clock=self._clock)
        except Exception:  # like a monitor's: it must not stop the scheduled runs
            logger.exception("feature freshness check raised")

    def history(
        self, name: str, *, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[MonitorRun]:
        """The monitor's runs, newest window first (at most ``limit``; ``since``: windows
        ending at or after it)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY:
            raise InvalidInput(f"limit {limit!r} must be a whole number from 1 to {MAX_HISTORY}")
        with self.db.read() as conn:
            row = self._row(conn, name)
            query = sa.select(t.monitor_runs).where(_r.monitor_id == row.id)
            if since is not None:
                query = query.where(_r.window_end >= checks.ms_of(since))
            rows = conn.execute(
                query.order_by(_r.window_end.desc(), _r.started_at.desc(), _r.id.desc()).limit(
                    limit
                )
            ).all()
        return [_runs.run_from_row(r, row.name) for r in rows]

    def get_run(self, run_id: str) -> MonitorRun:
        """One stored run."""
        if not isinstance(run_id, str) or not run_id or len(run_id) > 64:
            raise InvalidInput(f"run id {str(run_id)[:80]!r} must be a monitor run's id")
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(t.monitor_runs, _m.name.label("monitor_name"))
                .join(t.monitors, _m.id == _r.monitor_id)
                .where(_r.id == run_id)
            ).first()
        if found is None:
            raise NotFound(
                f"monitor run {run_id!r} does not exist; list a monitor's runs with history(name)"
            )
        return _runs.run_from_row(found, found.monitor_name)

    def report(
        self, name: str, *, run_id: str | None = None, format: Literal["html", "json"] = "html"
    ) -> str:
        """A self-contained report of the run (default: the latest) with the monitor's history
        (its last 100 runs)."""
        from .report import render

        checks.check_choice("format", format, ("html", "json"))
        monitor = self.get(name)
        history = self.history(name, limit=100)
        if run_id is None:
            if not history:
                raise NotFound(f"monitor {name!r} has no runs yet; run it first (run(name))")
            run = history[0]
        else:
            run = self.get_run(run_id)
            if run.monitor != monitor.name:
                raise InvalidInput(
                    f"run {run_id!r} belongs to monitor {run.monitor!r}, not {name!r}; "
                    f"report it with report({run.monitor!r}, run_id=...)"
                )
        return render(monitor, run, history, format=format)

    # --- references ----------------------------------------------------------------------------

    def build_reference(self, source: str, *, name: str | None = None) -> Reference:
        """Sketch a reference once from ``source``: a dataset version (``NAME@VERSION``) or a
        model version (``models:/NAME/VERSION``: its training data, from lineage)."""
        return self._references().build(source, name=name)

    def references(self) -> builtins.list[Reference]:
        """Every stored reference, newest first."""
        return self._references().list()

    def compare(
        self,
        reference: pd.DataFrame | pa.Table,
        current: pd.DataFrame | pa.Table,
        *,
        tests: Sequence[str] = (),
        columns: Sequence[str] = (),
        thresholds: Mapping[str, float] | None = None,
        p_values: bool = False,
    ) -> DriftResult:
        """Compare two frames column by column (for notebooks and CI); nothing is stored."""
        from .compare import compare

        return compare(
            reference, current, tests=tests, columns=columns, thresholds=thresholds,
            p_values=p_values,
        )  # fmt: skip

    # --- ground truth and performance ---------------------------------------------------------

    def log_labels(
        self, deployment: str, labels: Mapping[str, object] | pd.DataFrame
    ) -> LabelImport:
        """Store late labels: ``{request_id: label}`` or a frame with ``request_id``, ``label``
        and optionally ``row`` (the row within a multi-row request; default 0)."""
        return self._labels().log(deployment, labels)

    def labels(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> pd.DataFrame:
        """Stored labels (``request_id``, ``row``, ``label``, ``logged_at``) logged in the span."""
        now = self._clock()
        since_ms, until_ms = span_ms(since, until, now)
        return self._labels().read(
            deployment, since_ms=since_ms, until_ms=None if until is None else until_ms
        )

    def performance(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        task: Task | None = None,
        slices: Sequence[str] = (),
    ) -> Performance:
        """Quality of the predictions logged in the span that have labels, per model version and
        per value of each ``slices`` column."""
        from .performance import score

        if task is not None:
            checks.check_choice("task", task, checks.TASKS)
        frame, _, _ = self._labelled(deployment, since, until, slices)
        return score(frame, task=task, slices=slices, predictions=len(frame))

    def compare_variants(
        self,
        deployment: str,
        *,
        metric: str | None = None,
        baseline: str | None = None,
        candidate: str | None = None,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        confidence: float = 0.95,
        min_samples: int = 100,
    ) -> VariantComparison:
        """Compare the deployment's variants on ``metric`` (default: accuracy with labels, else
        the mean prediction) with a confidence interval and a significance test."""
        from ._variants import compare_variants

        frame, start, end = self._labelled(deployment, since, until, ())
        return compare_variants(
            frame, deployment=deployment, metric=metric, baseline=baseline,
            candidate=candidate, confidence=confidence, min_samples=min_samples,
            window_start=start, window_end=end,
        )  # fmt: skip

    def _labelled(
        self,
        deployment: str,
        since: datetime | timedelta | None,
        until: datetime | timedelta | None,
        slices: Sequence[str],
    ) -> tuple[pd.DataFrame, int, int]:
        """The log's rows of the span (who answered, when, how fast, the outputs and the
        ``slices`` columns only) with a ``label`` column (None where none is stored), and the
        span in UTC milliseconds (an open start: the first row's time, else 0)."""
        checks.check_deployment(deployment)
        if isinstance(slices, str) or not all(isinstance(c, str) for c in slices):
            raise InvalidInput(f"slices {slices!r} must be a list of column names")
        start, end = span_ms(since, until, self._clock())
        wanted = ["timestamp", "latency_ms", *slices]
        window = read_window(self.predictions, deployment, start, end, wanted, prefixes=(OUTPUT,))
        table = window.table
        frame = table.to_pandas()
        if start is None:
            start = _first_ms(table)
        return self._labels().join(deployment, frame), start, end

    # --- alerts ----------------------------------------------------------------------------------

    def alerts(
        self, *, monitor: str | None = None, status: AlertStatus | None = None
    ) -> builtins.list[Alert]:
        """Alert events, newest first."""
        from ._alerts import AlertBook

        if status is not None:
            checks.check_choice("status", status, _STATUSES)
        if monitor is not None:
            self.get(monitor)  # an unknown monitor is NotFound, not an empty list
        book = AlertBook(self.store, actor=self._actor_name(), clock=self._clock)
        return book.list(monitor=monitor, status=status)

    # --- internals -----------------------------------------------------------------------------

    def _references(self) -> ReferenceBook:
        return ReferenceBook(self.store, actor=self._actor_name(), clock=self._clock)

    def _labels(self) -> LabelBook:
        from ._labels import LabelBook

        return LabelBook(self.store, actor=self._actor_name(), clock=self._clock)

    def _row(self, conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
        name, hint = checks.check_name(name), "create one with create(name, deployment=...)"
        return named_row(conn, t.monitors, name, what="monitor", hint=hint, lock=lock)


def _tested_columns(monitor: Monitor, table: pa.Table, sketch: ReferenceSketch) -> tuple[str, ...]:
    """The monitor's columns; by default the reference's columns and any ``input.*`` column the
    window has and the reference lacks (a new feature is a schema change worth reporting).
    Outputs the reference has no sketch of are not tested: there is nothing to compare."""
    if monitor.columns:
        return monitor.columns
    from .sketch import vector_source

    present = feature_columns(table)
    # An output the deployment does not log (predict_proba scored for the reference) is not
    # missing data: it is left out, as outputs the reference lacks are.
    logged = set(table.column_names)
    known = [
        c
        for c in sketch.columns
        if not c.startswith(OUTPUT) or c in logged or vector_source(c) in logged
    ]
    new = [c for c in present if c.startswith(INPUT) and c not in sketch.columns]
    return tuple([*known, *new])


def _sources(columns: Sequence[str]) -> set[str]:
    """The window columns ``columns`` are read from: each name and the list column of each
    vector position (``output.predict_proba[0]`` comes from ``output.predict_proba``)."""
    from .sketch import vector_source

    return {*columns, *(s for c in columns if (s := vector_source(c)) is not None)}


def _first_ms(table: pa.Table) -> int:
    if table.num_rows == 0 or "timestamp" not in table.column_names:
        return 0
    import pyarrow.compute as pc

    first = pc.min(table["timestamp"]).as_py()
    return 0 if first is None else int(first.timestamp() * 1000)


def _replace(run: MonitorRun, **changes: Any) -> MonitorRun:
    from dataclasses import replace

    return replace(run, **changes)
