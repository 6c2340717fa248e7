"""Monitor reports: one self-contained HTML page (inline CSS and SVG, no script, no network) or a
compact JSON summary for dashboards and CI.

Reports are built only when asked for, from entities already computed by a monitor run: nothing
is re-tested here. Every string that came from a user or a request payload (column names,
category labels, model versions, error messages) is escaped. Output depends only on the inputs
(no rendering time), so the same run renders to the same bytes.

Example:
    >>> from loopwright.monitoring import DriftResult, TestResult
    >>> result = DriftResult(
    ...     tests=(TestResult("input.age", "psi", 0.31, 0.2, True),),
    ...     dataset_drift=True, drifted_columns=("input.age",), share_drifted=1.0,
    ...     rule="drift when at least 50% of the tested columns drift", correction=None,
    ...     reference_rows=1000, current_rows=800,
    ... )
    >>> '"dataset_drift":true' in render_drift(result, format="json")
    True
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from ..errors import InvalidInput
from ._svg import CSS, Series, escape, line_chart, number, paired_bars
from .entities import Alert, Distribution, DriftResult, Monitor, MonitorRun, TestResult

__all__ = [
    "HTML_HISTORY",
    "JSON_DRIFT_SERIES",
    "JSON_HISTORY",
    "TOP_CATEGORIES",
    "render",
    "render_drift",
]

ReportFormat = Literal["html", "json"]

TOP_CATEGORIES = 20
"""Categories drawn per column (the most frequent on either side); the rest share one bar."""
HTML_HISTORY = 500
"""Most recent runs drawn in the HTML's charts over time."""
JSON_HISTORY = 30
"""Most recent runs summarised in the JSON (it stays under 10 kB for dashboards)."""
JSON_DRIFT_SERIES = 5
"""Drifted columns whose statistic over time the JSON carries (the first in the run's list)."""


def render(
    monitor: Monitor,
    run: MonitorRun,
    history: Sequence[MonitorRun],
    *,
    format: ReportFormat = "html",
    alerts: Sequence[Alert] = (),
) -> str:
    """The report of ``run`` with the monitor's ``history`` (any order; ``run`` may be in it).

    The report is as of ``run``: history runs whose window ends after it are left out. ``alerts``
    are the monitor's alerts (only the open ones are listed); without them the run's open alert
    ids are listed.
    """
    _check_format(format)
    timeline = _timeline(run, history)
    if format == "json":
        return _dumps(_report_json(monitor, run, timeline[-JSON_HISTORY:], alerts))
    return _page(
        f"Monitor {monitor.name}: {monitor.deployment}",
        [
            _header(monitor, run),
            *_drift_sections(run.drift),
            _over_time(timeline[-HTML_HISTORY:], run.drift),
            _alerts_section(run, alerts),
        ],
    )


def render_drift(
    result: DriftResult, *, format: ReportFormat = "html", title: str | None = None
) -> str:
    """The report of one comparison (``client.monitoring.compare``), for notebooks and CI."""
    _check_format(format)
    heading = title or "Drift report"
    if format == "json":
        return _dumps({"title": heading, "drift": _drift_json(result)})
    verdict = f"<section><p>{escape(_verdict(result))}</p></section>"
    return _page(heading, [verdict, *_drift_sections(result)])


# --- HTML ---------------------------------------------------------------------------------------

_PAGE_CSS = (
    "body{font:14px/1.45 system-ui,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}"
    "main{max-width:78rem;margin:0 auto;padding:1rem 2rem;background:#fff}"
    "h1{border-bottom:2px solid #d0d7de}h2{margin-top:1.8rem;border-bottom:1px solid #d0d7de}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}"
    "dd{margin:0}table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #d0d7de;"
    "padding:.2rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}"
    "td.drift{background:#ffebe9;font-weight:600}small{color:#656d76;display:block}"
    ".verdict{font-weight:600;padding:.4rem .6rem;border-left:4px solid #1a7f37;"
    "background:#dafbe1}.verdict.bad{border-color:#cf222e;background:#ffebe9}"
    ".note{color:#656d76;font-style:italic}.grid{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem}"
    "pre{white-space:pre-wrap;background:#ffebe9;padding:.5rem}"
)


