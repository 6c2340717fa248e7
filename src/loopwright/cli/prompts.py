"""``loopwright prompts``: register, list, show and compare prompt versions; move aliases
(protected ones open approval requests, decided with ``approve`` / ``reject``); format one.

Example:
    loopwright prompts register support --file support.txt -m "shorter answers"
    loopwright prompts set-alias support production 3
    loopwright prompts format prompts:/support@production --var question="Where is my order?"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._numbers import is_number
from ._context import state
from ._output import (
    JSON_OPTION,
    cell_text,
    console,
    emit_json,
    fail,
    format_ms,
    handle_errors,
    print_table,
)
from .data import _parse_pairs

if TYPE_CHECKING:
    from ..prompts.entities import Prompt, PromptVersion
    from ..registry.entities import ApprovalRequest

__all__ = ["app"]

app = typer.Typer(
    help="Prompt templates as registry items: versions, aliases under approval, diffs.",
    no_args_is_help=True,
)


def _document(text: str | None, what: str) -> Any:
    """A JSON object given inline or as @file."""
    if text is None:
        return None
    raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    try:
        return json.loads(raw)
    except ValueError as exc:
        fail(f"{what} is not JSON: {exc}")


def _template(file: Path | None, text: str | None) -> str | list[dict[str, Any]]:
    if (file is None) == (text is None):
        fail("give the template with --file PATH or --template TEXT (one of them)")
    if text is not None:
        return text
    assert file is not None
    content = file.read_text(encoding="utf-8")
    if file.suffix == ".json":  # chat messages: [{"role": ..., "content": ...}, ...]
        messages = json.loads(content)
        if isinstance(messages, list):
            return messages
    return content


def _version_dict(v: PromptVersion) -> dict[str, Any]:
    return {
        "uri": v.uri,
        "name": v.name,
        "version": v.version,
        "kind": v.kind,
        "template": v.template if isinstance(v.template, str) else list(v.template),
        "variables": list(v.variables),
        "model_config": v.model_config,
        "response_format": v.response_format,
        "commit_message": v.commit_message,
        "digest": v.digest,
        "tags": dict(v.tags),
        "aliases": list(v.aliases),
        "created_by": v.created_by,
        "created_at": v.created_at,
    }


def _prompt_dict(p: Prompt) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "latest_version": p.latest_version,
        "aliases": dict(p.aliases),
        "tags": dict(p.tags),
        "policy": p.policy.to_dict(),
        "created_by": p.created_by,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def _request_dict(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "prompt": r.model,
        "version": r.version,
        "alias": r.target,
        "status": r.status,
        "approvals": r.approvals,
        "needed": r.rule.approvals,
        "role": r.rule.role,
        "requested_by": r.requested_by,
        "comment": r.comment,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
    }


def _show_request(r: ApprovalRequest) -> None:
    console().print(
        cell_text(
            f"request {r.id}: alias {r.target!r} of {r.model!r} -> version {r.version} is "
            f"{r.status} ({r.approvals}/{r.rule.approvals} approvals from {r.rule.role}s)",
            "green" if r.status == "approved" else "yellow",
        )
    )


@app.command("register")
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The prompt's name (created if missing).")],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Template file; a .json list is chat messages."),
    ] = None,
    template: Annotated[str | None, typer.Option("--template", help="Template text.")] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Commit message: what changed.")
    ] = None,
    model_config: Annotated[
        str | None, typer.Option("--model-config", help="JSON object, or @file.")
    ] = None,
    response_format: Annotated[
        str | None, typer.Option("--response-format", help="JSON schema, or @file.")
    ] = None,
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="key=value (repeatable).")] = [],  # noqa: B006
    skip_if_unchanged: Annotated[
        bool,
        typer.Option("--skip-if-unchanged", help="Keep the newest version if it is the same."),
    ] = False,
    json_output: bool = JSON_OPTION,
) -> None:
    """Register a new immutable version."""
    with handle_errors():
        text = _template(file, template)
        with state(ctx).client() as client:
            version = client.prompts.register(
                name,
                text,
                commit_message=message,
                model_config=_document(model_config, "--model-config"),
                response_format=_document(response_format, "--response-format"),
                tags=_parse_pairs(tag, "tag"),
                skip_if_unchanged=skip_if_unchanged,
            )
    if json_output:
        emit_json(_version_dict(version))
    else:
        variables = ", ".join(version.variables) or "none"
        console().print(f"registered {version.uri} (variables: {variables})")


@app.command("list")
def list_prompts(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="Part of the name.")] = None,
    tag: Annotated[list[str], typer.Option("--tag", "-t", help="key=value (repeatable).")] = [],  # noqa: B006
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    json_output: bool = JSON_OPTION,
) -> None:
    """Prompts by name."""
    with handle_errors(), state(ctx).client() as client:
        found = client.prompts.search(query, tags=_parse_pairs(tag, "tag"), limit=limit)
    if json_output:
        emit_json([_prompt_dict(p) for p in found])
        return
    print_table(
        "Prompts",
        ["name", "latest", "aliases", "description", "updated (UTC)"],
        [
            [
                p.name,
                p.latest_version,
                ", ".join(f"{a}={v}" for a, v in p.aliases.items()),
                p.description,
                format_ms(p.updated_at),
            ]
            for p in found
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="prompts:/NAME/N, prompts:/NAME@ALIAS, or NAME.")],
    json_output: bool = JSON_OPTION,
) -> None:
    """One version (a URI) with its template, or a prompt (a name) with its aliases."""
    with handle_errors(), state(ctx).client() as client:
        if ref.startswith("prompts:/"):
            version = client.prompts.load(ref, cache_ttl=0)
            prompt = None
        else:
            prompt = client.prompts.get(ref)
    if prompt is not None:
        if json_output:
            emit_json(_prompt_dict(prompt))
            return
        rows: list[list[Any]] = [
            ["latest version", prompt.latest_version],
            ["description", prompt.description],
        ]
        rows += [[f"alias {a}", v] for a, v in prompt.aliases.items()]
        rows += [[f"tag {k}", v] for k, v in prompt.tags.items()]
        rows += [["protected", ", ".join(r.target for r in prompt.policy.rules) or "nothing"]]
        print_table(f"Prompt {prompt.name}", ["field", "value"], rows)
        return
    if json_output:
        emit_json(_version_dict(version))
        return
    out = console()
    out.print(cell_text(f"{version.uri} ({version.kind}) by {version.created_by}", "bold"))
    out.print(cell_text(f"commit message: {version.commit_message or ''}"))
    out.print(cell_text(f"variables: {', '.join(version.variables) or 'none'}"))
    out.print(cell_text(f"digest: {version.digest}"))
    if version.model_config:
        out.print(cell_text(f"model config: {json.dumps(version.model_config)}"))
    template = version.template
    text = template if isinstance(template, str) else json.dumps(list(template), indent=2)
    out.print(cell_text(text))


@app.command("versions")
def versions(ctx: typer.Context, name: str, json_output: bool = JSON_OPTION) -> None:
    """A prompt's versions, oldest first."""
    with handle_errors(), state(ctx).client() as client:
        found = client.prompts.versions(name)
    if json_output:
        emit_json([_version_dict(v) for v in found])
        return
    print_table(
        f"Versions of {name}",
        ["version", "kind", "aliases", "commit message", "digest", "by", "at (UTC)"],
        [
            [
                v.version,
                v.kind,
                ", ".join(v.aliases),
                v.commit_message,
                v.digest[:12],
                v.created_by,
                format_ms(v.created_at),
            ]
            for v in found
        ],
    )


