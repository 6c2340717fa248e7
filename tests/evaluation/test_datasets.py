"""Evaluation datasets: records versioned as dataset versions, on every backend."""

from __future__ import annotations

import pytest

from loopwright import AlreadyExists, InvalidInput, NotFound
from loopwright.client import Client

ROWS = [
    {"inputs": {"question": "2+2"}, "expectations": {"expected_response": "4"}},
    {"inputs": {"question": "3+3"}, "expectations": {"expected_response": "6"}, "tags": {"k": "v"}},
]


def test_a_record_change_is_a_new_dataset_version_with_its_digest(
    client: Client, name: str
) -> None:
    created = client.evaluation.create_dataset(name, tags={"team": "qa"})
    assert (created.digest, created.record_count, created.tags) == (None, 0, {"team": "qa"})

    first = client.evaluation.upsert_records(name, ROWS)
    assert (first["inserted"], first["updated"], first["version"]) == (2, 0, f"{name}@v1")
    again = client.evaluation.upsert_records(name, ROWS[:1])  # same content: same version
    assert (again["updated"], again["digest"]) == (1, first["digest"])

    changed = client.evaluation.upsert_records(
        name, [{"inputs": {"question": "2+2"}, "expectations": {"note": "easy"}}]
    )
    assert changed["digest"] != first["digest"] and changed["version"] == f"{name}@v2"
    records = {r.inputs["question"]: r for r in client.evaluation.records(name)}
    assert records["2+2"].expectations == {"expected_response": "4", "note": "easy"}
    assert records["3+3"].tags == {"k": "v"}

    # The digest IS the dataset version's content hash: the datasets service shows it.
    version = client.datasets.get(f"{name}@v2")
    assert version.content_hash == changed["digest"]
    assert client.evaluation.get_dataset(name).digest == changed["digest"]
    assert [f.path for f in client.datasets.files(version)] == ["records.jsonl"]

    # Deleting a record back to v1's content gives v1's digest again (content-addressed).
    gone = client.evaluation.delete_records(name, [records["2+2"].record_id])
    assert gone == 1
    client.evaluation.upsert_records(name, ROWS[:1])
    assert client.evaluation.get_dataset(name).digest == first["digest"]


def test_tags_experiments_search_and_delete(client: Client, name: str) -> None:
    experiment = client.tracking.get_or_create_experiment(f"exp-{name}")
    client.evaluation.create_dataset(name, experiment_ids=[experiment.id])
    client.evaluation.set_tags(name, {"a": "1", "b": "2"})
    client.evaluation.delete_tag(name, "a")
    found = client.evaluation.get_dataset(name)
    assert found.tags == {"b": "2"} and found.experiment_ids == (experiment.id,)
    assert [d.name for d in client.evaluation.search_datasets(experiment_ids=[experiment.id])] == [
        name
    ]
    assert client.evaluation.remove_experiments(name, [experiment.id]).experiment_ids == ()
    assert name in [d.name for d in client.evaluation.search_datasets(name_like=f"{name[:6]}%")]
    with pytest.raises(NotFound, match="no tag 'a'"):
        client.evaluation.delete_tag(name, "a")
    # Every change is in the audit log (written in its transaction).
    found_id = client.evaluation.get_dataset(name).id
    assert [e.action for e in client.audit.events(subject_id=found_id)] == [
        "eval_dataset.create",
        "eval_dataset.set_tags",
        "eval_dataset.delete_tag",
        "eval_dataset.remove_experiments",
    ]
    client.evaluation.delete_dataset(name)
    with pytest.raises(NotFound, match="not found"):
        client.evaluation.get_dataset(name)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"expectations": {"x": 1}}], "has no 'inputs'"),
        ([{"inputs": "text"}], "inputs must be an object"),
        ([{"inputs": {}}], "must not be empty"),
        ([{"inputs": {"q": 1}, "surprise": 1}], "unknown fields"),
        ([{"inputs": {"q": 1}, "tags": {"k": 1}}], "tag values must be strings"),
        (["not a record"], "must be an object"),
    ],
)
def test_malformed_records_are_refused_naming_the_problem(
    client: Client, name: str, records: list[object], message: str
) -> None:
    client.evaluation.create_dataset(name)
    with pytest.raises(InvalidInput, match=message):
        client.evaluation.upsert_records(name, records)
    assert client.evaluation.get_dataset(name).digest is None  # nothing stored


def test_names_unknown_and_taken(client: Client, name: str) -> None:
    with pytest.raises(NotFound, match="loopwright eval datasets"):
        client.evaluation.upsert_records(name, ROWS)
    with pytest.raises(InvalidInput, match="dataset name"):
        client.evaluation.create_dataset("../escape")
    client.evaluation.create_dataset(name)
    with pytest.raises(AlreadyExists, match="upsert_records"):
        client.evaluation.create_dataset(name)
    with pytest.raises(NotFound, match="experiment"):
        client.evaluation.create_dataset(f"{name}-x", experiment_ids=["0" * 32])
