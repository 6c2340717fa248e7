"""``loopwright schedules``: what starts a pipeline or a loop's iteration, and when it fired.

Every command works through ``client.schedules``, so ``--server`` works. ``loopwright
scheduler`` (cli/scheduler.py) is what fires them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, format_ms, handle_errors, print_table

if TYPE_CHECKING:
    from ..loop.entities import Fire, Schedule

__all__ = ["app", "fire_dict", "parse_params", "schedule_dict"]

app = typer.Typer(
    help="Schedules: run a pipeline or start a loop's iteration on a cron, an interval, a "
    "monitor's alerts or a dataset's new versions (fired by `loopwright scheduler`).",
    no_args_is_help=True,
)

_NAME = Annotated[str, typer.Argument(help="Schedule name.")]


def schedule_dict(s: Schedule) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "target_kind": s.target_kind,
        "target": s.target,
        "trigger": s.trigger.text,
        "params": dict(s.params),
        "cwd": s.cwd,
        "enabled": s.enabled,
        "next_fire_at": s.next_fire_at,
        "last_fired_at": s.last_fired_at,
        "cursor": s.cursor,
        "created_by": s.created_by,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def fire_dict(f: Fire) -> dict[str, Any]:
    return {
        "id": f.id,
        "schedule": f.schedule,
        "event_key": f.event_key,
        "due_at": f.due_at,
        "fired_at": f.fired_at,
        "owner": f.owner,
        "status": f.status,
        "pipeline_run_id": f.pipeline_run_id,
        "iteration_id": f.iteration_id,
        "detail": f.detail,
        "finished_at": f.finished_at,
    }


def parse_params(values: list[str] | None) -> dict[str, str]:
    """``--param NAME=VALUE`` options of a schedule or a loop (a name given twice: the last)."""
    found: dict[str, str] = {}
    for value in values or ():
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            fail(f"--param {value!r} is not NAME=VALUE (e.g. --param epochs=10)")
        found[key.strip()] = text
    return found


def fires_table(fires: list[Fire]) -> tuple[list[str], list[list[Any]]]:
    columns = ["fired (UTC)", "status", "event", "owner", "pipeline run", "iteration", "detail"]
    rows = [
        [
            format_ms(f.fired_at),
            f.status,
            f.event_key,
            f.owner,
            f.pipeline_run_id or "",
            f.iteration_id or "",
            (f.detail or "")[:200],
        ]
        for f in fires
    ]
    return columns, rows


@app.command("create")
def create(
    ctx: typer.Context,
    name: _NAME,
    trigger: Annotated[
        str,
        typer.Option(
            "--trigger",
            help="cron:'0 3 * * 1' (UTC), interval:6h, drift:MONITOR, performance:MONITOR, "
            "alert:MONITOR, dataset:NAME or manual.",
        ),
    ],
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Run this pipeline (MODULE:FUNCTION).")
    ] = None,
    loop: Annotated[
        str | None, typer.Option("--loop", help="Start an iteration of this loop.")
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option("--param", help="A pipeline parameter NAME=VALUE; repeat for more."),
    ] = None,
    cwd: Annotated[
        str | None,
        typer.Option(
            "--cwd",
            help="Folder the pipeline runs in (its module is imported from there); default: "
            "this folder.",
        ),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Create a schedule that runs --pipeline or starts an iteration of --loop on --trigger."""
    if (pipeline is None) == (loop is None):
        fail("give exactly one of --pipeline MODULE:FUNCTION or --loop NAME")
    if loop is not None and (params or cwd is not None):
        fail("--param and --cwd are for --pipeline; a loop has its own (loopwright loops create)")
    folder = None
    if pipeline is not None:
        folder = str(Path(cwd).resolve()) if cwd is not None else os.getcwd()
        if not Path(folder).is_dir():
            fail(f"--cwd {cwd!r} is not a folder")
    with handle_errors(), state(ctx).client() as client:
        created = client.schedules.create(
            name,
            target=pipeline if pipeline is not None else loop,  # type: ignore[arg-type]
            trigger=trigger,
            target_kind="pipeline" if pipeline is not None else "loop",
            params=parse_params(params),
            cwd=folder,
        )
    if json_output:
        emit_json(schedule_dict(created))
        return
    due = f"; next due {format_ms(created.next_fire_at)} UTC" if created.next_fire_at else ""
    console().print(
        f"schedule {created.name!r} created: {created.trigger.text} -> {created.target_kind} "
        f"{created.target}{due}",
        markup=False,
    )


@app.command("list")
def list_schedules(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Option("--target", help="Only those of this pipeline or loop.")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Every schedule with its trigger, target and next due time."""
    with handle_errors(), state(ctx).client() as client:
        found = client.schedules.list(target=target)
    if json_output:
        emit_json([schedule_dict(s) for s in found])
        return
    print_table(
        "Schedules",
        ["name", "trigger", "target", "enabled", "next due (UTC)", "last fired (UTC)"],
        [
            [
                s.name,
                s.trigger.text,
                f"{s.target_kind} {s.target}",
                "yes" if s.enabled else "no",
                format_ms(s.next_fire_at),
                format_ms(s.last_fired_at),
            ]
            for s in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: _NAME,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Recent fires.")] = 10,
    json_output: bool = JSON_OPTION,
) -> None:
    """The schedule's settings and its recent fires."""
    with handle_errors(), state(ctx).client() as client:
        found = client.schedules.get(name)
        fires = client.schedules.fires(name, limit=limit)
    if json_output:
        emit_json({**schedule_dict(found), "fires": [fire_dict(f) for f in fires]})
        return
    shown = schedule_dict(found)
    for key in ("next_fire_at", "last_fired_at", "created_at", "updated_at"):
        shown[key] = format_ms(shown[key])
    shown["params"] = ", ".join(f"{k}={v}" for k, v in found.params.items())
    rows = [[k, "" if v is None else str(v)] for k, v in shown.items()]
    print_table(f"Schedule {found.name}", ["field", "value"], rows)
    print_table(f"{len(fires)} recent fire(s)", *fires_table(fires))


def _set_enabled(ctx: typer.Context, name: str, enabled: bool) -> None:
    with handle_errors(), state(ctx).client() as client:
        changed = client.schedules.set_enabled(name, enabled)
    due = f"; next due {format_ms(changed.next_fire_at)} UTC" if changed.next_fire_at else ""
    word = "enabled" if enabled else "disabled"
    console().print(f"schedule {name!r} {word}{due if enabled else ''}", markup=False)


@app.command("enable")
def enable(ctx: typer.Context, name: _NAME) -> None:
    """Enable the schedule, afresh from now: what happened while disabled does not fire."""
    _set_enabled(ctx, name, True)


@app.command("disable")
def disable(ctx: typer.Context, name: _NAME) -> None:
    """Disable the schedule (a job already started goes on)."""
    _set_enabled(ctx, name, False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: _NAME,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it.")] = False,
) -> None:
    """Delete a schedule and its fires (the audit log keeps the record)."""
    if not yes:
        fail(f"deleting schedule {name!r} removes it and its fires; add --yes")
    with handle_errors(), state(ctx).client() as client:
        client.schedules.delete(name)
    console().print(f"schedule {name!r} deleted", markup=False)
