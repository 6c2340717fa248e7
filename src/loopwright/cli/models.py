"""``loopwright models``: registered models, versions, aliases, stages, approvals, cards, SBOMs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._numbers import is_number
from ._context import state
from ._output import JSON_OPTION, console, emit_json, format_ms, handle_errors, print_table

if TYPE_CHECKING:
    from ..registry.entities import ApprovalRequest, ModelVersion, RegisteredModel

__all__ = ["app"]

app = typer.Typer(
    help="The model registry: versions, aliases, stages, approvals, model cards and SBOMs.",
    no_args_is_help=True,
)

_NAME = Annotated[str, typer.Argument(help="Registered model name.")]
_VERSION = Annotated[str, typer.Argument(help="Version number, alias or stage.")]


def _model_dict(m: RegisteredModel) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "description": m.description,
        "created_by": m.created_by,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "latest_version": m.latest_version,
        "aliases": dict(m.aliases),
        "tags": dict(m.tags),
        "policy": m.policy.to_dict(),
        "card": dict(m.card),
    }


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "id": v.id,
        "model": v.model,
        "version": v.version,
        "uri": v.ref,
        "stage": v.stage.value,
        "status": v.status,
        "aliases": list(v.aliases),
        "flavor": v.flavor,
        "package_hash": v.package_hash,
        "run_id": v.run_id,
        "source": v.source,
        "source_kind": v.source_kind,
        "metrics": dict(v.metrics),
        "signature": v.signature,
        "dataset_version_ids": list(v.dataset_version_ids),
        "tags": dict(v.tags),
        "description": v.description,
        "created_by": v.created_by,
        "created_at": v.created_at,
    }


def _request_dict(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "model": r.model,
        "version": r.version,
        "action": r.action,
        "target": r.target,
        "status": r.status,
        "requested_by": r.requested_by,
        "comment": r.comment,
        "rule": r.rule.to_dict(),
        "approvals": r.approvals,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "resolved_at": r.resolved_at,
        "decisions": [
            {
                "actor": d.actor,
                "role": d.role,
                "decision": d.decision,
                "comment": d.comment,
                "created_at": d.created_at,
            }
            for d in r.decisions
        ],
    }


def _metrics_text(metrics: Any, limit: int = 3) -> str:
    items = sorted(metrics.items())[:limit]
    return ", ".join(f"{k}={v:.4g}" for k, v in items)


@app.command("list")
def list_models(
    ctx: typer.Context,
    filter_string: Annotated[
        str, typer.Option("--filter", help="e.g. \"name LIKE 'churn%'\" or \"tags.team = 'risk'\"")
    ] = "",
    json_output: bool = JSON_OPTION,
) -> None:
    """Registered models with their newest version and aliases."""
    with handle_errors(), state(ctx).client() as client:
        registry = client.registry
        found = registry.search_models(filter_string) if filter_string else registry.list_models()
    if json_output:
        emit_json([_model_dict(m) for m in found])
        return
    print_table(
        "Registered models",
        ["name", "latest", "aliases", "description", "updated (UTC)"],
        [
            (
                m.name,
                m.latest_version,
                ", ".join(f"{a}→v{v}" for a, v in sorted(m.aliases.items())),
                m.description or "",
                format_ms(m.updated_at),
            )
            for m in found
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """One model: description, policy, aliases and its versions."""
    with handle_errors(), state(ctx).client() as client:
        model = client.registry.get_model(name)
        versions = client.registry.list_versions(name)
    if json_output:
        emit_json({**_model_dict(model), "versions": [_version_dict(v) for v in versions]})
        return
    out = console()
    out.print(f"[bold]{model.name}[/bold]  {model.description or ''}", markup=True)
    out.print(f"created by {model.created_by} at {format_ms(model.created_at)} UTC")
    for rule in model.policy.rules:
        out.print(f"approval: {rule.target} needs {rule.approvals} x {rule.role}")
    _print_versions(versions)


@app.command("rename")
def rename(
    ctx: typer.Context,
    name: _NAME,
    new_name: Annotated[str, typer.Argument(help="The model's new name.")],
    json_output: bool = JSON_OPTION,
) -> None:
    """Rename a model; its versions, aliases and stages move with it (models:/<old name>/...
    stops resolving). While its policy protects an alias or stage in use, only an admin may."""
    with handle_errors(), state(ctx).client() as client:
        model = client.registry.rename_model(name, new_name)
    if json_output:
        emit_json(_model_dict(model))
    else:
        console().print(f"model {name!r} renamed to {model.name!r}")


def _print_versions(versions: list[ModelVersion]) -> None:
    from ..registry.entities import Stage

    print_table(
        "Versions",
        ["version", "stage", "aliases", "flavor", "metrics", "run", "by", "created (UTC)"],
        [
            (
                v.version if v.status == "READY" else f"{v.version} (deleted)",
                "" if v.stage is Stage.NONE else v.stage.value,  # MLflow's "None": no stage
                ", ".join(v.aliases),
                v.flavor or "",
                _metrics_text(v.metrics),
                (v.run_id or "")[:12],
                v.created_by or "",
                format_ms(v.created_at),
            )
            for v in versions
        ],
    )


@app.command("versions")
def versions(ctx: typer.Context, name: _NAME, json_output: bool = JSON_OPTION) -> None:
    """Every version of a model, newest last."""
    with handle_errors(), state(ctx).client() as client:
        found = client.registry.list_versions(name)
    if json_output:
        emit_json([_version_dict(v) for v in found])
        return
    _print_versions(found)


@app.command("register")
def register(
    ctx: typer.Context,
    name: _NAME,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Register the package a run logged.")
    ] = None,
    artifact_path: Annotated[
        str, typer.Option("--path", help="The package's artifact path in the run.")
    ] = "model",
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Register a package folder instead.")
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Register a new version from a run's package (``--run``) or a package folder (``--dir``)."""
    if (run_id is None) == (folder is None):
        raise typer.BadParameter("give exactly one of --run or --dir")
    with handle_errors(), state(ctx).client() as client:
        mv = client.registry.register(
            name, folder, run_id=run_id, artifact_path=artifact_path, description=description
        )
    if json_output:
        emit_json(_version_dict(mv))
        return
    console().print(f"registered {mv.ref} ({mv.flavor}, package {(mv.package_hash or '')[:12]})")


