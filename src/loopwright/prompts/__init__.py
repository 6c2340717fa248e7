"""Prompts as registry items: versioned templates, aliases under approval, a client-side cache.

Example:
    >>> from loopwright.prompts import parse_prompt_uri
    >>> parse_prompt_uri("prompts:/greet/2")
    ('greet', 2)

Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .cache import CachedPrompts as CachedPrompts
    from .entities import Prompt as Prompt
    from .entities import PromptAliasChange as PromptAliasChange
    from .entities import PromptVersion as PromptVersion
    from .service import PromptService as PromptService
    from .uris import parse_prompt_uri as parse_prompt_uri

_LAZY = {
    "CachedPrompts": "cache",
    "Prompt": "entities",
    "PromptAliasChange": "entities",
    "PromptVersion": "entities",
    "PromptService": "service",
    "parse_prompt_uri": "uris",
}
__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY, globals())
