"""Registry search in MLflow's spellings and with MLflow's meaning of a missing tag, on SQLite and
PostgreSQL: ``tag.`` and ``tags.``, ``attribute.name``, ``version_number``, ``source_path``; a
model without a tag matches no comparison on it, except that one without
``mlflow.prompt.is_prompt`` is not a prompt (the filter every mlflow 3 client appends)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _fake_package import make_package

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.registry.entities import ApprovalPolicy
from loopwright.registry.service import RegistryService
from loopwright.store.home import open_store

OPEN = ApprovalPolicy(rules=())
NOT_PROMPT = "tag.`mlflow.prompt.is_prompt` != 'true'"


@pytest.fixture
def registry(tmp_path: Path, db_uri: str) -> Iterator[RegistryService]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri, user="ada")) as store:
        service = RegistryService(store)
        service.create_model("churn", tags={"team": "risk", "t1": "abc"}, policy=OPEN)
        service.create_model("fraud", tags={"t1": "abcd"}, policy=OPEN)
        service.create_model("plain", policy=OPEN)
        service.create_model(
            "greeting", tags={"mlflow.prompt.is_prompt": "true", "team": "risk"}, policy=OPEN
        )
        yield service


def _names(registry: RegistryService, text: str) -> list[str]:
    return [m.name for m in registry.search_models(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tag.team = 'risk'", ["churn", "greeting"]),
        ("tags.team = 'risk'", ["churn", "greeting"]),
        ("tag.`team` = 'risk'", ["churn", "greeting"]),
        ("attribute.name = 'fraud'", ["fraud"]),
        ("tag.T1 = 'abc'", []),  # keys are case-sensitive, as in MLflow
        # A model lacking the tag matches no comparison on it, not even != (MLflow's SQL store).
        ("tag.t1 != 'abc'", ["fraud"]),
        ("tag.team != 'growth'", ["churn", "greeting"]),
        ("tag.t1 != 'abcd' AND tag.t1 LIKE 'ab%'", ["churn"]),
        # ...except the prompt marker: a model without it is not a prompt.
        (NOT_PROMPT, ["churn", "fraud", "plain"]),
        ("tags.`mlflow.prompt.is_prompt` = 'false'", ["churn", "fraud", "plain"]),
        ("tags.`mlflow.prompt.is_prompt` = 'true'", ["greeting"]),
        ("tags.`mlflow.prompt.is_prompt` != 'false'", ["greeting"]),
        (f"name LIKE '%r%' AND {NOT_PROMPT}", ["churn", "fraud"]),
        (f"tag.team = 'risk' AND {NOT_PROMPT}", ["churn"]),
        (f"name = 'badname' AND {NOT_PROMPT}", []),
    ],
)
def test_models_are_searched_with_mlflow_s_spellings_and_semantics(
    registry: RegistryService, text: str, expected: list[str]
) -> None:
    assert _names(registry, text) == expected


def test_versions_take_mlflow_s_column_names(registry: RegistryService, tmp_path: Path) -> None:
    package = make_package(tmp_path / "pkg", b"weights")
    for _ in range(2):
        registry.register("churn", package, tags={"t": "x"})
    registry.register("fraud", package)

    def refs(text: str) -> list[str]:
        return [v.ref for v in registry.search_versions(text)]

    assert refs("version_number = 2") == ["models:/churn/2"]
    assert refs("attribute.version_number >= 1 AND name = 'fraud'") == ["models:/fraud/1"]
    assert refs("tag.t = 'x'") == ["models:/churn/1", "models:/churn/2"]
    assert refs("tag.t != 'y'") == ["models:/churn/1", "models:/churn/2"]  # fraud/1 lacks t
    assert refs("tags.`mlflow.prompt.is_prompt` != 'true' AND name = 'fraud'") == [
        "models:/fraud/1"
    ]
    source = registry.get_version("fraud", 1).source
    assert source is not None
    assert refs(f"source_path = '{source}' AND name = 'fraud'") == ["models:/fraud/1"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tagz.team = 'x'", "unknown entity 'tagz': use attributes.<key> or tags.<key>"),
        ("attribute.owner = 'x'", "unknown column 'owner'"),
        ("tag.team > 'x'", "operator > does not apply"),
        ("tag.team = 3", "expected a quoted string"),
    ],
)
def test_bad_mlflow_spellings_say_what_is_wrong(
    registry: RegistryService, text: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        registry.search_models(text)