def _print_outcome(result: ModelVersion | ApprovalRequest, done: str, json_output: bool) -> None:
    from ..registry.entities import ApprovalRequest

    if isinstance(result, ApprovalRequest):
        if json_output:
            emit_json({"approval_required": True, "request": _request_dict(result)})
            return
        console().print(
            f"approval required: request {result.id} opened for {result.model} v{result.version} "
            f"-> {result.action} {result.target} (needs {result.rule.approvals} x "
            f"{result.rule.role}); `loopwright models approve {result.id}`"
        )
        return
    if json_output:
        emit_json({"approval_required": False, "version": _version_dict(result)})
        return
    console().print(done)


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: _NAME,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion")],
    version: Annotated[
        int | None, typer.Argument(help="Version to point at (omit with --delete).")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Point an alias at a version (protected aliases open an approval request)."""
    with handle_errors(), state(ctx).client() as client:
        if delete:
            client.registry.delete_alias(name, alias_name)
            if json_output:
                emit_json({"deleted": alias_name})
            else:
                console().print(f"alias {alias_name!r} of {name} deleted")
            return
        if version is None:
            raise typer.BadParameter("give a VERSION, or --delete")
        change = client.registry.set_alias(name, alias_name, version, comment=comment)
    outcome = change.version if change.request is None else change.request
    _print_outcome(outcome, f"{name}@{alias_name} -> v{version}", json_output)


@app.command("stage")
def stage(
    ctx: typer.Context,
    name: _NAME,
    version: Annotated[int, typer.Argument(help="Version number.")],
    target: Annotated[
        str, typer.Argument(metavar="STAGE", help="None|Staging|Production|Archived")
    ],
    archive_existing: Annotated[
        bool, typer.Option("--archive-existing", help="Archive the versions now in STAGE.")
    ] = False,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Move a version to a stage (Production opens an approval request under the default policy)."""
    from ..registry.entities import Stage

    with handle_errors(), state(ctx).client() as client:
        result = client.registry.transition_stage(
            name,
            version,
            Stage(_stage_name(target)),
            archive_existing=archive_existing,
            comment=comment,
        )
    _print_outcome(result, f"{name} v{version} -> {target}", json_output)


def _stage_name(text: str) -> str:
    from ..registry.entities import Stage

    for member in Stage:
        if member.value.lower() == text.lower():
            return member.value
    raise typer.BadParameter(
        f"{text!r} is not a stage; use one of {', '.join(s.value for s in Stage)}"
    )


@app.command("requests")
def requests(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option("--model", help="Only this model's requests.")
    ] = None,
    all_requests: Annotated[
        bool, typer.Option("--all", help="Resolved requests too, not only pending ones.")
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Approval requests (pending ones by default)."""
    with handle_errors(), state(ctx).client() as client:
        found = client.registry.requests(status=None if all_requests else "pending", model=model)
    if json_output:
        emit_json([_request_dict(r) for r in found])
        return
    print_table(
        "Approval requests",
        ["id", "model", "version", "change", "status", "approvals", "requested by", "opened (UTC)"],
        [
            (
                r.id,
                r.model,
                r.version,
                f"{r.action} {r.target}",
                r.status,
                f"{r.approvals}/{r.rule.approvals} {r.rule.role}",
                r.requested_by,
                format_ms(r.created_at),
            )
            for r in found
        ],
    )


@app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="Request id (see `models requests`).")],
    comment: Annotated[str | None, typer.Option("--comment", help="Why you approve.")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Approve a request as the current user; the change applies once enough approvals are in."""
    with handle_errors(), state(ctx).client() as client:
        request = client.registry.approve(request_id, comment=comment)
    if json_output:
        emit_json(_request_dict(request))
        return
    console().print(
        f"request {request.id}: {request.status} ({request.approvals}/{request.rule.approvals})"
    )


@app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="Request id (see `models requests`).")],
    comment: Annotated[str, typer.Option("--comment", help="Why (required).")],
    json_output: bool = JSON_OPTION,
) -> None:
    """Reject a request; nothing changes and the request is closed."""
    with handle_errors(), state(ctx).client() as client:
        request = client.registry.reject(request_id, comment=comment)
    if json_output:
        emit_json(_request_dict(request))
        return
    console().print(f"request {request.id}: {request.status}")


