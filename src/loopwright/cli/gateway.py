"""``loopwright gateway``: the LLM gateway's routes, secrets and usage.

The server answers OpenAI's API (``/v1/chat/completions`` ...) on these routes; this group
changes and reads them, embedded or through ``--server``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, format_ms, handle_errors, print_table

if TYPE_CHECKING:
    from ..gateway.entities import GatewayRoute, SecretInfo

__all__ = ["app"]

app = typer.Typer(
    help="LLM gateway: routes to OpenAI-compatible upstreams, secrets, usage.",
    no_args_is_help=True,
)
routes_app = typer.Typer(help="Routes (the model names callers send).", no_args_is_help=True)
secrets_app = typer.Typer(help="Upstream credentials, stored encrypted.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")
app.add_typer(secrets_app, name="secrets")

_NAME = Annotated[str, typer.Argument(help="Route name (the 'model' callers send).")]
_CONFIG = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="The route's configuration: a JSON or YAML file ('-': stdin)."
    ),
]


def _read_config(path: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            fail(f"{path}: not JSON ({exc}); YAML files must end in .yaml or .yml")
    if not isinstance(data, dict):
        fail(f"{path}: the configuration must be an object (targets, fallbacks, limits, ...)")
    checked: dict[str, Any] = data
    return checked


def _route_dict(route: GatewayRoute) -> dict[str, Any]:
    from ..gateway.config import config_to_dict

    return {
        "name": route.name,
        "config": config_to_dict(route.config),
        "revision": route.revision,
        "created_by": route.created_by,
        "created_at": route.created_at,
        "updated_by": route.updated_by,
        "updated_at": route.updated_at,
    }


def _secret_dict(secret: SecretInfo) -> dict[str, Any]:
    return {
        "name": secret.name,
        "mask": secret.mask,
        "updated_by": secret.updated_by,
        "updated_at": secret.updated_at,
    }


def _targets(route: GatewayRoute) -> str:
    config = route.config
    live = ", ".join(f"{t.name}={t.model} {t.weight:.0%}" for t in config.targets)
    backup = ", ".join(t.name for t in config.fallbacks)
    return live + (f"; fallbacks {backup}" if backup else "")


def _print_route(route: GatewayRoute) -> None:
    config = route.config
    out = console()
    if config.description:
        out.print(config.description, markup=False)
    sticky = f", sticky on {config.sticky_header}" if config.sticky_header else ""
    out.print(
        f"route {route.name!r}: {config.strategy}{sticky}, revision {route.revision}, "
        f"min role {config.min_role}, retries {config.retries}; updated by {route.updated_by} "
        f"at {format_ms(route.updated_at)} UTC",
        markup=False,
    )
    rows = [
        (t.name, "live" if t in config.targets else "fallback",
         f"{t.weight * 100:.4g} %" if t in config.targets else "-", t.model, t.base_url,
         t.secret or "-", f"{t.timeout_s:g} s")
        for t in (*config.targets, *config.fallbacks)
    ]  # fmt: skip
    print_table("targets", ["target", "role", "weight", "model", "base URL", "secret", "timeout"],
                rows)  # fmt: skip
    limits = config.limits
    shown = {k: v for k, v in vars(limits).items() if v is not None}
    if shown:
        out.print("limits per user: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    if config.guardrails:
        print_table(
            "guardrails",
            ["check", "stage", "mode", "params"],
            [(g.label, g.stage, g.mode, json.dumps(dict(g.params))[:80])
             for g in config.guardrails],
        )  # fmt: skip


@routes_app.command("create")
def create_route(
    ctx: typer.Context, name: _NAME, config: _CONFIG, json_output: bool = JSON_OPTION
) -> None:
    """A new route from a configuration file (targets, fallbacks, limits, guardrails)."""
    doc = _read_config(config)
    with handle_errors(), state(ctx).client() as client:
        created = client.gateway.create_route(name, doc)
    if json_output:
        emit_json(_route_dict(created))
        return
    console().print(f"route {name!r} created (revision 1)", markup=False)
    _print_route(created)


@routes_app.command("update")
def update_route(
    ctx: typer.Context,
    name: _NAME,
    config: _CONFIG,
    expect_revision: Annotated[
        int | None,
        typer.Option("--expect-revision", help="Refuse if the route moved past this revision."),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Replace a route's configuration."""
    doc = _read_config(config)
    with handle_errors(), state(ctx).client() as client:
        updated = client.gateway.update_route(name, doc, expect_revision=expect_revision)
    if json_output:
        emit_json(_route_dict(updated))
        return
    console().print(f"route {name!r} updated (revision {updated.revision})", markup=False)


