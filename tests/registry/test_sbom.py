"""The ML-BOM: CycloneDX 1.6 JSON that the bundled schema accepts, and a validator that bites."""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import loopwright
from loopwright.data.entities import DatasetVersion
from loopwright.errors import InvalidInput
from loopwright.registry.entities import ModelVersion, RegisteredModel, Stage
from loopwright.registry.reports import sbom
from loopwright.registry.reports.card import ModelCard, build_card
from loopwright.registry.reports.evaluation import evaluate
from loopwright.registry.reports.sbom import build_sbom, pypi_purl, validate_sbom

pytest.importorskip("cyclonedx")
pytest.importorskip("jsonschema")

T0 = 1_714_564_800_000
SERIAL = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"
FILES = [("model.skops", "1f" * 32, 2048), ("MLmodel", "2E" * 32, 312)]
ENVIRONMENT = {
    "python_version": "3.11.9",
    "packages": {"scikit-learn": "1.5.0", "Zope.Interface": "6.1", "typing_extensions": "4.12+dev"},
}


def make_model(**card: Any) -> RegisteredModel:
    return RegisteredModel("m1", "churn", "Who will cancel", "ana", T0, T0, card=card)


def make_version(**changes: Any) -> ModelVersion:
    values: dict[str, Any] = {
        "id": "mv3", "model": "churn", "version": 3, "run_id": "r1", "source": "runs:/r1/model",
        "status": "READY", "stage": Stage.PRODUCTION, "flavor": "sklearn",
        "package_hash": "ab" * 32,
        "signature": {"inputs": [{"name": "age", "type": "long"}], "outputs": [{"type": "long"}]},
        "metrics": {"auc": 0.91}, "description": None, "created_by": "ana", "created_at": T0,
        "updated_at": T0, "aliases": ("champion",), "dataset_version_ids": ("d2",),
    }  # fmt: skip
    return ModelVersion(**(values | changes))


def make_dataset(id: str = "d2", number: int = 2) -> DatasetVersion:
    return DatasetVersion(
        id, "customers", number, "cd" * 32, "March export", None, "r0", 2, 5120, None, "ana", T0
    )


def make_card_model() -> RegisteredModel:
    return make_model(
        intended_use="Retention offers",
        limitations=["EU customers only"],
        ethical_considerations="Not for pricing",
        users="CRM team",
    )


def make_card() -> ModelCard:
    model = make_card_model()
    evaluation = evaluate(
        [1, 0, 1, 1, 0, 0, 1, 0],
        [1, 0, 0, 1, 1, 0, 0, 0],
        groups={"region": ["n", "n", "s", "s", "n", "s", "n", "s"]},
        sensitive=["f", "f", "f", "f", "m", "m", "m", "m"],
    )
    return build_card(
        model,
        make_version(),
        run=None,
        datasets=[make_dataset()],
        approvals=[],
        evaluation=evaluation,
    )


def full_sbom(**changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "package_files": FILES,
        "datasets": [make_dataset()],
        "environment": ENVIRONMENT,
        "card": make_card(),
        "serial_number": SERIAL,
        "timestamp": datetime(2024, 5, 1, 12, tzinfo=UTC),
    }
    model = changes.pop("model", make_card_model())
    version = changes.pop("version", make_version())
    return build_sbom(model, version, **(arguments | changes))


def bom_refs(components: list[dict[str, Any]]) -> Iterator[str]:
    for component in components:
        if "bom-ref" in component:
            yield component["bom-ref"]
        yield from bom_refs(component.get("components", []))


