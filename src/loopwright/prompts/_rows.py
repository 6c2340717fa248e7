"""Row lookups and row → entity loading for the prompt registry (inside the caller's
transaction). Lookups raise ``NotFound`` naming what exists and how to get it."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._numbers import is_number
from ..errors import InvalidInput, NotFound
from ..registry.entities import ApprovalPolicy, ApprovalRule
from ..store import limits
from ..store import schema as t
from ..store.named import KNOWN_NAMES
from .entities import Prompt, PromptVersion

if TYPE_CHECKING:
    from ..store.database import Database

__all__ = [
    "alias_row",
    "load_prompts",
    "load_versions",
    "no_alias",
    "policy_of",
    "prompt_exists",
    "prompt_row",
    "resolve_row",
    "version_row",
]

Row = sa.Row[Any]
_p, _v, _a = t.prompts.c, t.prompt_versions.c, t.prompt_aliases.c

# With the store's default_approval_policy "protect": the aliases that serve production.
DEFAULT_POLICY = ApprovalPolicy(
    rules=(ApprovalRule("alias:production"), ApprovalRule("alias:champion"))
)


def prompt_exists(db: Database, name: str) -> bool:
    """Whether a prompt is called ``name`` (MLflow's registry routes ask first: prompts and
    models share MLflow's names)."""
    with db.read() as conn:
        return conn.execute(sa.select(_p.id).where(_p.name == name)).first() is not None


def prompt_row(conn: sa.Connection, name: str, *, lock: bool = False) -> Row:
    """The prompt ``name``; ``lock`` takes its row lock (every prompt write locks it first)."""
    query = sa.select(t.prompts).where(_p.name == name)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        known = conn.execute(sa.select(_p.name).order_by(_p.name).limit(KNOWN_NAMES)).scalars()
        raise NotFound(
            f"prompt {name!r} does not exist; prompts: {', '.join(known) or 'none'} "
            "(client.prompts.register creates one)"
        )
    return row


def policy_of(prompt: Row) -> ApprovalPolicy:
    raw = prompt.approval_policy_json
    return DEFAULT_POLICY if raw is None else ApprovalPolicy.from_dict(json.loads(raw))


def _span(conn: sa.Connection, prompt: Row) -> str:
    low, high = conn.execute(
        sa.select(sa.func.min(_v.version), sa.func.max(_v.version)).where(_v.prompt_id == prompt.id)
    ).one()
    return "none" if low is None else f"{low}..{high}"


def version_row(conn: sa.Connection, prompt: Row, version: int) -> Row:
    row = None
    if isinstance(version, int) and 0 < version <= limits.INT32_MAX:
        row = conn.execute(
            sa.select(t.prompt_versions).where(_v.prompt_id == prompt.id, _v.version == version)
        ).first()
    if row is None:
        raise NotFound(
            f"prompt {prompt.name!r} has no version {version!r}; versions: {_span(conn, prompt)}"
        )
    return row


def resolve_row(conn: sa.Connection, prompt: Row, ref: int | str) -> Row:
    """The version ``ref`` names: a number, ``latest`` (the newest version) or an alias."""
    if isinstance(ref, int) or (isinstance(ref, str) and is_number(ref)):
        return version_row(conn, prompt, int(ref))
    if not isinstance(ref, str) or not ref:
        raise InvalidInput(f"a prompt version reference is a number or an alias, not {ref!r}")
    if ref.lower() == "latest":
        row = conn.execute(
            sa.select(t.prompt_versions)
            .where(_v.prompt_id == prompt.id)
            .order_by(_v.version.desc())
            .limit(1)
        ).first()
        if row is None:
            raise NotFound(f"prompt {prompt.name!r} has no versions yet")
        return row
    row = alias_row(conn, prompt, ref)
    if row is None:
        raise no_alias(conn, prompt, ref, " (and 'latest')")
    return row


def alias_row(conn: sa.Connection, prompt: Row, alias: str) -> Row | None:
    """The version ``alias`` points at, or None."""
    return conn.execute(
        sa.select(t.prompt_versions)
        .join(t.prompt_aliases, _a.version_id == _v.id)
        .where(_a.prompt_id == prompt.id, _a.alias == alias)
    ).first()


def no_alias(conn: sa.Connection, prompt: Row, alias: str, more: str = "") -> NotFound:
    """The error for an alias the prompt lacks, naming those it has."""
    known = conn.execute(
        sa.select(_a.alias).where(_a.prompt_id == prompt.id).order_by(_a.alias)
    ).scalars()
    return NotFound(
        f"prompt {prompt.name!r} has no alias {alias!r}; aliases: {', '.join(known) or 'none'}"
        f"{more}"
    )


def _tags(conn: sa.Connection, table: sa.Table, owner: str, ids: Sequence[str]) -> Any:
    found: dict[str, dict[str, str]] = defaultdict(dict)
    column = table.c[owner]
    for row in conn.execute(sa.select(table).where(column.in_(ids))):
        found[row[0]][row.key] = row.value
    return found


def _json(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


def load_versions(conn: sa.Connection, rows: Sequence[Row], name: str) -> list[PromptVersion]:
    """Versions of the prompt ``name`` with their tags and aliases (a query each)."""
    ids = [row.id for row in rows]
    tags = _tags(conn, t.prompt_version_tags, "version_id", ids)
    aliases: dict[str, list[str]] = defaultdict(list)
    for version_id, alias in conn.execute(
        sa.select(_a.version_id, _a.alias).where(_a.version_id.in_(ids)).order_by(_a.alias)
    ):
        aliases[version_id].append(alias)
    return [version_of(row, name, tags[row.id], tuple(aliases[row.id])) for row in rows]


def version_of(
    row: Any, name: str, tags: dict[str, str], aliases: tuple[str, ...]
) -> PromptVersion:
    template = json.loads(row.template_json)
    return PromptVersion(
        id=row.id,
        name=name,
        version=row.version,
        kind=row.kind,
        template=template if isinstance(template, str) else tuple(template),
        variables=tuple(json.loads(row.variables_json)),
        digest=row.digest,
        model_config=_json(row.model_config_json),
        response_format=_json(row.response_format_json),
        commit_message=row.commit_message,
        created_by=row.created_by,
        created_at=row.created_at,
        tags=tags,
        aliases=aliases,
    )


def load_prompts(conn: sa.Connection, rows: Sequence[Row]) -> list[Prompt]:
    ids = [row.id for row in rows]
    tags = _tags(conn, t.prompt_tags, "prompt_id", ids)
    aliases: dict[str, dict[str, int]] = defaultdict(dict)
    for prompt_id, alias, number in conn.execute(
        sa.select(_a.prompt_id, _a.alias, _v.version)
        .join(t.prompt_versions, _v.id == _a.version_id)
        .where(_a.prompt_id.in_(ids))
    ):
        aliases[prompt_id][alias] = number
    latest = dict(
        conn.execute(
            sa.select(_v.prompt_id, sa.func.max(_v.version))
            .where(_v.prompt_id.in_(ids))
            .group_by(_v.prompt_id)
        ).all()
    )
    return [
        Prompt(
            id=row.id,
            name=row.name,
            description=row.description,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            policy=policy_of(row),
            tags=tags[row.id],
            aliases=dict(sorted(aliases[row.id].items())),
            latest_version=latest.get(row.id),
        )
        for row in rows
    ]