def _page(title: str, sections: Iterable[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_PAGE_CSS}{CSS}</style></head>\n"
        f"<body><main>\n<h1>{escape(title)}</h1>\n"
        + "\n".join(s for s in sections if s)
        + "\n</main></body></html>\n"
    )


def _header(monitor: Monitor, run: MonitorRun) -> str:
    drift = run.drift
    reference = monitor.reference + (f" ({drift.reference_rows} rows)" if drift else "")
    fields = [
        ("Monitor", monitor.name),
        ("Deployment", monitor.deployment),
        ("Reference", reference),
        ("Window", f"{_iso(run.window_start)} to {_iso(run.window_end)} ({_span(run)})"),
        ("Run", f"{run.id}: {run.status}, {run.rows} rows"),
        ("Model versions", ", ".join(run.model_versions) or "none logged"),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in fields)
    if run.status == "failed":
        verdict = f'<p class="verdict bad">Run failed</p><pre>{escape(run.error or "")}</pre>'
    elif run.status == "no_data":
        verdict = (
            '<p class="verdict">No data: no row was logged in the window, nothing was tested.</p>'
        )
    elif drift is None:
        verdict = '<p class="verdict">No drift test ran.</p>'
    else:
        bad = " bad" if drift.dataset_drift else ""
        verdict = f'<p class="verdict{bad}">{escape(_verdict(drift))}</p>'
    return f"<section><dl>{items}</dl>{verdict}</section>" + _performance_table(run)


def _verdict(drift: DriftResult) -> str:
    state = "Dataset drift" if drift.dataset_drift else "No dataset drift"
    # compare's rules already name their correction; say it only when the rule does not
    stated = "correct" in drift.rule.lower()
    correction = (
        f"; p-values corrected by {drift.correction}" if drift.correction and not stated else ""
    )
    return (
        f"{state}: {len(drift.drifted_columns)} column(s) drifted "
        f"({_percent(drift.share_drifted)} of those tested). Rule: {drift.rule}{correction}. "
        f"{drift.current_rows} current rows against {drift.reference_rows} reference rows."
    )


def _drift_sections(drift: DriftResult | None) -> list[str]:
    if drift is None or not drift.tests:
        return []
    return [_tests_table(drift), _distributions(drift)]


def _tests_table(drift: DriftResult) -> str:
    """Columns down, tests across; a cell holds the statistic, its threshold and the p-value."""
    columns, tests, cells = _matrix(drift.tests)
    drifted = set(drift.drifted_columns)
    order = sorted(range(len(columns)), key=lambda i: columns[i] not in drifted)
    head = "".join(f"<th>{escape(t)}</th>" for t in tests)
    rows = []
    for i in order:
        row = [f"<th>{escape(_column_label(columns[i]))}</th>"]
        for j in range(len(tests)):
            r = cells.get((i, j))
            if r is None:
                row.append("<td></td>")
                continue
            # a test that only gives a p-value has it as its statistic already
            shown = r.p_value is not None and r.p_value != r.statistic
            p = f"<small>p {number(r.p_value)}</small>" if shown else ""
            tip = f' title="{escape(json.dumps(dict(r.detail), default=str))}"' if r.detail else ""
            css = ' class="drift"' if r.drifted else ""
            row.append(
                f"<td{css}{tip}>{number(r.statistic)}"
                f"<small>threshold {number(r.threshold)}</small>{p}</td>"
            )
        rows.append("<tr>" + "".join(row) + "</tr>")
    return (
        '<section><h2>Tests</h2><p class="note">Highlighted: the test crossed its threshold.'
        f"</p><table><thead><tr><th>Column</th>{head}</tr></thead><tbody>{''.join(rows)}"
        "</tbody></table></section>"
    )


def _column_label(column: str) -> str:
    return "* (all columns together)" if column == "*" else column


