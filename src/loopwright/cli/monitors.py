"""``loopwright monitors``: monitors of deployments (drift, data quality and performance on the
prediction log), their runs, reports and alerts; references; and ``compare`` for two files.

Every command works through ``client.monitoring``, so ``--server`` works; ``compare`` reads two
local files and needs no store.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ._context import state
from ._output import (
    JSON_OPTION,
    console,
    emit_json,
    fail,
    format_ms,
    format_number,
    handle_errors,
    print_table,
)
from ._progress import progress_bar
from .llm_monitors import app as traces_app
from .predictions import parse_duration, parse_moment

if TYPE_CHECKING:
    import pyarrow as pa

    from ..monitoring.entities import (
        Alert,
        DriftResult,
        Monitor,
        MonitorRun,
        Performance,
        Reference,
        VariantComparison,
        VariantEstimate,
    )

__all__ = ["app"]

app = typer.Typer(
    help="Monitors: drift, data quality and performance of a deployment's predictions; "
    "alerts and reports.",
    no_args_is_help=True,
)
references_app = typer.Typer(
    help="References: sketches of a dataset version or a model's training data that monitors "
    "compare the prediction log with.",
    no_args_is_help=True,
)
app.add_typer(references_app, name="references")
app.add_typer(traces_app, name="traces")  # monitors of LLM traffic (cli/llm_monitors.py)

_NAME = Annotated[str, typer.Argument(help="Monitor name.")]
_TESTS = Annotated[
    list[str] | None,
    typer.Option("--tests", help="Drift tests, comma-separated (psi,ks); default: each type's."),
]
_COLUMNS = Annotated[
    list[str] | None,
    typer.Option("--columns", help="Columns to test, comma-separated (input.age,output.predict)."),
]
_EXECUTOR = Annotated[
    str,
    typer.Option("--executor", help="Where the columns are scored: local, or ray (a Ray cluster)."),
]
_THRESHOLDS = Annotated[
    list[str] | None,
    typer.Option("--threshold", help="TEST=NUMBER or TEST:COLUMN=NUMBER; repeat for more."),
]


def _names(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _thresholds(values: Sequence[str] | None) -> dict[str, float]:
    found: dict[str, float] = {}
    for value in values or ():
        key, sep, number = value.rpartition("=")
        try:
            threshold = float(number)
        except ValueError:
            threshold = math.nan
        if not sep or not key.strip() or not math.isfinite(threshold):
            fail(
                f"--threshold {value!r} is not TEST=NUMBER or TEST:COLUMN=NUMBER "
                "(e.g. psi=0.2, ks:input.age=0.1)"
            )
        found[key.strip()] = threshold
    return found


def _monitor_dict(m: Monitor) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "deployment": m.deployment,
        "reference": m.reference,
        "reference_id": m.reference_id,
        "window_s": m.window_s,
        "every_s": m.every_s,
        "tests": list(m.tests),
        "columns": list(m.columns),
        "thresholds": dict(m.thresholds),
        "alerts": [r.key for r in m.alerts],
        "webhook": m.webhook,
        "webhook_format": m.webhook_format,
        "task": m.task,
        "description": m.description,
        "created_by": m.created_by,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "last_run_at": m.last_run_at,
    }


def _performance_dict(p: Performance) -> dict[str, Any]:
    return {
        "task": p.task,
        "metrics": dict(p.metrics),
        "rows": p.rows,
        "predictions": p.predictions,
        "coverage": p.coverage,
        "by_version": {k: dict(v) for k, v in p.by_version.items()},
        "by_slice": {c: {k: dict(v) for k, v in s.items()} for c, s in p.by_slice.items()},
    }


def _run_dict(r: MonitorRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "monitor": r.monitor,
        "status": r.status,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "window_start": r.window_start,
        "window_end": r.window_end,
        "rows": r.rows,
        "model_versions": list(r.model_versions),
        "drift": None if r.drift is None else r.drift.to_dict(),
        "performance": None if r.performance is None else _performance_dict(r.performance),
        "alerts": list(r.alerts),
        "error": r.error,
    }


def _alert_dict(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "monitor": a.monitor,
        "rule": a.rule,
        "status": a.status,
        "value": a.value,
        "threshold": a.threshold,
        "message": a.message,
        "occurrences": a.occurrences,
        "opened_at": a.opened_at,
        "last_seen_at": a.last_seen_at,
        "resolved_at": a.resolved_at,
        "delivery": None if a.delivery is None else dict(a.delivery),
    }


def _reference_dict(r: Reference) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "source": r.source,
        "dataset_version_id": r.dataset_version_id,
        "model_version_id": r.model_version_id,
        "columns": list(r.columns),
        "rows": r.rows,
        "created_by": r.created_by,
        "created_at": r.created_at,
        "note": r.note,
    }


def _span(seconds: int | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    moment = parse_moment(text, option)
    return datetime.now(UTC) - moment if isinstance(moment, timedelta) else moment


def _print_drift(result: DriftResult, title: str) -> None:
    """The drifted columns' tests (all tests when none drifted is not worth a table)."""
    verdict = "DRIFT" if result.dataset_drift else "no dataset drift"
    console().print(
        f"{title}: {verdict}; {len(result.drifted_columns)} drifted column(s), "
        f"{result.share_drifted:.0%} of those tested ({result.rule}); "
        f"{result.reference_rows:,} reference rows, {result.current_rows:,} current",
        markup=False,
    )
    drifted = [t for t in result.tests if t.drifted]
    if not drifted:
        return
    p_values = any(t.p_value is not None for t in drifted)
    columns = ["column", "test", "kind", "statistic", "threshold"] + (["p-value"] * p_values)
    rows = [
        [t.column, t.test, t.kind, format_number(t.statistic, 4), format_number(t.threshold, 4)]
        + ([format_number(t.p_value, 3)] * p_values)
        for t in drifted
    ]
    print_table("Drifted", columns, rows)


