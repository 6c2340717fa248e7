"""``RemoteMonitoring``: monitors, references, labels, performance and alerts over the server's
``/api/v1/monitoring`` (the ``Monitoring`` protocol).

Answers are decoded into the same entities the embedded service returns. Relative bounds
(``since=timedelta(hours=1)``) become times here, on the caller's clock, as the prediction log's
remote reads do. ``compare`` needs no store, so it runs here, in the caller's process.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from ..errors import InvalidInput
from ..monitoring.entities import (
    Alert,
    AlertRule,
    AlertStatus,
    Distribution,
    DriftResult,
    LabelImport,
    Monitor,
    MonitorRun,
    Performance,
    Reference,
    Task,
    TestResult,
    VariantComparison,
    VariantEstimate,
)
from ..serving._log_files import check_deployment_name, utc
from ..serving._prediction_read import bounds
from ._http import Http
from .llm_monitoring import RemoteTraceMonitorsMixin

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["LABELS_PER_REQUEST", "RemoteMonitoring"]

Json = dict[str, Any]

LABELS_PER_REQUEST = 50_000  # labels sent per POST (the server takes at most 100,000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Windows a backfill asks for per request: each stays well inside the HTTP timeout.
BACKFILL_WINDOWS = 8


def _float(value: Any) -> float:
    return float(value)  # "NaN", "Infinity" and "-Infinity" parse as well as numbers


def _maybe_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _metrics(data: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): _float(v) for k, v in data.items()}


def _test_result(data: Json) -> TestResult:
    return TestResult(
        column=data["column"],
        test=data["test"],
        statistic=_float(data["statistic"]),
        threshold=_float(data["threshold"]),
        drifted=data["drifted"],
        p_value=_maybe_float(data["p_value"]),
        kind=data["kind"],
        detail=data["detail"],
    )


def _bin(value: Any) -> float | str:
    return value if isinstance(value, str) else float(value)


def distribution(data: Json) -> Distribution:
    return Distribution(
        column=data["column"],
        kind=data["kind"],
        bins=tuple(_bin(b) for b in data["bins"]),
        reference=tuple(_float(v) for v in data["reference"]),
        current=tuple(_float(v) for v in data["current"]),
    )


def drift_result(data: Json) -> DriftResult:
    return DriftResult(
        tests=tuple(_test_result(t) for t in data["tests"]),
        dataset_drift=data["dataset_drift"],
        drifted_columns=tuple(data["drifted_columns"]),
        share_drifted=_float(data["share_drifted"]),
        rule=data["rule"],
        correction=data["correction"],
        reference_rows=data["reference_rows"],
        current_rows=data["current_rows"],
        distributions=tuple(distribution(d) for d in data["distributions"]),
    )


def performance(data: Json) -> Performance:
    return Performance(
        task=data["task"],
        metrics=_metrics(data["metrics"]),
        rows=data["rows"],
        predictions=data["predictions"],
        coverage=_float(data["coverage"]),
        by_version={k: _metrics(v) for k, v in data["by_version"].items()},
        by_slice={
            column: {value: _metrics(m) for value, m in values.items()}
            for column, values in data["by_slice"].items()
        },
    )


def monitor(data: Json) -> Monitor:
    return Monitor(
        id=data["id"],
        name=data["name"],
        deployment=data["deployment"],
        reference=data["reference"],
        reference_id=data["reference_id"],
        window_s=data["window_s"],
        every_s=data["every_s"],
        tests=tuple(data["tests"]),
        columns=tuple(data["columns"]),
        thresholds=_metrics(data["thresholds"]),
        alerts=tuple(
            AlertRule(r["metric"], r["op"], _float(r["threshold"])) for r in data["alerts"]
        ),
        webhook=data["webhook"],
        webhook_format=data["webhook_format"],
        task=data["task"],
        description=data["description"],
        created_by=data["created_by"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        last_run_at=data["last_run_at"],
    )


def monitor_run(data: Json) -> MonitorRun:
    drift, perf = data["drift"], data["performance"]
    return MonitorRun(
        id=data["id"],
        monitor=data["monitor"],
        started_at=data["started_at"],
        finished_at=data["finished_at"],
        window_start=data["window_start"],
        window_end=data["window_end"],
        status=data["status"],
        rows=data["rows"],
        model_versions=tuple(data["model_versions"]),
        drift=None if drift is None else drift_result(drift),
        performance=None if perf is None else performance(perf),
        alerts=tuple(data["alerts"]),
        error=data["error"],
    )


def reference(data: Json) -> Reference:
    return Reference(
        id=data["id"],
        name=data["name"],
        source=data["source"],
        dataset_version_id=data["dataset_version_id"],
        model_version_id=data["model_version_id"],
        sketch_blob=data["sketch_blob"],
        columns=tuple(data["columns"]),
        rows=data["rows"],
        created_by=data["created_by"],
        created_at=data["created_at"],
        note=data.get("note"),  # an older server sends none
    )


def alert(data: Json) -> Alert:
    return Alert(
        id=data["id"],
        monitor=data["monitor"],
        rule=data["rule"],
        status=data["status"],
        value=_maybe_float(data["value"]),
        threshold=_float(data["threshold"]),
        message=data["message"],
        occurrences=data["occurrences"],
        opened_at=data["opened_at"],
        last_seen_at=data["last_seen_at"],
        resolved_at=data["resolved_at"],
        delivery=data["delivery"],
    )


def _variant_stats(data: Json) -> VariantEstimate:
    return VariantEstimate(
        variant=data["variant"],
        model_versions=tuple(data["model_versions"]),
        n=data["n"],
        value=_float(data["value"]),
        ci_low=_float(data["ci_low"]),
        ci_high=_float(data["ci_high"]),
    )


def variant_comparison(data: Json) -> VariantComparison:
    return VariantComparison(
        deployment=data["deployment"],
        metric=data["metric"],
        higher_is_better=data["higher_is_better"],
        baseline=_variant_stats(data["baseline"]),
        candidate=_variant_stats(data["candidate"]),
        difference=_float(data["difference"]),
        ci_low=_float(data["ci_low"]),
        ci_high=_float(data["ci_high"]),
        test=data["test"],
        p_value=_float(data["p_value"]),
        confidence=_float(data["confidence"]),
        significant=data["significant"],
        enough_data=data["enough_data"],
        min_samples=data["min_samples"],
        decision=data["decision"],
        window_start=data["window_start"],
        window_end=data["window_end"],
        others=tuple(_variant_stats(o) for o in data["others"]),
    )


class RemoteMonitoring(RemoteTraceMonitorsMixin):
    """Monitoring on a Loopwright server (changes need an editor token; reading, a viewer)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    # the trace monitors' part (llm_monitoring) decodes monitors and runs with these
    _monitor_of = staticmethod(monitor)
    _run_of = staticmethod(monitor_run)

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
        """A new monitor of ``deployment``'s prediction log."""
        body = {
            "name": name,
            "deployment": deployment,
            "reference": reference,
            "window_s": _seconds("window", window),
            "every_s": None if every is None else _seconds("every", every),
            "tests": _strings("tests", tests),
            "columns": _strings("columns", columns),
            "thresholds": dict(thresholds or {}),
            "alerts": _strings("alerts", alerts),
            "webhook": webhook,
            "webhook_format": webhook_format,
            "task": task,
            "description": description,
        }
        return monitor(self._http.post("/monitoring/monitors", body))

    def get(self, name: str) -> Monitor:
        """The monitor called ``name``."""
        return monitor(self._http.get(_monitor_path(name)))

    def list(self, *, deployment: str | None = None) -> builtins.list[Monitor]:
        """Every monitor (of ``deployment``), by name."""
        found = self._http.get("/monitoring/monitors", deployment=deployment)
        return [monitor(m) for m in found]

    def delete(self, name: str) -> None:
        """Remove the monitor, its runs, results and alerts."""
        self._http.request("DELETE", _monitor_path(name))

    def run(self, name: str, *, at: datetime | None = None, executor: str = "local") -> MonitorRun:
        """Run the monitor now over the window ending at ``at`` (default: now); ``executor``
        is where the server scores it."""
        body = {"at": None if at is None else _ms("at", at), "executor": executor}
        return monitor_run(self._http.post(f"{_monitor_path(name)}/runs", body))

    def backfill(
        self,
        name: str,
        *,
        since: datetime | timedelta,
        until: datetime | timedelta | None = None,
        executor: str = "local",
    ) -> builtins.list[MonitorRun]:
        """Run the monitor over every window of ``[since, until]``, oldest first, on the server
        (``executor="ray"``: its windows scored in parallel on the server's Ray), asked for
        :data:`BACKFILL_WINDOWS` windows per request so none outlives the HTTP timeout."""
        from ..monitoring._backfill import parts

        now = (datetime.now(UTC) - _EPOCH) // timedelta(milliseconds=1)
        spans = parts(self.get(name), since, until, now, BACKFILL_WINDOWS)
        runs: builtins.list[MonitorRun] = []
        for first, last, _ in spans:
            body = {"since": _ms("since", first), "until": _ms("until", last), "executor": executor}
            found = self._http.post(f"{_monitor_path(name)}/backfill", body)
            runs.extend(monitor_run(r) for r in found)
        return runs

    def run_due(self) -> builtins.list[MonitorRun]:
        """Run every monitor whose ``every`` has elapsed since its last run."""
        return [monitor_run(r) for r in self._http.post("/monitoring/run-due")]

    def history(
        self, name: str, *, since: datetime | None = None, limit: int = 100
    ) -> builtins.list[MonitorRun]:
        """The monitor's runs, newest first (at most ``limit``)."""
        low = None if since is None else _iso("since", since)
        found = self._http.get(f"{_monitor_path(name)}/runs", since=low, limit=limit)
        return [monitor_run(r) for r in found]

    def get_run(self, run_id: str) -> MonitorRun:
        """One stored run."""
        return monitor_run(self._http.get(f"/monitoring/runs/{_segment(run_id)}"))

    def report(
        self, name: str, *, run_id: str | None = None, format: Literal["html", "json"] = "html"
    ) -> str:
        """A self-contained report of the run (default: the latest): HTML or JSON."""
        path = f"{_monitor_path(name)}/report"
        return self._http.get_bytes(path, run_id=run_id, format=format).decode("utf-8")

    # --- references --------------------------------------------------------------------------

    def build_reference(self, source: str, *, name: str | None = None) -> Reference:
        """Sketch a reference once from a dataset version or a model version's training data."""
        return reference(
            self._http.post("/monitoring/references", {"source": source, "name": name})
        )

    def references(self) -> builtins.list[Reference]:
        """Every stored reference, newest first."""
        return [reference(r) for r in self._http.get("/monitoring/references")]

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
        """Compare two frames column by column, here (nothing is sent or stored)."""
        from ..monitoring.compare import compare

        return compare(
            reference,
            current,
            tests=tests,
            columns=columns,
            thresholds=thresholds,
            p_values=p_values,
        )

    # --- ground truth and performance --------------------------------------------------------

    def log_labels(
        self, deployment: str, labels: Mapping[str, object] | pd.DataFrame
    ) -> LabelImport:
        """Store late labels, sent in requests of at most :data:`LABELS_PER_REQUEST` (each
        stored in one transaction)."""
        path = f"/monitoring/labels/{_deployment(deployment)}"
        rows = updated = 0
        for body in _label_bodies(labels):
            done = self._http.post(path, body)
            rows += done["rows"]
            updated += done["updated"]
        return LabelImport(deployment=deployment, rows=rows, updated=updated)

    def labels(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
    ) -> pd.DataFrame:
        """Stored labels (``request_id``, ``row``, ``label``, ``logged_at``) logged in the span."""
        import pandas as pd

        low, high = _bounds(since, until)
        found = self._http.get(
            f"/monitoring/labels/{_deployment(deployment)}", since=low, until=high
        )
        columns = found["columns"]
        frame = pd.DataFrame(found["rows"], columns=columns)
        # JSON loses the dtypes: labels stay Python objects, numbers int64, as embedded.
        for column in columns:
            kind = "int64" if column in ("row", "logged_at") else object
            frame[column] = frame[column].astype(kind)
        return frame

    def performance(
        self,
        deployment: str,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | timedelta | None = None,
        task: Task | None = None,
        slices: Sequence[str] = (),
    ) -> Performance:
        """Quality of the labelled predictions logged in the span."""
        low, high = _bounds(since, until)
        found = self._http.get(
            f"/monitoring/performance/{_deployment(deployment)}",
            since=low,
            until=high,
            task=task,
            slices=_strings("slices", slices) or None,
        )
        return performance(found)

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
        """Compare the deployment's variants on ``metric`` with a CI and a significance test."""
        low, high = _bounds(since, until)
        found = self._http.get(
            f"/monitoring/variants/{_deployment(deployment)}",
            metric=metric,
            baseline=baseline,
            candidate=candidate,
            since=low,
            until=high,
            confidence=confidence,
            min_samples=min_samples,
        )
        return variant_comparison(found)

    # --- alerts ------------------------------------------------------------------------------

    def alerts(
        self, *, monitor: str | None = None, status: AlertStatus | None = None
    ) -> builtins.list[Alert]:
        """Alert events, newest first."""
        return [
            alert(a) for a in self._http.get("/monitoring/alerts", monitor=monitor, status=status)
        ]