def test_a_full_sbom_validates_and_says_what_it_should() -> None:
    doc = full_sbom()
    validate_sbom(doc)
    json.dumps(doc)
    assert (doc["bomFormat"], doc["specVersion"], doc["version"]) == ("CycloneDX", "1.6", 1)
    assert doc["serialNumber"] == SERIAL
    assert doc["metadata"]["timestamp"] == "2024-05-01T12:00:00Z"
    tool = doc["metadata"]["tools"]["components"][0]
    assert (tool["name"], tool["version"]) == ("loopwright", loopwright.__version__)
    assert doc["metadata"]["component"]["name"] == "churn"

    model, dataset, python, *libraries = doc["components"]
    assert model["type"] == "machine-learning-model" and model["version"] == "3"
    assert model["hashes"] == [{"alg": "BLAKE3", "content": "ab" * 32}]
    assert [f["name"] for f in model["components"]] == ["MLmodel", "model.skops"]
    assert model["components"][0]["hashes"][0]["content"] == "2e" * 32  # lowercased
    card = model["modelCard"]
    parameters = card["modelParameters"]
    assert parameters["approach"] == {"type": "supervised"}
    assert parameters["task"] == "classification"
    assert parameters["datasets"] == [{"ref": "dataset:customers@v2"}]
    assert parameters["inputs"] == [{"format": "age: long"}]
    assert parameters["outputs"] == [{"format": "long"}]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "auc", "value": "0.91"} in metrics
    assert {"type": "accuracy", "value": "0.625", "slice": "evaluation"} in metrics
    assert {"type": "accuracy", "value": "0.5", "slice": "region=n"} in metrics
    assert {"type": "selection_rate", "value": "0.25", "slice": "sensitive=m"} in metrics
    considerations = card["considerations"]
    assert considerations["useCases"] == ["Retention offers"]
    assert considerations["ethicalConsiderations"] == [{"name": "Not for pricing"}]
    assert considerations["technicalLimitations"] == ["EU customers only"]
    assert considerations["users"] == ["CRM team"]
    (assessment,) = considerations["fairnessAssessments"]
    assert assessment["groupAtRisk"] == "sensitive=m" and "four-fifths" in assessment["harms"]

    assert dataset["type"] == "data" and dataset["version"] == "v2"
    assert dataset["hashes"] == [{"alg": "BLAKE3", "content": "cd" * 32}]
    assert dataset["data"][0]["type"] == "dataset" and dataset["data"][0]["name"] == "customers@v2"
    assert (python["type"], python["version"]) == ("platform", "3.11.9")
    assert [lib["purl"] for lib in libraries] == [
        "pkg:pypi/scikit-learn@1.5.0",
        "pkg:pypi/typing-extensions@4.12%2Bdev",
        "pkg:pypi/zope.interface@6.1",
    ]
    assert [lib["name"] for lib in libraries] == [
        "scikit-learn",
        "typing_extensions",
        "Zope.Interface",
    ]


def test_the_dependency_graph_links_the_model_to_everything() -> None:
    doc = full_sbom()
    refs = list(bom_refs(doc["components"]))
    assert len(refs) == len(set(refs))
    graph = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    assert graph["model:churn/3"] == [
        "dataset:customers@v2",
        "python@3.11.9",
        "pkg:pypi/scikit-learn@1.5.0",
        "pkg:pypi/typing-extensions@4.12%2Bdev",
        "pkg:pypi/zope.interface@6.1",
    ]
    assert set(graph) <= set(refs)
    assert all(ref in refs for targets in graph.values() for ref in targets)


@pytest.mark.parametrize(
    "changes",
    [
        {"datasets": []},
        {"card": None},
        {"environment": None},
        {"environment": {"packages": {}}},
        {"environment": {"python_version": "3.12.1"}},
        {"package_files": []},
        {"datasets": [], "card": None, "environment": None, "package_files": []},
        {"version": make_version(package_hash=None, signature=None, metrics={}, aliases=())},
        {"model": make_model(), "card": None},  # no card text at all
        {"serial_number": None, "timestamp": None},
        {"datasets": [make_dataset(), make_dataset("d1", 1), make_dataset()]},
        {
            "environment": {
                "python_version": "3.11.9",
                "packages": {
                    "Foo.Bar_Baz": "1.0",
                    "UPPER": "2!3.0.post1",
                    "foo-bar-baz": "9",
                    "ruamel.yaml.clib": "0.2.8",
                    "no-version": None,
                },
            }
        },
    ],
)
def test_variations_validate(changes: dict[str, Any]) -> None:
    doc = full_sbom(**changes)
    validate_sbom(doc)
    refs = list(bom_refs(doc["components"]))
    assert len(refs) == len(set(refs))


def test_weird_package_names_become_normalised_purls() -> None:
    packages = {"Foo.Bar_Baz": "1.0", "UPPER": "2!3.0.post1", "foo_bar.baz": "9", "none": None}
    doc = full_sbom(environment={"packages": packages})
    libraries = [c for c in doc["components"] if c["type"] == "library"]
    # purl keeps dots, but "foo_bar.baz" is the same distribution (PEP 503): listed once
    assert [c["purl"] for c in libraries] == [
        "pkg:pypi/foo.bar-baz@1.0",
        "pkg:pypi/none",
        "pkg:pypi/upper@2%213.0.post1",
    ]
    assert [c["name"] for c in libraries] == ["Foo.Bar_Baz", "none", "UPPER"]
    assert "version" not in libraries[1]