def _print_performance(p: Performance) -> None:
    rows = [[name, format_number(value, 4)] for name, value in sorted(p.metrics.items())]
    rows.append(["coverage", f"{p.coverage:.1%} ({p.rows:,} of {p.predictions:,} labelled)"])
    print_table(f"Performance ({p.task})", ["metric", "value"], rows)


def _print_run(r: MonitorRun) -> None:
    window = f"{format_ms(r.window_start)} to {format_ms(r.window_end)} UTC"
    versions = ", ".join(r.model_versions) or "none"
    console().print(
        f"run {r.id} of {r.monitor!r}: {r.status}, {r.rows:,} rows, {window}, "
        f"model versions: {versions}",
        markup=False,
    )
    if r.error:
        console(stderr=True).print(f"error: {r.error}", markup=False)
    if r.drift is not None:
        _print_drift(r.drift, "drift")
    if r.performance is not None:
        _print_performance(r.performance)
    if r.alerts:
        console().print(f"open alerts: {', '.join(r.alerts)}", markup=False)


@app.command("create")
def create(
    ctx: typer.Context,
    name: _NAME,
    deployment: Annotated[str, typer.Option("--deployment", help="The deployment monitored.")],
    reference: Annotated[
        str,
        typer.Option(
            "--reference", help="auto (the serving model's training data) or DATASET@VERSION."
        ),
    ] = "auto",
    window: Annotated[str, typer.Option("--window", help="Each run's window, e.g. 1h.")] = "1h",
    every: Annotated[
        str | None, typer.Option("--every", help="Run by run-due this often, e.g. 15m.")
    ] = None,
    tests: _TESTS = None,
    columns: _COLUMNS = None,
    thresholds: _THRESHOLDS = None,
    alerts: Annotated[
        list[str] | None,
        typer.Option("--alert", help="An alert rule, e.g. 'drift_share>0.3'; repeat for more."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST alerts to this http(s) URL.")
    ] = None,
    slack: Annotated[
        bool, typer.Option("--slack", help="Send the webhook a Slack-compatible payload.")
    ] = False,
    task: Annotated[
        str | None,
        typer.Option("--task", help="classification or regression (default: from the labels)."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a monitor of DEPLOYMENT's prediction log against a reference."""
    if task not in (None, "classification", "regression"):
        fail(f"--task {task!r} must be classification or regression")
    span = parse_duration(window, "--window")
    period = None if every is None else parse_duration(every, "--every")
    with handle_errors(), state(ctx).client() as client:
        created = client.monitoring.create(
            name,
            deployment=deployment,
            reference=reference,
            window=span,
            every=period,
            tests=_names(tests),
            columns=_names(columns),
            thresholds=_thresholds(thresholds),
            alerts=alerts or (),
            webhook=webhook,
            webhook_format="slack" if slack else "json",
            task=task,  # type: ignore[arg-type]  # checked above
            description=description,
        )
    if json_output:
        emit_json(_monitor_dict(created))
        return
    every_text = f", every {_span(created.every_s)}" if created.every_s else ""
    console().print(
        f"monitor {created.name!r} created on {created.deployment!r}: window "
        f"{_span(created.window_s)}{every_text}, reference {created.reference}",
        markup=False,
    )


@app.command("run")
def run(
    ctx: typer.Context,
    name: _NAME,
    at: Annotated[
        str | None,
        typer.Option("--at", help="End of the window: 1h (ago) or 2026-12-05T10:30; default now."),
    ] = None,
    executor: _EXECUTOR = "local",
    json_output: bool = JSON_OPTION,
) -> None:
    """Run the monitor now: drifted columns and performance over its window."""
    end = _moment(at, "--at")
    with handle_errors(), state(ctx).client() as client:
        done = client.monitoring.run(name, at=end, executor=executor)
    if json_output:
        emit_json(_run_dict(done))
        return
    _print_run(done)
    if done.status == "failed":
        raise typer.Exit(1)


@app.command("backfill")
def backfill(
    ctx: typer.Context,
    name: _NAME,
    since: Annotated[
        str,
        typer.Option("--since", help="Start of the span: 7d (ago) or 2026-12-01T00."),
    ],
    until: Annotated[
        str | None,
        typer.Option("--until", help="End of the span: 1h (ago) or 2026-12-05T10; default now."),
    ] = None,
    executor: _EXECUTOR = "local",
    json_output: bool = JSON_OPTION,
) -> None:
    """Run the monitor over every window of a past span (one per --every, else per --window),
    oldest first, each stored as a run; --executor ray scores the windows in parallel."""
    from ..monitoring._backfill import parts

    low = _moment(since, "--since")
    high = _moment(until, "--until") or datetime.now(UTC)
    assert low is not None
    done: list[MonitorRun] = []
    with handle_errors(), state(ctx).client() as client:
        monitor = client.monitoring.get(name)
        # Asked for part by part so the bar moves: a part's windows are scored in parallel
        # with ray, one window at a time locally.
        now = int(datetime.now(UTC).timestamp() * 1000)
        spans = parts(monitor, low, high, now, 8 if executor == "ray" else 1)
        shown = not json_output and console(stderr=True).is_terminal
        total = sum(count for _, _, count in spans)
        with progress_bar(f"backfilling {name}", total, shown) as update:
            for first, last, _ in spans:
                part = client.monitoring.backfill(name, since=first, until=last, executor=executor)
                done.extend(part)
                update(advance=len(part))
    if json_output:
        emit_json([_run_dict(r) for r in done])
        return
    print_table(f"{len(done)} run(s) of {name}", *_runs_table(done))
    if any(r.status == "failed" for r in done):
        raise typer.Exit(1)


@app.command("run-due")
def run_due(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Run every monitor whose --every has elapsed (what a scheduler calls each minute)."""
    with handle_errors(), state(ctx).client() as client:
        done = client.monitoring.run_due()
    if json_output:
        emit_json([_run_dict(r) for r in done])
        return
    if not done:
        console().print("no monitor was due")
        return
    print_table(f"{len(done)} run(s)", *_runs_table(done))


def _runs_table(runs: Sequence[MonitorRun]) -> tuple[list[str], list[list[Any]]]:
    columns = ["run", "monitor", "window end (UTC)", "status", "rows", "drift", "alerts"]
    rows: list[list[Any]] = []
    for r in runs:
        drift = "" if r.drift is None else f"{len(r.drift.drifted_columns)} col"
        if r.drift is not None and r.drift.dataset_drift:
            drift += " DRIFT"
        rows.append(
            [
                r.id,
                r.monitor,
                format_ms(r.window_end),
                r.status,
                f"{r.rows:,}",
                drift,
                len(r.alerts),
            ]
        )
    return columns, rows


@app.command("list")
def list_monitors(
    ctx: typer.Context,
    deployment: Annotated[
        str | None, typer.Option("--deployment", help="Only this deployment's.")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Every monitor with its deployment, window and last run."""
    with handle_errors(), state(ctx).client() as client:
        found = client.monitoring.list(deployment=deployment)
    if json_output:
        emit_json([_monitor_dict(m) for m in found])
        return
    print_table(
        "Monitors",
        ["name", "deployment", "reference", "window", "every", "alerts", "last run (UTC)"],
        [
            [
                m.name,
                m.deployment,
                m.reference,
                _span(m.window_s),
                _span(m.every_s),
                len(m.alerts),
                format_ms(m.last_run_at),
            ]
            for m in found
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """The monitor's settings."""
    with handle_errors(), state(ctx).client() as client:
        found = client.monitoring.get(name)
    shown = _monitor_dict(found)
    if json_output:
        emit_json(shown)
        return
    shown["window"], shown["every"] = _span(found.window_s), _span(found.every_s)
    for key in ("created_at", "updated_at", "last_run_at"):
        shown[key] = format_ms(shown[key])
    rows = [[k, _text(v)] for k, v in shown.items() if k not in ("window_s", "every_s")]
    print_table(f"Monitor {found.name}", ["field", "value"], rows)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


@app.command("history")
def history(
    ctx: typer.Context,
    name: _NAME,
    since: Annotated[
        str | None, typer.Option("--since", help="1d (that long ago) or 2026-12-05T10:30.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N runs.")] = 20,
    json_output: bool = JSON_OPTION,
) -> None:
    """The monitor's runs, newest first."""
    low = _moment(since, "--since")
    with handle_errors(), state(ctx).client() as client:
        runs = client.monitoring.history(name, since=low, limit=limit)
    if json_output:
        emit_json([_run_dict(r) for r in runs])
        return
    print_table(f"{name}: {len(runs)} run(s)", *_runs_table(runs))


@app.command("report")
def report(
    ctx: typer.Context,
    name: _NAME,
    run_id: Annotated[
        str | None, typer.Option("--run", help="A run id (default: the latest).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: stdout).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="html or json.")] = "html",
) -> None:
    """A self-contained report of a run with the monitor's history (HTML or JSON)."""
    if format not in ("html", "json"):
        fail(f"--format {format!r} must be html or json")
    kind: Literal["html", "json"] = "json" if format == "json" else "html"
    with handle_errors(), state(ctx).client() as client:
        text = client.monitoring.report(name, run_id=run_id, format=kind)
    _write(text, output)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    console(stderr=True).print(f"wrote {output} ({len(text.encode()):,} bytes)", markup=False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: _NAME,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it.")] = False,
) -> None:
    """Delete a monitor with its runs, results and alerts (the audit log keeps the record)."""
    if not yes:
        fail(f"deleting monitor {name!r} removes its runs, results and alerts; add --yes")
    with handle_errors(), state(ctx).client() as client:
        client.monitoring.delete(name)
    console().print(f"monitor {name!r} deleted", markup=False)


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option("--monitor", help="Only this monitor's.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open or resolved.")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Alert events, newest first."""
    if status not in (None, "open", "resolved"):
        fail(f"--status {status!r} must be open or resolved")
    with handle_errors(), state(ctx).client() as client:
        found = client.monitoring.alerts(monitor=monitor, status=status)  # type: ignore[arg-type]
    if json_output:
        emit_json([_alert_dict(a) for a in found])
        return
    print_table(
        "Alerts",
        ["id", "monitor", "rule", "status", "value", "runs", "opened (UTC)", "resolved (UTC)"],
        [
            [
                a.id,
                a.monitor,
                a.rule,
                a.status,
                format_number(a.value, 4),
                a.occurrences,
                format_ms(a.opened_at),
                format_ms(a.resolved_at),
            ]
            for a in found
        ],
    )


@references_app.command("build")
def build_reference(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="DATASET@VERSION or models:/NAME/VERSION (its training data).")
    ],
    name: Annotated[str | None, typer.Option("--name", help="The reference's name.")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Sketch a reference once (quantiles, histograms, categories, a bounded sample)."""
    with handle_errors(), state(ctx).client() as client:
        built = client.monitoring.build_reference(source, name=name)
    if json_output:
        emit_json(_reference_dict(built))
        return
    console().print(
        f"reference {built.name!r} from {built.source}: {built.rows:,} rows, "
        f"{len(built.columns)} columns",
        markup=False,
    )
    if built.note:
        console().print(f"note: {built.note}", markup=False)


@references_app.command("list")
def list_references(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Every stored reference, newest first."""
    with handle_errors(), state(ctx).client() as client:
        found = client.monitoring.references()
    if json_output:
        emit_json([_reference_dict(r) for r in found])
        return
    print_table(
        "References",
        ["name", "source", "rows", "columns", "created (UTC)", "by"],
        [
            [r.name, r.source, f"{r.rows:,}", len(r.columns), format_ms(r.created_at), r.created_by]
            for r in found
        ],
    )


@app.command("compare")
def compare(
    reference: Annotated[Path, typer.Argument(help="The reference rows (Parquet or CSV).")],
    current: Annotated[Path, typer.Argument(help="The current rows (Parquet or CSV).")],
    tests: _TESTS = None,
    columns: _COLUMNS = None,
    thresholds: _THRESHOLDS = None,
    p_values: Annotated[
        bool, typer.Option("--p-values", help="Also give corrected p-values.")
    ] = False,
    report_file: Annotated[
        Path | None, typer.Option("--report", help="Also write an HTML report here.")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Compare two files column by column (for CI and notebooks); nothing is stored."""
    from ..monitoring.compare import compare as compare_frames

    picked_tests, picked_columns = _names(tests), _names(columns)
    limits = _thresholds(thresholds)
    ref, cur = _read_frame(reference), _read_frame(current)
    with handle_errors():
        result = compare_frames(
            ref,
            cur,
            tests=picked_tests,
            columns=picked_columns,
            thresholds=limits,
            p_values=p_values,
        )
    if report_file is not None:
        from ..monitoring.report import render_drift

        title = f"{reference.name} vs {current.name}"
        _write(render_drift(result, format="html", title=title), report_file)
    if json_output:
        emit_json(result.to_dict())
        return
    _print_drift(result, f"{reference.name} -> {current.name}")


def _read_frame(path: Path) -> pa.Table:
    """A Parquet or CSV file as an Arrow table; one line saying what is wrong otherwise."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        fail(f"{path}: expected a .parquet or .csv file")
    if path.is_dir():
        fail(f"{path}: is a folder; give a .parquet or .csv file")
    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        return pq.read_table(path) if suffix != ".csv" else pa_csv.read_csv(path)
    except (pa.ArrowException, OSError) as exc:
        fail(f"{path}: cannot read it as {'CSV' if suffix == '.csv' else 'Parquet'}: {exc}")
        raise AssertionError("unreachable") from None


def compare_variants(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Deployment name.")],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="accuracy, error_rate, mae, latency_ms, mean_prediction ... (default: "
            "accuracy with labels, else the mean prediction).",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="1h (that long ago) or 2026-12-05T10:30.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="As --since; excluded.")] = None,
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="Baseline variant (default: the primary).")
    ] = None,
    candidate: Annotated[
        str | None, typer.Option("--candidate", help="Candidate variant (default: the other).")
    ] = None,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Confidence level of the intervals.")
    ] = 0.95,
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Samples each variant needs for a decision.")
    ] = 100,
    json_output: bool = JSON_OPTION,
) -> None:
    """Compare the deployment's variants: each one's metric with a confidence interval, the
    difference with its interval, the p-value and the decision (promote, rollback, continue)."""
    low = None if since is None else parse_moment(since, "--since")
    high = None if until is None else parse_moment(until, "--until")
    with handle_errors(), state(ctx).client() as client:
        found = client.monitoring.compare_variants(
            name,
            metric=metric,
            baseline=baseline,
            candidate=candidate,
            since=low,
            until=high,
            confidence=confidence,
            min_samples=min_samples,
        )
    if json_output:
        emit_json(_comparison_dict(found))
        return
    level = f"{found.confidence:.0%} CI"
    print_table(
        f"{found.deployment}: {found.metric} "
        f"({'higher' if found.higher_is_better else 'lower'} is better)",
        ["variant", "role", "model versions", "n", found.metric, level],
        [
            [
                s.variant,
                role,
                ", ".join(s.model_versions),
                f"{s.n:,}",
                format_number(s.value, 4),
                f"[{format_number(s.ci_low, 4)}, {format_number(s.ci_high, 4)}]",
            ]
            for role, s in [
                ("baseline", found.baseline),
                ("candidate", found.candidate),
                *(("other", o) for o in found.others),
            ]
        ],
    )
    enough = "" if found.enough_data else f"; not enough data yet (< {found.min_samples} each)"
    console().print(
        f"difference {format_number(found.difference, 4)} [{format_number(found.ci_low, 4)}, "
        f"{format_number(found.ci_high, 4)}] ({level}), {found.test} p = "
        f"{format_number(found.p_value, 3)}, "
        f"{'significant' if found.significant else 'not significant'}{enough}",
        markup=False,
    )
    console().print(f"decision: {found.decision}", markup=False)


def _comparison_dict(c: VariantComparison) -> dict[str, Any]:
    def stats(s: VariantEstimate) -> dict[str, Any]:
        return {
            "variant": s.variant,
            "model_versions": list(s.model_versions),
            "n": s.n,
            "value": s.value,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
        }

    return {
        "deployment": c.deployment,
        "metric": c.metric,
        "higher_is_better": c.higher_is_better,
        "baseline": stats(c.baseline),
        "candidate": stats(c.candidate),
        "others": [stats(o) for o in c.others],
        "difference": c.difference,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "test": c.test,
        "p_value": c.p_value,
        "confidence": c.confidence,
        "significant": c.significant,
        "enough_data": c.enough_data,
        "min_samples": c.min_samples,
        "decision": c.decision,
        "window_start": c.window_start,
        "window_end": c.window_end,
    }
