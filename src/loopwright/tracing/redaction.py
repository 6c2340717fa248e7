"""Redaction of span attributes before they leave the process or reach the store.

A redactor is ``fn(key, value) -> value``, applied to every attribute and event attribute of
every span (values may be nested dicts and lists). The built-in :func:`mask_secrets` is on by
default: it masks values under secret-sounding keys (``api_key``, ``password``,
``authorization``...) and secret-shaped strings anywhere (OpenAI/Anthropic keys, AWS access key
ids, GitHub and Slack tokens, bearer tokens, JWTs, PEM private keys).

Example:
    >>> mask_secrets("lw.inputs", {"q": "hi", "api_key": "abc"})
    {'q': 'hi', 'api_key': '[REDACTED]'}
    >>> mask_secrets("prompt", "use sk-proj-abcdefghijklmnopqrstuv please")
    'use [REDACTED] please'
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["MASK", "Redactor", "get_redactor", "mask_secrets", "set_redactor"]

MASK = "[REDACTED]"
Redactor = Callable[[str, Any], Any]

_SENSITIVE_NAMES = (
    r"(api[_-]?key|secret|passw(or)?d|passwd|token|authorization|credential|private[_-]?key)"
)
_SECRET_SHAPES = (
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    r"(?i:bearer)\s+[A-Za-z0-9._~+/\-]{12,}=*",
    # Linear on hostile text: a JWT starts only where no token character precedes it (with
    # ``\b``, each "eyJ" of "eyJ-eyJ-..." started a scan to the run's end), and a key's body
    # stops at the next BEGIN (unterminated BEGINs each scanned to the end of the text).
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----(?:(?!-----BEGIN )[\s\S])*?"
    r"-----END [A-Z ]{0,40}PRIVATE KEY-----",
)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled on first use: ``import loopwright`` imports this module and stays fast."""
    return re.compile(_SENSITIVE_NAMES, re.IGNORECASE), re.compile("|".join(_SECRET_SHAPES))


_MAX_DEPTH = 32  # nested values deeper than this are masked whole rather than walked

_lock = threading.Lock()
_current: list[Redactor | None] = []  # empty: the default (mask_secrets)


def mask_secrets(key: str, value: Any) -> Any:
    """``value`` with secrets masked (see the module's docstring)."""
    return _mask(key, value, 0)


def _mask(key: str, value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return MASK
    if isinstance(value, str):
        secret_key, secret_value = _patterns()
        if value and secret_key.search(key) and not _is_count(key):
            return MASK
        return secret_value.sub(MASK, value)
    if isinstance(value, dict):
        return {k: _mask(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(key, item, depth + 1) for item in value]
    return value


def _is_count(key: str) -> bool:
    # "gen_ai.usage.input_tokens", "llm.token_count.prompt": numbers about tokens, not secrets.
    lowered = key.lower()
    return "tokens" in lowered or "token_count" in lowered


def set_redactor(redactor: Redactor | None) -> None:
    """Use ``redactor`` for every span this process records or exports from now on; ``None``
    turns redaction off (the default is :func:`mask_secrets`)."""
    with _lock:
        _current[:] = [redactor]


def get_redactor() -> Redactor | None:
    with _lock:
        return _current[0] if _current else mask_secrets
