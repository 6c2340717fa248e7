"""Guardrails: checks on a request's text before the call and on the answer after it.

A check is a function shaped like a scorer, ``check(*, inputs, outputs, expectations, trace)``
(outputs is None before the call), returning ``True``/``False`` (pass/fail), a number (passes at
or above ``params["threshold"]``, default 0.5), or a :class:`Verdict` with a reason. Built in:

- ``regex``: fails when any of ``params["patterns"]`` matches;
- ``denylist``: fails on any of ``params["words"]`` (case-insensitive, whole words);
- ``pii``: emails, phone numbers, credit-card numbers (Luhn-checked) and API-key shapes
  (``params["kinds"]`` picks some);
- ``json_schema``: the answer must be JSON valid against ``params["schema"]`` (post only; on a
  stream, checked at the end);
- ``length``: at most ``params["max_chars"]`` characters;
- ``tokens``: at most ``params["max_tokens"]`` tokens (estimated as characters / 4).

:func:`register_check` adds a check by name (an ``@lw.scorer`` works as one). Each check gives a
:class:`Decision` (``pass``, ``block`` or ``annotate`` by the route's mode, and why), which the
gateway records on the request's trace as a GUARDRAIL span.

Example:
    >>> spec = check_spec(GuardrailSpec("pii", stage="post", mode="block"), "doc")
    >>> run_check(spec, inputs="hi", outputs="write to ada@example.com").action
    'block'
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import anyio

from ..errors import InvalidInput
from .entities import GuardrailSpec

__all__ = [
    "STAGES",
    "Decision",
    "Verdict",
    "check_spec",
    "checks",
    "register_check",
    "run_check",
    "run_check_async",
]

STAGES = ("pre", "post")
MODES = ("block", "annotate")
MAX_PATTERN = 1000
# Pattern checks scan the text in windows (each ``re`` call holds the GIL for its whole run, so
# a thread alone would not keep the event loop answering); a match longer than OVERLAP that
# straddles two windows may be missed. Past MAX_SCAN_CHARS a pattern check fails closed.
WINDOW = 65_536
OVERLAP = 1024
MAX_SCAN_CHARS = 4_000_000
# Texts longer than this (and every registered check) are checked on a worker thread.
OFF_LOOP_CHARS = 8192
PATTERN_CHECKS = frozenset({"pii", "regex", "denylist"})

CheckFunction = Callable[..., Any]


@dataclass(frozen=True)
class Verdict:
    """What a check may return: whether the text passes and why not."""

    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """A guardrail's outcome on one text: ``pass``, ``block`` or ``annotate``."""

    check: str
    stage: str
    action: str
    reason: str = ""
    duration_ns: int = 0

    @property
    def blocked(self) -> bool:
        return self.action == "block"


