"""The prompt registry as a protocol: what both backends of ``client.prompts`` provide.

:class:`~loopwright.prompts.service.PromptService` (embedded) and
:class:`~loopwright.remote.prompts.RemotePrompts` (over a server, acting as the token's user)
implement it with the same signatures; ``tests/test_service_parity.py`` compares them.
``client.prompts`` wraps either in :class:`~loopwright.prompts.cache.CachedPrompts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..registry.entities import ApprovalPolicy, ApprovalRequest
from .entities import Prompt, PromptAliasChange, PromptVersion

__all__ = ["Prompts"]


class Prompts(Protocol):
    """Prompts, immutable versions, aliases (under approval), tags and diffs."""

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        policy: ApprovalPolicy | None = None,
    ) -> Prompt:
        """A new prompt without versions yet (``register`` creates one when missing)."""
        ...

    def get(self, name: str) -> Prompt: ...

    def search(
        self,
        query: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Prompt]:
        """Prompts whose name contains ``query`` and that carry every tag of ``tags``."""
        ...

    def update(self, name: str, *, description: str | None) -> Prompt: ...

    def set_policy(self, name: str, policy: ApprovalPolicy) -> Prompt: ...

    def delete(self, name: str) -> None: ...

    def set_tag(self, name: str, key: str, value: str) -> None: ...

    def delete_tag(self, name: str, key: str) -> None: ...

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None: ...

    def delete_version_tag(self, name: str, version: int, key: str) -> None: ...

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
        """A new immutable version of ``name``, numbered the newest plus one."""
        ...

    def get_version(self, name: str, version: int) -> PromptVersion: ...

    def resolve(self, name: str, ref: int | str) -> PromptVersion:
        """The version ``ref`` names: a number, an alias, or ``latest``."""
        ...

    def load(self, uri: str) -> PromptVersion:
        """The version ``prompts:/name/3`` or ``prompts:/name@alias`` names, read now."""
        ...

    def versions(self, name: str) -> list[PromptVersion]: ...

    def diff(self, name: str, v1: int | str, v2: int | str) -> str: ...

    def set_alias(
        self, name: str, alias: str, version: int, *, comment: str | None = None
    ) -> PromptAliasChange: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def requests(
        self, status: str | None = "pending", prompt: str | None = None
    ) -> list[ApprovalRequest]: ...

    def get_request(self, request_id: str) -> ApprovalRequest: ...

    def approve(self, request_id: str, comment: str | None = None) -> ApprovalRequest: ...

    def reject(self, request_id: str, comment: str) -> ApprovalRequest: ...
