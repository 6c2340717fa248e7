"""Row lookups and row → entity loading shared by the registry service's parts.

Every function works inside the caller's transaction. Lookups raise ``NotFound`` naming what
exists; loaders fetch tags, aliases and lineage for many rows with one query each.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .._numbers import is_number
from ..errors import NotFound
from ..store import limits
from ..store import schema as t
from ._base import parse_stage, require_ready
from .entities import (
    ApprovalDecision,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalRule,
    ModelVersion,
    RegisteredModel,
    Stage,
)

__all__ = [
    "load_models",
    "load_requests",
    "load_versions",
    "lock_model",
    "model_row",
    "policy_of",
    "request_rule",
    "resolve_row",
    "version_row",
    "versions_span",
]

Row = sa.Row[Any]
_m, _v = t.registered_models.c, t.model_versions.c


def model_row(conn: sa.Connection, name: str, *, lock: bool = False) -> Row:
    """The registered model ``name``; ``lock`` takes its row lock (FOR UPDATE on PostgreSQL).

    Every registry write transaction locks the model row first, so changes to one model's
    versions, aliases and requests are serialised on PostgreSQL as SQLite's write lock does.
    """
    query = sa.select(t.registered_models).where(_m.name == name)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(
            f"registered model {name!r} does not exist; list_models() shows the registered models"
        )
    return row


def lock_model(conn: sa.Connection, model_id: str) -> Row:
    return conn.execute(
        sa.select(t.registered_models).where(_m.id == model_id).with_for_update()
    ).one()


def versions_span(conn: sa.Connection, model_id: str) -> str:
    """``1..4`` (the range of version numbers), or ``none``."""
    low, high = conn.execute(
        sa.select(sa.func.min(_v.version), sa.func.max(_v.version)).where(_v.model_id == model_id)
    ).one()
    return "none" if low is None else f"{low}..{high}"


def version_row(conn: sa.Connection, model: Row, version: int) -> Row:
    row = None
    if 0 < version <= limits.INT32_MAX:  # version is an INTEGER: a larger number is in no row
        row = conn.execute(
            sa.select(t.model_versions).where(_v.model_id == model.id, _v.version == version)
        ).first()
    if row is None:
        raise NotFound(
            f"registered model {model.name!r} has no version {version}; "
            f"versions: {versions_span(conn, model.id)}"
        )
    return row


def resolve_row(conn: sa.Connection, model: Row, ref: int | str) -> Row:
    """The loadable version row ``ref`` names (see ``Registry.resolve``); deleted ones refused."""
    al = t.model_aliases.c
    text = str(ref)
    if isinstance(ref, int) or is_number(text):
        row = version_row(conn, model, int(text))
        require_ready(row, model.name, "loaded")
        return row
    live = sa.select(t.model_versions).where(_v.model_id == model.id, _v.status != "DELETED")
    word = "" if text.startswith("@") else text.lower()  # "@x": the alias x only
    if word == "latest":
        query, what = live, "no versions"
    elif word in {"none", "staging", "production", "archived"}:
        stage = parse_stage(text)
        query, what = live.where(_v.stage == stage.value), f"no version in {stage.value}"
    else:
        alias = text.removeprefix("@")
        query = live.join(t.model_aliases, al.version_id == _v.id).where(al.alias == alias)
        what = f"no alias {alias!r}"
    found = conn.execute(query.order_by(_v.version.desc()).limit(1)).first()
    if found is None:
        aliases = conn.execute(
            sa.select(al.alias).where(al.model_id == model.id).order_by(al.alias)
        ).scalars()
        raise NotFound(
            f"registered model {model.name!r} has {what}; give a version number, 'latest', a "
            f"stage or an alias (aliases: {', '.join(aliases) or 'none'})"
        )
    return found


def policy_of(model: Row) -> ApprovalPolicy:
    """The model's approval policy (the default policy until one is set)."""
    raw = model.approval_policy_json
    return ApprovalPolicy() if raw is None else ApprovalPolicy.from_dict(json.loads(raw))


def _pairs(conn: sa.Connection, query: sa.Select[Any]) -> dict[str, list[tuple[Any, Any]]]:
    grouped: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for owner, key, value in conn.execute(query):
        grouped[owner].append((key, value))
    return grouped


def load_models(conn: sa.Connection, rows: Sequence[Row]) -> list[RegisteredModel]:
    ids = [row.id for row in rows]
    tg, al = t.registered_model_tags.c, t.model_aliases.c
    tags = _pairs(conn, sa.select(tg.model_id, tg.key, tg.value).where(tg.model_id.in_(ids)))
    aliases = _pairs(
        conn,
        sa.select(al.model_id, al.alias, _v.version)
        .join(t.model_versions, _v.id == al.version_id)
        .where(al.model_id.in_(ids))
        .order_by(al.alias),
    )
    latest = dict(
        conn.execute(
            sa.select(_v.model_id, sa.func.max(_v.version))
            .where(_v.model_id.in_(ids), _v.status != "DELETED")
            .group_by(_v.model_id)
        ).all()
    )
    return [
        RegisteredModel(
            id=row.id,
            name=row.name,
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=dict(tags[row.id]),
            aliases=dict(aliases[row.id]),
            latest_version=latest.get(row.id),
            policy=policy_of(row),
            card=json.loads(row.card_json) if row.card_json else {},
        )
        for row in rows
    ]


