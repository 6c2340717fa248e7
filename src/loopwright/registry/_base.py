"""What the registry service's parts share: the stores, the acting user, the clock, validation."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import Conflict, InvalidInput
from ..store import limits
from ..store.audit import append_event
from ..store.database import Database
from ..store.home import Store
from .entities import Stage

__all__ = ["RegistryBase", "check_alias", "check_model_name", "check_tags", "parse_stage"]

_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{limits.MODEL_NAME - 1}}}")
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,100}")
_RESERVED_ALIASES = frozenset({"latest"} | {stage.value.lower() for stage in Stage})


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"model name {name!r} must be 1-256 characters, start with a letter or digit and "
            "use only letters, digits, '.', '_' and '-' (e.g. 'churn-classifier')"
        )
    return name


def check_alias(alias: object) -> str:
    if (
        not isinstance(alias, str)
        or not _ALIAS.fullmatch(alias)
        or alias.isdigit()
        or re.fullmatch(r"[vV]\d+", alias)
        or alias.lower() in _RESERVED_ALIASES
    ):
        raise InvalidInput(
            f"alias {alias!r} must be 1-100 letters, digits, '_' or '-', and not a number, "
            "'v<number>', 'latest' or a stage name (e.g. 'champion')"
        )
    return alias


def check_tags(tags: Mapping[str, object] | None) -> dict[str, str]:
    checked = {}
    for key, value in (tags or {}).items():
        limits.check_text("tag key", key, limit=limits.KEY)
        checked[key] = limits.check_text(
            f"tag {key!r} value", str(value), limit=limits.REGISTRY_TAG_VALUE, allow_empty=True
        )
    return checked


def parse_stage(stage: Stage | str) -> Stage:
    """A :class:`Stage` from itself or its name in any case (``"production"``)."""
    if isinstance(stage, Stage):
        return stage
    for known in Stage:
        if isinstance(stage, str) and stage.lower() == known.value.lower():
            return known
    raise InvalidInput(f"stage {stage!r} is not one of {', '.join(s.value for s in Stage)}")


def require_ready(version: Any, model: str, doing: str) -> None:
    """Refuse changes to a deleted version (``version`` is a ``model_versions`` row)."""
    if version.status == "DELETED":
        raise Conflict(
            f"version {version.version} of model {model!r} is deleted and cannot be {doing}; "
            "register the package again to get a new version"
        )


class RegistryBase:
    """The stores a registry service works on, who it acts as, and its clock."""

    store: Store
    db: Database
    _actor: str | None
    _clock: Callable[[], int]

    @property
    def actor(self) -> str:
        """Who changes are recorded as: the ``actor`` given, else the store's user."""
        return self._actor or self.store.actor

    def _now(self) -> int:
        return self._clock()

    def _audit(
        self,
        conn: sa.Connection,
        action: str,
        subject_type: str,
        subject_id: str,
        before: Any = None,
        after: Any = None,
    ) -> None:
        append_event(
            conn,
            actor=self.actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            before=before,
            after=after,
        )
