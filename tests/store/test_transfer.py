"""Push/pull between blob stores, to a local folder and to S3 (see ``blob_uri`` in conftest)."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import loopwright.store.transfer as transfer
from loopwright.errors import BlobNotFound, IntegrityError, InvalidInput
from loopwright.store.blobs import BlobStore
from loopwright.store.transfer import pull, push, remote_inventory

SMALL, SMALL_SIZE, LARGE_SIZE = 2000, 4096, 3 << 20
PACK_TARGET = 1 << 20  # 256 small blobs a pack: 8 packs for the 2,000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[BlobStore, list[str], list[str]]:
    """A local store holding 2,000 x 4 KiB blobs plus an empty one, and 3 x 3 MiB blobs."""
    store = BlobStore(str(tmp_path_factory.mktemp("source") / "blobs"))
    rng = random.Random(7)
    small = [store.put_bytes(rng.randbytes(SMALL_SIZE)).hash for _ in range(SMALL)]
    small.append(store.put_bytes(b"").hash)
    large = [store.put_bytes(rng.randbytes(LARGE_SIZE)).hash for _ in range(3)]
    return store, small, large


def objects(uri: str) -> list[str]:
    """Every object under the store's root, relative to it, listed behind the store's back."""
    if "://" not in uri:
        return sorted(str(p.relative_to(uri)) for p in Path(uri).rglob("*") if p.is_file())
    import boto3

    parts = urlsplit(uri)
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    prefix = parts.path.strip("/") + "/"
    names = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=parts.netloc, Prefix=prefix):
        names += [item["Key"].removeprefix(prefix) for item in page.get("Contents", [])]
    return sorted(names)


def flip_byte(uri: str, name: str, offset: int) -> None:
    """Damage one byte of the object ``name`` under the store's root."""
    if "://" not in uri:
        path = Path(uri) / name
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    import boto3

    parts = urlsplit(uri)
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    key = f"{parts.path.strip('/')}/{name}"
    data = bytearray(s3.get_object(Bucket=parts.netloc, Key=key)["Body"].read())
    data[offset] ^= 0xFF
    s3.put_object(Bucket=parts.netloc, Key=key, Body=bytes(data))


def packs_in(uri: str, suffix: str) -> list[str]:
    return [name for name in objects(uri) if name.startswith("packs/") and name.endswith(suffix)]


def test_push_packs_small_blobs_and_pull_restores_every_blob(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str, tmp_path: Path
) -> None:
    local, small, large = source
    remote = BlobStore(blob_uri)
    calls: list[tuple[int, int]] = []
    report = push(
        local,
        remote,
        small + large,
        pack_target=PACK_TARGET,
        progress=lambda done, total: calls.append((done, total)),
    )
    total = len(small) + len(large)
    assert (report.requested, report.already_present, report.transferred) == (total, 0, total)
    assert report.bytes == SMALL * SMALL_SIZE + 3 * LARGE_SIZE
    assert report.packs == 8
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)

    names = objects(blob_uri)
    assert len(packs_in(blob_uri, ".pack")) == len(packs_in(blob_uri, ".idx")) == 8
    loose = {name.replace("/", "") for name in names if not name.startswith("packs/")}
    assert loose == set(large)
    assert len(names) == 19  # instead of 2,004

    dest = BlobStore(str(tmp_path / "dest"))
    back = pull(remote, dest, small + large)
    assert (back.transferred, back.bytes, back.packs) == (total, report.bytes, 8)
    for hash in small + large:
        assert dest.read_bytes(hash) == local.read_bytes(hash)  # read_bytes verifies too


