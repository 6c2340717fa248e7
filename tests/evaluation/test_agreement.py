"""Judge agreement with human labels, against figures computed by hand."""

from __future__ import annotations

import re

import pytest
from _judge_stub import JudgeStub

from loopwright import InvalidInput
from loopwright.client import Client
from loopwright.evaluation import Judge, builtins
from loopwright.evaluation.agreement import (
    categorical_agreement,
    cohen_kappa,
    numeric_agreement,
    ranks,
)


def test_statistics_by_hand() -> None:
    judge = [True, True, False, False, True, False]
    human = [True, False, False, False, True, True]
    # p_o = 4/6; both raters say True 3 times of 6: p_e = (3*3 + 3*3)/36 = 1/2
    figures = categorical_agreement(judge, human)
    assert figures["accuracy"] == pytest.approx(4 / 6)
    assert figures["cohen_kappa"] == pytest.approx((4 / 6 - 0.5) / 0.5)
    # d = 0,1,1,0,0: rho = 1 - 6*2 / (5*24) = 0.9; MAE = 2/5
    assert numeric_agreement([1, 2, 3, 4, 5], [1, 3, 2, 4, 5]) == pytest.approx(
        {"spearman": 0.9, "mae": 0.4}
    )
    assert ranks([10, 20, 20, 30]) == [1.0, 2.5, 2.5, 4.0]
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # one label only: kappa undefined
    assert numeric_agreement([1, 1], [1, 2])["spearman"] is None


def verdict(prompt: str) -> str:
    found = re.search(r"\[judge:([^\]]+)\]", prompt)
    score = found.group(1) if found else "?"
    return f'{{"score": "{score}", "rationale": "scripted"}}'


def test_agreement_is_measured_and_stored_with_the_judge_version(
    client: Client, judge_stub: JudgeStub, name: str
) -> None:
    judge_stub.decide = verdict
    judged = [True, True, False, False, True, False]
    human = [True, False, False, False, True, True]
    records = [
        {
            "inputs": {"q": f"row {i}"},
            "outputs": f"answer [judge:{str(j).lower()}]",
            "expectations": {"helpful": h},
        }
        for i, (j, h) in enumerate(zip(judged, human, strict=True))
    ]
    records.append({"inputs": {"q": "unlabelled"}, "outputs": "[judge:true]"})
    client.evaluation.create_dataset(name)
    digest = client.evaluation.upsert_records(name, records)["digest"]
    judge = Judge(
        "helpful",
        rubric="Is {outputs} helpful? Known: {expectations}",
        model="m",
        endpoint=judge_stub.base,
        output="bool",
    )
    result = client.evaluation.agreement(judge, name)
    assert (result.n, result.skipped, result.label, result.dataset_digest) == (
        6,
        1,
        "helpful",
        digest,
    )
    assert result.metrics["accuracy"] == pytest.approx(4 / 6)
    assert result.metrics["cohen_kappa"] == pytest.approx(1 / 3)
    # The judge never saw the human label it is measured against.
    assert all(p.endswith("Known: {}") for p in judge_stub.prompts[-6:])

    stored = client.evaluation.get_scorer("helpful")
    assert stored.agreement is not None
    assert stored.agreement["accuracy"] == pytest.approx(4 / 6)
    assert stored.agreement["dataset_digest"] == digest and stored.agreement["n"] == 6


def test_numeric_agreement_through_a_registered_judge(
    client: Client, judge_stub: JudgeStub, name: str
) -> None:
    judge_stub.decide = verdict
    pairs = [(1, 1), (2, 3), (3, 2), (4, 4), (5, 5)]
    records = [
        {"inputs": {"q": f"n{i}"}, "outputs": f"[judge:{j}]", "expectations": {"score": h}}
        for i, (j, h) in enumerate(pairs)
    ]
    client.evaluation.create_dataset(name)
    client.evaluation.upsert_records(name, records)
    judge = Judge(name, rubric="Score {outputs}", model="m", endpoint=judge_stub.base)
    client.evaluation.register_scorer(judge)
    result = client.evaluation.agreement(name, name, label="score")
    assert result.metrics == pytest.approx({"spearman": 0.9, "mae": 0.4})
    assert result.judge == f"{name}/1"


def test_agreement_needs_a_judge(client: Client, name: str) -> None:
    client.evaluation.register_scorer(builtins.json_valid(), name=name)
    client.evaluation.create_dataset(name)
    client.evaluation.upsert_records(name, [{"inputs": {"q": 1}, "outputs": "{}"}])
    with pytest.raises(InvalidInput, match="not a judge"):
        client.evaluation.agreement(name, name)
