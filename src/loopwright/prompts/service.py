"""The prompt registry service: prompts, immutable versions, aliases, tags, diffs, approvals.

Every change is one transaction that locks the prompt's row first and appends its audit event
before committing, so version numbers are gap-free per prompt even with concurrent writers.

Registering content identical to the newest version still makes a new version, as MLflow does
(each register is a recorded event with its own commit message); ``skip_if_unchanged=True``
returns the newest version instead when its digest is the same.

Example:
    >>> from loopwright.config import resolve_settings
    >>> from loopwright.store.home import open_store
    >>> prompts = PromptService(open_store(resolve_settings(home="lw-doc-prompts")))
    >>> v = prompts.register("greet", "Hello {{ name }}!", commit_message="first")
    >>> v.uri, v.variables
    ('prompts:/greet/1', ('name',))
    >>> prompts.load("prompts:/greet@latest").format(name="Ada")
    'Hello Ada!'
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from .._ids import new_id, now_ms
from ..errors import AlreadyExists, Conflict, InvalidInput
from ..registry._base import check_tags
from ..registry.entities import ApprovalPolicy
from ..store import limits
from ..store import schema as t
from ..store.home import Store
from ..store.upsert import insert_ignore
from ._checks import check_document, check_name, check_prompt_policy
from ._rows import (
    load_prompts,
    load_versions,
    policy_of,
    prompt_row,
    resolve_row,
    version_of,
    version_row,
)
from ._template import canonical_json, check_template, digest, variables_of
from .approvals import PromptApprovals
from .entities import Prompt, PromptVersion
from .uris import parse_prompt_uri

__all__ = ["PromptService"]

_p, _v = t.prompts.c, t.prompt_versions.c
_MAX_LIMIT = 1000


class PromptService(PromptApprovals):
    """Register, find and compare prompt versions; move aliases under approval policies.

    Args:
        store: the metadata store.
        actor: who changes are recorded as and who decides approvals (default: the store's
            user).
        clock: the time in UTC milliseconds (tests pass a fake one to expire requests).
    """

    def __init__(
        self, store: Store, *, actor: str | None = None, clock: Callable[[], int] | None = None
    ) -> None:
        super().__init__(store, actor=actor, clock=clock or now_ms)

    # --- prompts ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> Prompt:
        """A new prompt without versions yet (``register`` creates one when missing)."""
        with self.db.write() as conn:
            row, created = self._ensure_prompt(conn, name, description, tags, policy)
            if not created:
                raise AlreadyExists(
                    f"prompt {name!r} already exists; register versions into it or pick "
                    "another name"
                )
            return load_prompts(conn, [row])[0]

    def get(self, name: str) -> Prompt:
        """The prompt ``name``: description, tags, aliases, newest version, policy."""
        with self.db.read() as conn:
            return load_prompts(conn, [prompt_row(conn, check_name(name))])[0]

    def search(
        self,
        query: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Prompt]:
        """Prompts whose name contains ``query`` (any case) and that carry every tag of
        ``tags``, by name."""
        if not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
            raise InvalidInput(f"limit must be an integer from 1 to {_MAX_LIMIT}")
        if not isinstance(offset, int) or not 0 <= offset <= limits.INT32_MAX:
            raise InvalidInput(f"offset must be an integer from 0 to {limits.INT32_MAX}")
        select = sa.select(t.prompts)
        if query:
            text = limits.check_text("prompt search", query, limit=limits.PROMPT_NAME)
            escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            select = select.where(sa.func.lower(_p.name).like(f"%{escaped}%", escape="\\"))
        for key, value in check_tags(tags).items():
            pt = t.prompt_tags.c
            select = select.where(
                _p.id.in_(sa.select(pt.prompt_id).where(pt.key == key, pt.value == value))
            )
        select = select.order_by(_p.name).limit(limit).offset(offset)
        with self.db.read() as conn:
            return load_prompts(conn, conn.execute(select).all())

    def update(self, name: str, *, description: str | None) -> Prompt:
        """Change the prompt's description (versions are immutable)."""
        if description is not None:
            limits.check_text(
                "description", description, limit=limits.REGISTRY_TAG_VALUE, allow_empty=True
            )
        with self.db.write() as conn:
            row = prompt_row(conn, name, lock=True)
            conn.execute(
                t.prompts.update()
                .where(_p.id == row.id)
                .values(description=description, updated_at=self._clock())
            )
            self._audit(
                conn,
                "prompt.update",
                row.id,
                before={"description": row.description},
                after={"description": description},
            )
            return load_prompts(conn, [prompt_row(conn, name)])[0]

    def set_policy(self, name: str, policy: ApprovalPolicy) -> Prompt:
        """Replace the prompt's approval policy (aliases only); open requests keep their rule."""
        document = json.dumps(check_prompt_policy(policy).to_dict())
        with self.db.write() as conn:
            row = prompt_row(conn, name, lock=True)
            conn.execute(
                t.prompts.update()
                .where(_p.id == row.id)
                .values(approval_policy_json=document, updated_at=self._clock())
            )
            self._audit(
                conn,
                "prompt.policy",
                row.id,
                before=policy_of(row).to_dict(),
                after=policy.to_dict(),
            )
            return load_prompts(conn, [prompt_row(conn, name)])[0]

    def delete(self, name: str) -> None:
        """Delete the prompt, its versions, aliases and open requests (audited); when it holds
        an alias its policy protects, has a policy of its own or pending requests, only an
        enabled admin may."""
        with self.db.write() as conn:
            row = prompt_row(conn, name, lock=True)
            self._require_admin_to_delete(conn, row)
            versions = conn.execute(
                sa.select(sa.func.count()).where(_v.prompt_id == row.id)
            ).scalar_one()
            conn.execute(t.prompts.delete().where(_p.id == row.id))
            self._audit(conn, "prompt.delete", row.id, before={"name": name, "versions": versions})

    def set_tag(self, name: str, key: str, value: str) -> None:
        self._tag(t.prompt_tags, "prompt_id", name, None, key, value)

    def delete_tag(self, name: str, key: str) -> None:
        self._tag(t.prompt_tags, "prompt_id", name, None, key, None)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Tag a version (tags are annotations; the content stays immutable)."""
        self._tag(t.prompt_version_tags, "version_id", name, version, key, value)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        self._tag(t.prompt_version_tags, "version_id", name, version, key, None)

    # --- versions ---------------------------------------------------------------------------

    def register(
        self,
        name: str,
        template: str | list[dict[str, Any]],
        *,
        commit_message: str | None = None,
        model_config: Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | type | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        skip_if_unchanged: bool = False,
    ) -> PromptVersion:
        """A new immutable version of ``name`` (the prompt is created if missing, with
        ``description``): its number is the newest plus one.

        Args:
            template: text with ``{{ variables }}``, or chat messages
                (``[{"role": "system", "content": "..."}, ...]``).
            commit_message: what changed, kept with the version.
            model_config: how to call the model (``{"model_name": ..., "temperature": ...}``).
            response_format: the expected output's JSON schema (or a pydantic model class).
            tags: the version's tags.
            skip_if_unchanged: return the newest version instead of a new one when its content
                digest is the same.
        """
        check_name(name)
        kind, checked = check_template(template)
        config = check_document("model_config", model_config)
        response = check_document("response_format", response_format)
        version_tags = check_tags(tags)
        if commit_message is not None:
            limits.check_text(
                "commit message", commit_message, limit=limits.REGISTRY_TAG_VALUE, allow_empty=True
            )
        variables = variables_of(checked)
        content_digest = digest(kind, checked, config, response)
        with self.db.write() as conn:
            prompt, _ = self._ensure_prompt(conn, name, description, None, None)
            newest = conn.execute(
                sa.select(t.prompt_versions)
                .where(_v.prompt_id == prompt.id)
                .order_by(_v.version.desc())
                .limit(1)
            ).first()
            if skip_if_unchanged and newest is not None and newest.digest == content_digest:
                return load_versions(conn, [newest], name)[0]
            now = self._clock()
            row = {
                "id": new_id(),
                "prompt_id": prompt.id,
                "version": 1 if newest is None else newest.version + 1,
                "kind": kind,
                "template_json": canonical_json(
                    checked if isinstance(checked, str) else list(checked)
                ),
                "variables_json": json.dumps(list(variables)),
                "model_config_json": None if config is None else canonical_json(config),
                "response_format_json": None if response is None else canonical_json(response),
                "commit_message": commit_message,
                "digest": content_digest,
                "created_by": self._actor_name(),
                "created_at": now,
            }
            conn.execute(t.prompt_versions.insert(), row)
            insert_ignore(
                conn,
                t.prompt_version_tags,
                [{"version_id": row["id"], "key": k, "value": v} for k, v in version_tags.items()],
            )
            conn.execute(t.prompts.update().where(_p.id == prompt.id).values(updated_at=now))
            self._audit(
                conn,
                "prompt_version.create",
                row["id"],
                after={
                    "prompt": name,
                    "version": row["version"],
                    "digest": content_digest,
                    "commit_message": commit_message,
                },
                kind="prompt_version",
            )
            return version_of(SimpleNamespace(**row), name, version_tags, ())

    def get_version(self, name: str, version: int) -> PromptVersion:
        with self.db.read() as conn:
            row = version_row(conn, prompt_row(conn, name), version)
            return load_versions(conn, [row], name)[0]

    def resolve(self, name: str, ref: int | str) -> PromptVersion:
        """The version ``ref`` names: a number, an alias, or ``latest``."""
        with self.db.read() as conn:
            row = resolve_row(conn, prompt_row(conn, name), ref)
            return load_versions(conn, [row], name)[0]

    def load(self, uri: str) -> PromptVersion:
        """The version a ``prompts:/name/3`` or ``prompts:/name@alias`` URI names, read now."""
        name, ref = parse_prompt_uri(uri)
        return self.resolve(name, ref)

    def versions(self, name: str) -> list[PromptVersion]:
        """The prompt's versions, oldest first."""
        with self.db.read() as conn:
            prompt = prompt_row(conn, name)
            rows = conn.execute(
                sa.select(t.prompt_versions).where(_v.prompt_id == prompt.id).order_by(_v.version)
            ).all()
            return load_versions(conn, rows, name)

    def diff(self, name: str, v1: int | str, v2: int | str) -> str:
        """A unified diff from version ``v1`` to ``v2`` (numbers or aliases): the template line
        by line (chat messages as ``[role]`` blocks), then changed model config and response
        format as JSON; empty when they say the same."""
        with self.db.read() as conn:
            prompt = prompt_row(conn, name)
            a, b = load_versions(
                conn, [resolve_row(conn, prompt, v1), resolve_row(conn, prompt, v2)], name
            )
        return _diff(a, b)

    # --- internals ---------------------------------------------------------------------------

    def _ensure_prompt(
        self,
        conn: sa.Connection,
        name: str,
        description: str | None,
        tags: Mapping[str, str] | None,
        policy: ApprovalPolicy | None,
    ) -> tuple[Any, bool]:
        """The prompt's row, locked, creating it if missing; and whether it was created here.
        ``INSERT … ON CONFLICT DO NOTHING`` then ``SELECT … FOR UPDATE``: racing creators wait
        for the first one's commit instead of failing on the unique name."""
        check_name(name)
        checked_tags = check_tags(tags)
        if description is not None:
            limits.check_text(
                "description", description, limit=limits.REGISTRY_TAG_VALUE, allow_empty=True
            )
        if policy is None and self.store.settings.default_approval_policy == "none":
            policy = ApprovalPolicy(rules=())
        policy_json = None if policy is None else json.dumps(check_prompt_policy(policy).to_dict())
        existing = conn.execute(sa.select(t.prompts).where(_p.name == name).with_for_update())
        row = existing.first()
        if row is not None:
            return row, False
        model = t.registered_models.c
        if conn.execute(sa.select(model.id).where(model.name == name)).first() is not None:
            raise Conflict(
                f"a registered model is named {name!r}; MLflow clients see prompts and models "
                "in one namespace, so pick another name for the prompt"
            )
        prompt_id, now = new_id(), self._clock()
        insert_ignore(
            conn,
            t.prompts,
            [
                {
                    "id": prompt_id,
                    "name": name,
                    "description": description,
                    "approval_policy_json": policy_json,
                    "created_by": self._actor_name(),
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        row = prompt_row(conn, name, lock=True)
        if row.id != prompt_id:
            return row, False
        insert_ignore(
            conn,
            t.prompt_tags,
            [{"prompt_id": prompt_id, "key": k, "value": v} for k, v in checked_tags.items()],
        )
        self._audit(
            conn,
            "prompt.create",
            prompt_id,
            after={
                "name": name,
                "description": description,
                "tags": checked_tags,
                "policy": policy_of(row).to_dict(),
            },
        )
        return row, True

    def _tag(
        self,
        table: sa.Table,
        owner: str,
        name: str,
        version: int | None,
        key: str,
        value: str | None,
    ) -> None:
        from ..store.upsert import upsert

        checked = check_tags({key: "" if value is None else value})
        with self.db.write() as conn:
            prompt = prompt_row(conn, name, lock=True)
            owner_id = prompt.id if version is None else version_row(conn, prompt, version).id
            where = sa.and_(table.c[owner] == owner_id, table.c.key == key)
            before = conn.execute(sa.select(table.c.value).where(where)).scalar()
            if value is None:
                conn.execute(table.delete().where(where))
            else:
                upsert(
                    conn,
                    table,
                    [{owner: owner_id, "key": key, "value": checked[key]}],
                    update=["value"],
                )
            about = {"prompt": name, "version": version, "key": key}
            self._audit(
                conn,
                "prompt.tag" if value is not None else "prompt.untag",
                owner_id,
                before={**about, "value": before},
                after=None if value is None else {**about, "value": value},
                kind="prompt" if version is None else "prompt_version",
            )


def _lines(version: PromptVersion) -> list[str]:
    if isinstance(version.template, str):
        return version.template.splitlines(keepends=True)
    lines: list[str] = []
    for message in version.template:
        lines.append(f"[{message['role']}]\n")
        lines.extend(str(message["content"]).splitlines(keepends=True))
        lines.append("\n")
    return lines


def _diff(a: PromptVersion, b: PromptVersion) -> str:
    def ended(lines: list[str]) -> list[str]:
        return [line if line.endswith("\n") else line + "\n" for line in lines]

    parts = list(
        difflib.unified_diff(
            ended(_lines(a)), ended(_lines(b)), f"{a.uri} template", f"{b.uri} template"
        )
    )
    for field in ("kind", "model_config", "response_format"):
        old, new = getattr(a, field), getattr(b, field)
        if old == new:
            continue
        shown = [
            ended(json.dumps(value, indent=2, sort_keys=True).splitlines()) for value in (old, new)
        ]
        parts.extend(
            difflib.unified_diff(shown[0], shown[1], f"{a.uri} {field}", f"{b.uri} {field}")
        )
    return "".join(parts)