def test_transfers_are_idempotent_and_send_only_what_is_missing(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str, tmp_path: Path
) -> None:
    local, small, large = source
    remote = BlobStore(blob_uri)
    first = push(local, remote, small[:500] + large[:1], pack_target=PACK_TARGET)
    assert (first.transferred, first.packs) == (501, 2)

    everything = small + large
    second = push(local, remote, everything + small[:10], pack_target=PACK_TARGET)
    assert (second.requested, second.already_present) == (len(everything), 501)
    assert second.transferred == len(everything) - 501
    assert second.bytes == (SMALL - 500) * SMALL_SIZE + 2 * LARGE_SIZE
    listed = objects(blob_uri)

    again = push(local, remote, everything, pack_target=PACK_TARGET)
    assert (again.transferred, again.bytes, again.packs) == (0, 0, 0)
    assert again.already_present == len(everything)
    assert objects(blob_uri) == listed

    dest = BlobStore(str(tmp_path / "dest"))
    for hash in small[:100] + large[:2]:
        dest.put_bytes(local.read_bytes(hash))
    back = pull(remote, dest, everything)
    assert (back.already_present, back.transferred) == (102, len(everything) - 102)
    assert pull(remote, dest, everything).transferred == 0
    assert sorted(info.hash for info in dest.iter_blobs()) == sorted(everything)


def test_remote_inventory_sees_packed_and_loose_blobs(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str
) -> None:
    local, small, large = source
    remote = BlobStore(blob_uri)
    assert remote_inventory(remote) == set()
    push(local, remote, small[:300] + large, pack_target=PACK_TARGET)
    assert remote_inventory(remote) == set(small[:300] + large)
    # Packs stay out of the loose-blob namespace: the store itself sees only the large blobs.
    assert {info.hash for info in remote.iter_blobs()} == set(large)


def test_a_corrupt_pack_byte_is_detected_and_nothing_wrong_is_stored(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str, tmp_path: Path
) -> None:
    local, small, _ = source
    remote = BlobStore(blob_uri)
    push(local, remote, small[:300], pack_target=PACK_TARGET)
    pack = packs_in(blob_uri, ".pack")[0]
    flip_byte(blob_uri, pack, 20 * SMALL_SIZE + 17)

    dest = BlobStore(str(tmp_path / "dest"))
    with pytest.raises(IntegrityError) as caught:
        pull(remote, dest, small[:300], workers=1)
    named = re.findall(r"[0-9a-f]{64}", caught.value.message)
    assert named[0] in small and named[1] == pack.removeprefix("packs/").removesuffix(".pack")
    stored = [info.hash for info in dest.iter_blobs()]
    assert named[0] not in stored
    for hash in stored:
        dest.verify(hash)


