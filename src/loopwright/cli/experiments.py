"""``loopwright experiments``: list, create, rename, delete (softly) and restore experiments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table

if TYPE_CHECKING:
    from ..tracking import Experiment

__all__ = ["experiments_app"]

experiments_app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)

NAME = Annotated[str, typer.Argument(help="The experiment's name.")]


def experiment_dict(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "name": experiment.name,
        "description": experiment.description,
        "lifecycle_stage": experiment.lifecycle_stage,
        "created_at": experiment.created_at,
        "updated_at": experiment.updated_at,
        "tags": dict(experiment.tags),
    }


@experiments_app.command("list")
def list_experiments(
    ctx: typer.Context,
    include_deleted: Annotated[
        bool, typer.Option("--all", help="Include deleted experiments.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """List experiments, oldest first."""
    with handle_errors(), state(ctx).client() as client:
        experiments = client.tracking.list_experiments(include_deleted=include_deleted)
    if json_output:
        emit_json([experiment_dict(e) for e in experiments])
        return
    stage = ["stage"] if include_deleted else []
    print_table(
        "Experiments",
        ["name", "id", "created (UTC)", "description", *stage],
        [
            (e.name, e.id, format_ms(e.created_at), e.description)
            + ((e.lifecycle_stage,) if include_deleted else ())
            for e in experiments
        ],
    )


@experiments_app.command("create")
def create_experiment(
    ctx: typer.Context,
    name: NAME,
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="What the experiment is for.")
    ] = None,
) -> None:
    """Create an empty experiment (runs also create theirs on first use)."""
    from rich.markup import escape

    with handle_errors(), state(ctx).client() as client:
        experiment = client.tracking.create_experiment(name, description=description)
    console().print(f"Created experiment [bold]{escape(experiment.name)}[/] ({experiment.id})")


@experiments_app.command("rename")
def rename_experiment(
    ctx: typer.Context,
    name: NAME,
    new_name: Annotated[str, typer.Argument(help="The name it gets.")],
) -> None:
    """Rename an experiment; its runs follow it."""
    from rich.markup import escape

    with handle_errors(), state(ctx).client() as client:
        experiment = client.tracking.rename_experiment(name, new_name)
    console().print(
        f"Renamed experiment [bold]{escape(name)}[/] to [bold]{escape(experiment.name)}[/]"
    )


@experiments_app.command("delete")
def delete_experiment(ctx: typer.Context, name: NAME) -> None:
    """Delete an experiment softly: it and its runs are hidden, kept, and can be restored."""
    _set_lifecycle(ctx, name, "deleted")


@experiments_app.command("restore")
def restore_experiment(ctx: typer.Context, name: NAME) -> None:
    """Bring back a deleted experiment."""
    _set_lifecycle(ctx, name, "active")


def _set_lifecycle(ctx: typer.Context, name: str, stage: str) -> None:
    import shlex

    from rich.markup import escape

    with handle_errors(), state(ctx).client() as client:
        before = client.tracking.get_experiment_by_name(name)
        if before.lifecycle_stage != stage:
            client.tracking.set_experiment_lifecycle(name, stage)
    shown = f"experiment [bold]{escape(name)}[/]"
    if before.lifecycle_stage == stage:
        already = "deleted" if stage == "deleted" else "active"
        console().print(f"[dim]{shown} is already {already}; nothing changed[/]")
    elif stage == "deleted":
        console().print(
            f"Deleted {shown}; its runs are kept "
            f"(`loopwright experiments restore {escape(shlex.quote(name))}` brings it back)"
        )
    else:
        console().print(f"Restored {shown}")