def _segment(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"expected a non-empty name, not {value!r}")
    return quote(value, safe="")  # one path segment: '/' escaped too


def _monitor_path(name: str) -> str:
    from ..monitoring._monitors import check_name

    return f"/monitoring/monitors/{_segment(check_name(name))}"  # refused here, as embedded


def _deployment(name: str) -> str:
    return _segment(check_deployment_name(name))  # refused here as embedded: never a wrong URL


def _seconds(what: str, span: object) -> float:
    if not isinstance(span, timedelta):
        raise InvalidInput(
            f"{what} must be a timedelta (e.g. timedelta(hours=1)), not {type(span).__name__}"
        )
    return span.total_seconds()


def _strings(what: str, values: object) -> builtins.list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidInput(f"{what} must be a list of strings, e.g. ['psi', 'ks'], not {values!r}")
    return builtins.list(values)  # the server checks each item


def _ms(what: str, moment: object) -> int:
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(moment).__name__}")
    return (utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def _iso(what: str, moment: object) -> str:
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(moment).__name__}")
    return utc(moment).isoformat()


def _bounds(
    since: datetime | timedelta | None, until: datetime | timedelta | None
) -> tuple[str | None, str | None]:
    low, high = bounds(since, until)
    return (
        None if low is None else low.isoformat(),
        None if high is None else high.isoformat(),
    )