def _distributions(drift: DriftResult) -> str:
    if not drift.distributions:
        return ""
    drifted = set(drift.drifted_columns)
    ordered = sorted(drift.distributions, key=lambda d: d.column not in drifted)
    charts = "".join(_distribution_chart(d) for d in ordered)
    return (
        '<section><h2>Distributions</h2><p class="note">Share of rows per bin, reference '
        f'against current window.</p><div class="grid">{charts}</div></section>'
    )


def _distribution_chart(d: Distribution) -> str:
    if d.kind == "numeric":
        edges = [number(float(b)) for b in d.bins]
        return paired_bars(d.column, edges, d.reference, d.current, edges=True)
    labels, ref, cur = _top_categories(d)
    return paired_bars(d.column, labels, ref, cur)


def _top_categories(d: Distribution) -> tuple[list[str], list[float], list[float]]:
    """The ``TOP_CATEGORIES`` largest on either side, in that order; the rest summed."""
    rows = sorted(
        zip((str(b) for b in d.bins), d.reference, d.current, strict=True),
        key=lambda row: -max(row[1], row[2]),
    )
    kept, rest = rows[:TOP_CATEGORIES], rows[TOP_CATEGORIES:]
    if rest:
        kept.append((f"{len(rest)} others", sum(r[1] for r in rest), sum(r[2] for r in rest)))
    return [r[0] for r in kept], [r[1] for r in kept], [r[2] for r in kept]


def _over_time(timeline: Sequence[MonitorRun], drift: DriftResult | None) -> str:
    tested = [r for r in timeline if r.status == "ok"]
    if len(tested) < 2:
        return (
            '<section><h2>Over time</h2><p class="note">Charts over time need two runs with '
            f"data; this history has {len(tested)}.</p></section>"
        )
    x = [float(r.window_end) for r in timeline]
    labels = (_iso(timeline[0].window_end), _iso(timeline[-1].window_end))
    drift_charts = []
    drifted = set(drift.drifted_columns) if drift else set()
    series_by_column = sorted(_column_series(timeline).items(), key=lambda c: c[0] not in drifted)
    for column, (test, threshold, found) in series_by_column:
        series = Series(
            test,
            [_stat(f) for f in found],
            [f is not None and f.drifted for f in found],
        )
        drift_charts.append(
            line_chart(f"{column}: {test}", x, [series], x_labels=labels, threshold=threshold)
        )
    perf_charts = [
        line_chart(name, x, [Series(name, values)], x_labels=labels, zero=False)
        for name, values in _performance_series(timeline).items()
    ]
    parts = ["<section><h2>Drift over time</h2>"]
    if drift_charts:
        parts.append(
            '<p class="note">Each column\'s main test per run; red dots: drifted; dashed: '
            f'threshold.</p><div class="grid">{"".join(drift_charts)}</div>'
        )
    else:
        parts.append('<p class="note">No drift test in these runs.</p>')
    parts.append("</section><section><h2>Performance over time</h2>")
    if perf_charts:
        parts.append(f'<div class="grid">{"".join(perf_charts)}</div>')
    else:
        parts.append('<p class="note">No labelled rows in these runs yet.</p>')
    return "".join(parts) + "</section>"


