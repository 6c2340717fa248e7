"""Delayed labels on real databases: upsert and replace, reads by span, joins, file imports."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput, NotFound
from loopwright.monitoring._labels import MAX_LABEL_CHARS, LabelBook, read_label_file
from loopwright.monitoring.entities import LabelImport
from loopwright.store import limits
from loopwright.store import schema as t
from loopwright.store.audit import events, verify_chain
from loopwright.store.home import Store, open_store

_examples = itertools.count()  # a fresh deployment per hypothesis example


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def store(tmp_path: Path, db_uri: str) -> Iterator[Store]:
    with open_store(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(store: Store, clock: Clock) -> LabelBook:
    return LabelBook(store, actor="ada", clock=clock)


def test_log_stores_typed_labels_and_audits_one_event(book: LabelBook, store: Store) -> None:
    result = book.log("churn-api", {"r1": 1, "r2": "spam", "r3": True, "r4": 2.5})
    assert result == LabelImport("churn-api", 4, 0)
    read = book.read("churn-api")
    assert list(read.columns) == ["request_id", "row", "label", "logged_at"]
    assert dict(zip(read["request_id"], read["label"], strict=True)) == {
        "r1": 1,
        "r2": "spam",
        "r3": True,
        "r4": 2.5,
    }
    assert type(read.set_index("request_id").loc["r3", "label"]) is bool
    assert set(read["row"]) == {0}
    audit = [e for e in events(store.db) if e.action == "labels.log"]
    assert len(audit) == 1
    assert (audit[0].actor, audit[0].subject_id) == ("ada", "churn-api")
    assert audit[0].after == {"rows": 4, "updated": 0}  # the count, not the labels
    assert verify_chain(store.db).ok


def test_logging_again_replaces_and_counts_the_replaced(book: LabelBook, clock: Clock) -> None:
    book.log("d", {"r1": 0, "r2": 0})
    clock.now += 1000
    result = book.log("d", {"r2": 1, "r3": 1})
    assert (result.rows, result.updated) == (2, 1)
    read = book.read("d").set_index("request_id")
    assert read.loc["r2", "label"] == 1
    assert read.loc["r2", "logged_at"] == clock.now
    assert read.loc["r1", "logged_at"] == clock.now - 1000


def test_frame_with_rows_and_last_duplicate_wins(book: LabelBook) -> None:
    frame = pd.DataFrame(
        {"request_id": ["a", "a", "b", "a"], "row": [0, 1, 0, 1], "label": [1, 0, 1, 7]}
    )
    result = book.log("d", frame)
    assert (result.rows, result.updated) == (3, 0)  # ("a", 1) given twice: stored once
    read = book.read("d")
    keys = zip(read["request_id"], read["row"], strict=True)
    got = dict(zip(keys, read["label"], strict=True))
    assert got == {("a", 0): 1, ("a", 1): 7, ("b", 0): 1}


def test_labels_are_kept_per_deployment(book: LabelBook) -> None:
    book.log("one", {"r1": 1})
    book.log("two", {"r1": 2})
    assert book.read("one")["label"].tolist() == [1]
    assert book.read("two")["label"].tolist() == [2]
    assert book.read("three").empty


def test_read_span_is_half_open(book: LabelBook, clock: Clock) -> None:
    start = clock.now
    for i in range(3):
        book.log("d", {f"r{i}": i})
        clock.now += 1000
    assert book.read("d", since_ms=start + 1000)["request_id"].tolist() == ["r1", "r2"]
    assert book.read("d", until_ms=start + 1000)["request_id"].tolist() == ["r0"]
    assert book.read("d", since_ms=start, until_ms=start + 2000)["label"].tolist() == [0, 1]
    with pytest.raises(InvalidInput, match="since_ms"):
        book.read("d", since_ms="yesterday")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"r1": math.nan}, "not finite numbers"),
        ({"r1": math.inf}, "not finite numbers"),
        ({"r1": None}, "not finite numbers"),
        ({"r1": [1, 2]}, "not finite numbers"),
        ({"r1": {"a": 1}}, "not finite numbers"),
        ({"r1": ""}, "not finite numbers"),
        ({"r1": "x" * (MAX_LABEL_CHARS + 1)}, f"at most {MAX_LABEL_CHARS}"),
        ({"r1": "a\x00b"}, "not finite numbers"),
        ({"": 1}, "request id"),
        ({"x" * (limits.REQUEST_ID + 1): 1}, "request id"),
        ({3: 1}, "request id"),
        ({}, "no labels given"),
        ("r1=1", "mapping"),
        (pd.DataFrame({"request_id": ["a"]}), "'label'"),
        (pd.DataFrame({"request_id": ["a"], "label": [1], "row": [-1]}), "row number"),
        (pd.DataFrame({"request_id": ["a"], "label": [1], "row": [0.5]}), "row number"),
        (pd.DataFrame({"request_id": ["a"], "label": [1], "row": [2**31]}), "row number"),
        (pd.DataFrame({"request_id": ["a", "b"], "label": [1.0, np.nan]}), "not finite"),
    ],
)
def test_bad_labels_are_refused_and_nothing_is_stored(
    book: LabelBook, store: Store, labels: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        book.log("d", labels)
    with store.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.ground_truth)).scalar() == 0


@pytest.mark.parametrize("name", ["", "a/b", "a=b", " a", "x" * (limits.DEPLOYMENT_NAME + 1)])
def test_bad_deployment_names_are_refused(book: LabelBook, name: str) -> None:
    with pytest.raises(InvalidInput, match="deployment name"):
        book.log(name, {"r1": 1})
    with pytest.raises(InvalidInput, match="deployment name"):
        book.read(name)


def test_one_bad_label_in_a_batch_stores_none(book: LabelBook, store: Store) -> None:
    labels: dict[str, object] = {f"r{i}": i for i in range(100)}
    labels["r50"] = math.nan
    with pytest.raises(InvalidInput, match="1 label"):
        book.log("d", labels)
    assert book.read("d").empty


def test_numpy_scalars_keep_their_kind(book: LabelBook, store: Store) -> None:
    book.log("d", {"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(False), "s": np.str_("x")})
    with store.db.read() as conn:
        stored = dict(
            conn.execute(sa.select(t.ground_truth.c.request_id, t.ground_truth.c.label_json)).all()
        )
    assert {k: json.loads(v) for k, v in stored.items()} == {"i": 3, "f": 0.5, "b": False, "s": "x"}


def test_large_import_across_batches(book: LabelBook) -> None:
    labels = {f"req-{i}": i % 3 for i in range(12_000)}  # more than one insert batch and IN list
    assert book.log("d", labels) == LabelImport("d", 12_000, 0)
    labels.update({f"req-{i}": 9 for i in range(0, 12_000, 2)})
    assert book.log("d", labels) == LabelImport("d", 12_000, 12_000)
    read = book.read("d")
    assert len(read) == 12_000
    assert (read.set_index("request_id").loc["req-10", "label"]) == 9


def test_join_adds_labels_where_they_exist(book: LabelBook) -> None:
    book.log(
        "d", pd.DataFrame({"request_id": ["a", "a", "c"], "row": [0, 1, 0], "label": [1, 0, "x"]})
    )
    book.log("other", {"b": 5})
    frame = pd.DataFrame(
        {
            "request_id": ["a", "a", "b", "c", "a"],
            "row": np.array([0, 1, 0, 0, 2], dtype=np.int32),
            "output.predict": [1, 1, 0, 0, 1],
        },
        index=[10, 11, 12, 13, 14],
    )
    joined = book.join("d", frame)
    assert list(joined.index) == [10, 11, 12, 13, 14]
    assert joined["label"].tolist() == [1, 0, None, "x", None]
    assert joined["output.predict"].tolist() == [1, 1, 0, 0, 1]
    assert "label" not in frame.columns  # the caller's frame is left alone
    coverage = joined["label"].notna().mean()
    assert coverage == pytest.approx(3 / 5)


def test_join_many_request_ids_and_an_empty_frame(book: LabelBook) -> None:
    book.log("d", {f"r{i}": i for i in range(0, 3000, 3)})
    frame = pd.DataFrame({"request_id": [f"r{i}" for i in range(3000)], "row": 0})
    joined = book.join("d", frame)
    assert joined["label"].notna().sum() == 1000
    assert joined.loc[2997, "label"] == 2997
    empty = book.join("d", frame[:0])
    assert list(empty.columns) == ["request_id", "row", "label"] and empty.empty
    with pytest.raises(InvalidInput, match="'row'"):
        book.join("d", frame[["request_id"]])


def test_read_label_file_parquet_and_csv(tmp_path: Path, book: LabelBook) -> None:
    frame = pd.DataFrame({"request_id": ["0012", "b"], "row": [0, 3], "label": ["yes", "no"]})
    frame.to_parquet(tmp_path / "labels.parquet")
    frame.to_csv(tmp_path / "labels.csv", index=False)
    for name in ("labels.parquet", "labels.csv"):
        read = read_label_file(tmp_path / name)
        assert read["request_id"].tolist() == ["0012", "b"]  # a CSV's 0012 stays text
        assert read["row"].tolist() == [0, 3]
        assert book.log("d", read).rows == 2
    assert book.read("d")["label"].tolist() == ["yes", "no"]


def test_read_label_file_csv_numbers_and_missing_cells(tmp_path: Path) -> None:
    (tmp_path / "n.csv").write_text("request_id,label\n1,0.5\n2,\n")
    with pytest.raises(InvalidInput, match="1 label"):
        read_label_file(tmp_path / "n.csv")  # an empty cell is no label: refused, not NaN
    (tmp_path / "ok.csv").write_text("request_id,label,extra\n1,0.5\n2,3\n")
    read = read_label_file(tmp_path / "ok.csv")
    assert list(read.columns) == ["request_id", "label"]
    assert read["label"].tolist() == [0.5, 3.0]


def test_read_label_file_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        read_label_file(tmp_path / "missing.parquet")
    (tmp_path / "labels.json").write_text("{}")
    with pytest.raises(InvalidInput, match="neither Parquet"):
        read_label_file(tmp_path / "labels.json")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InvalidInput, match="cannot be read"):
        read_label_file(tmp_path / "broken.parquet")
    (tmp_path / "cols.csv").write_text("id,value\na,1\n")
    with pytest.raises(InvalidInput, match="no 'request_id' or 'label' column"):
        read_label_file(tmp_path / "cols.csv")
    pd.DataFrame({"request_id": [1, 2], "label": [0, 1]}).to_parquet(tmp_path / "ints.parquet")
    with pytest.raises(InvalidInput, match="must hold strings"):
        read_label_file(tmp_path / "ints.parquet")
    pd.DataFrame({"request_id": ["a"], "label": [[1, 2]]}).to_parquet(tmp_path / "list.parquet")
    with pytest.raises(InvalidInput, match="1 label"):
        read_label_file(tmp_path / "list.parquet")


_IDS = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=30,
)
_LABELS = st.one_of(
    st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    _IDS,  # tabs, newlines, backslashes and quotes: what COPY and JSON must carry intact
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=st.dictionaries(_IDS, _LABELS, min_size=1, max_size=20), again=st.data())
def test_any_labels_read_back_as_logged(
    book: LabelBook, first: dict[str, object], again: st.DataObject
) -> None:
    deployment = f"prop-{next(_examples)}"
    assert book.log(deployment, first).rows == len(first)
    second = again.draw(st.dictionaries(st.sampled_from(sorted(first)) | _IDS, _LABELS, min_size=1))
    result = book.log(deployment, second)
    assert result.updated == len(set(second) & set(first))
    read = book.read(deployment)
    stored = dict(zip(read["request_id"], read["label"], strict=True))
    expected = {**first, **second}
    assert stored.keys() == expected.keys()
    for key, value in expected.items():
        assert stored[key] == value and type(stored[key]) is type(value), key
    joined = book.join(deployment, pd.DataFrame({"request_id": list(expected), "row": 0}))
    assert joined["label"].tolist() == list(expected.values())
