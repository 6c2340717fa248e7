"""Model cards: what they hold, and that Markdown, HTML and JSON render it safely."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest

from loopwright.data.entities import DatasetVersion
from loopwright.errors import InvalidInput
from loopwright.registry.entities import (
    ApprovalDecision,
    ApprovalRequest,
    ApprovalRule,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from loopwright.registry.reports.card import ModelCard, build_card, normalise_signature
from loopwright.registry.reports.evaluation import Evaluation, evaluate
from loopwright.tracking.entities import Run, RunStatus

T0 = 1_714_564_800_000  # 2024-05-01T12:00:00Z
SCRIPT = "<script>alert('x')</script>"
SIGNATURE = {
    "inputs": json.dumps(
        [{"name": "age", "type": "long"}, {"name": "plan", "type": "string", "required": False}]
    ),
    "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
}


def make_model(**card: Any) -> RegisteredModel:
    return RegisteredModel(
        "m1", "churn", "Who will cancel", "ana", T0, T0, aliases={"champion": 3}, card=card
    )


def make_version(**changes: Any) -> ModelVersion:
    values: dict[str, Any] = {
        "id": "mv3",
        "model": "churn",
        "version": 3,
        "run_id": "r1",
        "source": "runs:/r1/model",
        "status": "READY",
        "stage": Stage.STAGING,
        "flavor": "sklearn",
        "package_hash": "ab" * 32,
        "signature": SIGNATURE,
        "metrics": {"f1": 0.8, "auc": 0.91},
        "description": None,
        "created_by": "ana",
        "created_at": T0,
        "updated_at": T0,
        "aliases": ("candidate",),
        "dataset_version_ids": ("d2", "gone"),
    }
    return ModelVersion(**(values | changes))


def make_dataset() -> DatasetVersion:
    return DatasetVersion(
        "d2", "customers", 2, "cd" * 32, "March export", "d1", "r0", 2, 5 * 1024, None, "ana", T0,
        schema={"a.parquet": [{"name": "age", "type": "int64"}, {"name": "plan", "type": "str"}]},
        profile={"a.parquet": {"row_count": 60}, "b.parquet": {"row_count": 40}},
    )  # fmt: skip


def make_run() -> Run:
    return Run(
        "r1", "e1", "nightly", RunStatus.FINISHED, "active", T0, T0 + 60_000, "ana", "host",
        "train.py", None, None, git_commit="1a2b3c", git_branch="main", git_dirty=False,
        params={"C": "0.5"},
    )  # fmt: skip


def make_request(
    version: int = 3, version_id: str = "mv3", status: str = "approved"
) -> ApprovalRequest:
    decision = ApprovalDecision("x1", "q1", "bob", "approver", "approve", "checked | fine", T0 + 5)
    return ApprovalRequest(
        f"q{version}", "churn", version, version_id, "stage", "Production", status, "ana",
        "ready for prod", ApprovalRule("stage:Production"), T0, None, T0 + 5, (decision,),
    )  # fmt: skip


def make_evaluation() -> Evaluation:
    return evaluate(
        [1, 0, 1, 1, 0, 0, 1, 0],
        [1, 0, 0, 1, 1, 0, 0, 0],
        groups={"region": ["n", "n", "s", "s", "n", "s", "n", "s"]},
        sensitive=["f", "f", "f", "f", "m", "m", "m", "m"],
        min_slice_size=4,
    )


def full_card() -> ModelCard:
    return build_card(
        make_model(intended_use=f"Retention offers {SCRIPT}", limitations=["EU only", "a | b"]),
        make_version(),
        run=make_run(),
        datasets=[make_dataset()],
        approvals=[make_request(), make_request(version=2, version_id="mv2")],
        evaluation=make_evaluation(),
        environment={"python_version": "3.11.9", "packages": {"scikit-learn": "1.5.0"}},
    )


def bare_card() -> ModelCard:
    version = make_version(run_id=None, signature=None, metrics={}, dataset_version_ids=())
    return build_card(make_model(), version, run=None, datasets=[], approvals=[])


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def test_a_full_card_holds_every_section() -> None:
    data = full_card().to_dict()
    details = data["details"]
    assert details["ref"] == "models:/churn/3" and details["stage"] == "Staging"
    assert details["aliases"] == ["candidate", "champion"]
    assert details["created_at"] == "2024-05-01T12:00:00Z"
    assert data["considerations"]["limitations"] == ["EU only", "a | b"]
    assert data["not_provided"] == ["ethical_considerations"]
    customers, gone = data["training_data"]
    assert customers["ref"] == "customers@v2" and customers["rows"] == 100
    assert customers["columns"] == 2 and customers["produced_by_run"] == "r0"
    assert gone == {"id": "gone", "ref": None, "resolved": False}
    assert list(data["metrics"]) == ["auc", "f1"]
    assert data["evaluation"]["metrics"]["accuracy"] == 0.625
    assert "fairness" not in data["evaluation"]
    assert data["fairness"]["failing_groups"] == ["m"]
    assert data["signature"]["inputs"][1] == {
        "name": "plan",
        "type": "string",
        "shape": None,
        "required": False,
    }
    assert [a["id"] for a in data["approvals"]] == ["q3"]  # version 2's request is left out
    assert data["approvals"][0]["decisions"][0]["actor"] == "bob"
    assert data["lineage"]["run"]["git_commit"] == "1a2b3c"
    assert data["environment"]["packages"] == {"scikit-learn": "1.5.0"}


def test_markdown_of_a_full_card() -> None:
    text = full_card().to_markdown()
    for heading in (
        "# Model card: churn v3",
        "## Model details",
        "## Intended use and limitations",
        "## Training data",
        "## Metrics",
        "### Per-slice metrics",
        "## Fairness",
        "## Signature",
        "## Approval history",
        "## Lineage",
        "## Environment",
    ):
        assert f"\n{heading}\n" in f"\n{text}"
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "| customers@v2 | " + "cd" * 32 + " | 100 | 2 | 2 | 5.0 KiB | r0 |" in text
    assert "checked \\| fine" in text  # a pipe in a cell does not split the table
    assert "> **Warning:** Fails the four-fifths rule: m" in text
    assert "| ⚠ m | 4 | 0.25 |" in text
    assert "| ⚠ s | 4 |" not in text and "small slice" not in text
    assert "### Ethical considerations\n\n_Not provided._" in text
    assert "code at commit 1a2b3c on main" in text


def test_html_is_self_contained_and_escaped() -> None:
    page = full_card().to_html()
    parsed = parse(page)
    assert "script" not in parsed.tags
    assert "Retention offers <script>alert('x')</script>" in parsed.text  # shown, as text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert parsed.tags.count("svg") == 3  # accuracy by sensitive and by region; selection rates
    assert {"rect", "line", "style", "table"} <= set(parsed.tags)
    assert "link" not in parsed.tags and "img" not in parsed.tags
    assert not [a for a in parsed.attributes if a[0] in ("src", "href")]
    assert "http" not in page
    assert 'class="bar flag"' in page and "<tr class='flag'>" in page


def test_user_text_cannot_break_out_of_attributes_or_charts() -> None:
    hostile = '"><img src=x onerror=alert(1)>'
    groups = {"region": [hostile, hostile, "n", "n"]}
    evaluation = evaluate([1, 0, 1, 0], [1, 0, 0, 0], groups=groups, sensitive="region")
    card = build_card(
        make_model(limitations=hostile),
        make_version(dataset_version_ids=()),
        run=None,
        datasets=[],
        approvals=[],
        evaluation=evaluation,
    )
    parsed = parse(card.to_html())
    assert "img" not in parsed.tags
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]
    assert hostile in "".join(parsed.text)
    assert "<img" not in card.to_markdown()


def test_a_bare_card_says_what_is_missing() -> None:
    card = bare_card()
    text = card.to_markdown()
    assert card.not_provided == ["intended_use", "limitations", "ethical_considerations"]
    assert text.count("_Not provided._") == 3
    for note in (
        "_No training data recorded._",
        "_No metrics recorded._",
        "_No held-out evaluation attached._",
        "_Not assessed: no sensitive attribute was evaluated._",
        "_No signature recorded._",
        "_No approval requests._",
        "Source run: none recorded",
    ):
        assert note in text
    page = card.to_html()
    assert "<svg" not in page and "Not provided." in page
    data = json.loads(card.to_json())
    assert data["fairness"] is None and data["environment"] is None and data["signature"] == {}
    assert data["lineage"]["run"] is None


def test_a_regression_card_charts_rmse() -> None:
    evaluation = evaluate(
        [1.5, 2.5, 3.5, 4.5], [1.0, 2.5, 3.0, 5.0], groups={"g": ["a", "a", "b", "b"]}
    )
    card = build_card(
        make_model(), make_version(dataset_version_ids=()), run=None, datasets=[], approvals=[],
        evaluation=evaluation,
    )  # fmt: skip
    assert "rmse by g" in card.to_html()
    assert "Task: regression, 4 rows." in card.to_markdown()


def test_a_run_known_only_by_id() -> None:
    card = build_card(make_model(), make_version(), run=None, datasets=[], approvals=[])
    assert card.lineage["run"] == {"id": "r1"}
    assert [t["resolved"] for t in card.training_data] == [False, False]


def test_json_is_stable_and_round_trips() -> None:
    card = full_card()
    assert card.to_json() == full_card().to_json()
    data = json.loads(card.to_json())
    again = ModelCard.from_dict(data)
    assert again.to_markdown() == card.to_markdown()
    assert again.to_html() == card.to_html()
    data["details"]["name"] = "changed"  # to_dict hands out copies
    assert card.to_dict()["details"]["name"] == "churn"


def test_inconsistent_inputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="is not the source run of models:/churn/3"):
        build_card(
            make_model(), make_version(run_id="r9"), run=make_run(), datasets=[], approvals=[]
        )
    other = RegisteredModel("m2", "fraud", None, None, T0, T0)
    with pytest.raises(InvalidInput, match="does not belong to model 'fraud'"):
        build_card(other, make_version(), run=None, datasets=[], approvals=[])


@pytest.mark.parametrize(
    ("signature", "inputs"),
    [
        (
            {"inputs": [{"name": "x", "type": "double", "optional": True}]},
            [{"name": "x", "type": "double", "shape": None, "required": False}],
        ),
        (
            {"inputs": {"x": "double"}},
            [{"name": "x", "type": "double", "shape": None, "required": True}],
        ),
        (
            {"inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "f4", "shape": [-1, 4]}}]'},
            [{"name": None, "type": "f4", "shape": [-1, 4], "required": True}],
        ),
        (
            {"inputs": "not json"},
            [{"name": None, "type": "not json", "shape": None, "required": True}],
        ),
    ],
)
def test_signature_layouts(signature: dict[str, Any], inputs: list[dict[str, Any]]) -> None:
    assert normalise_signature(signature) == {"inputs": inputs}


def test_card_text_beyond_the_standard_keys() -> None:
    card = build_card(
        make_model(users=["analysts"], caveats={"drift": "monthly"}, intended_use="  "),
        make_version(dataset_version_ids=()),
        run=None,
        datasets=[],
        approvals=[],
    )
    assert list(card.considerations) == [
        "intended_use", "limitations", "ethical_considerations", "caveats", "users",
    ]  # fmt: skip
    assert card.considerations["caveats"] == ['{"drift": "monthly"}']
    assert "intended_use" in card.not_provided  # blank text counts as missing
    assert "### Users\n\nanalysts" in card.to_markdown()