@app.command("policy")
def policy(
    ctx: typer.Context,
    name: _NAME,
    require: Annotated[
        list[str] | None,
        typer.Option(
            "--require",
            help="TARGET=N:ROLE, e.g. stage:Production=2:approver, alias:champion=1:admin or "
            "traffic=1:approver. "
            "Repeat; the given rules replace the policy.",
        ),
    ] = None,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Requests expire after this many days.")
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Show or set who must approve what for a model."""
    from ..registry.entities import ApprovalPolicy

    with handle_errors(), state(ctx).client() as client:
        model = client.registry.get_model(name)
        current = model.policy
        if require is not None or expires_days is not None:
            rules = current.rules if require is None else tuple(_parse_rule(r) for r in require)
            expires = current.expires_after_s if expires_days is None else int(expires_days * 86400)
            current = ApprovalPolicy(rules, expires)
            client.registry.set_policy(name, current)
    if json_output:
        emit_json(current.to_dict())
        return
    print_table(
        f"Approval policy of {name} (requests expire after "
        f"{current.expires_after_s / 86400:g} days)",
        ["target", "approvals", "role"],
        [(r.target, r.approvals, r.role) for r in current.rules],
    )


def _parse_rule(text: str) -> Any:
    from ..registry.entities import ApprovalRule

    target, _, rest = text.partition("=")
    count, _, role = rest.partition(":")
    known = target.startswith(("stage:", "alias:")) or target == "traffic"
    if not known or not is_number(count) or int(count) < 1:
        raise typer.BadParameter(f"{text!r}: write TARGET=N:ROLE, e.g. stage:Production=2:approver")
    return ApprovalRule(target, int(count), role or "approver")


@app.command("card")
def card(
    ctx: typer.Context,
    name: _NAME,
    version: _VERSION,
    output_format: Annotated[str, typer.Option("--format", help="md, html or json.")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """The model card (intended use, data, metrics, fairness, approvals) as Markdown/HTML/JSON."""
    from ..registry.reports import model_card

    if output_format not in ("md", "html", "json"):
        raise typer.BadParameter("--format is md, html or json")
    with handle_errors(), state(ctx).client() as client:
        built = model_card(client, name, version)
    text = {
        "md": built.to_markdown,
        "html": built.to_html,
        "json": built.to_json,
    }[output_format]()
    _write(text, output)


@app.command("sbom")
def sbom(
    ctx: typer.Context,
    name: _NAME,
    version: _VERSION,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """A CycloneDX 1.6 ML-BOM (JSON): the model, its training data and Python packages."""
    from ..registry.reports import model_card, model_sbom

    with handle_errors(), state(ctx).client() as client:
        built = model_sbom(client, name, version, card=model_card(client, name, version))
    _write(json.dumps(built, indent=2, ensure_ascii=False) + "\n", output)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    output.write_text(text, encoding="utf-8")
    console(stderr=True).print(f"wrote {output}")


@app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An MLflow model folder (with an MLmodel file).")],
    name: _NAME,
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="The folder is from a trusted source: pickled models are loaded once and "
            "re-saved in a safe format.",
        ),
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Register an MLflow model folder as a new version, keeping its signature."""
    from ..registry.importing import import_mlflow_model

    with handle_errors(), state(ctx).client() as client:
        mv = import_mlflow_model(client.registry, path, name, trusted=trusted)
    if json_output:
        emit_json(_version_dict(mv))
        return
    console().print(f"imported {path} as {mv.ref} ({mv.flavor})")


@app.command("pin")
def pin(
    ctx: typer.Context,
    name: _NAME,
    version: Annotated[int, typer.Argument(help="Version number of an external version.")],
    folder: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Pin the files in this folder (downloaded from the source yourself) instead of "
            "fetching the source.",
        ),
    ] = None,
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="The files are from a trusted source: a pickled MLflow model is loaded once and "
            "re-saved in a safe format.",
        ),
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Fetch an external version's files, check them into a package and attach it, so the
    version loads like any other (versions MLflow clients registered by URI are external)."""
    with handle_errors(), state(ctx).client() as client:
        mv = client.registry.pin_source(name, version, folder, trusted=trusted)
    if json_output:
        emit_json(_version_dict(mv))
        return
    console().print(f"pinned {mv.ref} ({mv.flavor}, package {(mv.package_hash or '')[:12]})")
