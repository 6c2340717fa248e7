"""``loopwright deployments``: named endpoints, their traffic policies, history and live numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._numbers import is_number
from ._context import state
from ._output import JSON_OPTION, console, emit_json, fail, format_ms, handle_errors, print_table
from .monitors import compare_variants

if TYPE_CHECKING:
    from ..client import Client
    from ..serving.entities import Deployment, DeploymentRevision, ServingInstance, Variant
    from ..serving.live import LiveStats

__all__ = ["app"]

app = typer.Typer(
    help="Deployments: named endpoints with a traffic policy (primary, canary, A/B, shadow).",
    no_args_is_help=True,
)

_NAME = Annotated[str, typer.Argument(help="Deployment name.")]


def _variant_dict(v: Variant) -> dict[str, Any]:
    return {"name": v.name, "model_uri": v.model_uri, "weight": v.weight, "role": v.role}


def _deployment_dict(d: Deployment) -> dict[str, Any]:
    return {
        "name": d.name,
        "strategy": d.strategy,
        "variants": [_variant_dict(v) for v in d.variants],
        "sticky_header": d.sticky_header,
        "revision": d.revision,
        "description": d.description,
        "created_by": d.created_by,
        "created_at": d.created_at,
        "updated_by": d.updated_by,
        "updated_at": d.updated_at,
    }


def _revision_dict(r: DeploymentRevision) -> dict[str, Any]:
    return {
        "revision": r.revision,
        "action": r.action,
        "actor": r.actor,
        "created_at": r.created_at,
        "strategy": r.strategy,
        "sticky_header": r.sticky_header,
        "variants": [_variant_dict(v) for v in r.variants],
    }


def _instance_dict(i: ServingInstance) -> dict[str, Any]:
    return {
        "url": i.url,
        "pid": i.pid,
        "host": i.host,
        "started_at": i.started_at,
        "seen_at": i.seen_at,
    }


def _summary(variants: Sequence[Variant]) -> str:
    return ", ".join(f"{v.name}={v.model_uri} {v.weight:.0%}{_role(v)}" for v in variants)


def _role(v: Variant) -> str:
    return " (shadow)" if v.role == "shadow" else ""


def _changed(d: Deployment, what: str, json_output: bool) -> None:
    if json_output:
        emit_json(_deployment_dict(d))
        return
    console().print(f"deployment {d.name!r} {what}: revision {d.revision}, {d.strategy}")
    _print_policy(d, None)


def _print_policy(d: Deployment, resolved: dict[str, str] | None) -> None:
    columns = ["variant", "role", "weight", "model URI"]
    if resolved is not None:
        columns.append("version now")
    rows = []
    for v in d.variants:
        row: list[Any] = [v.name, v.role, f"{v.weight * 100:.4g} %", v.model_uri]
        if resolved is not None:
            row.append(resolved[v.name])
        rows.append(row)
    sticky = f", sticky on {d.sticky_header}" if d.sticky_header else ""
    print_table(f"{d.name}: {d.strategy}{sticky} (revision {d.revision})", columns, rows)


def _resolved(client: Client, d: Deployment) -> dict[str, str]:
    """Each variant's version now (``m/3``), or why it does not resolve."""
    from ..errors import LoopwrightError
    from ..registry.loading import parse_model_uri

    found = {}
    for v in d.variants:
        uri = parse_model_uri(v.model_uri)
        try:
            assert uri.name is not None and uri.ref is not None
            found[v.name] = f"{uri.name}/{client.registry.resolve(uri.name, uri.ref).version}"
        except LoopwrightError as exc:
            found[v.name] = f"unresolved: {exc.message}"
    return found


