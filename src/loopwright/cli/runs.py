"""``loopwright experiments`` and ``loopwright runs``: look at what was tracked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table

if TYPE_CHECKING:
    from ..tracking import Run

__all__ = ["experiments_app", "runs_app"]

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)
runs_app = typer.Typer(help="Runs: params, metrics, tags and artifacts.", no_args_is_help=True)


@experiments_app.command("list")
def list_experiments(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """List experiments."""
    with handle_errors(), state(ctx).client() as client:
        experiments = client.list_experiments()
    if json_output:
        emit_json(
            [
                {
                    "id": e.id,
                    "name": e.name,
                    "description": e.description,
                    "created_at": e.created_at,
                    "tags": dict(e.tags),
                }
                for e in experiments
            ]
        )
        return
    print_table(
        "Experiments",
        ["name", "id", "created (UTC)"],
        [(e.name, e.id, format_ms(e.created_at)) for e in experiments],
    )


def _run_dict(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "experiment_id": run.experiment_id,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "user": run.user,
        "host": run.host,
        "entry_point": run.entry_point,
        "parent_run_id": run.parent_run_id,
        "error": run.error,
        "params": dict(run.params),
        "tags": dict(run.tags),
        "metrics": {
            k: {"value": m.value, "step": m.step, "timestamp": m.timestamp}
            for k, m in run.metrics.items()
        },
    }


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Only this experiment.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 50,
    json_output: bool = JSON_OPTION,
) -> None:
    """List the newest runs."""
    with handle_errors(), state(ctx).client() as client:
        runs = client.list_runs(experiment, limit=limit)
    if json_output:
        emit_json([_run_dict(run) for run in runs])
        return
    metric_keys = sorted({key for run in runs for key in run.metrics})[:6]
    rows = [
        (
            run.id,
            run.name,
            run.status.value,
            format_ms(run.start_time),
            *(f"{run.metrics[k].value:.4g}" if k in run.metrics else "" for k in metric_keys),
        )
        for run in runs
    ]
    print_table("Runs", ["id", "name", "status", "started (UTC)", *metric_keys], rows)


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    json_output: bool = JSON_OPTION,
) -> None:
    """Show one run: its params, latest metrics, tags and artifacts."""
    with handle_errors(), state(ctx).client() as client:
        run = client.get_run(run_id)
        experiment = client.tracking.get_experiment(run.experiment_id)
        artifacts = client.list_artifacts(run_id)
    if json_output:
        emit_json(
            _run_dict(run)
            | {
                "experiment": experiment.name,
                "artifacts": [{"path": a.path, "size": a.size} for a in artifacts],
            }
        )
        return
    from rich.markup import escape

    out = console()
    out.print(
        f"[bold]{escape(run.name)}[/] ({run.id}) in experiment [bold]{escape(experiment.name)}[/]"
    )
    duration = f", {run.duration_ms / 1000:.1f} s" if run.duration_ms is not None else ""
    out.print(
        f"status {run.status.value}{duration}; started {format_ms(run.start_time)} UTC"
        f" by {run.user}@{run.host}"
    )
    if run.params:
        print_table("Params", ["key", "value"], sorted(run.params.items()))
    if run.metrics:
        print_table(
            "Metrics (latest)",
            ["key", "value", "step"],
            [(k, f"{m.value:.6g}", m.step) for k, m in sorted(run.metrics.items())],
        )
    if run.tags:
        print_table("Tags", ["key", "value"], sorted(run.tags.items()))
    if artifacts:
        print_table("Artifacts", ["path", "size"], [(a.path, f"{a.size:,}") for a in artifacts])
    if run.error:
        out.print(f"[red]error:[/]\n{escape(run.error)}")
