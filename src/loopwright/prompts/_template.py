"""Prompt templates: checking, variables, rendering and the content digest.

A template is text or a list of chat messages (``{"role": ..., "content": ...}``). Variables are
MLflow's double braces, ``{{ name }}`` or ``{{ user.name }}``; a template with Jinja2 statements
(``{% ... %}``) renders through Jinja2's sandbox, as MLflow renders it, bounded in time and size
(``_sandbox``). Values are inserted in one pass, so a value that itself reads ``{{ other }}`` is
never expanded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import InvalidInput
from ..store import limits

__all__ = ["VARIABLE", "canonical_json", "check_template", "digest", "render", "variables_of"]

# MLflow's PROMPT_TEMPLATE_VARIABLE_PATTERN (mlflow/prompt/constants.py), so both agree on what
# a variable is.
VARIABLE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}")

Template = str | tuple[Mapping[str, Any], ...]


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def check_template(template: object) -> tuple[str, Template]:
    """``(kind, template)`` where kind is ``text`` or ``chat``; ``InvalidInput`` naming what is
    wrong (not a string or a list of messages, empty, past the size cap, a message without a
    string role and content)."""
    if isinstance(template, str):
        if not template:
            raise InvalidInput("a prompt template must not be empty")
        _check_size(len(template))
        limits.check_text("prompt template", template, limit=limits.PROMPT_TEMPLATE)
        _check_jinja(template)
        return "text", template
    if not isinstance(template, Sequence) or isinstance(template, bytes) or not template:
        raise InvalidInput(
            f"a prompt template is a string or a non-empty list of chat messages "
            f"([{{'role': 'user', 'content': 'Hi {{{{ name }}}}'}}]), not {type(template).__name__}"
        )
    messages = []
    for n, message in enumerate(template):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise InvalidInput(
                f"chat message {n} of the template must be a mapping with a string 'role' "
                f"and 'content', not {message!r:.80}"
            )
        content = message.get("content")
        if not isinstance(content, str) or not message["role"]:
            raise InvalidInput(
                f"chat message {n} of the template needs a non-empty 'role' and a string 'content'"
            )
        limits.check_text(
            f"chat message {n} content", content, limit=limits.PROMPT_TEMPLATE, allow_empty=True
        )
        messages.append({str(k): v for k, v in message.items()})
    _check_size(len(canonical_json(messages)))
    _check_jinja(tuple(messages))
    return "chat", tuple(messages)


def _check_jinja(template: Template) -> None:
    """Refuse a Jinja2 template that could never render within the sandbox's bounds."""
    if not _is_jinja(template):
        return
    try:
        from jinja2 import TemplateSyntaxError

        from ._sandbox import BoundedEnvironment, check_bounds
    except ImportError:  # pragma: no cover - variables_of says to install jinja2
        return

    environment = BoundedEnvironment()
    for text in _texts(template):
        try:
            check_bounds(environment.parse(text))
        except TemplateSyntaxError as exc:
            raise InvalidInput(
                f"the Jinja2 template does not parse: {exc.message} (line {exc.lineno})"
            ) from None


def _check_size(size: int) -> None:
    if size > limits.PROMPT_TEMPLATE:
        raise InvalidInput(
            f"the prompt template has {size} characters; the cap is {limits.PROMPT_TEMPLATE} "
            "(split it, or keep long reference text in a retrieval step)"
        )


def _texts(template: Template) -> list[str]:
    if isinstance(template, str):
        return [template]
    return [str(message["content"]) for message in template]


def variables_of(template: Template) -> tuple[str, ...]:
    """The template's variables, each once, in the order they first appear (a Jinja2
    template's: the names it reads from outside, sorted, so loop variables are not asked for).
    """
    if _is_jinja(template):
        return _jinja_variables(template)
    found: dict[str, None] = {}
    for text in _texts(template):
        for match in VARIABLE.finditer(text):
            found.setdefault(match.group(1))
    return tuple(found)


def _jinja_variables(template: Template) -> tuple[str, ...]:
    try:
        from jinja2 import TemplateSyntaxError, meta
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:  # pragma: no cover - jinja2 comes with the server extra
        raise InvalidInput(
            "this prompt uses Jinja2 statements ({% ... %}); install jinja2 to register it"
        ) from None
    environment = SandboxedEnvironment()
    names: set[str] = set()
    for text in _texts(template):
        try:
            names |= meta.find_undeclared_variables(environment.parse(text))
        except TemplateSyntaxError as exc:
            raise InvalidInput(
                f"the Jinja2 template does not parse: {exc.message} (line {exc.lineno})"
            ) from None
    return tuple(sorted(names))


def _is_jinja(template: Template) -> bool:
    return any("{%" in text and "%}" in text for text in _texts(template))


def render(
    template: Template,
    variables: Sequence[str],
    values: Mapping[str, Any],
    *,
    allow_partial: bool = False,
    what: str = "the prompt",
) -> str | list[dict[str, Any]]:
    """The template with ``values`` in place of its variables.

    A variable without a value is an error unless ``allow_partial`` (it then stays as written);
    a value for no variable of the template is an error too (a misspelt name would otherwise be
    dropped silently).
    """
    unknown = sorted(set(values) - set(variables))
    if unknown:
        raise InvalidInput(
            f"{what} has no variable {', '.join(map(repr, unknown))}; its variables: "
            f"{', '.join(variables) or 'none'}"
        )
    missing = [name for name in variables if name not in values]
    if missing and not allow_partial:
        raise InvalidInput(
            f"{what} needs a value for {', '.join(map(repr, missing))} "
            f"(format({', '.join(f'{name}=...' for name in missing)}), or allow_partial=True)"
        )
    fill = _jinja(values) if _is_jinja(template) else _braces(values)
    if isinstance(template, str):
        return fill(template)
    return [{**message, "content": fill(str(message["content"]))} for message in template]


def _braces(values: Mapping[str, Any]) -> Callable[[str], str]:
    def fill(text: str) -> str:
        return VARIABLE.sub(
            lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text
        )

    return fill


def _jinja(values: Mapping[str, Any]) -> Callable[[str], str]:
    try:
        from ._sandbox import render_bounded
    except ImportError:  # pragma: no cover - jinja2 comes with the server extra
        raise InvalidInput(
            "this prompt uses Jinja2 statements ({% ... %}); install jinja2 to format it"
        ) from None

    def fill(text: str) -> str:
        return render_bounded(text, values)

    return fill


def digest(
    kind: str,
    template: Template,
    model_config: Mapping[str, Any] | None,
    response_format: Mapping[str, Any] | None,
) -> str:
    """BLAKE3 of the version's content: what makes two versions say the same thing."""
    from blake3 import blake3

    content = {
        "kind": kind,
        "template": template if isinstance(template, str) else list(template),
        "model_config": model_config,
        "response_format": response_format,
    }
    return blake3(canonical_json(content).encode()).hexdigest()
