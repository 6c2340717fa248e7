"""Turning sources into versions: folders, globs, symlinks, huge files, files that change while
they are added; and the pointer files that name a version in Git."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from blake3 import blake3

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.data.entities import FileEntry
from loopwright.data.ingest import collect_files, manifest_hash
from loopwright.data.pointer import read_pointer, write_pointer
from loopwright.data.stat_cache import StatCache, file_key
from loopwright.data.workspace import checkout
from loopwright.errors import ConfigError, DataError, IntegrityError, InvalidInput, UnsafePath
from loopwright.paths import normalize_relpath

MiB = 1 << 20


def write_tree(root: Path, files: Mapping[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def rels(sources: list[str | Path]) -> list[str]:
    return [rel for rel, _ in collect_files(sources)]


def streamed_blake3(path: Path) -> str:
    hasher = blake3()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            hasher.update(chunk)
    return hasher.hexdigest()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(resolve_settings(home=tmp_path / "home")) as client:
        yield client


# --- which files a source names -----------------------------------------------------------------


def test_one_folder_puts_its_contents_at_the_root(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"b.txt": b"", "a/z.txt": b"", "a/y/x.txt": b""})
    assert sorted(rels([src])) == ["a/y/x.txt", "a/z.txt", "b.txt"]


def test_several_sources_keep_their_own_names(tmp_path: Path) -> None:
    write_tree(tmp_path, {"one/a.txt": b"", "one/sub/b.txt": b"", "two.csv": b""})
    assert rels([tmp_path / "one", tmp_path / "two.csv"]) == [
        "one/a.txt",
        "one/sub/b.txt",
        "two.csv",
    ]


def test_globs_expand_relative_to_the_working_directory() -> None:
    write_tree(Path(), {"a.csv": b"", "b.csv": b"", "c.txt": b"", "deep/d.txt": b""})
    write_tree(Path(), {"deep/er/e.txt": b""})
    assert rels(["*.csv"]) == ["a.csv", "b.csv"]
    assert sorted(rels(["**/*.txt"])) == ["c.txt", "d.txt", "e.txt"]


def test_a_glob_matching_nothing_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"the pattern '\*\.parquet' matches no file"):
        collect_files(["*.parquet"])


def test_two_sources_giving_the_same_path_are_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, {"x/data.csv": b"1", "y/data.csv": b"2", "y/sub/data.csv": b"3"})
    with pytest.raises(InvalidInput, match=re.escape("two sources give the path 'data.csv'")):
        collect_files([tmp_path / "x" / "data.csv", tmp_path / "y" / "data.csv"])
    with pytest.raises(InvalidInput, match=re.escape("'data.csv'")):
        collect_files([str(tmp_path / "y" / "**" / "data.csv")])


def test_a_missing_source_is_named(client: Client, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InvalidInput, match=re.escape("nope.csv' does not exist")):
        client.datasets.add("ds", missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no files found"):
        client.datasets.add("ds", tmp_path / "empty")
    assert client.datasets.list_datasets() == []


# --- symlinks -----------------------------------------------------------------------------------


def test_a_symlink_to_a_file_inside_is_stored_with_the_target_content(
    client: Client, tmp_path: Path
) -> None:
    src = write_tree(tmp_path / "src", {"real/data.csv": b"a,b\n1,2\n"})
    (src / "link.csv").symlink_to(Path("real") / "data.csv")
    version = client.datasets.add("ds", src)
    hashes = {e.path: e.hash for e in client.datasets.files(version)}
    assert hashes == {"link.csv": hashes["real/data.csv"], "real/data.csv": hashes["link.csv"]}
    assert hashes["link.csv"] == blake3(b"a,b\n1,2\n").hexdigest()

    out = tmp_path / "out"
    checkout(client.datasets, version, out)
    assert not (out / "link.csv").is_symlink()
    assert (out / "link.csv").read_bytes() == b"a,b\n1,2\n"


def test_a_symlink_to_a_file_outside_is_refused_naming_the_link(tmp_path: Path) -> None:
    write_tree(tmp_path, {"secret.txt": b"s", "src/ok.txt": b"o"})
    (tmp_path / "src" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InvalidInput) as caught:
        collect_files([tmp_path / "src"])
    assert str(tmp_path / "src" / "leak.txt") in str(caught.value)
    assert "outside" in str(caught.value)


def test_a_symlinked_folder_inside_is_not_followed(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"real/x.txt": b"x"})
    (src / "alias").symlink_to("real", target_is_directory=True)
    assert rels([src]) == ["real/x.txt"]


def test_a_symlinked_folder_outside_is_not_followed(tmp_path: Path) -> None:
    write_tree(tmp_path, {"elsewhere/x.txt": b"x", "src/ok.txt": b"o"})
    (tmp_path / "src" / "ext").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert rels([tmp_path / "src"]) == ["ok.txt"]


def test_a_dangling_symlink_inside_is_skipped(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"ok.txt": b"o"})
    (src / "broken.txt").symlink_to("deleted.txt")
    assert rels([src]) == ["ok.txt"]


def test_a_dangling_symlink_to_an_absolute_path_is_skipped(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"ok.txt": b"o"})
    (src / "broken.txt").symlink_to(tmp_path / "no-such-dir" / "gone.txt")
    assert rels([src]) == ["ok.txt"]


# --- storing ------------------------------------------------------------------------------------


def test_manifest_hash_depends_on_paths_and_content_not_order() -> None:
    a, b = FileEntry("a.txt", 1, "1" * 64), FileEntry("b.txt", 2, "2" * 64)
    assert manifest_hash([a, b]) == manifest_hash([b, a])
    assert manifest_hash([a, b]) != manifest_hash([a, FileEntry("c.txt", 2, "2" * 64)])
    assert manifest_hash([a, b]) != manifest_hash([a, FileEntry("b.txt", 2, "3" * 64)])


def test_unchanged_files_are_vouched_for_by_the_stat_cache(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_tree(tmp_path / "src", {f"f{i}.txt": str(i).encode() for i in range(5)})
    calls: list[int] = []
    first = client.datasets.add("ds", src, progress=calls.append)
    assert sum(calls) == 5  # every file hashed and stored (small files in one batch)
    calls.clear()

    def no_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("an unchanged file was read again")

    with monkeypatch.context() as patch:
        patch.setattr(client.store.blobs, "put_small_files", no_reads)
        patch.setattr(client.store.blobs, "put_file", no_reads)
        assert client.datasets.add("ds", src, progress=calls.append).id == first.id
    assert calls == [5]  # all five answered from the cache at once

    (src / "f3.txt").write_bytes(b"changed")
    calls.clear()
    second = client.datasets.add("ds", src, progress=calls.append)
    assert sorted(calls) == [1, 4] and second.number == 2


def test_a_huge_file_is_added_and_checked_out_in_bounded_memory(
    client: Client, tmp_path: Path
) -> None:
    size = 300 * MiB
    big = tmp_path / "src" / "huge.bin"
    big.parent.mkdir()
    with big.open("wb") as handle:  # sparse, with a few marks so chunks cannot be confused
        handle.truncate(size)
        for offset in (0, 7 * MiB + 3, 150 * MiB, size - 1):
            handle.seek(offset)
            handle.write(b"\xff")
    expected = streamed_blake3(big)

    tracemalloc.start()
    try:
        version = client.datasets.add("big", big.parent)
        written = checkout(client.datasets, version, tmp_path / "out")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * MiB, f"peak {peak / MiB:.1f} MiB while moving a 300 MiB file"
    assert written == ["huge.bin"]
    assert [(e.size, e.hash) for e in client.datasets.files(version)] == [(size, expected)]
    assert streamed_blake3(tmp_path / "out" / "huge.bin") == expected


def test_a_file_rewritten_during_add_gives_a_data_error_or_one_whole_state(
    client: Client, tmp_path: Path
) -> None:
    """Never a version whose bytes mix two states of the file."""
    size = 20 * MiB
    src = write_tree(tmp_path / "src", {"other.txt": b"steady"})
    target = src / "big.bin"
    target.write_bytes(b"\x00" * size)
    stop = threading.Event()

    def rewrite() -> None:  # in place, 1 MiB at a time; each state is one repeated byte
        state = 0
        fd = os.open(target, os.O_WRONLY)
        try:
            while not stop.is_set():
                state = state % 250 + 1
                chunk = bytes([state]) * MiB
                for offset in range(0, size, MiB):
                    os.pwrite(fd, chunk, offset)
                stop.wait(0.04 if state % 2 else 0.0)  # pause at times, so some adds succeed
        finally:
            os.close(fd)

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    outcomes: list[str] = []
    try:
        for _ in range(8):
            try:
                version = client.datasets.add("moving", src)
            except DataError as exc:
                assert "changed while it was being added" in str(exc)
                outcomes.append("error")
                continue
            entry = {e.path: e for e in client.datasets.files(version)}["big.bin"]
            data = client.store.blobs.read_bytes(entry.hash)
            assert len(data) == size
            assert data == data[:1] * size, "a version mixes two states of the file"
            outcomes.append("version")
    finally:
        stop.set()
        writer.join()
    # A DataError records nothing: every version there is came from a successful add.
    counts = {d.name: d.version_count for d in client.datasets.list_datasets()}
    assert counts.get("moving", 0) <= outcomes.count("version")


def test_a_stat_cache_of_the_old_layout_is_rebuilt_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "stat.db"
    with sqlite3.connect(path) as conn:  # layout 1: the stat key in four integer columns
        conn.execute(
            "CREATE TABLE stat_cache (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
            "inode INTEGER, device INTEGER, hash TEXT) WITHOUT ROWID"
        )
        conn.execute("INSERT INTO stat_cache VALUES ('/x', 1, 2, 3, 4, ?)", ("ab" * 32,))
    conn.close()
    cache = StatCache(path)
    try:
        assert cache.get_many(["/x"]) == {}
        data = tmp_path / "data.txt"
        data.write_bytes(b"data")
        [digest] = cache.hashes([data])
        assert digest == blake3(b"data").hexdigest()
        assert cache.get_many([str(data)]) == {str(data): (file_key(data.stat()), digest)}
    finally:
        cache.close()
    reopened = StatCache(path)
    assert reopened.get_many([str(data)])  # at the new layout: kept
    reopened.close()


# --- link modes ---------------------------------------------------------------------------------


def test_hardlink_mode_links_large_files_and_packs_small_ones(tmp_path: Path) -> None:
    src = write_tree(
        tmp_path / "src", {"big.bin": os.urandom(300_000), "small.txt": b"small", "c/d.bin": b"d"}
    )
    settings = resolve_settings(home=tmp_path / "home", data_link="hardlink,copy")
    with Client(settings) as client:
        version = client.datasets.add("linked", src)
        entries = {e.path: e for e in client.datasets.files(version)}
        blobs = Path(client.store.blobs.uri)
    big = entries["big.bin"].hash
    assert (blobs / big[:2] / big[2:]).stat().st_ino == (src / "big.bin").stat().st_ino
    assert (src / "big.bin").stat().st_mode & 0o777 == 0o444  # protected against in-place edits
    assert (src / "small.txt").stat().st_mode & 0o200  # packed (copied): left as it was
    assert not (blobs / entries["small.txt"].hash[:2]).exists()


def test_an_edit_in_place_after_a_hardlink_add_is_reported_not_served(tmp_path: Path) -> None:
    """The trade-off of hardlinks: the stored version is not silently replaced by the edit."""
    src = write_tree(tmp_path / "src", {"big.bin": b"v1" * 100_000})
    settings = resolve_settings(home=tmp_path / "home", data_link="hardlink")
    with Client(settings) as client:
        version = client.datasets.add("linked", src)
        (src / "big.bin").chmod(0o644)
        with (src / "big.bin").open("r+b") as handle:  # an edit that bypasses the protection
            handle.write(b"v2")
        with pytest.raises(IntegrityError, match="corrupt"):
            checkout(client.datasets, version, tmp_path / "out")
        assert not (tmp_path / "out" / "big.bin").exists()
        # The edited file is a new state: adding it again makes a new, correct version.
        second = client.datasets.add("linked", src)
        assert second.number == 2
        checkout(client.datasets, second, tmp_path / "out2")
        assert (tmp_path / "out2" / "big.bin").read_bytes() == (src / "big.bin").read_bytes()


def test_identical_large_files_hardlinked_in_one_add_keep_their_timestamps(
    tmp_path: Path,
) -> None:
    same = os.urandom(300_000)
    src = write_tree(tmp_path / "src", {f"copy{i}.bin": same for i in range(6)})
    old = 1_600_000_000_000_000_000
    for path in src.iterdir():
        os.utime(path, ns=(old, old))
    settings = resolve_settings(home=tmp_path / "home", data_link="hardlink")
    with Client(settings) as client:
        version = client.datasets.add("twins", src)  # no "changed while it was being added"
    assert version.file_count == 6
    assert {path.stat().st_mtime_ns for path in src.iterdir()} == {old}


def test_the_default_order_never_shares_the_workspace_file(client: Client, tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"big.bin": os.urandom(300_000)})
    version = client.datasets.add("copied", src)
    [entry] = client.datasets.files(version)
    blob = Path(client.store.blobs.uri) / entry.hash[:2] / entry.hash[2:]
    assert blob.stat().st_ino != (src / "big.bin").stat().st_ino  # a reflink or a copy
    assert (src / "big.bin").stat().st_mode & 0o200


def test_the_data_link_setting_from_file_and_environment(tmp_path: Path) -> None:
    assert resolve_settings(cwd=tmp_path, environ={}).data_link == ("reflink", "copy")
    (tmp_path / "loopwright.toml").write_text('data_link = ["hardlink", "copy"]\n')
    assert resolve_settings(cwd=tmp_path, environ={}).data_link == ("hardlink", "copy")
    env = {"LOOPWRIGHT_DATA_LINK": "Reflink, hardlink"}
    assert resolve_settings(cwd=tmp_path, environ=env).data_link == ("reflink", "hardlink")
    with pytest.raises(ConfigError, match=r"data_link .*symlink"):
        resolve_settings(cwd=tmp_path, environ={"LOOPWRIGHT_DATA_LINK": "symlink"})


# --- names checked on the fast path -------------------------------------------------------------


def test_plain_and_unusual_names_get_the_same_paths_as_the_full_rules(tmp_path: Path) -> None:
    names = ["a.csv", "sub/b_1-2.txt", "sub/x y.txt", "café/ü.txt", "sub/deep/=@,+.bin"]
    write_tree(tmp_path / "src", {name: b"x" for name in names})
    assert sorted(rels([tmp_path / "src"])) == sorted(normalize_relpath(n) for n in names)
    assert sorted(rels([tmp_path / "src" / "sub", tmp_path / "src" / "a.csv"])) == [
        "a.csv",
        "sub/b_1-2.txt",
        "sub/deep/=@,+.bin",
        "sub/x y.txt",
    ]


@pytest.mark.parametrize("bad", ["sub/a%2fb.txt", "~home/x.txt", "sub/a\\b.txt", "sub/. ./x"])
def test_unsafe_names_inside_a_folder_are_refused(tmp_path: Path, bad: str) -> None:
    write_tree(tmp_path / "src", {"ok.txt": b"ok", bad: b"x"})
    with pytest.raises(UnsafePath):
        collect_files([tmp_path / "src"])


# --- pointer files ------------------------------------------------------------------------------


def test_a_pointer_round_trips_and_ignores_its_data(client: Client, tmp_path: Path) -> None:
    data = write_tree(tmp_path / "repo", {"data/x.csv": b"a\n1\n"}) / "data" / "x.csv"
    version = client.datasets.add("x", data)
    (data.parent / ".gitignore").write_text("*.tmp")  # no trailing newline
    pointer = write_pointer(data, version)

    assert pointer == data.parent / "x.csv.lw"
    parsed = read_pointer(pointer)
    assert (parsed.dataset, parsed.version, parsed.id, parsed.path) == ("x", 1, version.id, "x.csv")
    assert parsed.content_hash == version.content_hash
    assert client.datasets.get(parsed.ref).id == version.id

    write_pointer(data, version)  # again: the ignore line is not repeated
    assert (data.parent / ".gitignore").read_text().splitlines() == ["*.tmp", "/x.csv"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dataset: x\nversion: 1\nid: abc\nbogus line\n", "x.csv.lw:4: expected 'key: value'"),
        ("# header\ncolour: red\n", "x.csv.lw:2: expected 'key: value'"),
        ("dataset: x\nversion: 1\n", "missing id, content_hash, path"),
        ("dataset: x\nversion: one\nid: a\ncontent_hash: b\npath: x.csv\n", "must be a number"),
        (
            f"dataset: x\nversion: 1\nid: {'a' * 32}\ncontent_hash: {'b' * 64}\npath: ../x.csv\n",
            "a plain name",
        ),
        ("dataset: x\nversion: 1\nid: a\ncontent_hash: b\npath: x.csv\n", "'id' must be 32"),
    ],
)
def test_a_malformed_pointer_names_the_file_and_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    pointer = tmp_path / "x.csv.lw"
    pointer.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        read_pointer(pointer)
    assert problem in str(caught.value)
    assert str(pointer) in str(caught.value)


def test_a_missing_pointer_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read the pointer file"):
        read_pointer(tmp_path / "absent.lw")
