"""``loopwright tokens``: API tokens for the server (shown once, stored hashed)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table

__all__ = ["app"]

app = typer.Typer(
    help="API tokens: how clients prove who they are to a server.", no_args_is_help=True
)


@app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "default",
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Expire after this many days.")
    ] = None,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from ..governance.tokens import TokenService
    from ..store.home import open_store

    with handle_errors(), open_store(state(ctx).local_settings("tokens")) as store:
        created = TokenService(store).create(user, name=name, expires_in_days=expires_days)
    console(stderr=True).print(
        f"token {created.token.id} for {user}; it is shown only now, keep it secret:"
    )
    typer.echo(created.secret)


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--owner", help="Only this user's.")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Tokens with their owner, state and last use (never the secrets)."""
    from ..governance.tokens import TokenService
    from ..store.home import open_store

    with handle_errors(), open_store(state(ctx).local_settings("tokens")) as store:
        found = TokenService(store).list(user)
    if json_output:
        emit_json(
            [
                {
                    "id": k.id,
                    "user": k.user,
                    "name": k.name,
                    "active": k.active,
                    "created_at": k.created_at,
                    "expires_at": k.expires_at,
                    "revoked_at": k.revoked_at,
                    "last_used_at": k.last_used_at,
                }
                for k in found
            ]
        )
        return
    print_table(
        "API tokens",
        ["id", "user", "name", "active", "created (UTC)", "expires (UTC)", "last used (UTC)"],
        [
            (
                k.id,
                k.user,
                k.name,
                k.active,
                format_ms(k.created_at),
                format_ms(k.expires_at),
                format_ms(k.last_used_at),
            )
            for k in found
        ],
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="Token id (see `tokens list`).")],
) -> None:
    """End a token now."""
    from ..governance.tokens import TokenService
    from ..store.home import open_store

    with handle_errors(), open_store(state(ctx).local_settings("tokens")) as store:
        token = TokenService(store).revoke(token_id)
    console().print(f"token {token.id} of {token.user} revoked")
