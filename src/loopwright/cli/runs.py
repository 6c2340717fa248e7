"""``loopwright runs``: search, show, compare, delete (softly) and restore runs."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import NotFound
from ._charts import sparkline
from ._context import state
from ._output import (
    JSON_OPTION,
    cell_text,
    console,
    emit_json,
    fail,
    format_duration,
    format_ms,
    format_number,
    handle_errors,
    print_table,
)

if TYPE_CHECKING:
    from rich.text import Text

    from ..client import Client
    from ..tracking import Experiment, Metric, Run

__all__ = ["metric_goal", "runs_app"]

runs_app = typer.Typer(help="Runs: params, metrics, tags and artifacts.", no_args_is_help=True)

RUN_IDS = Annotated[list[str], typer.Argument(help="Run ids.", metavar="RUN_ID")]
# The service breaks start-time ties by id ascending (as MLflow does); ids are time-ordered, so
# descending keeps runs started in the same millisecond newest first too.
_NEWEST_FIRST = ("attributes.start_time DESC", "attributes.run_id DESC")
_METRIC_COLUMNS = 6  # metric columns in `runs list`, those the filter or order names first
_MENTION = re.compile(r"\b(metrics?|params?|parameters?)\.(?:`([^`]+)`|\"([^\"]+)\"|([\w.\-/]+))")
# Metric names whose words say smaller is better; `runs compare --minimize/--maximize` override.
_LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "mae", "mse", "rmse", "mape", "perplexity", "ppl", "wer", "cer"}
    | {"latency", "time", "duration", "seconds", "ms"}
)


def _run_dict(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "experiment_id": run.experiment_id,
        "status": run.status.value,
        "display_status": run.display_status,
        "lifecycle_stage": run.lifecycle_stage,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "duration_ms": run.duration_ms,
        "user": run.user,
        "host": run.host,
        "entry_point": run.entry_point,
        "parent_run_id": run.parent_run_id,
        "git_commit": run.git_commit,
        "git_branch": run.git_branch,
        "git_dirty": run.git_dirty,
        "environment_id": run.environment_id,
        "error": run.error,
        "params": dict(run.params),
        "tags": dict(run.tags),
        "metrics": {
            k: {"value": m.value, "step": m.step, "timestamp": m.timestamp}
            for k, m in run.metrics.items()
        },
    }


def _get_runs(client: Client, run_ids: Sequence[str]) -> list[Run]:
    """The runs, in order; NotFound naming every missing id (before anything is changed)."""
    runs = client.tracking.get_runs(run_ids)
    found = {run.id for run in runs}
    missing = [run_id for run_id in run_ids if run_id not in found]
    if missing:
        names = ", ".join(repr(run_id) for run_id in missing)
        verb = "does" if len(missing) == 1 else "do"
        raise NotFound(
            f"run{'s' if len(missing) > 1 else ''} {names} {verb} not exist; "
            "`loopwright runs list --all` shows runs, deleted ones included"
        )
    return runs


# --- list --------------------------------------------------------------------------------------


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiments: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment",
            "-e",
            metavar="NAME",
            help="Only runs of this experiment; repeat for several. Runs of deleted experiments "
            "show only when named here, or with --all.",
        ),
    ] = None,
    filter_string: Annotated[
        str,
        typer.Option(
            "--filter",
            "-f",
            metavar="FILTER",
            help="""MLflow filter: "metrics.auc > 0.9 and params.model = 'rf'".""",
        ),
    ] = "",
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            metavar="KEY [ASC|DESC]",
            help="Sort key such as 'metrics.auc DESC'; repeat to break ties.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 50,
    deleted: Annotated[bool, typer.Option("--deleted", help="Only deleted runs.")] = False,
    include_all: Annotated[
        bool,
        typer.Option(
            "--all", help="Active and deleted runs, of every experiment, deleted ones too."
        ),
    ] = False,
    page_token: Annotated[
        str | None,
        typer.Option("--page-token", metavar="TOKEN", help="Continue where the last page ended."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Search runs, newest first unless --order-by says otherwise."""
    if deleted and include_all:
        fail("--deleted and --all cannot be combined: --all already includes deleted runs", 2)
    view = "DELETED_ONLY" if deleted else "ALL" if include_all else "ACTIVE_ONLY"
    with handle_errors(), state(ctx).client() as client:
        known = client.tracking.list_experiments(include_deleted=True)
        scope = list(experiments) if experiments else None
        if scope is None and not include_all and any(e.lifecycle_stage != "active" for e in known):
            # The service searches deleted experiments too; their runs stay hidden, as they are.
            scope = [e.name for e in known if e.lifecycle_stage == "active"]
        runs = client.search_runs(
            filter_string,
            experiments=scope,
            order_by=order_by or _NEWEST_FIRST,
            max_results=limit,
            page_token=page_token,
            run_view_type=view,
        )
    token = runs.next_page_token
    if json_output:
        emit_json({"runs": [_run_dict(run) for run in runs], "next_page_token": token})
        return
    experiment_names = {e.id: _experiment_label(e) for e in known}
    mentioned_metrics, mentioned_params = _mentioned([filter_string, *(order_by or ())])
    metric_keys = list(
        dict.fromkeys([*mentioned_metrics, *sorted(k for r in runs for k in r.metrics)])
    )
    metric_keys = metric_keys[: max(_METRIC_COLUMNS, len(mentioned_metrics))]
    columns = ["id", "name", "experiment", "status", "started (UTC)", "duration"]
    if view != "ACTIVE_ONLY":
        columns.append("stage")
    rows: list[list[Any]] = []
    for run in runs:
        row: list[Any] = [
            run.id,
            run.name,
            experiment_names.get(run.experiment_id, run.experiment_id),
            run.display_status,
            format_ms(run.start_time),
            format_duration(run.duration_ms),
        ]
        if view != "ACTIVE_ONLY":
            row.append(run.lifecycle_stage)
        row += [run.params.get(k) for k in mentioned_params]
        row += [_latest(run, k) for k in metric_keys]
        rows.append(row)
    print_table(
        "Runs",
        [*columns, *(f"params.{k}" for k in mentioned_params), *metric_keys],
        rows,
    )
    if token:
        console().print(f"[dim]More runs: repeat the command with --page-token {token}[/]")


