"""What an evaluation runs per row: a callable, a prompt version sent to a model endpoint, or
nothing (the dataset's records carry precomputed outputs).

Example:
    >>> target = callable_target(lambda question: question.upper())
    >>> target.name, target({"question": "hi"}).outputs
    ('callable:<lambda>', 'HI')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import InvalidInput

__all__ = ["Call", "PromptTarget", "Target", "callable_target", "precomputed", "resolve_target"]


@dataclass(frozen=True)
class Call:
    """One target call: its outputs and what the row's trace-based scorers read."""

    outputs: Any
    duration_ms: float | None = None
    cost_usd: float | None = None
    token_usage: Mapping[str, int] | None = None


class Target(Protocol):
    name: str

    def __call__(self, inputs: Mapping[str, Any]) -> Call: ...


class _Callable:
    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.name = f"callable:{getattr(func, '__qualname__', type(func).__name__)}"

    def __call__(self, inputs: Mapping[str, Any]) -> Call:
        start = time.perf_counter()
        outputs = self.func(**inputs)
        return Call(outputs, (time.perf_counter() - start) * 1000)


def callable_target(func: Callable[..., Any]) -> Target:
    """Call ``func(**inputs)`` per row, timing it."""
    return _Callable(func)


class _Precomputed:
    name = "precomputed"

    def __call__(self, inputs: Mapping[str, Any]) -> Call:  # pragma: no cover - never called
        raise AssertionError("precomputed rows are not called")


precomputed = _Precomputed()


class PromptTarget:
    """A prompt version formatted with each row's inputs and sent to an OpenAI-compatible
    endpoint (a model server, or Loopwright's gateway with ``model`` = a route name)."""

    def __init__(
        self,
        prompt: Any,
        *,
        endpoint: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        if not hasattr(prompt, "format"):
            raise InvalidInput(
                "PromptTarget needs a prompt version (client.prompts.load('prompts:/name@alias'))"
            )
        self.prompt = prompt
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self._client: Any = None
        self.name = str(getattr(prompt, "uri", None) or f"prompt:{getattr(prompt, 'name', '?')}")

    @contextmanager
    def pooled(self) -> Iterator[None]:
        """Reuse one HTTP client for the calls made inside the block (an evaluation's rows)."""
        import httpx

        self._client = httpx.Client(timeout=self.timeout_s)
        try:
            yield
        finally:
            client, self._client = self._client, None
            client.close()

    def __call__(self, inputs: Mapping[str, Any]) -> Call:
        import httpx

        formatted = self.prompt.format(**inputs)
        messages = (
            [{"role": "user", "content": formatted}] if isinstance(formatted, str) else formatted
        )
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "messages": messages}
        url = f"{self.endpoint}/chat/completions"
        start = time.perf_counter()
        if self._client is not None:
            response = self._client.post(url, json=body, headers=headers)
        else:
            response = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
        took = (time.perf_counter() - start) * 1000
        response.raise_for_status()
        data = response.json()
        usage = data.get("usage") or None
        return Call(data["choices"][0]["message"]["content"], took, None, usage)


def resolve_target(target: Any) -> Target:
    """``None`` (precomputed outputs), a :class:`PromptTarget` or any callable."""
    if target is None:
        return precomputed
    if isinstance(target, PromptTarget | _Callable):
        return target
    if isinstance(target, str):
        raise InvalidInput(
            f"target {target!r}: to evaluate a prompt, pass PromptTarget(client.prompts.load("
            f"{target!r}), endpoint=..., model=...); a callable or None (precomputed outputs) "
            "also work"
        )
    if callable(target):
        return callable_target(target)
    raise InvalidInput(
        f"target must be a callable, a PromptTarget or None, not {type(target).__name__}"
    )