# Every pattern is bounded: a start only at a token's edge and bounded repeats, so a scan is
# linear in the text (an unanchored ``[...]+@`` was quadratic on 40 KB without an '@').
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}"
)
_PHONE = re.compile(
    r"(?<![\w+])(?<!\d[\s.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?!\w|[\s.-]\d)"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_API_KEY = re.compile(
    r"(?<![\w-])(?:sk-(?:proj-)?[A-Za-z0-9_-]{20}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}"
    r"|xox[abprs]-[A-Za-z0-9-]{10}|AIza[0-9A-Za-z_-]{35})"
)
PII_KINDS = ("email", "phone", "credit_card", "api_key")


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _text(inputs: Any, outputs: Any) -> str:
    return str(inputs if outputs is None else outputs)


def windows(text: str) -> Iterator[str]:
    """``text`` in overlapping windows of at most WINDOW + OVERLAP characters.

    A window after the first starts after the first space of its overlap, so a word cut in
    two does not look like a word of its own to the patterns' edge checks.
    """
    if len(text) <= WINDOW + OVERLAP:
        yield text
        return
    for end in range(WINDOW, len(text) + WINDOW, WINDOW):
        start = max(0, end - WINDOW - OVERLAP)
        yield text[start + _word_edge(text, start) : end]


def _word_edge(text: str, start: int) -> int:
    """How far into ``text[start:]`` the first whole word begins (0 at the text's start)."""
    if start == 0:
        return 0
    space = re.search(r"\s", text[start : start + OVERLAP // 2])
    return 0 if space is None else space.end()


def _scanned(text: str) -> str:
    if len(text) > MAX_SCAN_CHARS:
        raise ValueError(
            f"the text has {len(text)} characters, over the {MAX_SCAN_CHARS} a pattern check "
            "scans; send less text on a route with pattern guardrails"
        )
    return text


def _pii(*, inputs: Any, outputs: Any, params: Mapping[str, Any], **_: Any) -> Verdict:
    text = _scanned(_text(inputs, outputs))
    kinds = params.get("kinds") or PII_KINDS
    found: list[str] = []
    for window in windows(text):
        if "email" in kinds and "email" not in found and _EMAIL.search(window):
            found.append("email")
        if "phone" in kinds and "phone" not in found and _PHONE.search(window):
            found.append("phone")
        if "credit_card" in kinds and "credit_card" not in found:
            for match in _CARD.finditer(window):
                digits = re.sub(r"\D", "", match.group())
                if 13 <= len(digits) <= 19 and _luhn(digits):
                    found.append("credit_card")
                    break
        if "api_key" in kinds and "api_key" not in found and _API_KEY.search(window):
            found.append("api_key")
    found.sort(key=PII_KINDS.index)
    # The reason names the kinds only: quoting the match would copy the PII into the trace.
    return Verdict(not found, f"found {', '.join(found)}" if found else "")


def _regex(*, inputs: Any, outputs: Any, params: Mapping[str, Any], **_: Any) -> Verdict:
    text = _scanned(_text(inputs, outputs))
    for window in windows(text):
        for pattern in params["_compiled"]:
            if pattern.search(window):
                return Verdict(False, f"matches pattern {pattern.pattern!r}")
    return Verdict(True)


def _denylist(*, inputs: Any, outputs: Any, params: Mapping[str, Any], **_: Any) -> Verdict:
    for window in windows(_scanned(_text(inputs, outputs))):
        match = params["_compiled"].search(window)
        if match is not None:
            return Verdict(False, f"contains {match.group()!r}")
    return Verdict(True)


def _json_schema(*, outputs: Any, params: Mapping[str, Any], **_: Any) -> Verdict:
    import jsonschema

    if outputs is None:
        return Verdict(True)
    try:
        value = json.loads(str(outputs))
    except json.JSONDecodeError as exc:
        return Verdict(False, f"the answer is not JSON ({exc.msg} at {exc.pos})")
    error = jsonschema.exceptions.best_match(params["_validator"].iter_errors(value))
    if error is None:
        return Verdict(True)
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return Verdict(False, f"the answer does not match the schema at {where}: {error.message}")


def _length(*, inputs: Any, outputs: Any, params: Mapping[str, Any], **_: Any) -> Verdict:
    size = len(_text(inputs, outputs))
    limit = params["max_chars"]
    return Verdict(size <= limit, f"{size} characters, over the limit of {limit}")


def _tokens(*, inputs: Any, outputs: Any, params: Mapping[str, Any], **_: Any) -> Verdict:
    estimate = -(-len(_text(inputs, outputs)) // 4)
    limit = params["max_tokens"]
    return Verdict(estimate <= limit, f"about {estimate} tokens, over the limit of {limit}")


_BUILT_IN: dict[str, CheckFunction] = {
    "pii": _pii,
    "regex": _regex,
    "denylist": _denylist,
    "json_schema": _json_schema,
    "length": _length,
    "tokens": _tokens,
}
_REGISTERED: dict[str, CheckFunction] = {}
# Checks that read partial text meaningfully (a stream is checked at each chunk with them);
# the others run once the answer is whole.
INCREMENTAL = frozenset({"pii", "regex", "denylist", "length", "tokens"})


def register_check(name: str, function: CheckFunction) -> CheckFunction:
    """Make ``function`` usable as guardrail ``name`` in this process's routes.

    Example:
        >>> _ = register_check("no-shouting", lambda *, inputs, outputs, **_: not str(
        ...     outputs or inputs).isupper())
    """
    if name in _BUILT_IN:
        raise InvalidInput(f"guardrail {name!r} is built in; register yours under another name")
    if not callable(function):
        raise InvalidInput(f"guardrail {name!r} must be callable")
    _REGISTERED[name] = function
    return function


def checks() -> list[str]:
    """The names of the checks routes may use: built in, then registered."""
    return [*_BUILT_IN, *sorted(_REGISTERED)]


def check_spec(spec: GuardrailSpec, where: str) -> GuardrailSpec:
    """``spec`` with its parameters checked (and patterns compiled), or InvalidInput."""
    if spec.stage not in STAGES:
        raise InvalidInput(f"{where}: stage {spec.stage!r} must be 'pre' or 'post'")
    if spec.mode not in MODES:
        raise InvalidInput(f"{where}: mode {spec.mode!r} must be 'block' or 'annotate'")
    if spec.name is not None and (not isinstance(spec.name, str) or not 0 < len(spec.name) <= 64):
        raise InvalidInput(f"{where}: name must be 1-64 characters")
    params = {k: v for k, v in spec.params.items() if not k.startswith("_")}
    check = spec.check
    if check == "regex":
        patterns = params.get("patterns")
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and len(p) <= MAX_PATTERN for p in patterns)
        ):
            raise InvalidInput(f"{where}: regex needs params.patterns, a list of patterns")
        try:
            compiled = [re.compile(p) for p in patterns]
        except re.error as exc:
            raise InvalidInput(
                f"{where}: pattern {exc.pattern!r} does not compile: {exc}"
            ) from None
        for pattern in compiled:
            _check_bounded(where, pattern.pattern)
        params["_compiled"] = compiled
    elif check == "denylist":
        words = params.get("words")
        if (
            not isinstance(words, list)
            or not words
            or not all(isinstance(w, str) and w.strip() for w in words)
        ):
            raise InvalidInput(f"{where}: denylist needs params.words, a list of words")
        alternatives = "|".join(re.escape(w.strip()) for w in words)
        params["_compiled"] = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
    elif check == "pii":
        kinds = params.get("kinds", list(PII_KINDS))
        if not isinstance(kinds, list) or not set(kinds) <= set(PII_KINDS) or not kinds:
            raise InvalidInput(f"{where}: pii kinds must be some of {list(PII_KINDS)}")
    elif check == "json_schema":
        _schema_validator(where, params)
        if spec.stage != "post":
            raise InvalidInput(f"{where}: json_schema checks the answer: use stage 'post'")
    elif check in ("length", "tokens"):
        key = "max_chars" if check == "length" else "max_tokens"
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput(f"{where}: {check} needs params.{key}, a whole number >= 1")
    elif check not in _REGISTERED:
        raise InvalidInput(
            f"{where}: unknown guardrail {check!r}; known: {', '.join(checks())} "
            "(register your own with loopwright.gateway.guardrails.register_check)"
        )
    return replace(spec, params=params)


def _check_bounded(where: str, pattern: str) -> None:
    """Refuse a repeat inside an unbounded repeat (``(a+)+``, ``(\\w+\\s?)*``): such patterns
    backtrack exponentially on text that almost matches, and ``re`` cannot be interrupted."""
    # re's private parser (typeshed does not declare it: imported by name, used untyped).
    constants: Any = importlib.import_module("re._constants")
    parser: Any = importlib.import_module("re._parser")

    repeats = (constants.MAX_REPEAT, constants.MIN_REPEAT, constants.POSSESSIVE_REPEAT)

    def walk(items: Any, inside: bool) -> None:
        for op, arg in items:
            if op in repeats:
                low, high, body = arg
                unbounded = high is constants.MAXREPEAT or high > 100
                if inside and high > 1 and low != high:
                    raise InvalidInput(
                        f"{where}: pattern {pattern!r} nests a repeat inside an unbounded "
                        "repeat, which can take exponential time; rewrite it without the "
                        "nesting (e.g. '(ab)+' rather than '(a+b?)+')"
                    )
                walk(body, inside or unbounded)
            elif op is constants.SUBPATTERN:
                walk(arg[-1], inside)
            elif op is constants.BRANCH:
                for branch in arg[1]:
                    walk(branch, inside)
            elif op in (constants.ASSERT, constants.ASSERT_NOT):
                walk(arg[1], inside)

    walk(parser.parse(pattern), False)


def _schema_validator(where: str, params: dict[str, Any]) -> None:
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - the llm extra installs it
        raise InvalidInput(
            f"{where}: json_schema needs the jsonschema package (pip install 'loopwright[llm]')"
        ) from None
    schema = params.get("schema")
    if not isinstance(schema, dict):
        raise InvalidInput(f"{where}: json_schema needs params.schema, a JSON Schema object")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise InvalidInput(
            f"{where}: params.schema is not a valid JSON Schema: {exc.message}"
        ) from None
    params["_validator"] = cls(schema)


def run_check(
    spec: GuardrailSpec, *, inputs: Any, outputs: Any = None, trace: Any = None
) -> Decision:
    """The decision of one checked spec on a request's text (and the answer's, post)."""
    import time

    function = _BUILT_IN.get(spec.check) or _REGISTERED.get(spec.check)
    if function is None:  # unregistered since the route was saved
        return Decision(spec.label, spec.stage, spec.mode, f"guardrail {spec.check!r} is unknown")
    started = time.perf_counter_ns()
    try:
        if spec.check in _BUILT_IN:
            raw = function(inputs=inputs, outputs=outputs, params=spec.params)
        else:
            raw = function(inputs=inputs, outputs=outputs, expectations=None, trace=trace)
        passed, reason = _verdict(raw, spec.params)
    except Exception as exc:  # a failing check fails closed, and says why
        passed, reason = False, f"the check raised {type(exc).__name__}: {exc}"[:500]
    action = "pass" if passed else spec.mode
    return Decision(spec.label, spec.stage, action, "" if passed else reason,
                    time.perf_counter_ns() - started)  # fmt: skip


async def run_check_async(
    spec: GuardrailSpec, *, inputs: Any, outputs: Any = None, trace: Any = None
) -> Decision:
    """:func:`run_check` on a worker thread when the text is long or the check is registered
    (someone's Python code), so a slow check does not hold up the server's other requests."""
    text = inputs if outputs is None else outputs
    if spec.check in _BUILT_IN and (not isinstance(text, str) or len(text) <= OFF_LOOP_CHARS):
        return run_check(spec, inputs=inputs, outputs=outputs, trace=trace)

    def check() -> Decision:
        return run_check(spec, inputs=inputs, outputs=outputs, trace=trace)

    return await anyio.to_thread.run_sync(check)


def _verdict(raw: Any, params: Mapping[str, Any]) -> tuple[bool, str]:
    if isinstance(raw, Verdict):
        return raw.passed, raw.reason
    if isinstance(raw, bool):
        return raw, "" if raw else "the check failed"
    if isinstance(raw, int | float):
        threshold = float(params.get("threshold", 0.5))
        return raw >= threshold, f"score {raw} below the threshold {threshold}"
    if isinstance(raw, str):  # a label: yes/pass/true/ok pass
        return raw.lower() in ("yes", "pass", "true", "ok"), f"the check answered {raw!r}"
    # A scorer's Feedback (value, rationale, error), or anything else with a value.
    error = getattr(raw, "error", None)
    if error:
        return False, f"the check failed: {error}"[:500]
    value = getattr(raw, "value", raw)
    if value is raw:
        return bool(raw), "the check failed"
    passed, reason = _verdict(value, params)
    return passed, str(getattr(raw, "rationale", "") or "") or reason