@app.command("create")
def create(
    ctx: typer.Context,
    name: _NAME,
    model_uri: Annotated[
        str, typer.Argument(help="models:/NAME@ALIAS (follows the alias) or models:/NAME/VERSION.")
    ],
    description: Annotated[str | None, typer.Option("--description")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """A new deployment sending all traffic to MODEL_URI."""
    with handle_errors(), state(ctx).client() as client:
        created = client.deployments.create(name, model_uri, description=description)
    _changed(created, "created", json_output)


@app.command("list")
def list_deployments(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Every deployment with its strategy and variants."""
    with handle_errors(), state(ctx).client() as client:
        found = client.deployments.list()
    if json_output:
        emit_json([_deployment_dict(d) for d in found])
        return
    print_table(
        "Deployments",
        ["name", "strategy", "revision", "variants", "updated (UTC)", "by"],
        [
            (
                d.name,
                d.strategy,
                d.revision,
                _summary(d.variants),
                format_ms(d.updated_at),
                d.updated_by,
            )
            for d in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    name: _NAME,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=0.0,
            max=60.0,
            help="Seconds between the two scrapes of each instance that measure throughput "
            "(0: one scrape, the rate since each instance started).",
        ),
    ] = 1.0,
    json_output: bool = JSON_OPTION,
) -> None:
    """The policy (with each variant's version now), serving instances and live statistics."""
    from ..serving.deployments import HEARTBEAT_TIMEOUT_S
    from ..serving.live import live_stats

    with handle_errors(), state(ctx).client() as client:
        deployment = client.deployments.get(name)
        resolved = _resolved(client, deployment)
        instances = client.deployments.instances(name)
    stats = live_stats([i.url for i in instances], name, interval=interval) if instances else None
    if json_output:
        emit_json(
            {
                **_deployment_dict(deployment),
                "resolved": resolved,
                "instances": [_instance_dict(i) for i in instances],
                "live": None if stats is None else _stats_dict(stats),
            }
        )
        return
    out = console()
    if deployment.description:
        out.print(deployment.description, markup=False)
    out.print(
        f"updated by {deployment.updated_by} at {format_ms(deployment.updated_at)} UTC; "
        f"created by {deployment.created_by}",
        markup=False,
    )
    _print_policy(deployment, resolved)
    if not instances:
        out.print(
            f"no serving instance reported itself in the last {HEARTBEAT_TIMEOUT_S} s "
            f"(loopwright serve --deployment {name})",
            markup=False,
        )
        return
    print_table(
        "Instances",
        ["url", "host", "pid", "started (UTC)", "seen (UTC)"],
        [(i.url, i.host, i.pid, format_ms(i.started_at), format_ms(i.seen_at)) for i in instances],
    )
    assert stats is not None
    _print_stats(stats, name, len(instances))


def _stats_dict(stats: LiveStats) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "window_seconds": stats.window_seconds,
        "variants": [asdict(v) for v in stats.variants],
        "unreachable": [{"url": u, "reason": r} for u, r in stats.unreachable],
    }


def _print_stats(stats: LiveStats, name: str, instances: int) -> None:
    from ..serving.deployments import HEARTBEAT_TIMEOUT_S

    def ms(value: float | None) -> str:
        return "" if value is None else f"{value:.1f}"

    out = console()
    for url, reason in stats.unreachable:
        out.print(
            f"instance {url} not read: {reason} (stopped, or its URL is not reachable from "
            f"here; it is listed until {HEARTBEAT_TIMEOUT_S} s after its last heartbeat)",
            markup=False,
        )
    if not stats.variants:  # an empty table would read as "no traffic"
        read = instances - len(stats.unreachable)
        out.print(
            "no live numbers: no listed instance could be read"
            if read == 0
            else f"no live numbers yet: the instances read ({read} of {instances}) have "
            f"answered no request of deployment {name!r} since they started",
            markup=False,
        )
        return
    windowed = all(s.percentiles_window_seconds for s in stats.variants)
    latency = (
        f"latency over the last {stats.window_seconds:.1f} s"
        if windowed
        else (
            "latency since start"
            if not any(s.percentiles_window_seconds for s in stats.variants)
            else "latency over the window where it had 20+ requests, else since start"
        )
    )
    print_table(
        f"Live (throughput over {stats.window_seconds:.1f} s; {latency}; counts since start)",
        [
            "variant",
            "model",
            "version",
            "requests",
            "req/s",
            "errors",
            "error rate",
            "p50 ms",
            "p95 ms",
            "p99 ms",
        ],
        [
            (
                s.variant,
                s.model,
                s.version,
                s.requests,
                f"{s.requests_per_second:.1f}",
                s.errors,
                f"{s.error_rate:.2%}",
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
            )
            for s in stats.variants
        ],
    )


@app.command("set-traffic")
def set_traffic(
    ctx: typer.Context,
    name: _NAME,
    primary: Annotated[
        str | None, typer.Option("--primary", help="The primary's model URI.")
    ] = None,
    canary: Annotated[
        str | None, typer.Option("--canary", help="A canary's model URI (with --percent).")
    ] = None,
    percent: Annotated[
        float | None, typer.Option("--percent", help="The canary's share of traffic, in %.")
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            help="An A/B variant NAME=URI:WEIGHT (repeat; weights are scaled to sum to 100 %).",
        ),
    ] = None,
    sticky_header: Annotated[
        str | None,
        typer.Option(
            "--sticky-header",
            help="A/B: keep callers with the same value of this "
            "header (e.g. X-User-Id) on one variant.",
        ),
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(
            "--shadow",
            help="A shadow's model URI: gets a copy of requests, answers "
            "nobody (with --shadow-percent).",
        ),
    ] = None,
    shadow_percent: Annotated[
        float | None, typer.Option("--shadow-percent", help="The share of requests copied, in %.")
    ] = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Drop the shadows.")] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Change the traffic policy (a new revision).

    Live options (--primary/--canary or --variant) replace the live variants (--canary alone
    keeps the current primary); --shadow or --no-shadow replace the shadows; what is not given
    is kept.
    """
    from ..serving.entities import SHADOW, Variant

    live = _live_variants(primary, canary, percent, variant)
    if (shadow is None) != (shadow_percent is None):
        fail(
            "--shadow and --shadow-percent go together (e.g. --shadow models:/m/3 "
            "--shadow-percent 10)"
        )
    if shadow is not None and no_shadow:
        fail("give --shadow or --no-shadow, not both")
    if live is None and shadow is None and not no_shadow and sticky_header is None:
        fail(  # a revision equal to the current one would only clutter the history
            "nothing to change: give --primary/--canary/--percent, --variant, --sticky-header, "
            "--shadow/--shadow-percent or --no-shadow"
        )
    with handle_errors(), state(ctx).client() as client:
        current = client.deployments.get(name)
        if live is not None and not live[0].model_uri:  # --canary alone: the current primary
            kept = current.variant("primary")
            if kept is None:
                fail(
                    f"deployment {name!r} has strategy {current.strategy!r} and no primary for "
                    "the canary to be compared with; give --primary too"
                )
            assert kept is not None
            live[0] = Variant("primary", kept.model_uri, 1.0)
        header = sticky_header if live is not None or sticky_header else current.sticky_header
        shadows: list[Variant] = [] if no_shadow else list(current.shadows)
        if shadow is not None and shadow_percent is not None:
            shadows = [Variant("shadow", shadow, shadow_percent / 100, SHADOW)]
        variants = [*(current.live if live is None else live), *shadows]
        # What was not given is kept from `current`: refused if it changed meanwhile.
        changed = client.deployments.set_traffic(
            name, variants, sticky_header=header, expect_revision=current.revision
        )
    _changed(changed, "changed", json_output)


def _live_variants(
    primary: str | None, canary: str | None, percent: float | None, variants: list[str] | None
) -> list[Variant] | None:
    """The live variants the options give, or None when they give none."""
    from ..serving.entities import Variant

    if variants:
        if primary is not None or canary is not None:
            fail("--variant sets A/B variants; leave out --primary and --canary")
        return [_parse_variant(text) for text in variants]
    if (canary is None) != (percent is None):
        fail("--canary and --percent go together (e.g. --canary models:/m/4 --percent 10)")
    if primary is None and canary is None:
        return None
    found = [Variant("primary", primary or "", 1.0)]  # "": the deployment's current primary
    if canary is not None and percent is not None:
        found.append(Variant("canary", canary, percent / 100))
    return found


def _parse_variant(text: str) -> Variant:
    from ..serving.entities import Variant

    name, _, rest = text.partition("=")
    uri, _, weight = rest.rpartition(":")
    try:
        value = float(weight)
    except ValueError:
        value = -1.0
    if not name or not uri or value <= 0:
        raise typer.BadParameter(
            f"{text!r}: write NAME=URI:WEIGHT, e.g. a=models:/churn/3:50", param_hint="--variant"
        )
    return Variant(name, uri, value)


@app.command("promote")
def promote(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """Make the canary the primary.

    Moves the alias the primary follows to the canary's version (approval may be needed: run
    promote again once approved), or pins the primary to the canary's URI.
    """
    with handle_errors(), state(ctx).client() as client:
        promoted = client.deployments.promote(name)
    _changed(promoted, "promoted", json_output)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: _NAME,
    to: Annotated[
        int | None,
        typer.Option(
            "--to", min=1, help="The revision to restore (default: the one before the current)."
        ),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Restore an earlier revision's traffic policy (as a new revision).

    Aliases are not rolled back: a variant following an alias serves the version the alias
    points to now (a promote may have moved it); move it back with `loopwright models alias`.
    """
    from ..registry.loading import parse_model_uri

    with handle_errors(), state(ctx).client() as client:
        restored = client.deployments.rollback(name, to)
        resolved = _resolved(client, restored)
    if json_output:
        emit_json({**_deployment_dict(restored), "resolved": resolved})
        return
    console().print(
        f"deployment {restored.name!r} rolled back: revision {restored.revision}, "
        f"{restored.strategy}",
        markup=False,
    )
    _print_policy(restored, resolved)
    following = sorted(
        {
            v.model_uri
            for v in restored.variants
            if not is_number(parse_model_uri(v.model_uri).ref or "")
        }
    )
    if following:  # a promote may have moved the alias since that revision
        console().print(
            f"aliases and stages are not rolled back: {', '.join(following)} serve(s) the "
            "version named under 'version now'; move an alias back with loopwright models "
            "alias NAME ALIAS VERSION",
            markup=False,
        )


@app.command("history")
def history(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """Every revision of the traffic policy, oldest first."""
    with handle_errors(), state(ctx).client() as client:
        revisions = client.deployments.history(name)
    if json_output:
        emit_json([_revision_dict(r) for r in revisions])
        return
    print_table(
        f"History of {name}",
        ["revision", "action", "by", "at (UTC)", "strategy", "variants"],
        [
            (
                r.revision,
                r.action,
                r.actor,
                format_ms(r.created_at),
                r.strategy,
                _summary(r.variants),
            )
            for r in revisions
        ],
    )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: _NAME,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete it.")] = False,
) -> None:
    """Delete a deployment (its history stays in the audit log). Needs --yes."""
    if not yes:
        fail(
            f"deleting deployment {name!r} removes its traffic policy and history (the audit "
            "log keeps them; running `serve --deployment` processes keep the last policy until "
            "stopped); add --yes to confirm"
        )
    with handle_errors(), state(ctx).client() as client:
        client.deployments.delete(name)
    console().print(f"deployment {name!r} deleted", markup=False)


app.command("compare")(compare_variants)  # per-variant figures with CIs (cli/monitors.py)