def _performance_table(run: MonitorRun) -> str:
    perf = run.performance
    if perf is None:
        return ""
    versions = sorted(perf.by_version)
    names = sorted(perf.metrics)
    head = "".join(f"<th>{escape(v)}</th>" for v in versions)
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{number(perf.metrics[name])}</td>"
        + "".join(f"<td>{number(perf.by_version[v].get(name))}</td>" for v in versions)
        + "</tr>"
        for name in names
    )
    return (
        f"<section><h2>Performance ({escape(perf.task)})</h2><p>{perf.rows} labelled rows of "
        f"{perf.predictions} predictions (coverage {_percent(perf.coverage)}).</p>"
        f"<table><thead><tr><th>Metric</th><th>All</th>{head}</tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def _alerts_section(run: MonitorRun, alerts: Sequence[Alert]) -> str:
    open_ = [a for a in alerts if a.status == "open"]
    if open_:
        items = "".join(
            f"<tr><td>{escape(a.rule)}</td><td>{number(a.value)}</td>"
            f"<td>{number(a.threshold)}</td><td>{a.occurrences}</td><td>{_iso(a.opened_at)}</td>"
            f"<td>{escape(a.message)}</td></tr>"
            for a in open_
        )
        body = (
            "<table><thead><tr><th>Rule</th><th>Value</th><th>Threshold</th><th>Runs</th>"
            f"<th>Opened</th><th>Message</th></tr></thead><tbody>{items}</tbody></table>"
        )
    elif run.alerts and not alerts:
        body = "<ul>" + "".join(f"<li>{escape(a)}</li>" for a in run.alerts) + "</ul>"
    else:
        body = '<p class="note">No open alert.</p>'
    return f"<section><h2>Open alerts</h2>{body}</section>"


# --- JSON ---------------------------------------------------------------------------------------


def _report_json(
    monitor: Monitor, run: MonitorRun, timeline: Sequence[MonitorRun], alerts: Sequence[Alert]
) -> dict[str, Any]:
    return {
        "monitor": {
            "name": monitor.name,
            "deployment": monitor.deployment,
            "reference": monitor.reference,
            "window_s": monitor.window_s,
            "alert_rules": [rule.key for rule in monitor.alerts],
        },
        "run": {
            "id": run.id,
            "status": run.status,
            "window_start": run.window_start,
            "window_end": run.window_end,
            "rows": run.rows,
            "model_versions": list(run.model_versions),
            **({"error": run.error} if run.error else {}),
        },
        "drift": None if run.drift is None else _drift_json(run.drift),
        "performance": _performance_json(run),
        "history": _history_json(run, timeline),
        "alerts": (
            [
                {"id": a.id, "rule": a.rule, "value": _round(a.value), "opened_at": a.opened_at}
                for a in alerts
                if a.status == "open"
            ]
            if alerts
            else [{"id": a} for a in run.alerts]
        ),
    }


def _drift_json(drift: DriftResult) -> dict[str, Any]:
    """Tests as a columns x tests matrix (null where a test did not run on a column)."""
    columns, tests, cells = _matrix(drift.tests)

    def grid(value: Any) -> list[list[Any]]:
        return [
            [None if (i, j) not in cells else value(cells[i, j]) for j in range(len(tests))]
            for i in range(len(columns))
        ]

    kinds = {r.test: r.kind for r in drift.tests}
    out: dict[str, Any] = {
        "dataset_drift": drift.dataset_drift,
        "share_drifted": _round(drift.share_drifted),
        "drifted_columns": list(drift.drifted_columns),
        "rule": drift.rule,
        "correction": drift.correction,
        "reference_rows": drift.reference_rows,
        "current_rows": drift.current_rows,
        "columns": columns,
        "tests": tests,
        "kinds": [kinds[t] for t in tests],
        "statistic": grid(lambda r: _round(r.statistic)),
        "threshold": grid(lambda r: _round(r.threshold)),
        "drifted": [[i, j] for (i, j), r in sorted(cells.items()) if r.drifted],
    }
    if any(r.p_value is not None for r in drift.tests):
        out["p_value"] = grid(lambda r: _round(r.p_value))
    return out


def _performance_json(run: MonitorRun) -> dict[str, Any] | None:
    perf = run.performance
    if perf is None:
        return None
    return {
        "task": perf.task,
        "rows": perf.rows,
        "predictions": perf.predictions,
        "coverage": _round(perf.coverage),
        "metrics": {k: _round(v) for k, v in sorted(perf.metrics.items())},
        "by_version": {
            version: {k: _round(v) for k, v in sorted(metrics.items())}
            for version, metrics in sorted(perf.by_version.items())
        },
    }


def _history_json(run: MonitorRun, timeline: Sequence[MonitorRun]) -> dict[str, Any]:
    """One row per run (columns named in ``fields``) and, for the first ``JSON_DRIFT_SERIES``
    columns that drifted in ``run``, their main test's statistic per run."""
    performance = _performance_series(timeline)
    fields = ["window_end", "status", "rows", "drift_share", "dataset_drift", *performance]
    runs = [
        [
            r.window_end,
            r.status,
            r.rows,
            None if r.drift is None else _round(r.drift.share_drifted),
            None if r.drift is None else int(r.drift.dataset_drift),
            *(_round(values[n]) for values in performance.values()),
        ]
        for n, r in enumerate(timeline)
    ]
    drifted = run.drift.drifted_columns if run.drift else ()
    shown = set(drifted[:JSON_DRIFT_SERIES])
    columns = {
        column: {
            "test": test,
            "threshold": _round(threshold),
            "values": [_round(_stat(f)) for f in found],
        }
        for column, (test, threshold, found) in _column_series(timeline).items()
        if column in shown
    }
    return {
        "fields": fields,
        "runs": runs,
        "drifted_columns": columns,
        "drifted_columns_left_out": max(0, len(drifted) - JSON_DRIFT_SERIES),
    }


# --- shared -------------------------------------------------------------------------------------


def _check_format(format: str) -> None:
    if format not in ("html", "json"):
        raise InvalidInput(f"report format {format!r} is not one of 'html', 'json'")


def _timeline(run: MonitorRun, history: Sequence[MonitorRun]) -> list[MonitorRun]:
    """``run`` and the history up to it, oldest first, each run once."""
    by_id = {r.id: r for r in history if r.window_end <= run.window_end}
    by_id[run.id] = run
    return sorted(by_id.values(), key=lambda r: (r.window_end, r.started_at, r.id))


def _matrix(
    tests: Sequence[TestResult],
) -> tuple[list[str], list[str], dict[tuple[int, int], TestResult]]:
    """Column and test names in order of first appearance, and the result at each pair."""
    columns: dict[str, int] = {}
    names: dict[str, int] = {}
    cells: dict[tuple[int, int], TestResult] = {}
    for r in tests:
        i = columns.setdefault(r.column, len(columns))
        j = names.setdefault(r.test, len(names))
        cells[i, j] = r
    return list(columns), list(names), cells


def _column_series(
    timeline: Sequence[MonitorRun],
) -> dict[str, tuple[str, float, list[TestResult | None]]]:
    """Per column (sorted): its main test, that test's latest threshold and its result per run.

    The main test is the first drift test of the newest run that tested the column.
    """
    main: dict[str, tuple[str, float]] = {}
    for run in reversed(timeline):
        for r in run.drift.tests if run.drift else ():
            if r.kind == "drift" and r.column != "*":
                main.setdefault(r.column, (r.test, r.threshold))
    lookups = [
        {(r.column, r.test): r for r in run.drift.tests} if run.drift else {} for run in timeline
    ]
    return {
        column: (test, threshold, [lookup.get((column, test)) for lookup in lookups])
        for column, (test, threshold) in sorted(main.items())
    }


def _stat(result: TestResult | None) -> float | None:
    return None if result is None else result.statistic


def _performance_series(timeline: Sequence[MonitorRun]) -> dict[str, list[float | None]]:
    """Each metric (and coverage) per run, None where a run had no labels."""
    names = sorted({k for r in timeline if r.performance for k in r.performance.metrics})
    out: dict[str, list[float | None]] = {
        name: [r.performance.metrics.get(name) if r.performance else None for r in timeline]
        for name in names
    }
    if names:
        out["coverage"] = [r.performance.coverage if r.performance else None for r in timeline]
    return out


def _round(value: float | None) -> float | None:
    """4 significant digits; None for None, NaN and infinities (strict JSON has no spelling)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _span(run: MonitorRun) -> str:
    seconds = max(0, run.window_end - run.window_start) // 1000
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _percent(share: float) -> str:
    return "n/a" if not math.isfinite(share) else f"{share:.0%}"
