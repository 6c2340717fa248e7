"""Small blobs stored together in pack files inside a local blob store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from loopwright.errors import IntegrityError
from loopwright.store.blobs import BlobStore
from loopwright.store.transfer import pull, push


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"f{i}.txt"
        path.write_bytes(f"content {i % (count // 2)}\n".encode() * (i % 5 + 1))
        paths.append(path)
    return paths


def test_small_files_share_a_pack_and_read_back_verified(tmp_path: Path) -> None:
    store = BlobStore.open(str(tmp_path / "blobs"))
    paths = _files(tmp_path / "src", 200)
    infos = store.put_small_files(paths)
    assert [i.hash for i in infos] == [blake3(p.read_bytes()).hexdigest() for p in paths]
    packs = list((tmp_path / "blobs" / "small").glob("*.pack"))
    assert len(packs) == 1  # one file for 200 blobs (with duplicates among them)
    assert not any(len(p.name) == 2 for p in (tmp_path / "blobs").iterdir())  # no loose blobs
    for path, info in zip(paths, infos, strict=True):
        assert store.exists(info.hash) and store.size(info.hash) == info.size
        assert store.read_bytes(info.hash) == path.read_bytes()
    out = tmp_path / "out.txt"
    store.get_file(infos[7].hash, out)
    assert out.read_bytes() == paths[7].read_bytes()
    # Putting them again writes nothing new.
    store.put_small_files(paths)
    assert len(list((tmp_path / "blobs" / "small").glob("*.pack"))) == 1


def test_a_flipped_byte_in_a_pack_is_reported(tmp_path: Path) -> None:
    store = BlobStore.open(str(tmp_path / "blobs"))
    info = store.put_small_files(_files(tmp_path / "src", 4))[0]
    pack = next((tmp_path / "blobs" / "small").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    data[0] ^= 0xFF
    pack.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=info.hash):
        store.read_bytes(info.hash)
    with pytest.raises(IntegrityError):
        store.get_file(info.hash, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_pack_without_its_index_is_ignored(tmp_path: Path) -> None:
    store = BlobStore.open(str(tmp_path / "blobs"))
    info = store.put_small_files(_files(tmp_path / "src", 4))[0]
    index = next((tmp_path / "blobs" / "small").glob("*.idx"))
    os.remove(index)  # as if the writer died between the pack and its index
    fresh = BlobStore.open(str(tmp_path / "blobs"))
    assert not fresh.exists(info.hash)
    assert fresh.put_small_files([tmp_path / "src" / "f0.txt"])[0] == info
    assert fresh.read_bytes(info.hash) == (tmp_path / "src" / "f0.txt").read_bytes()


def test_packed_blobs_push_and_pull_like_loose_ones(tmp_path: Path) -> None:
    local = BlobStore.open(str(tmp_path / "local"))
    infos = local.put_small_files(_files(tmp_path / "src", 100))
    remote = BlobStore.open(str(tmp_path / "remote"))
    hashes = sorted({i.hash for i in infos})
    assert push(local, remote, hashes).transferred == len(hashes)
    other = BlobStore.open(str(tmp_path / "other"))
    pull(remote, other, hashes)
    assert all(other.read_bytes(h) == local.read_bytes(h) for h in hashes)


def test_packs_written_by_another_store_are_seen_and_removed_ones_forgotten(
    tmp_path: Path,
) -> None:
    reader = BlobStore.open(str(tmp_path / "blobs"))
    writer = BlobStore.open(str(tmp_path / "blobs"))  # another process, in effect
    first = writer.put_small_files(_files(tmp_path / "a", 4))[0].hash
    assert reader.exists(first)
    later = tmp_path / "b" / "later.txt"
    later.parent.mkdir()
    later.write_bytes(b"written after the reader loaded the first index")
    second = writer.put_small_files([later])[0].hash
    assert reader.exists_many({first, second}) == {first, second}
    for index in (tmp_path / "blobs" / "small").glob("*.idx"):
        if blake3(later.read_bytes()).digest() not in index.read_bytes():
            index.unlink()  # the first pack's index, removed by hand
    assert reader.exists_many({first, second}) == {second}
