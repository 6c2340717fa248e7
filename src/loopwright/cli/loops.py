"""``loopwright loops``: continuous-training loops of deployments and their iterations.

Every command works through ``client.loops``, so ``--server`` works. ``tick`` runs the driver
here (training runs in this process, from ``--cwd`` of the loop); ``loopwright scheduler``
ticks too after firing schedules.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, format_ms, handle_errors, print_table
from .predictions import parse_duration
from .schedules import parse_params

if TYPE_CHECKING:
    from ..loop.entities import Iteration, Loop

__all__ = ["app", "iteration_dict", "loop_dict"]

app = typer.Typer(
    help="Loops: retrain a deployment's model on a trigger, gate it, ask for approval, canary "
    "it, then promote or roll back on the served traffic.",
    no_args_is_help=True,
)

_NAME = Annotated[str, typer.Argument(help="Loop name.")]


def loop_dict(loop: Loop) -> dict[str, Any]:
    return {
        "id": loop.id,
        "name": loop.name,
        "deployment": loop.deployment,
        "model": loop.model,
        "pipeline": loop.pipeline,
        "params": dict(loop.params),
        "gates": None if loop.gates is None else loop.gates.to_dict(),
        "triggers": [t.text for t in loop.triggers],
        "canary_percent": loop.canary_percent,
        "canary_window_ms": loop.canary_window_ms,
        "metric": loop.metric,
        "margin": loop.margin,
        "min_samples": loop.min_samples,
        "max_error_rate": loop.max_error_rate,
        "max_compare_ms": loop.max_compare_ms,
        "require_approval": loop.require_approval,
        "status": loop.status,
        "cwd": loop.cwd,
        "description": loop.description,
        "created_by": loop.created_by,
        "created_at": loop.created_at,
        "updated_at": loop.updated_at,
    }


def iteration_dict(it: Iteration) -> dict[str, Any]:
    return {
        "id": it.id,
        "loop": it.loop,
        "number": it.number,
        "state": it.state,
        "trigger": it.trigger,
        "trigger_detail": it.trigger_detail,
        "pipeline_run_id": it.pipeline_run_id,
        "model_version": it.model_version,
        "gate_result_id": it.gate_result_id,
        "approval_request_id": it.approval_request_id,
        "canary_revision": it.canary_revision,
        "canary_started_at": it.canary_started_at,
        "comparison": None if it.comparison is None else dict(it.comparison),
        "reason": it.reason,
        "lease_owner": it.lease_owner,
        "lease_until": it.lease_until,
        "created_at": it.created_at,
        "updated_at": it.updated_at,
        "finished_at": it.finished_at,
        "history": [{"state": state, "at": at} for state, at in it.history],
    }


def _percent(text: str) -> float:
    value = text.strip().removesuffix("%")
    try:
        return float(value)
    except ValueError:
        fail(f"--canary {text!r} is not a percentage; write e.g. 10% or 5")
        raise AssertionError("unreachable") from None


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@app.command("create")
def create(
    ctx: typer.Context,
    name: _NAME,
    deployment: Annotated[str, typer.Option("--deployment", help="The deployment to retrain.")],
    pipeline: Annotated[
        str,
        typer.Option("--pipeline", help="The @pipeline (MODULE:FUNCTION) returning the version."),
    ],
    gates: Annotated[
        Path | None, typer.Option("--gates", help="A gate spec (YAML) checked on the holdout.")
    ] = None,
    triggers: Annotated[
        list[str] | None,
        typer.Option(
            "--trigger",
            help="manual (default), cron:'0 3 * * 1', interval:6h, drift:MONITOR, "
            "performance:MONITOR, alert:MONITOR, dataset:NAME; repeat for more.",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="The registered model (default: the primary's).")
    ] = None,
    canary: Annotated[str, typer.Option("--canary", help="Traffic share of the canary.")] = "10%",
    canary_window: Annotated[
        str, typer.Option("--canary-window", help="How long the canary runs before comparing.")
    ] = "1h",
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="Compared metric (default: accuracy, which waits for labelled rows; a "
            "regression model names mae).",
        ),
    ] = None,
    margin: Annotated[
        float, typer.Option("--margin", help="Non-inferiority margin: how much worse is fine.")
    ] = 0.01,
    min_samples: Annotated[
        int, typer.Option("--min-samples", help="Samples per variant before deciding.")
    ] = 100,
    max_error_rate: Annotated[
        float, typer.Option("--max-error-rate", help="Canary 5xx share that rolls back.")
    ] = 0.05,
    max_compare: Annotated[
        str,
        typer.Option("--max-compare", help="No decision this long after the window: roll back."),
    ] = "24h",
    no_approval: Annotated[
        bool, typer.Option("--no-approval", help="Canary without asking an approver.")
    ] = False,
    params: Annotated[
        list[str] | None,
        typer.Option("--param", help="A pipeline parameter NAME=VALUE; repeat for more."),
    ] = None,
    cwd: Annotated[
        str | None,
        typer.Option(
            "--cwd", help="Folder the pipeline is imported from (default: the current folder)."
        ),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a loop (its non-manual triggers become schedules)."""
    with handle_errors(), state(ctx).client() as client:
        made = client.loops.create(
            name,
            deployment=deployment,
            pipeline=pipeline,
            triggers=triggers or ["manual"],
            gates=gates,
            model=model,
            params=parse_params(params),
            canary_percent=_percent(canary),
            canary_window=parse_duration(canary_window, "--canary-window"),
            metric=metric,
            margin=margin,
            min_samples=min_samples,
            max_error_rate=max_error_rate,
            max_compare=parse_duration(max_compare, "--max-compare"),
            require_approval=not no_approval,
            cwd=str(Path(cwd or os.getcwd()).resolve()),
            description=description,
        )
    if json_output:
        emit_json(loop_dict(made))
        return
    console().print(
        f"loop {made.name}: deployment {made.deployment} (model {made.model}), pipeline "
        f"{made.pipeline}, triggers {', '.join(t.text for t in made.triggers)}"
    )


