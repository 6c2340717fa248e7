"""``client.evaluation.evaluate``: rows, per-row failures, the tracked run and its lineage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _judge_stub import JudgeStub
from eval_scorers import fails_on_six

import loopwright as lw
from loopwright import Conflict, InvalidInput
from loopwright.client import Client
from loopwright.evaluation import Judge, PromptTarget, builtins

ROWS = [
    {"inputs": {"question": "2+2"}, "expectations": {"expected_response": "4"}},
    {"inputs": {"question": "3+3"}, "expectations": {"expected_response": "6"}},
    {"inputs": {"question": "1/0"}, "expectations": {"expected_response": "inf"}},
]


def calculator(question: str) -> str:
    return str(eval(question))  # the rows are the test's own


def test_evaluate_records_a_run_with_rows_aggregates_and_the_dataset_version(
    client: Client, name: str, tmp_path: Path
) -> None:
    client.evaluation.create_dataset(name)
    digest = client.evaluation.upsert_records(name, ROWS)["digest"]
    result = client.evaluation.evaluate(
        calculator, name, [builtins.exact_match(), fails_on_six], name=f"calc {name}"
    )
    rows = {r.inputs["question"]: r for r in result.rows}
    # The target raised on 1/0: that row failed, the others were scored.
    assert rows["1/0"].error is not None and "ZeroDivisionError" in rows["1/0"].error
    assert rows["2+2"].scores["exact_match"].value is True
    # A scorer raising on one row fails that score only.
    assert "six is not allowed" in (rows["3+3"].scores["fails_on_six"].error or "")
    assert rows["3+3"].scores["exact_match"].value is True
    assert result.aggregates["exact_match/mean"] == 1.0
    assert result.aggregates["fails_on_six/errors"] == 1.0
    assert result.aggregates["rows"] == 3.0 and result.failed_rows == 2
    assert result.dataset_digest == digest

    run = client.get_run(result.run_id)
    assert run.status.name == "FINISHED" and run.tags["loopwright.evaluation"] == "true"
    assert run.params["scorer.fails_on_six"].startswith("eval_scorers:fails_on_six code ")
    assert run.metrics["exact_match/mean"].value == 1.0
    version = client.datasets.get(name)
    assert client.datasets.runs_using(version) == [result.run_id]  # lineage: the run's input
    client.download_artifacts(result.run_id, tmp_path)
    table = [
        json.loads(line) for line in (tmp_path / "eval_results.jsonl").read_text().splitlines()
    ]
    assert sorted(r["inputs"]["question"] for r in table) == ["1/0", "2+2", "3+3"]

    stored = client.evaluation.get_evaluation(result.run_id)
    assert (stored.dataset_digest, stored.rows, stored.failed_rows) == (digest, 3, 2)
    assert stored.aggregates == result.aggregates
    assert [e.run_id for e in client.evaluation.evaluations(dataset_version_id=version.id)] == [
        result.run_id
    ]


def test_precomputed_outputs_and_an_unversioned_list(client: Client) -> None:
    records: list[dict[str, Any]] = [
        {"inputs": {"q": "a"}, "outputs": "a1"},
        {"inputs": {"q": "b"}},  # no outputs: the row fails, the evaluation goes on
    ]
    result = client.evaluation.evaluate(None, records, [builtins.regex(r"\d")])
    assert [r.error is None for r in result.rows] == [True, False]
    assert result.dataset_digest is None and result.aggregates["regex/mean"] == 1.0


def test_a_judge_with_unparsable_output_on_one_row(
    client: Client, judge_stub: JudgeStub, name: str
) -> None:
    judge_stub.decide = lambda prompt: (
        "no idea" if "mumble" in prompt else '{"score": 5, "rationale": "fine"}'
    )
    judge = Judge("grader", rubric="Rate {outputs}", model="m", endpoint=judge_stub.base)
    records = [{"inputs": {"q": str(i)}, "outputs": f"answer {i}"} for i in range(4)]
    records[2]["outputs"] = "mumble"
    result = client.evaluation.evaluate(None, records, [judge], max_workers=2)
    errors = [r.scores["grader"].error for r in result.rows]
    assert sum(e is not None for e in errors) == 1
    assert any("cannot read a score" in (e or "") for e in errors)
    assert result.aggregates["grader/mean"] == 5.0 and result.aggregates["grader/errors"] == 1.0


def test_a_gate_evaluation_needs_approved_judges(
    client: Client, judge_stub: JudgeStub, name: str
) -> None:
    judge = Judge(name, rubric="Rate {outputs}", model="m", endpoint=judge_stub.base)
    client.evaluation.register_scorer(judge)
    records = [{"inputs": {"q": "1"}, "outputs": "x"}]
    with pytest.raises(Conflict, match="not approved"):
        client.evaluation.evaluate(None, records, [name], require_approved=True)
    with pytest.raises(Conflict, match="registered, approved version"):
        client.evaluation.evaluate(None, records, [judge], require_approved=True)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"scorers": []}, "at least one scorer"),
        ({"scorers": [42]}, "Scorers or registered scorer names"),
        ({"target": "prompts:/qa@prod"}, "PromptTarget"),
        ({"target": 42}, "callable"),
        ({"dataset": 42}, "evaluation dataset"),
        ({"max_workers": 0}, "max_workers"),
    ],
)
def test_bad_evaluate_arguments(client: Client, arguments: dict[str, Any], message: str) -> None:
    call: dict[str, Any] = {
        "target": None,
        "dataset": [{"inputs": {"q": 1}, "outputs": 1}],
        "scorers": [builtins.json_valid()],
    }
    call.update(arguments)
    with pytest.raises(InvalidInput, match=message):
        client.evaluation.evaluate(
            call.pop("target"), call.pop("dataset"), call.pop("scorers"), **call
        )


def test_two_scorers_with_one_name_are_refused(client: Client) -> None:
    same = [lw.scorer(name="s")(lambda *, outputs: 1), lw.scorer(name="s")(lambda *, outputs: 2)]
    with pytest.raises(InvalidInput, match="two scorers are named 's'"):
        client.evaluation.evaluate(None, [{"inputs": {"q": 1}, "outputs": 1}], same)


def test_a_prompt_version_sent_to_a_model_endpoint(
    client: Client, judge_stub: JudgeStub, name: str
) -> None:
    judge_stub.decide = lambda prompt: f"echo: {prompt}"
    client.prompts.register(name, "Answer briefly: {{ question }}")
    prompt = client.prompts.load(f"prompts:/{name}/1")
    target = PromptTarget(prompt, endpoint=judge_stub.base, model="route-a")
    records = [
        {
            "inputs": {"question": "capital of France"},
            "expectations": {"expected_response": "France"},
        }
    ]
    result = client.evaluation.evaluate(target, records, [builtins.contains()])
    assert result.rows[0].outputs == "echo: Answer briefly: capital of France"
    assert result.aggregates["contains/mean"] == 1.0 and judge_stub.models[-1] == "route-a"
    assert client.get_run(result.run_id).tags["loopwright.eval.target"] == f"prompts:/{name}/1"
    missing = client.evaluation.evaluate(
        target, [{"inputs": {"other": "x"}}], [builtins.json_valid()]
    )
    assert missing.rows[0].error is not None  # a missing variable fails the row, not the run