def test_an_interrupted_push_leaves_an_orphan_pack_that_is_ignored_then_finished(
    source: tuple[BlobStore, list[str], list[str]],
    blob_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local, small, _ = source
    remote = BlobStore(blob_uri)

    def crash(self: object, name: str, data: bytes) -> None:
        raise KeyboardInterrupt  # the push dies between writing a pack and its index

    with monkeypatch.context() as patch:
        patch.setattr(transfer._Site, "write", crash)
        with pytest.raises(KeyboardInterrupt):
            push(local, remote, small[:50], workers=1)
    orphans = packs_in(blob_uri, ".pack")
    assert len(orphans) == 1 and packs_in(blob_uri, ".idx") == []
    assert remote_inventory(remote) == set()
    with pytest.raises(BlobNotFound):
        pull(remote, BlobStore(str(tmp_path / "dest")), small[:1])

    report = push(local, remote, small[:50])
    assert report.transferred == 50
    assert packs_in(blob_uri, ".pack") == orphans  # the same pack, now indexed
    assert remote_inventory(remote) == set(small[:50])


def test_an_index_without_its_pack_is_ignored(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str
) -> None:
    local, small, _ = source
    remote = BlobStore(blob_uri)
    site = transfer._Site(remote)
    site.write("f" * 64 + ".idx", transfer._encode_index([(small[0], 0, SMALL_SIZE)]))
    assert remote_inventory(remote) == set()
    assert push(local, remote, small[:1] + small[1:3]).transferred == 3


def test_a_damaged_index_is_reported(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str
) -> None:
    local, small, _ = source
    remote = BlobStore(blob_uri)
    push(local, remote, small[:10])
    index = packs_in(blob_uri, ".idx")[0]
    flip_byte(blob_uri, index, 20)
    with pytest.raises(IntegrityError, match=r"pack index .* is damaged"):
        remote_inventory(remote)


def test_the_remote_is_listed_never_probed_blob_by_blob(
    source: tuple[BlobStore, list[str], list[str]],
    blob_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local, small, large = source
    remote = BlobStore(blob_uri)
    probes: list[str] = []
    for method in ("exists", "size"):
        original = getattr(BlobStore, method)

        def spy(
            self: BlobStore,
            hash: str,
            _original: Callable[..., object] = original,
            _name: str = method,
        ) -> object:
            if self is remote:
                probes.append(_name)
            return _original(self, hash)

        monkeypatch.setattr(BlobStore, method, spy)
    reads: list[str] = []
    read = transfer._Site.read

    def count_reads(site: transfer._Site, name: str, start: int, end: int) -> bytes:
        reads.append(name)
        return read(site, name, start, end)

    monkeypatch.setattr(transfer._Site, "read", count_reads)
    push(local, remote, small[:400] + large[:1])
    push(local, remote, small[:800] + large[:1])
    assert len(packs_in(blob_uri, ".pack")) == 2
    reads.clear()
    pull(remote, BlobStore(str(tmp_path / "dest")), small[:800] + large[:1])
    assert probes == []
    # 800 packed blobs come from two ranged reads (one per pack), after the two indexes.
    assert sorted(name[-4:] for name in reads) == [".idx", ".idx", "pack", "pack"]


def test_missing_blobs_fail_before_anything_moves(
    source: tuple[BlobStore, list[str], list[str]], blob_uri: str, tmp_path: Path
) -> None:
    local, small, _ = source
    remote = BlobStore(blob_uri)
    unknown = "0" * 64
    with pytest.raises(BlobNotFound, match=rf"1 blob\(s\) to push .*{unknown}"):
        push(local, remote, [*small[:20], unknown])
    assert objects(blob_uri) == []
    with pytest.raises(BlobNotFound, match="to pull"):
        pull(remote, BlobStore(str(tmp_path / "dest")), small[:1])


def test_damaged_local_blobs_are_never_pushed(blob_uri: str, tmp_path: Path) -> None:
    local = BlobStore(str(tmp_path / "local"))
    hashes = [local.put_bytes(bytes([i]) * 1000).hash for i in range(5)]
    flip_byte(local.uri, f"{hashes[2][:2]}/{hashes[2][2:]}", 0)
    with pytest.raises(IntegrityError, match=hashes[2]):
        push(local, BlobStore(blob_uri), hashes)
    assert objects(blob_uri) == []


@pytest.mark.parametrize(
    "options",
    [{"workers": 0}, {"pack_threshold": -1}, {"pack_target": 0}, {"workers": 2.5}],
)
def test_bad_options_are_rejected(options: dict[str, object], tmp_path: Path) -> None:
    stores = BlobStore(str(tmp_path / "a")), BlobStore(str(tmp_path / "b"))
    with pytest.raises(InvalidInput):
        push(*stores, [], **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not valid"):
        pull(*stores, ["nope"])


def test_both_ends_may_be_local_folders_and_empty_requests_are_fine(tmp_path: Path) -> None:
    a, b = BlobStore(str(tmp_path / "a")), BlobStore(str(tmp_path / "b"))
    report = push(a, b, [])
    assert (report.requested, report.transferred, report.packs) == (0, 0, 0)
    hashes = [a.put_bytes(os.urandom(n)).hash for n in (0, 1, 10, 5000, 3 << 20)]
    assert push(a, b, hashes, pack_threshold=8192).packs == 1
    assert pull(b, BlobStore(str(tmp_path / "c")), hashes).transferred == 5
