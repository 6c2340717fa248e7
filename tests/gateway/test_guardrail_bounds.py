"""Guardrail checks stay linear on hostile text: bounded patterns, windows, a scan cap."""

from __future__ import annotations

import time

import pytest

from loopwright.errors import InvalidInput
from loopwright.gateway import guardrails
from loopwright.gateway.entities import GuardrailSpec
from loopwright.gateway.guardrails import check_spec, run_check, run_check_async, windows


def _pii(**params: object) -> GuardrailSpec:
    return check_spec(GuardrailSpec("pii", stage="pre", mode="block", params=params), "test")


@pytest.mark.parametrize(
    "text", ["a" * 200_000, "a@" * 100_000, "1 " * 100_000, "a." * 100_000, "+1 " * 60_000]
)
def test_pii_on_hostile_text_is_linear(text: str) -> None:
    started = time.perf_counter()
    run_check(_pii(), inputs=text)
    assert time.perf_counter() - started < 1.0


def test_pii_finds_a_match_in_any_window_and_across_a_window_edge() -> None:
    edge = guardrails.WINDOW - 5  # the address straddles the first window's end
    text = "x " * (edge // 2) + "ada@example.com " + "y " * 100_000
    assert run_check(_pii(kinds=["email"]), inputs=text).reason == "found email"
    far = "z " * 300_000 + "call 555-123-4567"
    assert run_check(_pii(), inputs=far).reason == "found phone"


def test_a_word_cut_by_a_window_start_is_not_a_word_of_its_own() -> None:
    spec = check_spec(
        GuardrailSpec("denylist", stage="pre", mode="block", params={"words": ["secret"]}),
        "test",
    )
    cut = guardrails.WINDOW - guardrails.OVERLAP - 3  # the next window starts inside "xxsecret"
    text = "a" * cut + "xxsecret " + "b " * 70_000
    assert [w for w in windows(text) if w.startswith("secret")] == []
    assert run_check(spec, inputs=text).action == "pass"
    assert run_check(spec, inputs=text + " secret").action == "block"


def test_text_over_the_scan_cap_fails_closed() -> None:
    decision = run_check(_pii(), inputs="a " * (guardrails.MAX_SCAN_CHARS // 2 + 1))
    assert decision.blocked
    assert "over the 4000000 a pattern check scans" in decision.reason


@pytest.mark.parametrize("pattern", ["(a+)+$", r"(\w+\s?)*x", "(?:a|ab*)*c", "(x{1,200})+"])
def test_a_repeat_inside_an_unbounded_repeat_is_refused(pattern: str) -> None:
    spec = GuardrailSpec("regex", stage="pre", mode="block", params={"patterns": [pattern]})
    with pytest.raises(InvalidInput, match="nests a repeat inside an unbounded repeat"):
        check_spec(spec, "route r")


@pytest.mark.parametrize("pattern", ["(ab)+", "(a|b)*c", r"\d{3}-\d{4}", "(?:a{2})*", "x+y+"])
def test_bounded_regex_patterns_are_accepted(pattern: str) -> None:
    spec = GuardrailSpec("regex", stage="pre", mode="block", params={"patterns": [pattern]})
    assert check_spec(spec, "route r").params["_compiled"][0].pattern == pattern


def test_a_registered_check_runs_off_the_event_loop() -> None:
    import threading

    import anyio

    seen: list[str] = []

    def where(**_: object) -> bool:
        seen.append(threading.current_thread().name)
        return True

    guardrails.register_check("where-am-i", where)
    spec = check_spec(GuardrailSpec("where-am-i", stage="pre", mode="block"), "test")
    decision = anyio.run(lambda: run_check_async(spec, inputs="hi"))
    assert decision.action == "pass"
    assert seen and seen[0] != threading.main_thread().name
