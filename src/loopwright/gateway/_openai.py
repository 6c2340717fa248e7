"""What the gateway reads of OpenAI-shaped requests and answers: the texts guardrails check,
the usage reported, and the error body callers expect."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["answer_text", "chunk_text", "error_body", "request_text", "usage_of"]


def error_body(message: str, kind: str, code: str | None = None) -> bytes:
    """OpenAI's error shape (what its clients parse into ``APIError.message``)."""
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code or kind}}
    ).encode()


def request_text(endpoint: str, body: dict[str, Any]) -> str:
    """The text a request sends: every message's content, the prompt, or the inputs."""
    if endpoint == "chat":
        parts = []
        for message in body.get("messages") or ():
            if isinstance(message, dict):
                parts.append(_content_text(message.get("content")))
        return "\n".join(parts)
    value = body.get("prompt" if endpoint == "completions" else "input")
    if isinstance(value, list):
        return "\n".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only the text ones carry text
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def answer_text(endpoint: str, answer: dict[str, Any]) -> str:
    """The text of a JSON answer's choices (empty for embeddings)."""
    texts = []
    for choice in answer.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if endpoint == "chat":
            message = choice.get("message")
            texts.append(_content_text(message.get("content")) if isinstance(message, dict) else "")
        else:
            text = choice.get("text")
            texts.append(text if isinstance(text, str) else "")
    return "\n".join(texts)


def chunk_text(chunk: dict[str, Any]) -> str:
    """The text one streamed chunk adds (the first choice's delta)."""
    choices = chunk.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content")
        return content if isinstance(content, str) else ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def usage_of(answer: dict[str, Any]) -> tuple[int, int] | None:
    """(prompt tokens, completion tokens) an answer or chunk reports, or None."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens", 0)
    if not isinstance(prompt, int) or not isinstance(completion, int | None):
        return None
    return prompt, completion or 0
