"""Registered models: names, descriptions, tags, approval policies and model-card text."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .._ids import new_id
from ..errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from ..governance.users import ROLES, find_user
from ..store import limits
from ..store import schema as t
from ..store.upsert import insert_ignore, upsert
from ._base import RegistryBase, check_alias, check_model_name, check_tags
from ._queries import load_models, model_row, policy_of
from ._search import MODEL_COLUMNS, model_filter, parse
from .entities import ApprovalPolicy, RegisteredModel, Stage

# A gate's name as loop.gates checks it (the registry does not import the loop).
_GATE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

__all__ = ["CARD_FIELDS", "ModelsMixin", "check_policy"]

# The model card's user-written sections (the generated parts come from versions and runs).
CARD_FIELDS = (
    "summary",
    "intended_use",
    "out_of_scope_use",
    "limitations",
    "ethical_considerations",
    "training_data",
    "evaluation_data",
    "caveats",
    "owners",
    "contact",
    "license",
    "references",
)
_m = t.registered_models.c


def check_policy(policy: object, *, gates: bool = False) -> ApprovalPolicy:
    """``policy`` if it is one the registry can apply; ``gates``: rules may name a required
    evaluation gate (prompts' policies; a model's promotion is gated by its loop)."""
    if not isinstance(policy, ApprovalPolicy):
        raise InvalidInput(f"policy must be an ApprovalPolicy, not {type(policy).__name__}")
    stages = "|".join(s.value for s in Stage)
    targets = [rule.target for rule in policy.rules]
    for rule in policy.rules:
        kind, _, what = rule.target.partition(":")
        if kind == "alias":
            check_alias(what)
        elif not (kind == "stage" and re.fullmatch(stages, what)) and rule.target != "traffic":
            raise InvalidInput(
                f"policy target {rule.target!r} must be 'stage:<{stages}>', 'alias:<name>' or "
                "'traffic'"
            )
        if not isinstance(rule.approvals, int) or not 1 <= rule.approvals <= 100:
            raise InvalidInput(f"rule {rule.target!r}: approvals must be an integer from 1 to 100")
        if rule.role not in ROLES:
            raise InvalidInput(f"rule {rule.target!r}: role must be one of {', '.join(ROLES)}")
        if rule.gate is not None and not gates:
            raise InvalidInput(
                f"rule {rule.target!r}: a model's policy names no gate (a loop gates a model's "
                "promotion: `loopwright loops`); gate= is for prompts' alias rules"
            )
        if rule.gate is not None and not _GATE.fullmatch(str(rule.gate)):
            raise InvalidInput(
                f"rule {rule.target!r}: gate {str(rule.gate)[:80]!r} must name a gate (1-100 "
                "letters, digits, '.', '_' or '-')"
            )
    if len(set(targets)) != len(targets):
        raise InvalidInput("policy lists the same target twice; give one rule per target")
    if (
        not isinstance(policy.expires_after_s, int)
        or not 1 <= policy.expires_after_s <= limits.APPROVAL_EXPIRY_S
    ):
        most = limits.APPROVAL_EXPIRY_S
        raise InvalidInput(f"policy expires_after_s must be seconds from 1 to {most} (100 years)")
    return policy


def _card_value(field: str, value: object) -> str | list[str] | None:
    if field not in CARD_FIELDS:
        raise InvalidInput(f"model card has no field {field!r}; fields: {', '.join(CARD_FIELDS)}")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return list(value)
    raise InvalidInput(f"model card field {field!r} takes a string, a list of strings or None")


def _protected_in_use(conn: sa.Connection, model: Any) -> list[str]:
    """The model's aliases and occupied stages that its policy protects, e.g. ``alias
    'champion'``, ``stage Production``."""
    policy = policy_of(model)
    al, v = t.model_aliases.c, t.model_versions.c
    aliases = conn.execute(
        sa.select(al.alias).where(al.model_id == model.id).order_by(al.alias)
    ).scalars()
    stages = conn.execute(
        sa.select(v.stage).where(v.model_id == model.id, v.status != "DELETED").distinct()
    ).scalars()
    found = [f"alias {a!r}" for a in aliases if policy.rule_for(f"alias:{a}") is not None]
    found += [f"stage {s}" for s in sorted(stages) if policy.rule_for(f"stage:{s}") is not None]
    return found


class ModelsMixin(RegistryBase):
    """Create, find, search, describe and delete registered models."""

    def create_model(
        self,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> RegisteredModel:
        """Register a model name. Without ``policy`` it gets the store's default (the
        ``default_approval_policy`` setting): ``protect`` (Production and the ``champion`` alias
        need one approval from an approver) or ``none``. The model keeps the policy it was
        created with when the setting changes; ``set_policy`` changes it."""
        with self.db.write() as conn:
            model, created = self._ensure_model(
                conn, name, description=description, tags=tags, policy=policy
            )
            if not created:
                raise AlreadyExists(
                    f"registered model {name!r} already exists; register versions into it or "
                    "pick another name"
                )
            return load_models(conn, [model])[0]

    def _ensure_model(
        self,
        conn: sa.Connection,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> tuple[Any, bool]:
        """The model's row, locked, creating it if missing; and whether it was created here.

        ``INSERT … ON CONFLICT DO NOTHING`` then ``SELECT … FOR UPDATE``: racing creators wait
        for the first one's commit instead of failing on the unique name.
        """
        check_model_name(name)
        checked_tags = check_tags(tags)
        if policy is None and self.store.settings.default_approval_policy == "none":
            policy = ApprovalPolicy(rules=())
        # NULL is the protective default policy (as for every model created before the setting).
        policy_json = None if policy is None else json.dumps(check_policy(policy).to_dict())
        model_id, now = new_id(), self._now()
        insert_ignore(
            conn,
            t.registered_models,
            [
                {
                    "id": model_id,
                    "name": name,
                    "description": description,
                    "approval_policy_json": policy_json,
                    "card_json": None,
                    "created_by": self.actor,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        model = model_row(conn, name, lock=True)
        if model.id != model_id:
            return model, False
        insert_ignore(
            conn,
            t.registered_model_tags,
            [{"model_id": model_id, "key": k, "value": v} for k, v in checked_tags.items()],
        )
        self._audit(
            conn,
            "registered_model.create",
            "registered_model",
            model_id,
            after={
                "name": name,
                "description": description,
                "tags": checked_tags,
                "policy": policy_of(model).to_dict(),
            },
        )
        return model, True

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return load_models(conn, [model_row(conn, name)])[0]

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.registered_models).order_by(_m.name)).all()
            return load_models(conn, rows)

    def search_models(self, filter_string: str = "") -> list[RegisteredModel]:
        """Models matching e.g. ``"name LIKE 'churn%' AND tags.team = 'risk'"``, by name."""
        clauses = parse(filter_string, MODEL_COLUMNS)
        with self.db.read() as conn:
            terms = model_filter(clauses, conn.dialect.name)
            query = sa.select(t.registered_models).where(*terms).order_by(_m.name)
            return load_models(conn, conn.execute(query).all())

    def update_model(self, name: str, *, description: str | None) -> RegisteredModel:
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            self._update(conn, model, "registered_model.update", description=description)
            return load_models(conn, [model_row(conn, name)])[0]

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        """Give the model a new name; its versions, aliases, stages and requests move with it.

        ``models:/<old name>/...`` stops resolving and the old name is free to take, so while
        the model's policy protects an alias it has or a stage one of its versions is in, only an
        enabled admin may rename it (as only an admin may delete a protected alias).
        """
        check_model_name(new_name)
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            if new_name == name:
                return load_models(conn, [model])[0]
            taken = conn.execute(sa.select(_m.id).where(_m.name == new_name)).first()
            if taken is not None:
                raise AlreadyExists(
                    f"registered model {new_name!r} already exists; pick another name for "
                    f"{name!r} (or delete {new_name!r} first)"
                )
            guarded = _protected_in_use(conn, model)
            if guarded:
                user = find_user(conn, self.actor)
                if user is None or user.disabled or user.role != "admin":
                    raise PermissionDenied(
                        f"model {name!r} has {' and '.join(guarded)} protected by its approval "
                        f"policy, which models:/{name}/... would stop naming; only an enabled "
                        "admin may rename it"
                    )
            try:
                self._update(conn, model, "registered_model.rename", name=new_name)
            except sa.exc.IntegrityError as exc:  # renamed or created under that name meanwhile
                raise AlreadyExists(
                    f"registered model {new_name!r} already exists; pick another name"
                ) from exc
            return load_models(conn, [model_row(conn, new_name)])[0]

    def set_model_tag(self, name: str, key: str, value: str) -> RegisteredModel:
        ((key, value),) = check_tags({key: value}).items()
        tg = t.registered_model_tags.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            before = conn.execute(
                sa.select(tg.value).where(tg.model_id == model.id, tg.key == key)
            ).scalar()
            upsert(
                conn,
                t.registered_model_tags,
                [{"model_id": model.id, "key": key, "value": value}],
                update=["value"],
            )
            self._audit(
                conn,
                "registered_model.tag",
                "registered_model",
                model.id,
                before={key: before},
                after={key: value},
            )
            return load_models(conn, [model])[0]

    def delete_model_tag(self, name: str, key: str) -> RegisteredModel:
        tg = t.registered_model_tags.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            where = (tg.model_id == model.id, tg.key == key)
            before = conn.execute(sa.select(tg.value).where(*where)).scalar()
            if before is None:
                raise NotFound(f"model {name!r} has no tag {key!r}")
            conn.execute(t.registered_model_tags.delete().where(*where))
            self._audit(
                conn,
                "registered_model.tag",
                "registered_model",
                model.id,
                before={key: before},
                after={key: None},
            )
            return load_models(conn, [model])[0]

    def set_policy(self, name: str, policy: ApprovalPolicy) -> RegisteredModel:
        """Replace the model's approval policy. Open requests keep the rule they were opened
        under."""
        document = json.dumps(check_policy(policy).to_dict())
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            self._update(
                conn,
                model,
                "registered_model.policy",
                approval_policy_json=document,
                shown={"policy": (policy_of(model).to_dict(), policy.to_dict())},
            )
            return load_models(conn, [model_row(conn, name)])[0]

    def set_card_info(self, name: str, **fields: str | Sequence[str] | None) -> RegisteredModel:
        """Set model-card sections (``intended_use=...``, ``limitations=...``; None removes
        one); the others are kept. ``CARD_FIELDS`` lists the sections."""
        changes = {field: _card_value(field, value) for field, value in fields.items()}
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            before = json.loads(model.card_json) if model.card_json else {}
            card = {**before, **changes}
            card = {k: v for k, v in card.items() if v is not None}
            self._update(
                conn,
                model,
                "registered_model.card",
                card_json=json.dumps(card, sort_keys=True),
                shown={"card": (before, card)},
            )
            return load_models(conn, [model_row(conn, name)])[0]

    def _update(
        self,
        conn: sa.Connection,
        model: Any,
        action: str,
        *,
        shown: dict[str, tuple[Any, Any]] | None = None,
        **values: Any,
    ) -> None:
        conn.execute(
            t.registered_models.update()
            .where(_m.id == model.id)
            .values(**values, updated_at=self._now())
        )
        pairs = shown or {key: (getattr(model, key), value) for key, value in values.items()}
        self._audit(
            conn,
            action,
            "registered_model",
            model.id,
            before={key: old for key, (old, _) in pairs.items()},
            after={key: new for key, (_, new) in pairs.items()},
        )

    def delete_model(self, name: str) -> None:
        """Delete the model, its versions and requests. Refused while a version has an alias or
        is in Production (delete the aliases and archive the version first)."""
        v, al = t.model_versions.c, t.model_aliases.c
        with self.db.write() as conn:
            model = model_row(conn, name, lock=True)
            aliases = (
                conn.execute(sa.select(al.alias).where(al.model_id == model.id).order_by(al.alias))
                .scalars()
                .all()
            )
            live = (
                conn.execute(
                    sa.select(v.version).where(
                        v.model_id == model.id, v.stage == Stage.PRODUCTION.value
                    )
                )
                .scalars()
                .all()
            )
            if aliases or live:
                raise Conflict(
                    f"model {name!r} cannot be deleted while "
                    + (f"aliases {', '.join(aliases)} point at its versions" if aliases else "")
                    + (" and " if aliases and live else "")
                    + (f"versions {', '.join(map(str, live))} are in Production" if live else "")
                    + "; delete the aliases and archive those versions first"
                )
            ids = conn.execute(sa.select(v.id).where(v.model_id == model.id)).scalars().all()
            a = t.artifacts.c
            conn.execute(
                t.artifacts.delete().where(a.owner_type == "model_version", a.owner_id.in_(ids))
            )
            conn.execute(t.registered_models.delete().where(_m.id == model.id))
            self._audit(
                conn,
                "registered_model.delete",
                "registered_model",
                model.id,
                before={"name": name, "versions": len(ids)},
                after=None,
            )