@app.command("list")
def list_loops(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """List loops with their latest iteration."""
    with handle_errors(), state(ctx).client() as client:
        loops = client.loops.list()
        if json_output:  # the table's latest iterations are not part of the JSON
            emit_json([loop_dict(loop) for loop in loops])
            return
        latest = {loop.name: client.loops.iterations(loop.name, limit=1) for loop in loops}
    rows = []
    for loop in loops:
        last = latest[loop.name][0] if latest[loop.name] else None
        rows.append(
            [
                loop.name,
                loop.status,
                loop.deployment,
                loop.pipeline,
                ", ".join(t.text for t in loop.triggers),
                "" if last is None else f"#{last.number} {last.state}",
            ]
        )
    print_table("Loops", ["name", "status", "deployment", "pipeline", "triggers", "latest"], rows)


@app.command("show")
def show(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """A loop's settings and its current iteration: the state and what each state recorded."""
    with handle_errors(), state(ctx).client() as client:
        loop = client.loops.get(name)
        latest = client.loops.iterations(name, limit=1)
    current = latest[0] if latest else None
    if json_output:
        emit_json(
            {
                "loop": loop_dict(loop),
                "iteration": None if current is None else iteration_dict(current),
            }
        )
        return
    gates = "none" if loop.gates is None else f"{loop.gates.name} on {loop.gates.dataset}"
    print_table(
        f"Loop {loop.name} ({loop.status})",
        ["setting", "value"],
        [
            ["deployment", f"{loop.deployment} (model {loop.model})"],
            ["pipeline", f"{loop.pipeline} in {loop.cwd or '.'} {dict(loop.params) or ''}"],
            ["triggers", ", ".join(t.text for t in loop.triggers)],
            ["gates", gates],
            ["approval", "required" if loop.require_approval else "not asked"],
            ["canary", f"{loop.canary_percent:g}% for {loop.canary_window_ms / 60_000:g} min"],
            ["comparison", f"{loop.metric or 'accuracy (default)'}, margin {loop.margin:g}, "
             f"{loop.min_samples} samples, decide within {loop.max_compare_ms / 3_600_000:g} h"],
            ["error limit", f"{loop.max_error_rate:.1%}"],
        ],
    )  # fmt: skip
    if current is None:
        console().print("no iteration yet (loopwright loops trigger NAME starts one)")
        return
    _print_iteration(current)


def _print_iteration(it: Iteration) -> None:
    from ..loop.driver import waiting_text

    started = None if it.canary_started_at is None else format_ms(it.canary_started_at)
    recorded = [
        ("pipeline run", it.pipeline_run_id),
        ("model version", it.model_version),
        ("gate result", it.gate_result_id),
        ("approval request", it.approval_request_id),
        ("canary revision", it.canary_revision),
        ("canary started", started),
        ("verdict", None if it.comparison is None else it.comparison.get("verdict") or "waiting"),
        ("waiting", waiting_text(it)),
        ("reason", it.reason),
        ("driver", None if it.lease_owner is None else it.lease_owner),
    ]  # fmt: skip
    print_table(
        f"Iteration {it.number}: {it.state} (trigger {it.trigger})",
        ["recorded", "value"],
        [[what, str(value)] for what, value in recorded if value is not None],
    )


@app.command("history")
def history(
    ctx: typer.Context,
    name: _NAME,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 20,
    json_output: bool = JSON_OPTION,
) -> None:
    """A loop's iterations, newest first, with their transitions."""
    from ..loop.driver import waiting_text

    with handle_errors(), state(ctx).client() as client:
        iterations = client.loops.iterations(name, limit=limit)
    if json_output:
        emit_json([iteration_dict(it) for it in iterations])
        return
    rows = [
        [
            it.number,
            it.state,
            it.trigger,
            "" if it.model_version is None else str(it.model_version),
            " → ".join(state for state, _ in it.history),
            format_ms(it.created_at),
            (it.reason or waiting_text(it) or "")[:200],
        ]
        for it in iterations
    ]
    print_table(
        f"Iterations of {name}",
        ["#", "state", "trigger", "version", "transitions", "started (UTC)", "reason"],
        rows,
    )


def _set_paused(ctx: typer.Context, name: str, paused: bool, json_output: bool) -> None:
    with handle_errors(), state(ctx).client() as client:
        loop = client.loops.pause(name) if paused else client.loops.resume(name)
    if json_output:
        emit_json(loop_dict(loop))
        return
    console().print(f"loop {loop.name}: {'paused' if paused else 'active'}")


@app.command("pause")
def pause(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """Start no more iterations (schedules disabled); one in flight goes on."""
    _set_paused(ctx, name, True, json_output)


@app.command("resume")
def resume(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """Start iterations again (schedules enabled)."""
    _set_paused(ctx, name, False, json_output)


@app.command("delete")
def delete(ctx: typer.Context, name: _NAME) -> None:
    """Delete a loop, its schedules and iterations (refused while one is in flight)."""
    with handle_errors(), state(ctx).client() as client:
        client.loops.delete(name)
    console().print(f"loop {name}: deleted")


@app.command("trigger")
def trigger(
    ctx: typer.Context,
    name: _NAME,
    detail: Annotated[str | None, typer.Option("--detail", help="Why, for the record.")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Start an iteration now (then `loops tick` or the scheduler moves it)."""
    with handle_errors(), state(ctx).client() as client:
        it = client.loops.start_iteration(name, trigger="manual", detail=detail)
    if json_output:
        emit_json(iteration_dict(it))
        return
    console().print(f"loop {name}: iteration {it.number} triggered ({it.id})")


@app.command("tick")
def tick(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Only this loop (default: every loop).")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Advance in-flight iterations now, until each must wait or ends."""
    from ..loop.driver import advance, advance_all

    with handle_errors(), state(ctx).client() as client:
        if name is None:
            moved = advance_all(client, owner=_owner())
        else:
            active = client.loops.iterations(name, active=True, limit=1)
            moved = [advance(client, it.id, owner=_owner()) for it in active]
    if json_output:
        emit_json([iteration_dict(it) for it in moved])
        return
    if not moved:
        console().print("no iteration in flight")
    for it in moved:
        console().print(
            f"{it.loop} #{it.number}: {it.state}" + (f" ({it.reason})" if it.reason else "")
        )
