"""Dataset versions end to end: adding, finding, labelling, diffing, checking out and status.

The round-trip tests run on SQLite and PostgreSQL, local and S3 blobs (``db_uri`` x
``blob_uri``); the rest run on an embedded SQLite home to stay fast.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path

import pytest
from blake3 import blake3

from loopwright._ids import now_ms
from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.data.entities import DatasetVersion
from loopwright.data.workspace import checkout, diff, status
from loopwright.errors import Conflict, InvalidInput, LoopwrightError, NotFound, UnsafePath
from loopwright.store import schema as t

FILES: dict[str, bytes] = {
    "a.txt": b"alpha\n",
    "b.txt": b"bravo\n",
    "empty.txt": b"",
    "sub/c.txt": b"charlie\n",
}


def write_tree(root: Path, files: Mapping[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def blob_hashes(client: Client) -> set[str]:
    return {info.hash for info in client.store.blobs.iter_blobs()}


def stat_cache_rows(client: Client) -> dict[str, str]:
    with closing(sqlite3.connect(client.settings.home / "cache" / "stat.db")) as conn:
        return dict(conn.execute("SELECT path, hash FROM stat_cache").fetchall())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home")) as client:
        yield client


@pytest.fixture
def db_client(tmp_path: Path, db_uri: str) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri)) as client:
        yield client


@pytest.fixture
def e2e_client(tmp_path: Path, db_uri: str, blob_uri: str) -> Iterator[Client]:
    settings = resolve_settings(home=tmp_path / "home", db_uri=db_uri, blob_uri=blob_uri)
    with Client(settings) as client:
        yield client


@pytest.fixture
def three_versions(client: Client, tmp_path: Path) -> list[DatasetVersion]:
    """``ds`` v1 (FILES), v2 (b.txt changed), v3 (a.txt deleted)."""
    src = write_tree(tmp_path / "src", FILES)
    v1 = client.datasets.add("ds", src, message="first")
    (src / "b.txt").write_bytes(b"bravo two\n")
    v2 = client.datasets.add("ds", src)
    (src / "a.txt").unlink()
    v3 = client.datasets.add("ds", src)
    return [v1, v2, v3]


# --- versions, end to end ----------------------------------------------------------------------


def test_versions_follow_content_and_check_out_byte_for_byte(
    e2e_client: Client, tmp_path: Path
) -> None:
    datasets = e2e_client.datasets
    src = write_tree(tmp_path / "src", FILES)

    v1 = datasets.add("ds", src, message="first", tags={"team": "risk"})
    assert (v1.ref, v1.number, v1.parent_id, v1.message) == ("ds@v1", 1, None, "first")
    assert (v1.file_count, v1.total_size) == (4, sum(map(len, FILES.values())))
    assert v1.tags == {"team": "risk"}
    assert {e.path: e.hash for e in datasets.files(v1)} == {
        rel: blake3(data).hexdigest() for rel, data in FILES.items()
    }

    again = datasets.add("ds", src)
    assert again.id == v1.id
    assert [v.number for v in datasets.versions("ds")] == [1]

    (src / "b.txt").write_bytes(b"bravo, edited\n")
    v2 = datasets.add("ds", src)
    assert (v2.number, v2.parent_id) == (2, v1.id)

    (src / "a.txt").unlink()
    v3 = datasets.add("ds", src)
    assert (v3.number, v3.parent_id, v3.file_count) == (3, v2.id, 3)
    assert [e.path for e in datasets.files(v3)] == ["b.txt", "empty.txt", "sub/c.txt"]

    v3_files = {**FILES, "b.txt": b"bravo, edited\n"}
    del v3_files["a.txt"]
    for version, expected in ((v1, FILES), (v3, v3_files)):
        dest = tmp_path / f"out-{version.number}"
        assert sorted(checkout(datasets, version, dest)) == sorted(expected)
        assert read_tree(dest) == expected
    assert (tmp_path / "out-1" / "empty.txt").stat().st_size == 0


def test_a_file_shared_by_versions_is_stored_once(e2e_client: Client, tmp_path: Path) -> None:
    datasets = e2e_client.datasets
    src = write_tree(tmp_path / "src", {"same.bin": os.urandom(50_000), "edit.txt": b"one"})
    v1 = datasets.add("ds", src)
    assert len(blob_hashes(e2e_client)) == 2
    (src / "edit.txt").write_bytes(b"two")
    v2 = datasets.add("ds", src)

    shared = {e.path: e.hash for e in datasets.files(v1)}["same.bin"]
    assert {e.path: e.hash for e in datasets.files(v2)}["same.bin"] == shared
    assert len(blob_hashes(e2e_client)) == 3  # same.bin, edit.txt v1, edit.txt v2
    with e2e_client.store.db.read() as conn:
        assert len(conn.execute(t.blobs.select()).all()) == 3


def test_runs_using_lists_the_runs_that_declared_a_version(
    db_client: Client, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"rows.csv": b"a,b\n1,2\n"})
    version = db_client.datasets.add("ds", src)
    assert db_client.datasets.runs_using(version) == []
    with db_client.start_run(experiment="churn") as run:
        run.use_dataset(version.id)
    with db_client.start_run(experiment="churn") as other:
        pass
    assert db_client.datasets.runs_using(version) == [run.id]
    assert other.id not in db_client.datasets.runs_using(version)


def test_an_unknown_producing_run_is_not_found(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="run"):
        client.datasets.add("ds", write_tree(tmp_path / "src", FILES), run_id="0" * 32)


# --- finding versions ---------------------------------------------------------------------------


def test_get_accepts_every_kind_of_reference(db_client: Client, tmp_path: Path) -> None:
    datasets = db_client.datasets
    src = write_tree(tmp_path / "src", {"x.txt": b"1"})
    v1 = datasets.add("ds", src)
    (src / "x.txt").write_bytes(b"22")
    v2 = datasets.add("ds", src, aliases=["golden"])
    (src / "x.txt").write_bytes(b"333")
    v3 = datasets.add("ds", src)

    for ref, expected in {
        "ds": v3,
        "ds@latest": v3,
        "ds@v2": v2,
        "ds@2": v2,
        "ds@v1": v1,
        "ds@golden": v2,
        f"ds@{v1.id}": v1,
    }.items():
        assert datasets.get(ref).id == expected.id, ref
    assert datasets.get("ds@golden").aliases == ("golden",)

    datasets.add("other", src)
    with pytest.raises(NotFound):  # an id is only found under its own dataset
        datasets.get(f"other@{v1.id}")


@pytest.mark.parametrize("selector", ["v9", "9", "nosuchalias", "0" * 32])
def test_an_unknown_version_lists_the_versions_there_are(
    three_versions: list[DatasetVersion], client: Client, selector: str
) -> None:
    with pytest.raises(NotFound) as caught:
        client.datasets.get(f"ds@{selector}")
    assert f"dataset 'ds' has no version '{selector}'" in str(caught.value)
    assert "versions: v1..v3" in str(caught.value)


def test_unknown_and_empty_datasets_are_named(client: Client) -> None:
    with pytest.raises(NotFound, match="dataset 'nope' does not exist"):
        client.datasets.get("nope@v1")
    with pytest.raises(NotFound, match="'nope'"):
        client.datasets.versions("nope")
    client.datasets.create_empty("empty")
    with pytest.raises(NotFound, match="versions: none"):
        client.datasets.get("empty")
    with pytest.raises(InvalidInput, match="dataset name"):
        client.datasets.get("bad name@v1")


def test_versions_are_newest_first_and_datasets_count_them(
    three_versions: list[DatasetVersion], client: Client, tmp_path: Path
) -> None:
    assert [v.id for v in client.datasets.versions("ds")] == [v.id for v in three_versions[::-1]]
    client.datasets.add("another", write_tree(tmp_path / "other", {"o.txt": b"o"}))
    client.datasets.create_empty("blank")
    counts = {d.name: d.version_count for d in client.datasets.list_datasets()}
    assert counts == {"another": 1, "blank": 0, "ds": 3}
    assert [d.name for d in client.datasets.list_datasets()] == ["another", "blank", "ds"]


def test_files_lists_paths_sizes_and_hashes(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", FILES))
    entries = client.datasets.files(version)
    assert [(e.path, e.size) for e in entries] == sorted(
        (rel, len(data)) for rel, data in FILES.items()
    )
    for entry in entries:
        assert client.store.blobs.read_bytes(entry.hash) == FILES[entry.path]


# --- aliases and tags ---------------------------------------------------------------------------


def test_an_alias_moves_to_the_version_it_is_set_on(
    three_versions: list[DatasetVersion], client: Client
) -> None:
    v1, v2, _ = three_versions
    assert client.datasets.set_alias("ds@v1", "golden").aliases == ("golden",)
    assert client.datasets.get("ds@golden").id == v1.id
    moved = client.datasets.set_alias(f"ds@{v2.id}", "golden")
    assert (moved.id, moved.aliases) == (v2.id, ("golden",))
    assert client.datasets.get("ds@golden").id == v2.id
    assert client.datasets.get("ds@v1").aliases == ()


@pytest.mark.parametrize("alias", ["latest", "v2", "12", "1st", "-x", "has space", "", "a" * 101])
def test_reserved_or_malformed_alias_names_are_refused(
    three_versions: list[DatasetVersion], client: Client, alias: str
) -> None:
    with pytest.raises(InvalidInput, match="alias"):
        client.datasets.set_alias("ds@v1", alias)
    assert all(v.aliases == () for v in client.datasets.versions("ds"))


def test_a_refused_alias_at_add_time_records_nothing(client: Client, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="alias"):
        client.datasets.add("ds", write_tree(tmp_path / "src", FILES), aliases=["latest"])
    assert client.datasets.list_datasets() == []


def test_re_adding_identical_content_still_applies_aliases_and_tags(
    client: Client, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", FILES)
    first = client.datasets.add("ds", src)
    again = client.datasets.add("ds", src, aliases=["golden"], tags={"reviewed": "yes"})
    assert again.id == first.id
    assert again.aliases == ("golden",)
    assert again.tags == {"reviewed": "yes"}


def test_tags_are_set_and_overwritten(three_versions: list[DatasetVersion], client: Client) -> None:
    client.datasets.tag("ds@v2", "quality", "draft")
    tagged = client.datasets.tag("ds@v2", "owner", "ana")
    assert tagged.tags == {"quality": "draft", "owner": "ana"}
    assert client.datasets.tag("ds@v2", "quality", "good").tags["quality"] == "good"
    assert client.datasets.get("ds@v1").tags == {}
    with pytest.raises(NotFound):
        client.datasets.tag("ds@v7", "k", "v")


# --- tables as sources --------------------------------------------------------------------------


def test_a_dataframe_becomes_one_parquet_file_that_reads_back_equal(
    client: Client, tmp_path: Path
) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [1, 2, 3], "city": ["Oslo", "Lima", None], "x": [0.5, 1.5, 2.5]})
    version = client.datasets.add("table", frame)
    assert [e.path for e in client.datasets.files(version)] == ["data.parquet"]
    assert client.datasets.add("table", frame.copy()).id == version.id  # deterministic bytes

    checkout(client.datasets, version, tmp_path / "out")
    back = pd.read_parquet(tmp_path / "out" / "data.parquet")
    pd.testing.assert_frame_equal(back, frame)


def test_an_arrow_table_becomes_one_parquet_file_that_reads_back_equal(
    client: Client, tmp_path: Path
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"k": ["a", "b"], "v": pa.array([1.0, None], type=pa.float64())})
    version = client.datasets.add("arrow", table, table_name="part/rows.parquet")
    assert [e.path for e in client.datasets.files(version)] == ["part/rows.parquet"]
    checkout(client.datasets, version, tmp_path / "out")
    assert pq.read_table(tmp_path / "out" / "part" / "rows.parquet").equals(table)


# --- diff ---------------------------------------------------------------------------------------


def test_diff_lists_added_removed_and_changed_files(client: Client, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"keep.txt": b"k", "edit.txt": b"1", "gone.txt": b"g"})
    old = client.datasets.add("ds", src)
    (src / "edit.txt").write_bytes(b"22")
    (src / "gone.txt").unlink()
    write_tree(src, {"new/one.txt": b"n"})
    new = client.datasets.add("ds", src)

    result = diff(client.datasets, old, new)
    assert [e.path for e in result.added] == ["new/one.txt"]
    assert [e.path for e in result.removed] == ["gone.txt"]
    assert [(a.path, a.size, b.size) for a, b in result.changed] == [("edit.txt", 1, 2)]
    assert not result.unchanged
    assert diff(client.datasets, old, old).unchanged

    backwards = diff(client.datasets, new, old)
    assert [e.path for e in backwards.added] == ["gone.txt"]
    assert [e.path for e in backwards.removed] == ["new/one.txt"]


def test_diff_of_two_csv_versions_shows_rows_and_column_statistics(
    client: Client, tmp_path: Path
) -> None:
    pytest.importorskip("loopwright.data.profile")
    src = write_tree(tmp_path / "src", {"rows.csv": b"x,y,old\n1,a,t\n2,b,t\n3,c,t\n"})
    old = client.datasets.add("ds", src)
    (src / "rows.csv").write_bytes(b"x,y,z\n1,a,0.5\n2,b,1.5\n3,c,2.5\n10,d,3.5\n")
    new = client.datasets.add("ds", src)
    assert old.profile is not None and old.profile["rows.csv"]["row_count"] == 3

    change = diff(client.datasets, old, new).tabular["rows.csv"]
    assert change["rows"] == [3, 4]
    assert change["columns_added"] == ["z"]
    assert change["columns_removed"] == ["old"]
    x = change["columns_changed"]["x"]
    assert x["mean"] == [2.0, 4.0]
    assert x["max"] == [3, 10]
    assert x["distinct"] == [3, 4]
    assert change["columns_changed"]["y"]["distinct"] == [3, 4]


# --- checkout -----------------------------------------------------------------------------------


def test_checkout_leaves_matching_files_alone(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", FILES))
    dest = tmp_path / "ws"
    assert sorted(checkout(client.datasets, version, dest)) == sorted(FILES)
    inodes = {rel: (dest / rel).stat().st_ino for rel in FILES}

    assert checkout(client.datasets, version, dest) == []
    os.utime(dest / "a.txt", ns=(1, 1))  # same bytes, new stat: hashed again, still not rewritten
    (client.settings.home / "cache" / "stat.db").unlink()  # and without any cache at all
    with Client(client.settings) as fresh:
        assert checkout(fresh.datasets, version, dest) == []
    assert {rel: (dest / rel).stat().st_ino for rel in FILES} == inodes


def test_checkout_with_local_changes_writes_nothing_unless_forced(
    client: Client, tmp_path: Path
) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", FILES))
    dest = write_tree(tmp_path / "ws", {"a.txt": b"my local edit\n", "unrelated.txt": b"mine"})

    with pytest.raises(Conflict) as caught:
        checkout(client.datasets, version, dest)
    assert "a.txt" in str(caught.value) and "--force" in str(caught.value)
    assert read_tree(dest) == {"a.txt": b"my local edit\n", "unrelated.txt": b"mine"}

    written = checkout(client.datasets, version, dest, force=True)
    assert sorted(written) == sorted(FILES)
    assert read_tree(dest) == {**FILES, "unrelated.txt": b"mine"}


def test_checkout_restores_a_deleted_workspace_file(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", FILES))
    dest = tmp_path / "ws"
    checkout(client.datasets, version, dest)
    (dest / "sub" / "c.txt").unlink()
    (dest / "empty.txt").unlink()
    assert sorted(checkout(client.datasets, version, dest)) == ["empty.txt", "sub/c.txt"]
    assert read_tree(dest) == FILES


def test_checkout_refuses_a_stored_path_that_escapes_the_folder(
    client: Client, tmp_path: Path
) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", {"ok.txt": b"fine"}))
    [entry] = client.datasets.files(version)
    with client.store.db.write() as conn:
        conn.execute(
            t.artifacts.insert(),
            {
                "owner_type": "dataset",
                "owner_id": version.id,
                "path": "../escape",
                "blob_hash": entry.hash,
                "size": entry.size,
                "created_at": now_ms(),
            },
        )
    outer = tmp_path / "outer"
    dest = outer / "ws"
    with pytest.raises(UnsafePath, match=re.escape("'../escape'")):
        checkout(client.datasets, version, dest)
    assert not (outer / "escape").exists()
    assert not dest.exists() or read_tree(dest) == {}


def test_checkout_over_a_folder_in_the_way_writes_nothing(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add(
        "ds", write_tree(tmp_path / "src", {"a.txt": b"a", "b.txt": b"b"})
    )
    dest = tmp_path / "ws"
    (dest / "b.txt").mkdir(parents=True)
    with pytest.raises(LoopwrightError):
        checkout(client.datasets, version, dest)
    assert not (dest / "a.txt").exists()


# --- status -------------------------------------------------------------------------------------


def test_status_detects_modified_added_and_removed_files(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", FILES))
    dest = tmp_path / "ws"
    checkout(client.datasets, version, dest)
    clean = status(client.datasets, version, dest)
    assert clean.clean and (clean.added, clean.removed, clean.modified) == ([], [], [])

    (dest / "a.txt").write_bytes(b"ALPHA\n")  # same size, other bytes
    (dest / "sub" / "c.txt").unlink()
    write_tree(dest, {"sub/new.txt": b"new"})
    result = status(client.datasets, version, dest)
    assert not result.clean
    assert (result.modified, result.added, result.removed) == (
        ["a.txt"],
        ["sub/new.txt"],
        ["sub/c.txt"],
    )

    missing = status(client.datasets, version, tmp_path / "nowhere")
    assert missing.removed == sorted(FILES) and missing.added == []


def test_status_of_a_single_file_version(client: Client, tmp_path: Path) -> None:
    data = write_tree(tmp_path / "src", {"x.csv": b"a\n1\n"}) / "x.csv"
    version = client.datasets.add("ds", data)
    assert status(client.datasets, version, data).clean
    data.write_bytes(b"a\n2\n")
    assert status(client.datasets, version, data).modified == ["x.csv"]


def test_status_records_and_trusts_the_stat_cache(client: Client, tmp_path: Path) -> None:
    version = client.datasets.add("ds", write_tree(tmp_path / "src", FILES))
    dest = tmp_path / "ws"
    checkout(client.datasets, version, dest)
    os.utime(dest / "a.txt", ns=(5, 5))  # a new stat key: status must hash it and cache it
    assert status(client.datasets, version, dest).clean

    expected = {e.path: e.hash for e in client.datasets.files(version)}
    rows = stat_cache_rows(client)
    for rel, digest in expected.items():
        assert rows[os.path.abspath(dest / rel)] == digest

    # The cache is trusted while the stat key holds: a (deliberately) wrong entry is believed.
    with closing(sqlite3.connect(client.settings.home / "cache" / "stat.db")) as conn, conn:
        conn.execute(
            "UPDATE stat_cache SET hash = ? WHERE path = ?",
            ("0" * 64, os.path.abspath(dest / "b.txt")),
        )
    assert status(client.datasets, version, dest).modified == ["b.txt"]
