"""LLM judges: a rubric, a judge model behind an OpenAI-compatible endpoint, and how to read
its answer (a score of a stated type and a rationale).

The endpoint is a base URL (``http://host:8000/v1``: vLLM, TGI, a hosted API) or Loopwright's
gateway, where ``model`` is a gateway route name. The judge's whole configuration is its
version's content: changing the rubric, the model or the endpoint is a new version, which must
be approved again before a gate uses it.

Example:
    >>> from loopwright.evaluation import Judge
    >>> judge = Judge(
    ...     "correctness",
    ...     rubric="Is {outputs} a correct answer to {inputs}? Expected: {expectations}",
    ...     model="judge-small",
    ...     endpoint="http://127.0.0.1:9/v1",
    ...     output="bool",
    ... )
    >>> judge.parse('{"score": "yes", "rationale": "matches"}')
    Feedback(value=True, rationale='matches', error=None)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import InvalidInput, JudgeFailed
from .entities import Feedback
from .records import is_number
from .scorers import Scorer

__all__ = ["OUTPUTS", "Judge"]

OUTPUTS = ("numeric", "bool", "categorical")
_PLACEHOLDERS = frozenset({"inputs", "outputs", "expectations"})
_TRUE = frozenset({"true", "yes", "pass", "correct", "1"})
_FALSE = frozenset({"false", "no", "fail", "incorrect", "0"})
_INSTRUCTIONS = (
    "You are an evaluation judge. Answer with one JSON object and nothing else: "
    '{{"score": <{kind}>, "rationale": "<one or two sentences>"}}.'
)


class Judge(Scorer):
    """An LLM judge as a scorer (its ``config`` is everything that defines it)."""

    kind = "judge"

    def __init__(
        self,
        name: str,
        *,
        rubric: str,
        model: str,
        endpoint: str,
        output: str = "numeric",
        scale: Sequence[float] = (1, 5),
        labels: Sequence[str] = (),
        api_key_env: str | None = None,
        temperature: float = 0.0,
        timeout_s: float = 30.0,
    ) -> None:
        if output not in OUTPUTS:
            raise InvalidInput(f"judge {name!r}: output {output!r} is not one of {OUTPUTS}")
        fields = {f for _, f, _, _ in string.Formatter().parse(rubric) if f is not None}
        if not rubric.strip() or not fields or not fields <= _PLACEHOLDERS:
            raise InvalidInput(
                f"judge {name!r}: the rubric must use some of {{inputs}}, {{outputs}}, "
                f"{{expectations}} and no other placeholder (found {sorted(fields)}); write "
                "literal braces as {{ and }}"
            )
        if not model or any(c.isspace() for c in model):
            # Runs record "judge:<model> judge <digest>" (gates read it): one word.
            raise InvalidInput(f"judge {name!r}: model {model!r} must be one word, no white space")
        if not endpoint.startswith(("http://", "https://")):
            raise InvalidInput(
                f"judge {name!r}: endpoint {endpoint!r} must be an http(s) base URL such as "
                "http://127.0.0.1:8000/v1"
            )
        low, high = (float(scale[0]), float(scale[1])) if len(scale) == 2 else (0.0, -1.0)
        if output == "numeric" and not low < high:
            raise InvalidInput(f"judge {name!r}: scale must be (low, high) with low < high")
        if output == "categorical" and len(set(labels)) < 2:
            raise InvalidInput(f"judge {name!r}: a categorical judge needs two or more labels")
        self.rubric = rubric
        self.model = model
        self.endpoint = endpoint.rstrip("/")
        self.output = output
        self.scale = (low, high)
        self.labels = tuple(labels)
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._client: Any = None
        super().__init__(self._judge, name)

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Judge:
        known = {
            "rubric",
            "model",
            "endpoint",
            "output",
            "scale",
            "labels",
            "api_key_env",
            "temperature",
            "timeout_s",
        }
        extra = set(config) - known
        if extra:
            raise InvalidInput(f"judge {name!r}: unknown config keys {sorted(extra)}")
        return cls(name, **config)

    @property
    def config(self) -> Mapping[str, Any]:
        return {
            "rubric": self.rubric,
            "model": self.model,
            "endpoint": self.endpoint,
            "output": self.output,
            "scale": list(self.scale),
            "labels": list(self.labels),
            "api_key_env": self.api_key_env,
            "temperature": self.temperature,
            "timeout_s": self.timeout_s,
        }

    @property
    def reference(self) -> str:
        return f"judge:{self.model}"

    @property
    def digest(self) -> str:
        text = json.dumps(self.config, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @contextmanager
    def pooled(self) -> Iterator[None]:
        """Reuse one HTTP client (its connections) for the calls made inside the block, as an
        evaluation does for its rows."""
        import httpx

        self._client = httpx.Client(timeout=self.timeout_s)
        try:
            yield
        finally:
            client, self._client = self._client, None
            client.close()

    def prompt(
        self, inputs: Mapping[str, Any], outputs: Any, expectations: Mapping[str, Any]
    ) -> list[dict[str, str]]:
        kind = {
            "numeric": f"a number from {self.scale[0]:g} to {self.scale[1]:g}",
            "bool": "true or false",
            "categorical": " | ".join(json.dumps(label) for label in self.labels),
        }[self.output]
        values = {
            "inputs": _show(inputs),
            "outputs": _show(outputs),
            "expectations": _show(expectations),
        }
        return [
            {"role": "system", "content": _INSTRUCTIONS.format(kind=kind)},
            {"role": "user", "content": self.rubric.format(**values)},
        ]

    def _judge(
        self, *, inputs: Mapping[str, Any], outputs: Any, expectations: Mapping[str, Any]
    ) -> Feedback:
        return self.parse(self.ask(self.prompt(inputs, outputs, expectations)))

    def ask(self, messages: list[dict[str, str]]) -> str:
        """The judge model's answer text (``JudgeFailed`` if unreachable or malformed)."""
        import httpx

        headers = {}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise JudgeFailed(
                    f"judge {self.name!r}: environment variable {self.api_key_env} is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        body = {"model": self.model, "messages": messages, "temperature": self.temperature}
        url = f"{self.endpoint}/chat/completions"
        try:
            if self._client is not None:
                response = self._client.post(url, json=body, headers=headers)
            else:
                response = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise JudgeFailed(f"judge {self.name!r}: {url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise JudgeFailed(
                f"judge {self.name!r}: {url} answered {response.status_code}: {response.text[:300]}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeFailed(
                f"judge {self.name!r}: {url} did not answer a chat completion: "
                f"{response.text[:300]}"
            ) from exc
        if not isinstance(content, str):
            raise JudgeFailed(f"judge {self.name!r}: the answer has no text content")
        return content

    def parse(self, text: str) -> Feedback:
        """Read ``{"score": ..., "rationale": ...}`` (or ``score: X`` lines) from an answer."""
        score, rationale = _extract(text)
        if score is None:
            raise JudgeFailed(
                f"judge {self.name!r}: cannot read a score from the answer {text[:200]!r}; "
                'the judge must reply {"score": ..., "rationale": ...}'
            )
        return Feedback(self._typed(score, text), rationale)

    def _typed(self, score: Any, text: str) -> float | bool | str:
        if self.output == "numeric":
            try:
                value = float(score)
            except (TypeError, ValueError):
                value = float("nan")
            if not is_number(value) or not self.scale[0] <= value <= self.scale[1]:
                raise JudgeFailed(
                    f"judge {self.name!r}: score {score!r} is not a number in "
                    f"[{self.scale[0]:g}, {self.scale[1]:g}] (answer {text[:200]!r})"
                )
            return value
        if self.output == "bool":
            word = str(score).strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise JudgeFailed(f"judge {self.name!r}: score {score!r} is not true/false")
        label = str(score).strip()
        if label not in self.labels:
            raise JudgeFailed(
                f"judge {self.name!r}: label {label!r} is not one of {list(self.labels)}"
            )
        return label


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_SCORE_LINE = re.compile(r"score\s*[:=]\s*\"?([^\"\n,]+)", re.IGNORECASE)
_RATIONALE_LINE = re.compile(r"rationale\s*[:=]\s*(.+)", re.IGNORECASE)


def _extract(text: str) -> tuple[Any, str]:
    found = _OBJECT.search(text)
    if found:
        try:
            data = json.loads(found.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict) and "score" in data:
            return data["score"], str(data.get("rationale") or "")
    line = _SCORE_LINE.search(text)
    if line is None:
        return None, ""
    why = _RATIONALE_LINE.search(text)
    return line.group(1).strip(), "" if why is None else why.group(1).strip()