@app.command("diff")
def diff(
    ctx: typer.Context,
    name: str,
    v1: Annotated[str, typer.Argument(help="A version number or an alias.")],
    v2: Annotated[str, typer.Argument(help="A version number or an alias.")],
) -> None:
    """A unified diff between two versions (template, then changed settings)."""
    with handle_errors(), state(ctx).client() as client:
        text = client.prompts.diff(name, _ref(v1), _ref(v2))
    typer.echo(text or f"versions {v1} and {v2} of {name} say the same", nl=not text)


def _ref(text: str) -> int | str:
    return int(text) if is_number(text) else text


@app.command("set-alias")
def set_alias(
    ctx: typer.Context,
    name: str,
    alias: str,
    version: Annotated[int, typer.Argument(min=1)],
    comment: Annotated[str | None, typer.Option("--comment", "-c")] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Point ALIAS at VERSION, or open an approval request if the policy protects it."""
    with handle_errors(), state(ctx).client() as client:
        change = client.prompts.set_alias(name, alias, version, comment=comment)
    if json_output:
        request = None if change.request is None else _request_dict(change.request)
        emit_json({"applied": change.applied, "version": change.version.uri, "request": request})
    elif change.request is None:
        console().print(f"{name}@{alias} -> version {version}")
    else:
        _show_request(change.request)


@app.command("delete-alias")
def delete_alias(ctx: typer.Context, name: str, alias: str) -> None:
    """Remove ALIAS (a protected one: admins only)."""
    with handle_errors(), state(ctx).client() as client:
        client.prompts.delete_alias(name, alias)
    console().print(f"deleted alias {alias!r} of {name!r}")


@app.command("format")
def format_prompt(
    ctx: typer.Context,
    uri: Annotated[str, typer.Argument(help="prompts:/NAME/N or prompts:/NAME@ALIAS.")],
    var: Annotated[list[str], typer.Option("--var", help="name=value (repeatable).")] = [],  # noqa: B006
) -> None:
    """Print the version's template with the variables filled in (chat messages as JSON)."""
    with handle_errors(), state(ctx).client() as client:
        filled = client.prompts.format(uri, **_parse_pairs(var, "variable"))
    typer.echo(filled if isinstance(filled, str) else json.dumps(filled, indent=2))


@app.command("requests")
def requests(
    ctx: typer.Context,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Only this prompt's.")] = None,
    status: Annotated[str, typer.Option("--status", help="pending, approved, ..., any.")] = (
        "pending"
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Approval requests for prompt aliases, oldest first."""
    with handle_errors(), state(ctx).client() as client:
        found = client.prompts.requests(None if status == "any" else status, prompt)
    if json_output:
        emit_json([_request_dict(r) for r in found])
        return
    print_table(
        "Prompt approval requests",
        ["id", "prompt", "alias", "version", "status", "approvals", "asked by", "expires (UTC)"],
        [
            [
                r.id,
                r.model,
                r.target,
                r.version,
                r.status,
                f"{r.approvals}/{r.rule.approvals}",
                r.requested_by,
                format_ms(r.expires_at) if r.expires_at else "",
            ]
            for r in found
        ],
    )


@app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: str,
    comment: Annotated[str | None, typer.Option("--comment", "-c")] = None,
) -> None:
    """Approve a request as the acting user; the last approval needed moves the alias."""
    with handle_errors(), state(ctx).client() as client:
        _show_request(client.prompts.approve(request_id, comment))


@app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: str,
    comment: Annotated[str, typer.Option("--comment", "-c", help="Why (required).")],
) -> None:
    """Reject a request, saying why; nothing moves."""
    with handle_errors(), state(ctx).client() as client:
        _show_request(client.prompts.reject(request_id, comment))