@routes_app.command("list")
def list_routes(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Every route with its split and targets."""
    with handle_errors(), state(ctx).client() as client:
        found = client.gateway.list_routes()
    if json_output:
        emit_json([_route_dict(r) for r in found])
        return
    print_table(
        "Gateway routes",
        ["name", "strategy", "revision", "targets", "guardrails", "updated (UTC)"],
        [
            (r.name, r.config.strategy, r.revision, _targets(r),
             len(r.config.guardrails), format_ms(r.updated_at))
            for r in found
        ],
    )  # fmt: skip


@routes_app.command("show")
def show_route(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """A route's targets, limits and guardrails."""
    with handle_errors(), state(ctx).client() as client:
        route = client.gateway.get_route(name)
    if json_output:
        emit_json(_route_dict(route))
        return
    _print_route(route)


@routes_app.command("delete")
def delete_route(ctx: typer.Context, name: _NAME) -> None:
    """Remove a route (its usage stays)."""
    with handle_errors(), state(ctx).client() as client:
        client.gateway.delete_route(name)
    console().print(f"route {name!r} deleted", markup=False)


@secrets_app.command("set")
def set_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Secret name, as routes' targets name it.")],
    from_env: Annotated[
        str | None,
        typer.Option("--from-env", help="Read the value from this environment variable."),
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the value from stdin.")] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Store a secret encrypted (asked for without echo unless --from-env or --stdin).

    The value is never a command-line argument: those end up in shell history and process
    listings.
    """
    if from_env is not None:
        value = os.environ.get(from_env)
        if not value:
            fail(f"environment variable {from_env} is not set or empty")
    elif stdin:
        value = sys.stdin.read().rstrip("\r\n")
    else:
        value = typer.prompt(f"value of secret {name!r}", hide_input=True)
    with handle_errors(), state(ctx).client() as client:
        stored = client.gateway.set_secret(name, value or "")
    if json_output:
        emit_json(_secret_dict(stored))
        return
    console().print(f"secret {name!r} stored ({stored.mask})", markup=False)


@secrets_app.command("list")
def list_secrets(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Every secret's name and mask."""
    with handle_errors(), state(ctx).client() as client:
        found = client.gateway.list_secrets()
    if json_output:
        emit_json([_secret_dict(s) for s in found])
        return
    print_table(
        "Gateway secrets",
        ["name", "value", "updated (UTC)", "by"],
        [(s.name, s.mask, format_ms(s.updated_at), s.updated_by) for s in found],
    )


@secrets_app.command("delete")
def delete_secret(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Secret name.")]
) -> None:
    """Remove a secret no route names."""
    with handle_errors(), state(ctx).client() as client:
        client.gateway.delete_secret(name)
    console().print(f"secret {name!r} deleted", markup=False)


@app.command("usage")
def usage(
    ctx: typer.Context,
    route: Annotated[str | None, typer.Option("--route", help="Only this route.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user.")] = None,
    days: Annotated[
        float, typer.Option("--days", min=0.0, help="The last N days (0: all time).")
    ] = 1.0,
    group_by: Annotated[
        str, typer.Option("--group-by", help="Any of route,target,user (comma-separated).")
    ] = "route,target,user",
    json_output: bool = JSON_OPTION,
) -> None:
    """Requests, tokens, cost and latency per route, target and user."""
    since = int((time.time() - days * 86_400) * 1000) if days else None
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    with handle_errors(), state(ctx).client() as client:
        rows = client.gateway.usage(route=route, user=user, since_ms=since, group_by=groups)
    if json_output:
        emit_json([{**vars(r), "total_tokens": r.total_tokens} for r in rows])
        return
    print_table(
        "Gateway usage" + (f" (last {days:g} days)" if days else ""),
        [*groups, "requests", "errors", "prompt tok", "completion tok", "estimated", "cost USD",
         "mean ms"],
        [
            (*(getattr(r, g) for g in groups), r.requests, r.errors, r.prompt_tokens,
             r.completion_tokens, r.estimated_requests, f"{r.cost_usd:.6f}",
             f"{r.mean_latency_ms:.1f}")
            for r in rows
        ],
    )  # fmt: skip
