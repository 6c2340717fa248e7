"""push/pull of dataset versions, and adding straight from a remote URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.data.pointer import read_pointer, write_pointer
from loopwright.data.sync import pull_versions, push_versions
from loopwright.data.workspace import checkout
from loopwright.errors import NotFound


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "remote")
    return str(request.getfixturevalue("s3_blob_uri")).replace("/blobs", "/remote")


def _folder(root: Path) -> Path:
    data = root / "data"
    (data / "parts").mkdir(parents=True)
    for i in range(300):
        (data / "parts" / f"p{i}.txt").write_text(f"row {i}\n" * (i % 7 + 1), encoding="utf-8")
    (data / "big.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: sent loose, not packed
    return data


def test_a_pointer_alone_brings_a_version_to_another_store(tmp_path: Path, remote: str) -> None:
    first = Client(resolve_settings(home=tmp_path / "first"))
    data = _folder(tmp_path / "work")
    version = first.datasets.add("corpus", data, message="v1")
    pointer = write_pointer(data, version)
    report = push_versions(first.datasets, [version], remote)
    assert report.transferred == version.file_count + 1  # the files and the manifest
    assert push_versions(first.datasets, [version], remote).transferred == 0
    first.close()

    second = Client(resolve_settings(home=tmp_path / "second"))  # another machine
    target = read_pointer(pointer)
    with pytest.raises(NotFound, match="data pull"):
        second.datasets.resolve_pointer(target)
    versions, pulled = pull_versions(second.datasets, [target], remote)
    assert [v.id for v in versions] == [version.id]
    assert pulled.transferred == version.file_count
    restored = tmp_path / "restored"
    checkout(second.datasets, second.datasets.resolve_pointer(target), restored)
    for path in data.rglob("*"):
        if path.is_file():
            assert (restored / path.relative_to(data)).read_bytes() == path.read_bytes()
    again, report = pull_versions(second.datasets, [target], remote)
    assert report.transferred == 0 and again[0].id == version.id
    second.close()


def test_adding_from_a_remote_url_streams_the_files(tmp_path: Path, s3_blob_uri: str) -> None:
    import fsspec

    bucket_prefix = s3_blob_uri.replace("/blobs", "/raw")
    fs, root = fsspec.core.url_to_fs(bucket_prefix)
    fs.pipe({f"{root}/a.csv": b"x,y\n1,2\n", f"{root}/sub/b.txt": b"hello"})
    client = Client(resolve_settings(home=tmp_path / "home"))
    version = client.datasets.add("remote", bucket_prefix)
    assert {e.path: e.size for e in client.datasets.files(version)} == {"a.csv": 8, "sub/b.txt": 5}
    out = tmp_path / "out"
    checkout(client.datasets, version, out)
    assert (out / "sub" / "b.txt").read_bytes() == b"hello"
    client.close()