def load_versions(conn: sa.Connection, rows: Sequence[Row]) -> list[ModelVersion]:
    """Versions for ``model_versions`` rows (the model name is looked up)."""
    ids = [row.id for row in rows]
    tg, al, ds = t.model_version_tags.c, t.model_aliases.c, t.model_version_datasets.c
    names = dict(
        conn.execute(
            sa.select(_m.id, _m.name).where(_m.id.in_({row.model_id for row in rows}))
        ).all()
    )
    tags = _pairs(conn, sa.select(tg.version_id, tg.key, tg.value).where(tg.version_id.in_(ids)))
    aliases = _pairs(
        conn,
        sa.select(al.version_id, al.alias, al.alias)
        .where(al.version_id.in_(ids))
        .order_by(al.alias),
    )
    datasets = _pairs(
        conn,
        sa.select(ds.version_id, ds.dataset_version_id, ds.dataset_version_id)
        .where(ds.version_id.in_(ids))
        .order_by(ds.dataset_version_id),
    )
    return [
        ModelVersion(
            id=row.id,
            model=names[row.model_id],
            version=row.version,
            run_id=row.run_id or row.run_ref,
            source=row.source,
            status=row.status,
            stage=Stage(row.stage),
            flavor=row.flavor,
            package_hash=row.package_hash,
            signature=json.loads(row.signature_json) if row.signature_json else None,
            metrics=json.loads(row.metrics_json) if row.metrics_json else {},
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=dict(tags[row.id]),
            aliases=tuple(alias for alias, _ in aliases[row.id]),
            dataset_version_ids=tuple(d for d, _ in datasets[row.id]),
            source_kind=row.source_kind,
        )
        for row in rows
    ]


def request_rule(raw: str | None, fallback_target: str) -> tuple[ApprovalRule, bool]:
    """The rule recorded with a request, and whether applying it archives other versions.

    ``rule_json`` holds the rule in force when the request was opened; a stage request also
    records ``archive_existing`` there (the request table has no column of its own for it).
    """
    data = json.loads(raw) if raw else {"target": fallback_target}
    return ApprovalRule.from_dict(data), bool(data.get("archive_existing", False))


def load_requests(conn: sa.Connection, rows: Sequence[Row]) -> list[ApprovalRequest]:
    """Approval requests (of models or prompts) with their decisions."""
    ids = [row.id for row in rows]
    d = t.approval_decisions.c
    decisions: dict[str, list[ApprovalDecision]] = defaultdict(list)
    for row in conn.execute(
        sa.select(t.approval_decisions).where(d.request_id.in_(ids)).order_by(d.created_at, d.id)
    ):
        decisions[row.request_id].append(
            ApprovalDecision(
                row.id,
                row.request_id,
                row.actor,
                row.role,
                row.decision,
                row.comment,
                row.created_at,
            )
        )
    versions = _subject_versions(conn, rows)
    loaded = []
    for row in rows:
        rule, archive = request_rule(row.rule_json, f"{row.action}:{row.target}")
        version_id = row.version_id if row.subject_kind == "model" else row.prompt_version_id
        model, number = versions[version_id]
        loaded.append(
            ApprovalRequest(
                id=row.id,
                model=model,
                version=number,
                version_id=version_id,
                action=row.action,
                target=row.target,
                status=row.status,
                requested_by=row.requested_by,
                comment=row.comment,
                rule=rule,
                created_at=row.created_at,
                expires_at=row.expires_at,
                resolved_at=row.resolved_at,
                decisions=tuple(decisions[row.id]),
                archive_existing=archive,
                subject_kind=row.subject_kind,
            )
        )
    return loaded


def _subject_versions(conn: sa.Connection, rows: Sequence[Row]) -> dict[str, tuple[str, int]]:
    """Version id -> (name, number) of what the requests are about: model versions, and prompt
    versions (``subject_kind`` ``prompt``, see ``loopwright.prompts``)."""
    found: dict[str, tuple[str, int]] = {}
    model_versions = {row.version_id for row in rows if row.version_id is not None}
    if model_versions:
        query = (
            sa.select(_v.id, _m.name, _v.version)
            .join(t.registered_models, _m.id == _v.model_id)
            .where(_v.id.in_(model_versions))
        )
        found.update((id_, (name, number)) for id_, name, number in conn.execute(query))
    prompt_versions = {row.prompt_version_id for row in rows if row.prompt_version_id is not None}
    if prompt_versions:
        pv, p = t.prompt_versions.c, t.prompts.c
        query = (
            sa.select(pv.id, p.name, pv.version)
            .join(t.prompts, p.id == pv.prompt_id)
            .where(pv.id.in_(prompt_versions))
        )
        found.update((id_, (name, number)) for id_, name, number in conn.execute(query))
    return found