@pytest.mark.parametrize(
    ("name", "version", "purl"),
    [
        ("requests", "2.32.3", "pkg:pypi/requests@2.32.3"),
        ("Django", "5.0", "pkg:pypi/django@5.0"),
        ("typing_extensions", "4.12.2", "pkg:pypi/typing-extensions@4.12.2"),
        ("zope.interface", "6.1", "pkg:pypi/zope.interface@6.1"),
        ("torch", "2.3.0+cu121", "pkg:pypi/torch@2.3.0%2Bcu121"),
        ("Sphinx_RTD_Theme", None, "pkg:pypi/sphinx-rtd-theme"),
        ("Foo.Bar_Baz", "1.0", "pkg:pypi/foo.bar-baz@1.0"),
    ],
)
def test_pypi_purl(name: str, version: str | None, purl: str) -> None:
    assert pypi_purl(name, version) == purl


def test_pypi_purl_matches_the_reference_library() -> None:
    packageurl = pytest.importorskip("packageurl")
    for name in ("Foo.Bar_Baz", "typing_extensions", "UPPER"):
        expected = packageurl.PackageURL(type="pypi", name=name, version="1.0+x").to_string()
        assert pypi_purl(name, "1.0+x") == expected


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("components", 0, "hashes", 0, "content"), "not-a-hash", "components/0/hashes/0/content"),
        (("components", 0, "hashes", 0, "alg"), "BLAKE4", "components/0/hashes/0/alg"),
        (("components", 0, "type"), "neural-net", "components/0/type"),
        (("specVersion",), 1.6, "specVersion"),
        (("serialNumber",), "urn:uuid:nope", "serialNumber"),
        (("metadata", "timestamp"), "yesterday", "metadata/timestamp"),
        (
            ("components", 0, "modelCard", "modelParameters", "approach", "type"),
            "vibes",
            "approach",
        ),
        (
            ("components", 0, "modelCard", "considerations", "ethicalConsiderations"),
            ["x"],
            "ethical",
        ),
        (("components", 0, "modelCard", "unknownField"), True, "unknownField"),
        (("dependencies", 0, "dependsOn"), ["a", "a"], "dependencies/0/dependsOn"),
    ],
)
def test_a_broken_sbom_fails_validation(path: tuple[Any, ...], value: Any, where: str) -> None:
    doc = copy.deepcopy(full_sbom())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(InvalidInput, match=r"does not conform to CycloneDX 1\.6") as caught:
        validate_sbom(doc)
    assert where in str(caught.value)


def test_a_missing_name_fails_validation() -> None:
    doc = full_sbom()
    del doc["components"][1]["name"]
    with pytest.raises(InvalidInput, match="'name' is a required property"):
        validate_sbom(doc)


def test_bad_hashes_and_serial_numbers_are_refused_when_building() -> None:
    with pytest.raises(InvalidInput, match=r"package file 'model\.skops' is not 64 hex digits"):
        full_sbom(package_files=[("model.skops", "abc", 3)])
    with pytest.raises(InvalidInput, match="package of models:/churn/3"):
        full_sbom(version=make_version(package_hash="sha256:" + "a" * 64))
    with pytest.raises(InvalidInput, match="serial_number must be a UUID"):
        full_sbom(serial_number="bom-1")


def test_serial_numbers() -> None:
    assert full_sbom(serial_number=SERIAL.removeprefix("urn:uuid:"))["serialNumber"] == SERIAL
    first, second = (full_sbom(serial_number=None)["serialNumber"] for _ in range(2))
    assert first != second
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", first)


def test_validation_explains_a_missing_schema_package(monkeypatch: pytest.MonkeyPatch) -> None:
    sbom._validator.cache_clear()
    monkeypatch.setitem(sys.modules, "cyclonedx.schema._res", None)
    try:
        with pytest.raises(ImportError, match=r"pip install 'loopwright\[sbom\]'"):
            validate_sbom(full_sbom())
    finally:
        sbom._validator.cache_clear()