def _label_bodies(labels: Mapping[str, object] | pd.DataFrame) -> Iterator[Json]:
    """The request bodies carrying ``labels``: ``{"labels": {...}}`` for a mapping, ``{"rows":
    [...]}`` for a frame, each with at most :data:`LABELS_PER_REQUEST` labels."""
    if isinstance(labels, Mapping):
        odd = [k for k in labels if not isinstance(k, str)]
        if odd:  # JSON would turn them into strings: refused, as embedded
            raise InvalidInput(
                f"{len(odd)} request id(s) are not strings, e.g. {odd[0]!r}; request ids are "
                "the strings the served requests were logged with"
            )
        items = [(k, _scalar(v)) for k, v in labels.items()]
        for start in range(0, max(len(items), 1), LABELS_PER_REQUEST):
            yield {"labels": dict(items[start : start + LABELS_PER_REQUEST])}
        return
    import pandas as pd

    if not isinstance(labels, pd.DataFrame):
        raise InvalidInput(
            "labels must be a mapping {request_id: label} or a DataFrame with request_id and "
            f"label columns, not {type(labels).__name__}"
        )
    missing = [c for c in ("request_id", "label") if c not in labels.columns]
    if missing:
        raise InvalidInput(
            f"the labels frame lacks the column(s) {missing}; it needs request_id and label "
            f"(and optionally row); it has {builtins.list(labels.columns)[:20]}"
        )
    has_row = "row" in labels.columns
    picked = labels[["request_id", "row", "label"] if has_row else ["request_id", "label"]]
    records = picked.astype(object).to_dict(orient="records")
    rows = [{str(k): _scalar(v) for k, v in r.items()} for r in records]
    for start in range(0, max(len(rows), 1), LABELS_PER_REQUEST):
        yield {"rows": rows[start : start + LABELS_PER_REQUEST]}


def _scalar(value: object) -> object:
    """A NumPy scalar as the Python one (JSON cannot carry ``np.int64``)."""
    item = getattr(value, "item", None)
    return item() if callable(item) and not isinstance(value, str | bytes) else value