def _experiment_label(experiment: Experiment) -> str:
    deleted = experiment.lifecycle_stage != "active"
    return f"{experiment.name} (deleted)" if deleted else experiment.name


def _mentioned(texts: Iterable[str]) -> tuple[list[str], list[str]]:
    """Metric and param keys a filter or order_by names, so the table can show them."""
    metrics: dict[str, None] = {}
    params: dict[str, None] = {}
    for text in texts:
        for found in _MENTION.finditer(text):
            key = found.group(2) or found.group(3) or found.group(4)
            (metrics if found.group(1).startswith("metric") else params)[key] = None
    return list(metrics), list(params)


def _latest(run: Run, key: str) -> str:
    metric = run.metrics.get(key)
    return "" if metric is None else format_number(metric.value, 4)


# --- show --------------------------------------------------------------------------------------


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    history: Annotated[
        bool, typer.Option("--history", help="With --json: every point of every metric.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show one run: params, metrics (with a sparkline of their history), tags, artifacts."""
    with handle_errors(), state(ctx).client() as client:
        run = client.get_run(run_id)
        experiment = client.tracking.get_experiment(run.experiment_id)
        artifacts = client.list_artifacts(run_id)
        histories = (
            {key: client.get_metric_history(run_id, key) for key in sorted(run.metrics)}
            if history or not json_output
            else {}
        )
    if json_output:
        shown = _run_dict(run) | {
            "experiment": experiment.name,
            "artifacts": [{"path": a.path, "size": a.size} for a in artifacts],
        }
        if history:
            shown["history"] = {
                key: [{"step": m.step, "value": m.value, "timestamp": m.timestamp} for m in points]
                for key, points in histories.items()
            }
        emit_json(shown)
        return
    from rich.markup import escape

    out = console()
    deleted = " [red](deleted)[/]" if run.lifecycle_stage == "deleted" else ""
    out.print(
        f"[bold]{escape(run.name)}[/] ({run.id}) in experiment "
        f"[bold]{escape(_experiment_label(experiment))}[/]{deleted}"
    )
    duration = f", {format_duration(run.duration_ms)}" if run.duration_ms is not None else ""
    out.print(
        f"status {run.display_status}{duration}; started {format_ms(run.start_time)} UTC"
        f" by {escape(str(run.user))}@{escape(str(run.host))}"
    )
    for line in _context_lines(run):
        out.print(escape(line))
    if run.params:
        print_table("Params", ["key", "value"], sorted(run.params.items()))
    if run.metrics:
        print_table(
            "Metrics",
            ["key", "latest", "step", "min", "max", "history"],
            [_metric_row(run.metrics[key], points) for key, points in histories.items()],
        )
    if run.tags:
        print_table("Tags", ["key", "value"], sorted(run.tags.items()))
    if artifacts:
        print_table("Artifacts", ["path", "size"], [(a.path, f"{a.size:,}") for a in artifacts])
    if run.error:
        out.print(f"[red]error:[/]\n{escape(run.error)}")


def _context_lines(run: Run) -> list[str]:
    lines = []
    if run.parent_run_id:
        lines.append(f"parent run {run.parent_run_id}")
    if run.entry_point:
        lines.append(f"entry point {run.entry_point}")
    if run.git_commit:
        branch = f" on {run.git_branch}" if run.git_branch else ""
        dirty = " (uncommitted changes)" if run.git_dirty else ""
        lines.append(f"git {run.git_commit[:12]}{branch}{dirty}")
    if run.environment_id:
        lines.append(f"environment {run.environment_id}")
    return lines


def _metric_row(latest: Metric, points: Sequence[Metric]) -> tuple[Any, ...]:
    values = [p.value for p in points]
    finite = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return (latest.key, format_number(latest.value), latest.step, "", "", "")
    low, high = (min(finite), max(finite)) if finite else (None, None)
    return (
        latest.key,
        format_number(latest.value),
        latest.step,
        format_number(low),
        format_number(high),
        sparkline(values),
    )


# --- compare -----------------------------------------------------------------------------------


def metric_goal(key: str, minimize: Iterable[str] = (), maximize: Iterable[str] = ()) -> str:
    """``"min"`` for metrics where smaller is better (losses, errors, times), else ``"max"``."""
    if key in set(minimize):
        return "min"
    if key in set(maximize):
        return "max"
    words = re.split(r"[^a-z0-9]+", key.lower())
    lower = any(word in _LOWER_IS_BETTER or word.endswith("loss") for word in words)
    return "min" if lower else "max"


def _comparison(
    runs: Sequence[Run], minimize: Sequence[str], maximize: Sequence[str]
) -> dict[str, Any]:
    params = {
        key: [run.params.get(key) for run in runs]
        for key in sorted({k for run in runs for k in run.params})
    }
    metrics: dict[str, list[float | None]] = {
        key: [run.metrics[key].value if key in run.metrics else None for run in runs]
        for key in sorted({k for run in runs for k in run.metrics})
    }
    best = {}
    for key, values in metrics.items():
        goal = metric_goal(key, minimize, maximize)
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if len(finite) < 2 or min(finite) == max(finite):
            continue  # nothing to choose between
        target = min(finite) if goal == "min" else max(finite)
        best[key] = {
            "goal": goal,
            "run_ids": [run.id for run, v in zip(runs, values, strict=True) if v == target],
        }
    return {
        "params": params,
        "differing_params": [key for key, values in params.items() if len(set(values)) > 1],
        "metrics": metrics,
        "best": best,
    }


@runs_app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: RUN_IDS,
    minimize: Annotated[
        list[str] | None,
        typer.Option(
            "--minimize",
            metavar="METRIC",
            help="Metric where lower is better (default: by its name).",
        ),
    ] = None,
    maximize: Annotated[
        list[str] | None,
        typer.Option("--maximize", metavar="METRIC", help="Metric where higher is better."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Compare runs side by side: params that differ, and the best value of each metric."""
    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        fail("runs compare needs at least two different run ids", 2)
    with handle_errors(), state(ctx).client() as client:
        runs = _get_runs(client, ids)
        experiments = {e.id: e.name for e in client.tracking.list_experiments(include_deleted=True)}
        histories = {
            (run.id, key): [m.value for m in client.get_metric_history(run.id, key)]
            for run in runs
            for key in ([] if json_output else run.metrics)
        }
    comparison = _comparison(runs, minimize or (), maximize or ())
    summaries = [
        {
            "id": run.id,
            "name": run.name,
            "experiment": experiments.get(run.experiment_id),
            "status": run.status.value,
            "display_status": run.display_status,
            "lifecycle_stage": run.lifecycle_stage,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "duration_ms": run.duration_ms,
        }
        for run in runs
    ]
    if json_output:
        emit_json({"runs": summaries} | comparison)
        return
    _print_comparison(runs, summaries, comparison, histories)


def _print_comparison(
    runs: Sequence[Run],
    summaries: Sequence[dict[str, Any]],
    comparison: dict[str, Any],
    histories: dict[tuple[str, str], list[float]],
) -> None:
    from rich.table import Table

    table = Table(
        title="Run comparison",
        header_style="bold",
        caption="yellow: params that differ; green: the best value of a metric",
    )
    table.add_column("")
    for run in runs:
        table.add_column(cell_text(run.name), overflow="fold")

    def section(title: str) -> None:
        table.add_section()
        table.add_row(cell_text(title, "bold dim"), *([""] * len(runs)))

    for label, field in (("id", "id"), ("experiment", "experiment"), ("status", "display_status")):
        table.add_row(cell_text(label), *(cell_text(s[field]) for s in summaries))
    table.add_row(cell_text("started (UTC)"), *(cell_text(format_ms(r.start_time)) for r in runs))
    table.add_row(cell_text("duration"), *(cell_text(format_duration(r.duration_ms)) for r in runs))
    if comparison["params"]:
        section("params")
    for key, values in comparison["params"].items():
        style = "bold yellow" if key in comparison["differing_params"] else ""
        table.add_row(cell_text(key, style), *(_value_cell(v, style) for v in values))
    if comparison["metrics"]:
        section("metrics")
    for key, values in comparison["metrics"].items():
        best = comparison["best"].get(key, {}).get("run_ids", ())
        table.add_row(
            cell_text(key),
            *(
                _value_cell(None if v is None else format_number(v), "bold green" if won else "")
                for won, v in zip((run.id in best for run in runs), values, strict=True)
            ),
        )
        lines = [histories.get((run.id, key), []) for run in runs]
        if any(len(points) > 1 for points in lines):
            table.add_row(
                "", *(cell_text(sparkline(p, 24) if len(p) > 1 else "", "dim") for p in lines)
            )
    console().print(table)


def _value_cell(value: str | None, style: str) -> Text:
    return cell_text("—", "dim") if value is None else cell_text(value, style)


# --- delete and restore ------------------------------------------------------------------------


@runs_app.command("delete")
def delete_runs(ctx: typer.Context, run_ids: RUN_IDS) -> None:
    """Delete runs softly: hidden from listings, kept, and restorable."""
    _set_lifecycle(ctx, run_ids, "deleted")


@runs_app.command("restore")
def restore_runs(ctx: typer.Context, run_ids: RUN_IDS) -> None:
    """Bring back deleted runs."""
    _set_lifecycle(ctx, run_ids, "active")


def _set_lifecycle(ctx: typer.Context, run_ids: Sequence[str], stage: str) -> None:
    from rich.markup import escape

    ids = list(dict.fromkeys(run_ids))
    with handle_errors(), state(ctx).client() as client:
        runs = _get_runs(client, ids)
        changed = {run.id for run in runs if run.lifecycle_stage != stage}
        for run_id in ids:
            if run_id in changed:
                client.tracking.set_lifecycle(run_id, stage)
    out = console()
    verb, already = ("Deleted", "deleted") if stage == "deleted" else ("Restored", "active")
    for run in runs:
        shown = f"run {run.id} ({escape(run.name)})"
        if run.id in changed:
            out.print(f"{verb} {shown}")
        else:
            out.print(f"[dim]{shown} is already {already}; nothing changed[/]")
    if stage == "deleted" and changed:
        out.print("[dim]`loopwright runs restore RUN_ID...` brings them back[/]")
