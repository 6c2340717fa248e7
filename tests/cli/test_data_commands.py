"""``loopwright data``: add, list, log, show, diff, checkout, status, tag and alias, run in-process
against a real embedded home; pointer files through a real Git history."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _cli_checks import assert_clean_failure

from loopwright.client import Client

VERSION_KEYS = {
    "id",
    "dataset",
    "version",
    "ref",
    "content_hash",
    "message",
    "parent_id",
    "produced_by_run_id",
    "file_count",
    "total_size",
    "source",
    "created_by",
    "created_at",
    "tags",
    "aliases",
}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def two_versions(lw_json: Any) -> list[dict[str, Any]]:
    """``ds`` from the folder ``data/``: v1, then v2 with b.txt changed and c.txt added."""
    _write(Path("data/a.txt"), b"alpha")
    _write(Path("data/b.txt"), b"bravo")
    v1 = lw_json("data", "add", "ds", "data", "-m", "first", "--no-pointer")
    _write(Path("data/b.txt"), b"bravo 2")
    _write(Path("data/sub/c.txt"), b"charlie")
    v2 = lw_json("data", "add", "ds", "data", "--no-pointer")
    return [v1, v2]


# --- add ----------------------------------------------------------------------------------------


def test_add_prints_the_version_and_writes_a_pointer(lw: Any) -> None:
    _write(Path("data/x.txt"), b"hello\n")
    result = lw("data", "add", "x", "data/x.txt", "-m", "first")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    out = _flat(result.stdout)
    assert out.startswith("x@v1 1 file(s), 6 bytes, content ")
    assert "pointer data/x.txt.lw" in out
    assert Path("data/x.txt.lw").is_file()
    assert Path("data/.gitignore").read_text().splitlines() == ["/x.txt"]


def test_add_json_gives_the_version_and_the_pointer(lw_json: Any, client: Client) -> None:
    _write(Path("data/x.txt"), b"hello\n")
    added = lw_json("data", "add", "x", "data/x.txt", "-t", "team=risk", "-a", "golden")
    assert set(added) == VERSION_KEYS | {"pointer"}
    assert (added["ref"], added["version"], added["file_count"], added["total_size"]) == (
        "x@v1",
        1,
        1,
        6,
    )
    assert (added["tags"], added["aliases"]) == ({"team": "risk"}, ["golden"])
    assert added["pointer"] == str(Path("data/x.txt.lw"))
    assert client.datasets.get("x@golden").id == added["id"]

    again = lw_json("data", "add", "x", "data/x.txt")
    assert (again["id"], again["version"]) == (added["id"], 1)


def test_add_without_a_pointer(lw_json: Any) -> None:
    _write(Path("data/x.txt"), b"hello\n")
    assert lw_json("data", "add", "x", "data/x.txt", "--no-pointer")["pointer"] is None
    assert not Path("data/x.txt.lw").exists()
    assert not Path("data/.gitignore").exists()


def test_a_folder_gets_a_pointer_beside_it_and_several_paths_get_none(lw_json: Any) -> None:
    _write(Path("data/a.txt"), b"a")
    _write(Path("more.txt"), b"m")
    assert lw_json("data", "add", "d", "data")["pointer"] == "data.lw"
    assert Path(".gitignore").read_text().splitlines() == ["/data"]
    assert lw_json("data", "add", "e", "data", "more.txt")["pointer"] is None


def test_adding_the_current_folder_does_not_crash(lw: Any, client: Client) -> None:
    _write(Path("a.txt"), b"a")
    result = lw("data", "add", "here", ".")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stdout + result.stderr


# --- list, log, show, diff ----------------------------------------------------------------------


def test_list_log_and_show_json_shapes(two_versions: list[dict[str, Any]], lw_json: Any) -> None:
    v1, v2 = two_versions
    [listed] = lw_json("data", "list")
    assert set(listed) == {"name", "id", "versions", "description", "created_at"}
    assert (listed["name"], listed["versions"]) == ("ds", 2)

    log = lw_json("data", "log", "ds")
    assert [v["version"] for v in log] == [2, 1]
    assert all(set(v) == VERSION_KEYS for v in log)
    assert log[0]["parent_id"] == v1["id"] and log[1]["message"] == "first"

    shown = lw_json("data", "show", "ds@v2")
    assert set(shown) == VERSION_KEYS | {"files", "schema", "profile", "used_by_runs", "validation"}
    assert shown["id"] == v2["id"]
    assert [(f["path"], f["size"]) for f in shown["files"]] == [
        ("a.txt", 5),
        ("b.txt", 7),
        ("sub/c.txt", 7),
    ]
    assert (shown["used_by_runs"], shown["validation"]) == ([], [])


def test_show_and_log_text(two_versions: list[dict[str, Any]], lw: Any) -> None:
    shown = lw("data", "show", "ds@v1")
    assert shown.exit_code == 0, (shown.stdout, shown.stderr, shown.exception)
    assert f"ds@v1 ({two_versions[0]['id']}) 2 file(s), 10 bytes" in _flat(shown.stdout)
    assert "message first" in _flat(shown.stdout)
    log = lw("data", "log", "ds")
    assert log.exit_code == 0 and "v2" in log.stdout and two_versions[1]["id"] in log.stdout


def test_diff_json(two_versions: list[dict[str, Any]], lw_json: Any, lw: Any) -> None:
    result = lw_json("data", "diff", "ds@v1", "ds@v2")
    assert result == {
        "old": "ds@v1",
        "new": "ds@v2",
        "added": ["sub/c.txt"],
        "removed": [],
        "changed": ["b.txt"],
        "tabular": {},
    }
    text = lw("data", "diff", "ds@v1", "ds")
    assert "ds@v1 -> ds@v2: 1 added, 0 removed, 1 changed" in _flat(text.stdout)


def test_diff_json_of_two_csv_versions_compares_rows(lw_json: Any) -> None:
    pytest.importorskip("loopwright.data.profile")
    _write(Path("t/rows.csv"), b"n\n1\n2\n")
    lw_json("data", "add", "t", "t", "--no-pointer")
    _write(Path("t/rows.csv"), b"n\n1\n2\n30\n")
    lw_json("data", "add", "t", "t", "--no-pointer")
    tabular = lw_json("data", "diff", "t@v1", "t@v2")["tabular"]
    assert tabular["rows.csv"]["rows"] == [2, 3]
    assert tabular["rows.csv"]["columns_changed"]["n"]["max"] == [2, 30]


# --- checkout and status ------------------------------------------------------------------------


def test_checkout_of_a_ref_into_a_folder(
    two_versions: list[dict[str, Any]], lw_json: Any, lw: Any
) -> None:
    result = lw_json("data", "checkout", "ds@v1", "out")
    assert result == {"version": "ds@v1", "dest": "out", "written": ["a.txt", "b.txt"]}
    assert Path("out/b.txt").read_bytes() == b"bravo"
    again = lw("data", "checkout", "ds@v1", "out")
    assert again.exit_code == 0
    assert "ds@v1 -> out: 0 file(s) written, 2 already up to date" in _flat(again.stdout)

    Path("out/a.txt").write_bytes(b"local edit")
    assert_clean_failure(lw("data", "checkout", "ds@v2", "out"), "a.txt", "--force")
    assert Path("out/a.txt").read_bytes() == b"local edit"
    assert not Path("out/sub").exists()
    forced = lw_json("data", "checkout", "ds@v2", "out", "--force")
    assert forced["written"] == ["a.txt", "b.txt", "sub/c.txt"]
    assert Path("out/a.txt").read_bytes() == b"alpha"


def test_checkout_and_status_of_a_pointer(lw: Any, lw_json: Any) -> None:
    data = _write(Path("data/x.txt"), b"one\n")
    lw_json("data", "add", "x", "data/x.txt")
    clean = lw("data", "status", "data/x.txt.lw")
    assert clean.exit_code == 0 and "data/x.txt matches x@v1" in _flat(clean.stdout)

    data.write_bytes(b"two\n")
    assert lw("data", "status", "data/x.txt.lw").exit_code == 1
    assert_clean_failure(lw("data", "checkout", "data/x.txt.lw"), "local changes", "x.txt")
    assert data.read_bytes() == b"two\n"
    restored = lw_json("data", "checkout", "data/x.txt.lw", "--force")
    assert (restored["written"], restored["dest"]) == (["x.txt"], "data")
    assert data.read_bytes() == b"one\n"

    data.unlink()
    assert lw_json("data", "checkout", "data/x.txt.lw")["written"] == ["x.txt"]
    assert data.read_bytes() == b"one\n"


def test_checkout_of_a_folder_pointer(lw_json: Any) -> None:
    _write(Path("data/a.txt"), b"a")
    _write(Path("data/sub/b.txt"), b"b")
    lw_json("data", "add", "d", "data")
    shutil.rmtree("data")
    result = lw_json("data", "checkout", "data.lw")
    assert (result["dest"], result["written"]) == ("data", ["a.txt", "sub/b.txt"])
    assert Path("data/sub/b.txt").read_bytes() == b"b"


def test_status_exit_code_and_json(two_versions: list[dict[str, Any]], lw: Any) -> None:
    assert lw("data", "status", "ds@v2", "data").exit_code == 0
    Path("data/a.txt").write_bytes(b"ALPHA!")
    Path("data/b.txt").unlink()
    _write(Path("data/new.txt"), b"n")
    result = lw("data", "status", "ds@v2", "data", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "version": "ds@v2",
        "clean": False,
        "added": ["new.txt"],
        "removed": ["b.txt"],
        "modified": ["a.txt"],
    }
    text = lw("data", "status", "ds@v2", "data")
    assert text.exit_code == 1
    assert "│ modified │ a.txt │" in _flat(text.stdout)
    assert "│ deleted │ b.txt │" in _flat(text.stdout)


def test_a_pointer_cannot_send_files_outside_its_folder(
    two_versions: list[dict[str, Any]], lw: Any
) -> None:
    v1 = two_versions[0]
    pointer = Path("outer/repo/evil.lw")
    pointer.parent.mkdir(parents=True)
    pointer.write_text(
        f"dataset: ds\nversion: 1\nid: {v1['id']}\ncontent_hash: {v1['content_hash']}\npath: ..\n"
    )
    result = lw("data", "checkout", str(pointer))
    assert not Path("outer/a.txt").exists()
    assert_clean_failure(result, "evil.lw")


# --- labels -------------------------------------------------------------------------------------


def test_tag_and_alias(two_versions: list[dict[str, Any]], lw: Any, client: Client) -> None:
    tagged = lw("data", "tag", "ds@v1", "quality=good", "owner=ana")
    assert tagged.exit_code == 0
    assert "ds@v1: " in tagged.stdout and "quality=good" in tagged.stdout
    assert client.datasets.get("ds@v1").tags == {"quality": "good", "owner": "ana"}

    assert "ds@golden -> ds@v1" in lw("data", "alias", "ds@v1", "golden").stdout
    assert "ds@golden -> ds@v2" in lw("data", "alias", "ds@v2", "golden").stdout
    assert client.datasets.get("ds@golden").number == 2

    assert_clean_failure(lw("data", "alias", "ds@v1", "latest"), "alias 'latest'")
    assert_clean_failure(lw("data", "tag", "ds@v1", "novalue"), "key=value")


# --- errors -------------------------------------------------------------------------------------


def test_errors_are_one_line_without_a_traceback(
    two_versions: list[dict[str, Any]], lw: Any
) -> None:
    assert_clean_failure(lw("data", "log", "nope"), "dataset 'nope' does not exist")
    assert_clean_failure(lw("data", "show", "nope@v1"), "dataset 'nope' does not exist")
    assert_clean_failure(
        lw("data", "show", "ds@v9"), "dataset 'ds' has no version 'v9'; versions: v1..v2"
    )
    assert_clean_failure(lw("data", "diff", "ds@v1", "ds@nosuch"), "'nosuch'")
    assert_clean_failure(lw("data", "checkout", "ds@v1"), "give a destination folder")
    assert_clean_failure(lw("data", "status", "ds@v1"), "give the folder or file")
    assert_clean_failure(lw("data", "add", "ds", "missing.txt"), "'missing.txt' does not exist")
    assert_clean_failure(lw("data", "add", "bad name", "data"), "dataset name 'bad name'")
    Path("broken.lw").write_text("nonsense\n")
    assert_clean_failure(lw("data", "checkout", "broken.lw"), "broken.lw:1:")


# --- pointer files in Git -----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_checkout_of_an_old_pointer_restores_the_old_data(
    lw: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)

    def git(*args: str) -> str:
        config = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
        config += ["-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
        done = subprocess.run(["git", *config, *args], check=True, capture_output=True, text=True)
        return done.stdout

    def loopwright(*args: str) -> None:
        result = lw(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)

    git("init", "-q")
    data = _write(repo / "data" / "x.csv", b"id,value\n1,10\n2,20\n")
    loopwright("data", "add", "x", "data/x.csv", "-m", "v1")
    assert git("status", "--porcelain", "--untracked-files=all").split() == [
        "??",
        "data/.gitignore",
        "??",
        "data/x.csv.lw",
    ]
    git("add", "data")
    git("commit", "-q", "-m", "data v1")

    data.write_bytes(b"id,value\n1,10\n2,25\n3,30\n")
    loopwright("data", "add", "x", "data/x.csv", "-m", "v2")
    assert "version: 2" in (repo / "data" / "x.csv.lw").read_text()
    git("commit", "-q", "-am", "data v2")

    git("checkout", "HEAD~1", "--", "data/x.csv.lw")
    assert "version: 1" in (repo / "data" / "x.csv.lw").read_text()
    # The file on disk is v2, a stored version: not a local change, so no --force is needed.
    loopwright("data", "checkout", "data/x.csv.lw")
    assert data.read_bytes() == b"id,value\n1,10\n2,20\n"
    loopwright("data", "status", "data/x.csv.lw")
    git("checkout", "HEAD", "--", "data/x.csv.lw")
    loopwright("data", "checkout", "data/x.csv.lw")
    assert data.read_bytes() == b"id,value\n1,10\n2,25\n3,30\n"


def test_add_with_link_hardlink_stores_large_files_as_read_only_links(
    lw_json: Any, client: Client
) -> None:
    big = _write(Path("data/big.bin"), bytes(range(256)) * 400)  # over the 64 KiB pack limit
    added = lw_json("data", "add", "linked", "data", "--link", "hardlink,copy")
    [entry] = client.datasets.files(client.datasets.get(added["ref"]))
    blob = Path(client.store.blobs.uri) / entry.hash[:2] / entry.hash[2:]
    assert blob.stat().st_ino == big.stat().st_ino
    assert big.stat().st_mode & 0o777 == 0o444


def test_add_with_an_unknown_link_mode_names_the_setting(lw: Any) -> None:
    _write(Path("data/x.txt"), b"x")
    result = lw("data", "add", "x", "data", "--link", "symlink")
    assert result.exit_code != 0
    assert "data_link" in _flat(result.stdout + result.stderr)
    assert "reflink, hardlink, copy" in _flat(result.stdout + result.stderr)
