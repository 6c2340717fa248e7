"""Targets that carry a prompt version: the gateway renders the prompt, the caller sends values.

A route's target may name a prompt (``"prompt": "prompts:/support@production"`` or
``"prompts:/support/4"``). A caller of such a route sends the template's values in the
request body's ``prompt_variables`` (an object); the gateway formats the version the target
names with them and sends the result upstream: a chat request's ``messages`` become the
prompt's messages (a text template: one user message) followed by whatever messages the caller
sent; a completion's ``prompt`` becomes the rendered text (the caller's prompt after it). The
version's model config fills the OpenAI parameters the caller left out (``temperature``,
``max_tokens``...). The trace of the request links the version actually used (``name/N``).

So a prompt change is canaried like a model: the route's split (the deployments' traffic
policy) sends e.g. 10% to a target with the candidate version and 90% to one with the
``production`` alias; promoting it is the alias move (after its gate and approval) and the
route back to one target.

Versions are resolved when the gateway refreshes its route cache (every ``refresh_s``; an
alias is followed at most that late) so no request waits on the database. A target whose
prompt cannot be resolved any more (the prompt was deleted) answers no request: the gateway
moves on to the route's fallbacks.

Example:
    >>> from loopwright.prompts.entities import PromptVersion
    >>> from loopwright.gateway.entities import Target
    >>> v = PromptVersion(id="0", name="greet", version=2, kind="text",
    ...     template="Say hello to {{ who }}", variables=("who",), digest="",
    ...     model_config={"temperature": 0.2})
    >>> t = Target("canary", "http://127.0.0.1:9/v1", "m", prompt="prompts:/greet/2")
    >>> body, used = bind("chat", {"prompt_variables": {"who": "Ada"}}, t,
    ...                   {"prompts:/greet/2": v})
    >>> body["messages"], body["temperature"], used
    ([{'role': 'user', 'content': 'Say hello to Ada'}], 0.2, 'greet/2')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, LoopwrightError, NotFound

if TYPE_CHECKING:
    from ..prompts.entities import PromptVersion
    from ..store.home import Store
    from .entities import GatewayRoute, RouteConfig, Target

__all__ = [
    "PROMPT_VARIABLES",
    "PromptUnavailable",
    "bind",
    "check_prompt_uri",
    "check_prompts",
    "resolve_prompts",
    "variables_text",
]

PROMPT_VARIABLES = "prompt_variables"
# The OpenAI parameters a prompt version's model config may supply (the caller's win).
MODEL_PARAMETERS = (
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "presence_penalty",
    "frequency_penalty", "seed",
)  # fmt: skip
MAX_VARIABLES_CHARS = 100_000

Resolved = Mapping[str, "PromptVersion | str"]  # a prompt URI -> its version, or why not


class PromptUnavailable(NotFound):
    """The target's prompt could not be resolved at the last refresh (the gateway tries the
    route's fallbacks; the error never reaches a caller)."""


def check_prompt_uri(where: str, value: object) -> str | None:
    """``value`` if it is a ``prompts:/`` URI (or None), else InvalidInput naming ``where``."""
    if value is None:
        return None
    from ..prompts.uris import parse_prompt_uri

    try:
        parse_prompt_uri(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: prompt: {exc}") from None
    assert isinstance(value, str)
    return value


def prompt_uris(routes: Iterable[GatewayRoute]) -> set[str]:
    """Every prompt URI the routes' targets and fallbacks name."""
    return {
        target.prompt
        for route in routes
        for target in (*route.config.targets, *route.config.fallbacks)
        if target.prompt is not None
    }


def resolve_prompts(store: Store, routes: Iterable[GatewayRoute]) -> dict[str, PromptVersion | str]:
    """Each prompt URI the routes name, loaded now: its version, or why it cannot be."""
    from ..prompts.service import PromptService

    service = PromptService(store)
    found: dict[str, PromptVersion | str] = {}
    for uri in sorted(prompt_uris(routes)):
        try:
            found[uri] = service.load(uri)
        except LoopwrightError as exc:
            found[uri] = str(exc)
    return found


def check_prompts(store: Store, config: RouteConfig) -> None:
    """Refuse a route whose targets or fallbacks name a prompt version or alias that cannot be
    loaded (``NotFound`` naming each), before it is saved."""
    from ..prompts.service import PromptService

    service = PromptService(store)
    problems = []
    targets = (*config.targets, *config.fallbacks)
    for uri in sorted({t.prompt for t in targets if t.prompt is not None}):
        try:
            service.load(uri)
        except LoopwrightError as exc:
            problems.append(f"{uri}: {exc}")
    if problems:
        raise NotFound(
            f"the route names prompts that cannot be loaded: {'; '.join(problems)}; register "
            "the version or set the alias first (client.prompts)"
        )


def variables_text(body: Mapping[str, Any]) -> str:
    """The values of ``prompt_variables`` as text, for the pre-call guardrails (the template is
    registered; the values are what the caller sends)."""
    values = body.get(PROMPT_VARIABLES)
    if not isinstance(values, Mapping):
        return ""
    return "\n".join(v if isinstance(v, str) else json.dumps(v) for v in values.values())


def bind(
    endpoint: str, body: Mapping[str, Any], target: Target, resolved: Resolved
) -> tuple[dict[str, Any], str | None]:
    """The body to send ``target`` (without ``prompt_variables``) and the prompt version used
    (``name/N``, or None when the target has no prompt).

    Raises:
        InvalidInput: the values do not fit the template (a missing or unknown variable), or
            ``prompt_variables`` is not an object.
        PromptUnavailable: the target's prompt could not be resolved.
    """
    values = body.get(PROMPT_VARIABLES)
    sent = {k: v for k, v in body.items() if k != PROMPT_VARIABLES}
    if target.prompt is None or endpoint == "embeddings":
        return sent, None
    version = resolved.get(target.prompt)
    if version is None or isinstance(version, str):
        why = version or "not resolved yet"
        raise PromptUnavailable(f"target {target.name!r}: prompt {target.prompt}: {why}")
    if values is None:
        values = {}
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise InvalidInput(f"'{PROMPT_VARIABLES}' must be an object of the template's values")
    if len(json.dumps(values, default=str)) > MAX_VARIABLES_CHARS:
        raise InvalidInput(f"'{PROMPT_VARIABLES}' is over {MAX_VARIABLES_CHARS} characters")
    rendered = version.format(**values)
    if endpoint == "chat":
        messages = (
            [{"role": "user", "content": rendered}] if isinstance(rendered, str) else rendered
        )
        caller = sent.get("messages")
        sent["messages"] = [*messages, *(caller if isinstance(caller, list) else [])]
    else:
        text = (
            rendered
            if isinstance(rendered, str)
            else "\n".join(str(m.get("content", "")) for m in rendered)
        )
        caller = sent.get("prompt")
        sent["prompt"] = f"{text}\n{caller}" if isinstance(caller, str) and caller else text
    for key in MODEL_PARAMETERS:
        if key in (version.model_config or {}) and key not in sent:
            sent[key] = (version.model_config or {})[key]
    return sent, f"{version.name}/{version.version}"
