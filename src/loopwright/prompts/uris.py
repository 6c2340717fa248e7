"""``prompts:/`` URIs: ``prompts:/name/3`` (a version), ``prompts:/name@alias`` (what an alias
points at; ``@latest`` is the newest version), as MLflow spells them.

Example:
    >>> parse_prompt_uri("prompts:/greet@production")
    ('greet', 'production')
    >>> parse_prompt_uri("prompts:/greet/3")
    ('greet', 3)
"""

from __future__ import annotations

from .._numbers import is_number
from ..errors import InvalidInput

__all__ = ["parse_prompt_uri"]

_SCHEME = "prompts:/"


def parse_prompt_uri(uri: object) -> tuple[str, int | str]:
    """``(name, version number or alias)`` of a ``prompts:/`` URI; ``InvalidInput`` if it is
    not one."""
    if not isinstance(uri, str) or not uri.startswith(_SCHEME):
        raise InvalidInput(
            f"prompt URI {uri!r} must read prompts:/<name>/<version> or prompts:/<name>@<alias> "
            "(e.g. prompts:/greet/3, prompts:/greet@production, prompts:/greet@latest)"
        )
    rest = uri[len(_SCHEME) :].lstrip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in alias:
            return name, alias
    else:
        name, _, number = rest.rpartition("/")
        if name and is_number(number) and int(number) > 0:
            return name, int(number)
    raise InvalidInput(
        f"prompt URI {uri!r} names no version: write prompts:/<name>/<version> or "
        "prompts:/<name>@<alias> (e.g. prompts:/greet/3, prompts:/greet@latest)"
    )
