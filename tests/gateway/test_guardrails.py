"""Guardrail checks: what each built-in finds, registered checks shaped like scorers, and a
check that raises failing closed."""

from __future__ import annotations

from typing import Any

import pytest

from loopwright.errors import InvalidInput
from loopwright.gateway.entities import GuardrailSpec
from loopwright.gateway.guardrails import Verdict, check_spec, checks, register_check, run_check


def _run(check: str, text: str, mode: str = "block", **params: Any) -> str:
    spec = check_spec(GuardrailSpec(check, "post", mode, params), "test")
    return run_check(spec, inputs="question", outputs=text).action


@pytest.mark.parametrize(
    ("text", "kinds", "action"),
    [
        ("write to ada.l@example.co.uk", ["email"], "block"),
        ("call +44 20 7946 0958 today", ["phone"], "block"),
        ("call (415) 555-0134", ["phone"], "block"),
        ("card 4111 1111 1111 1111", ["credit_card"], "block"),
        ("card 4111-1111-1111-1112", ["credit_card"], "pass"),  # fails Luhn
        ("order 2024-01-05 #12345678", None, "pass"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx", ["api_key"], "block"),
        ("AKIAABCDEFGHIJKLMNOP is the id", ["api_key"], "block"),
        ("the ask is small", None, "pass"),
    ],
)
def test_pii(text: str, kinds: list[str] | None, action: str) -> None:
    params: dict[str, Any] = {} if kinds is None else {"kinds": kinds}
    assert _run("pii", text, **params) == action


def test_the_pii_reason_names_kinds_not_the_match() -> None:
    spec = check_spec(GuardrailSpec("pii"), "t")
    decision = run_check(spec, inputs="", outputs="mail bob@example.com")
    assert decision.reason == "found email" and "bob" not in decision.reason


def test_regex_denylist_length_tokens_json_schema() -> None:
    assert _run("regex", "id: 123-45-6789", patterns=[r"\d{3}-\d{2}-\d{4}"]) == "block"
    assert _run("denylist", "Drop The Table", words=["drop the table"]) == "block"
    assert _run("denylist", "backdrop", words=["drop"]) == "pass"  # whole words only
    assert _run("length", "x" * 11, max_chars=10) == "block"
    assert _run("length", "x" * 11, mode="annotate", max_chars=10) == "annotate"
    assert _run("tokens", "x" * 40, max_tokens=10) == "pass"
    assert _run("tokens", "x" * 41, max_tokens=10) == "block"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert _run("json_schema", '{"n": 3}', schema=schema) == "pass"
    spec = check_spec(GuardrailSpec("json_schema", params={"schema": schema}), "t")
    assert (
        "at n: 'x' is not of type 'integer'"
        in run_check(spec, inputs="", outputs='{"n": "x"}').reason
    )
    assert "not JSON" in run_check(spec, inputs="", outputs="{").reason


def test_registered_checks_take_scorer_shaped_answers() -> None:
    class Feedback:
        def __init__(self, value: Any, rationale: str = "") -> None:
            self.value, self.rationale = value, rationale

    register_check("polite", lambda *, inputs, outputs, **_: "please" in str(outputs or inputs))
    register_check("score", lambda *, inputs, outputs, **_: 0.3)
    register_check("feedback", lambda **_: Feedback("no", "too rude"))
    register_check("verdict", lambda **_: Verdict(False, "custom reason"))
    register_check("boom", lambda **_: 1 / 0)
    assert {"polite", "score", "feedback", "verdict", "boom"} <= set(checks())
    assert _run("polite", "please sit") == "pass"
    assert _run("polite", "sit") == "block"
    assert _run("score", "x") == "block" and _run("score", "x", threshold=0.2) == "pass"
    spec = check_spec(GuardrailSpec("feedback"), "t")
    assert run_check(spec, inputs="", outputs="x").reason == "too rude"
    assert run_check(check_spec(GuardrailSpec("verdict"), "t"), inputs="").reason == (
        "custom reason"
    )
    failed = run_check(check_spec(GuardrailSpec("boom", mode="annotate"), "t"), inputs="")
    assert failed.action == "annotate" and "ZeroDivisionError" in failed.reason
    with pytest.raises(InvalidInput, match="built in"):
        register_check("pii", lambda **_: True)


def test_an_lw_scorer_is_a_check() -> None:
    import loopwright as lw

    @lw.scorer
    def polite(*, outputs: str) -> bool:
        return "please" in outputs

    @lw.scorer
    def judged(*, outputs: str) -> object:
        from loopwright.evaluation.entities import Feedback

        return Feedback("no", rationale="sounds rude")

    register_check("lw-polite", polite)
    register_check("lw-judged", judged)
    assert _run("lw-polite", "please sit") == "pass"
    assert _run("lw-polite", "sit") == "block"
    spec = check_spec(GuardrailSpec("lw-judged"), "t")
    assert run_check(spec, inputs="q", outputs="x").reason == "sounds rude"
