"""The prompt registry's domain objects: prompts, their immutable versions, alias changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._template import Template, render

if TYPE_CHECKING:
    from ..registry.entities import ApprovalPolicy, ApprovalRequest

__all__ = ["Prompt", "PromptAliasChange", "PromptVersion"]


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a prompt: its template and what to call a model with.

    ``template`` is text or a tuple of chat messages (``{"role", "content"}``); ``variables``
    are its ``{{ name }}`` placeholders in order of appearance; ``digest`` is the BLAKE3 hash of
    the content (kind, template, model config, response format), equal for equal content.

    Example:
        >>> v = PromptVersion(id="0", name="greet", version=1, kind="text",
        ...     template="Hello {{ name }}!", variables=("name",), digest="")
        >>> v.format(name="Ada")
        'Hello Ada!'
        >>> v.uri
        'prompts:/greet/1'
    """

    id: str
    name: str
    version: int
    kind: str  # text | chat
    template: Template
    variables: tuple[str, ...]
    digest: str
    model_config: Mapping[str, Any] | None = None
    response_format: Mapping[str, Any] | None = None
    commit_message: str | None = None
    created_by: str | None = None
    created_at: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """``prompts:/name/3``, the URI that loads exactly this version."""
        return f"prompts:/{self.name}/{self.version}"

    def format(self, *, allow_partial: bool = False, **values: Any) -> str | list[dict[str, Any]]:
        """The template with ``values`` in place of its variables: text, or chat messages.

        A variable without a value, or a value for no variable, raises ``InvalidInput`` naming
        it; ``allow_partial`` leaves missing variables as written.
        """
        return render(
            self.template,
            self.variables,
            values,
            allow_partial=allow_partial,
            what=f"prompt {self.uri}",
        )


@dataclass(frozen=True)
class Prompt:
    """A named prompt: its description, tags, aliases (alias -> version) and newest version."""

    id: str
    name: str
    description: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    policy: ApprovalPolicy
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None


@dataclass(frozen=True)
class PromptAliasChange:
    """What ``set_alias`` did: ``applied`` (the alias points at ``version`` now), or the
    prompt's policy protects the alias, nothing moved, and ``request`` awaits approvals."""

    version: PromptVersion
    request: ApprovalRequest | None = None

    @property
    def applied(self) -> bool:
        return self.request is None
