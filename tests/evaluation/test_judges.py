"""LLM judges against a stub OpenAI-compatible judge model on 127.0.0.1."""

from __future__ import annotations

import re

import pytest
from _judge_stub import JudgeStub

from loopwright import InvalidInput, JudgeFailed
from loopwright.client import Client
from loopwright.evaluation import Feedback, Judge

RUBRIC = "Question: {inputs}\nAnswer: {outputs}\nReference: {expectations}"
VERDICT = re.compile(r"\[judge:([^\]]+)\]")


def scripted(prompt: str) -> str:
    """The verdict written in the answer (``[judge:4]``); ``[judge:mumble]`` gets prose."""
    found = VERDICT.search(prompt)
    verdict = found.group(1) if found else "3"
    if verdict == "mumble":
        return "I would rather not say."
    if verdict.startswith("line:"):
        return f"score: {verdict[5:]}\nrationale: by lines"
    return f'Sure. {{"score": "{verdict}", "rationale": "because {verdict}"}}'


@pytest.fixture
def stub(judge_stub: JudgeStub) -> JudgeStub:
    judge_stub.decide = scripted
    return judge_stub


def judge(stub: JudgeStub, **kwargs: object) -> Judge:
    options: dict[str, object] = {"rubric": RUBRIC, "model": "judge-small", "endpoint": stub.base}
    options.update(kwargs)
    return Judge("quality", **options)  # type: ignore[arg-type]


def test_numeric_bool_and_categorical_judges_read_the_model_answer(stub: JudgeStub) -> None:
    numeric = judge(stub)
    assert numeric(inputs={"q": "x"}, outputs="fine [judge:4]") == Feedback(4.0, "because 4")
    assert stub.models[-1] == "judge-small"
    assert "Answer: fine [judge:4]" in stub.prompts[-1]
    assert numeric(outputs="[judge:line:2]").value == 2.0
    assert judge(stub, output="bool")(outputs="[judge:yes]").value is True
    labels = judge(stub, output="categorical", labels=("good", "bad"))
    assert labels(outputs="[judge:bad]").value == "bad"


@pytest.mark.parametrize(
    ("answer", "options", "message"),
    [
        ("[judge:mumble]", {}, "cannot read a score"),
        ("[judge:9]", {}, r"not a number in \[1, 5\]"),
        ("[judge:maybe]", {"output": "bool"}, "not true/false"),
        ("[judge:ugly]", {"output": "categorical", "labels": ("good", "bad")}, "not one of"),
    ],
)
def test_unreadable_answers_are_judge_failures(
    stub: JudgeStub, answer: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(JudgeFailed, match=message):
        judge(stub, **options)(outputs=answer)
    assert re.search(message, judge(stub, **options).score(outputs=answer).error or "")


def test_an_unreachable_judge_is_a_judge_failure() -> None:
    dead = Judge("dead", rubric=RUBRIC, model="m", endpoint="http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(JudgeFailed, match="unreachable"):
        dead(outputs="x")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rubric": "no placeholders"}, "must use some of"),
        ({"rubric": "{outputs} {secret}"}, "no other placeholder"),
        ({"endpoint": "file:///etc/passwd"}, "http"),
        ({"output": "stars"}, "not one of"),
        ({"model": "two words"}, "one word"),
        ({"scale": (5, 1)}, "low < high"),
        ({"output": "categorical", "labels": ("one",)}, "two or more labels"),
    ],
)
def test_bad_judge_configs(stub: JudgeStub, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        judge(stub, **options)


def test_a_judge_version_is_its_config(client: Client, stub: JudgeStub, name: str) -> None:
    first = client.evaluation.register_scorer(judge(stub), name=name)
    assert (first.kind, first.reference, first.config["model"]) == (
        "judge",
        "judge:judge-small",
        "judge-small",
    )
    assert client.evaluation.register_scorer(judge(stub), name=name).version == 1
    swapped = client.evaluation.register_scorer(judge(stub, model="judge-large"), name=name)
    assert swapped.version == 2 and not swapped.approved
    loaded = client.evaluation.load_scorer(f"{name}/2")
    assert isinstance(loaded, Judge) and loaded.model == "judge-large"
    assert loaded(outputs="[judge:5]").value == 5.0 and stub.models[-1] == "judge-large"
