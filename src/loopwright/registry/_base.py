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

# MLflow's model names allow anything but '/' and ':' that does not read as another path.
# Loopwright's native API and models:/name@alias URIs put the name in a URL path, so '@', '?', '#'
# and '%' stay out too, as do unprintable characters and spaces at either end.
_NOT_IN_NAMES = frozenset("/:@?#%")
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,100}")
# MLflow reserves 'latest' and version references 'v<number>' (any case); Loopwright also keeps
# bare numbers, which resolve() reads as version numbers. Stage names are aliases like any other:
# models:/churn@production is the alias, models:/churn/Production the stage.
_RESERVED_ALIAS = re.compile(r"latest|v\d+|\d+", re.IGNORECASE)


def check_model_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= limits.MODEL_NAME
        or name != name.strip()
        or name in (".", "..")
        or any(c in _NOT_IN_NAMES or not c.isprintable() for c in name)
    ):
        raise InvalidInput(
            f"model name {name!r} must be 1-{limits.MODEL_NAME} printable characters without "
            "'/', ':', '@', '?', '#', '%' or spaces at either end, and not '.' or '..' "
            "(e.g. 'churn-classifier')"
        )
    return name


def check_alias(alias: object) -> str:
    if (
        not isinstance(alias, str)
        or not _ALIAS.fullmatch(alias)
        or _RESERVED_ALIAS.fullmatch(alias)
    ):
        raise InvalidInput(
            f"alias {alias!r} must be 1-100 letters, digits, '_' or '-', and not 'latest', "
            "'v<number>' or a number, which name versions (e.g. 'champion')"
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
