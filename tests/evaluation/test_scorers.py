"""Scorers: @lw.scorer, built-ins, registration as immutable versions."""

from __future__ import annotations

from typing import Any

import pytest
from eval_scorers import word_count

import loopwright as lw
from loopwright import Conflict, InvalidInput, NotFound
from loopwright.client import Client
from loopwright.evaluation import Feedback, builtins
from loopwright.evaluation.targets import Call


def test_a_scorer_takes_any_subset_of_its_arguments_by_keyword() -> None:
    @lw.scorer
    def both(*, inputs: Any, expectations: Any) -> Feedback:
        return Feedback(inputs["q"] == expectations["q"], "compared")

    assert both(inputs={"q": 1}, expectations={"q": 1}, outputs="x") == Feedback(True, "compared")
    named = lw.scorer(name="renamed")(lambda **row: 0.5)
    assert (named.name, named(outputs=1).value) == ("renamed", 0.5)


def test_wrong_signature_and_wrong_return_type_are_clear_errors() -> None:
    with pytest.raises(InvalidInput, match=r"takes \['answer'\]"):
        lw.scorer(lambda answer: 1)
    returns_list = lw.scorer(lambda *, outputs: [outputs])
    with pytest.raises(InvalidInput, match="returned list; return a number, bool, str"):
        returns_list(outputs="a")
    assert "returned list" in (returns_list.score(outputs="a").error or "")
    with pytest.raises(InvalidInput, match="returned"):
        lw.scorer(lambda *, outputs: float("nan"))(outputs=1)


@pytest.mark.parametrize(
    ("scorer", "row", "value"),
    [
        (
            builtins.exact_match(),
            {"outputs": " 4 ", "expectations": {"expected_response": "4"}},
            True,
        ),
        (
            builtins.exact_match(ignore_case=True),
            {"outputs": "Yes", "expectations": {"expected_response": "yes"}},
            True,
        ),
        (
            builtins.contains(),
            {
                "outputs": "Paris, France",
                "expectations": {"expected_response": ["paris", "france"]},
            },
            True,
        ),
        (
            builtins.contains(),
            {"outputs": "Paris", "expectations": {"expected_response": "Rome"}},
            False,
        ),
        (builtins.regex(r"^\d+$"), {"outputs": "42"}, True),
        (builtins.regex(r"secret", must_match=False), {"outputs": "a secret"}, False),
        (builtins.json_valid(), {"outputs": '{"a": 1}'}, True),
        (builtins.json_valid(), {"outputs": "{a: 1}"}, False),
        (builtins.max_length(5), {"outputs": "123456"}, False),
        (builtins.max_tokens(3), {"outputs": "one two, three"}, False),
        (builtins.latency(100), {"trace": Call("x", duration_ms=50.0)}, True),
        (builtins.cost(0.01), {"trace": Call("x", cost_usd=0.02)}, False),
    ],
)
def test_builtins(scorer: lw.evaluation.Scorer, row: dict[str, Any], value: bool) -> None:
    assert scorer(**row).value is value


def test_builtins_refuse_bad_arguments_and_missing_data() -> None:
    with pytest.raises(InvalidInput, match="does not compile"):
        builtins.regex("(")
    with pytest.raises(InvalidInput, match="positive number"):
        builtins.max_length(0)
    assert "no expectation 'expected_response'" in (
        builtins.exact_match().score(outputs="x", expectations={}).error or ""
    )
    assert "no trace" in (builtins.latency(1).score(outputs="x").error or "")
    with pytest.raises(InvalidInput, match="no built-in scorer 'nope'"):
        builtins.build("nope", {})


def test_registered_versions_are_immutable_and_loadable(client: Client, name: str) -> None:
    first = client.evaluation.register_scorer(builtins.regex(r"\d"), name=name)
    assert client.evaluation.register_scorer(builtins.regex(r"\d"), name=name).id == first.id
    second = client.evaluation.register_scorer(builtins.regex(r"\w"), name=name)
    assert (first.version, second.version) == (1, 2) and first.digest != second.digest
    assert [v.version for v in client.evaluation.scorer_versions(name)] == [2, 1]
    assert client.evaluation.get_scorer(name).version == 2
    loaded = client.evaluation.load_scorer(f"{name}/1")
    assert (loaded(outputs="7").value, loaded(outputs="x").value) == (True, False)
    assert name in [s.name for s in client.evaluation.list_scorers()]

    renamed = client.evaluation.register_scorer(word_count, name=f"{name}-wc")
    result = client.evaluation.evaluate(
        None, [{"inputs": {"q": 1}, "outputs": "a b"}], [renamed.name]
    )
    assert result.aggregates[f"{name}-wc/mean"] == 2.0  # the registered name, not the function's
    code = client.evaluation.register_scorer(word_count)
    assert (code.kind, code.reference) == ("code", "eval_scorers:word_count")
    assert client.evaluation.load_scorer("word_count")(outputs="a b c").value == 3.0

    assert client.evaluation.delete_scorer(name, 1) == 1
    with pytest.raises(NotFound, match="no version 1"):
        client.evaluation.get_scorer(name, 1)
    assert client.evaluation.delete_scorer(name) == 1
    with pytest.raises(NotFound, match="not registered"):
        client.evaluation.get_scorer(name)


def test_a_changed_code_scorer_is_refused_until_registered_again(client: Client, name: str) -> None:
    client.evaluation.register_spec(
        name,
        kind="code",
        reference="eval_scorers:word_count",
        digest="0" * 64,
        config={},
    )
    with pytest.raises(Conflict, match="changed since it was registered"):
        client.evaluation.load_scorer(name)


def test_bad_registrations(client: Client, name: str) -> None:
    with pytest.raises(InvalidInput, match="module-level"):
        client.evaluation.register_scorer(lw.scorer(lambda *, outputs: 1))
    with pytest.raises(InvalidInput, match="takes a Scorer"):
        client.evaluation.register_scorer("exact_match")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="kind"):
        client.evaluation.register_spec(name, kind="magic", reference="x", digest="d", config={})
    for bad in ("a/b", "two words"):
        with pytest.raises(InvalidInput, match="must not contain '/' or white space"):
            client.evaluation.register_spec(bad, kind="code", reference="x", digest="d", config={})
    with pytest.raises(NotFound, match="not registered"):
        client.evaluation.evaluate(None, [{"inputs": {"q": 1}, "outputs": 1}], [name])
