"""``loopwright audit``: read and verify the hash-chained audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from .._numbers import is_number
from ._context import state
from ._output import (
    JSON_OPTION,
    console,
    emit_json,
    fail,
    format_ms,
    handle_errors,
    print_table,
)

__all__ = ["app"]

app = typer.Typer(help="The tamper-evident audit log of state changes.", no_args_is_help=True)


@app.command("log")
def log(
    ctx: typer.Context,
    subject_type: Annotated[str | None, typer.Option("--subject-type", help="e.g. run")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="A subject id.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who made the change.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="The newest N events.")] = 50,
    json_output: bool = JSON_OPTION,
) -> None:
    """Events, oldest first, optionally filtered by subject and actor."""
    with handle_errors(), state(ctx).client() as client:
        found = client.audit_events(
            subject_type=subject_type, subject_id=subject, actor=actor, limit=limit
        )
    if json_output:
        emit_json(
            [
                {
                    "seq": e.seq,
                    "id": e.id,
                    "timestamp": e.timestamp,
                    "actor": e.actor,
                    "action": e.action,
                    "subject_type": e.subject_type,
                    "subject_id": e.subject_id,
                    "before": e.before,
                    "after": e.after,
                    "hash": e.hash,
                }
                for e in found
            ]
        )
        return
    print_table(
        "Audit log",
        ["#", "time (UTC)", "actor", "action", "subject", "change"],
        [
            (
                e.seq,
                format_ms(e.timestamp),
                e.actor,
                e.action,
                f"{e.subject_type} {e.subject_id}",
                f"{e.before} -> {e.after}",
            )
            for e in found
        ],
    )


def _anchor(value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    seq, _, digest = value.partition(":")
    if not (is_number(seq) and len(seq) <= 18 and len(digest) == 64):
        fail(f"--anchor {value!r} must look like SEQ:HASH, as `audit verify` prints the head")
    return int(seq), digest.lower()


@app.command("verify")
def verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH, a head printed earlier and kept outside the database: fail if "
            "that event no longer has that hash (the chain was rebuilt).",
        ),
    ] = None,
    json_output: bool = JSON_OPTION,
) -> None:
    """Recompute the hash chain; on tampering or a deleted tail, name the event and exit 1.

    Prints the head (newest event and its hash): keep a copy outside the database, since
    someone who can write the database could rebuild the whole chain; --anchor checks it."""
    anchored = _anchor(anchor)
    if anchored is None:
        with handle_errors(), state(ctx).client() as client:
            report = client.verify_audit()
    else:
        from ..store.audit import verify_chain
        from ..store.home import open_store

        with handle_errors():
            settings = state(ctx).local_settings("audit verify --anchor")
            with open_store(settings) as store:
                report = verify_chain(store.db, anchor=anchored)
    if json_output:
        emit_json(
            {
                "ok": report.ok,
                "checked": report.checked,
                "broken_seq": report.broken_seq,
                "reason": report.reason,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
            }
        )
    elif report.ok:
        console().print(f"audit chain intact: {report.checked} event(s) verified")
        if report.head_seq is not None:
            # Kept outside the database, this line reveals a later rewrite of the whole chain.
            console().print(f"head #{report.head_seq} {report.head_hash}", markup=False)
    else:
        console(stderr=True).print(
            f"[bold red]audit chain broken[/] at event #{report.broken_seq}: {report.reason} "
            f"({report.checked} event(s) before it verified)"
        )
    if not report.ok:
        raise typer.Exit(1)
