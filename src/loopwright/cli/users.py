"""``loopwright users``: who may do what (roles viewer, editor, approver, admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table

__all__ = ["app"]

app = typer.Typer(help="Users and their roles; approvals check them.", no_args_is_help=True)

_ROLE_HELP = "viewer, editor, approver or admin"


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (what --user / LOOPWRIGHT_USER say).")],
    role: Annotated[str, typer.Option("--role", help=_ROLE_HELP)] = "editor",
    email: Annotated[str | None, typer.Option("--email")] = None,
) -> None:
    """Add a user with a role."""
    with handle_errors(), state(ctx).client() as client:
        user = client.users.add(name, role, email=email)
    console().print(f"user {user.name} added as {user.role}")


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Argument(help=_ROLE_HELP)],
) -> None:
    """Change a user's role."""
    with handle_errors(), state(ctx).client() as client:
        user = client.users.set_role(name, role)
    console().print(f"user {user.name} is now {user.role}")


@app.command("disable")
def disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Disable a user: they can no longer decide approvals."""
    with handle_errors(), state(ctx).client() as client:
        client.users.disable(name)
    console().print(f"user {name} disabled")


@app.command("list")
def list_users(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Every user with role and status."""
    with handle_errors(), state(ctx).client() as client:
        found = client.users.list()
    if json_output:
        emit_json(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "email": u.email,
                    "disabled": u.disabled,
                    "created_at": u.created_at,
                }
                for u in found
            ]
        )
        return
    print_table(
        "Users",
        ["name", "role", "email", "disabled", "created (UTC)"],
        [(u.name, u.role, u.email or "", u.disabled, format_ms(u.created_at)) for u in found],
    )
