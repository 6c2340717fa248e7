"""The blob store contract, run on a local folder and on S3 (see ``blob_uri`` in conftest)."""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopwright.store.blobs as blobs_module
from loopwright.errors import BlobNotFound, IntegrityError, InvalidInput
from loopwright.store.blobs import CHUNK_SIZE, BlobInfo, BlobStore

EMPTY_HASH = blake3(b"").hexdigest()
PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class OneWayStream(io.RawIOBase):
    """A readable, non-seekable stream that hands out ``data`` in small, uneven pieces."""

    def __init__(self, data: bytes, piece: int = 70_001) -> None:
        self._data, self._piece, self._pos = data, piece, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._piece, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def stored(store: BlobStore) -> list[str]:
    return sorted(info.hash for info in store.iter_blobs())


def corrupt(store: BlobStore, hash: str) -> None:
    """Flip the first byte of the stored object behind the store's back."""
    if store.is_local:
        path = Path(store.uri) / hash[:2] / hash[2:]
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.write_bytes(bytes(data))
        return
    import boto3

    url = urlsplit(store.uri)
    key = f"{url.path.strip('/')}/{hash[:2]}/{hash[2:]}"
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    data = bytearray(s3.get_object(Bucket=url.netloc, Key=key)["Body"].read())
    data[0] ^= 0xFF
    s3.put_object(Bucket=url.netloc, Key=key, Body=bytes(data))


@pytest.fixture
def store(blob_uri: str) -> BlobStore:
    return BlobStore.open(blob_uri)


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    """A file of 5 MiB + 123 bytes: several chunks and a ragged end."""
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(5 * CHUNK_SIZE + 123))
    return path


# -- round trips ------------------------------------------------------------------------------


def test_put_bytes_round_trip(store: BlobStore) -> None:
    info = store.put_bytes(b"hello blobs")
    assert info == BlobInfo(blake3(b"hello blobs").hexdigest(), 11)
    assert store.exists(info.hash)
    assert store.size(info.hash) == 11
    assert store.read_bytes(info.hash) == b"hello blobs"


def test_put_file_and_get_file_round_trip(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00\x01 weights" * 1000)
    info = store.put_file(source)
    assert info.size == source.stat().st_size
    dest = tmp_path / "out" / "model.bin"
    store.get_file(info.hash, dest)
    assert dest.read_bytes() == source.read_bytes()
    assert not [p for p in dest.parent.iterdir() if p != dest]  # no temp file left beside dest


def test_put_stream_accepts_a_non_seekable_stream(store: BlobStore) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 5)
    stream = io.BufferedReader(OneWayStream(data))
    assert not stream.seekable()
    info = store.put_stream(stream)
    assert info == BlobInfo(blake3(data).hexdigest(), len(data))
    assert store.read_bytes(info.hash) == data


def test_empty_blob(store: BlobStore, tmp_path: Path) -> None:
    info = store.put_bytes(b"")
    assert info == BlobInfo(EMPTY_HASH, 0)
    assert store.read_bytes(EMPTY_HASH) == b""
    assert store.put_stream(io.BytesIO(b"")) == info
    store.get_file(EMPTY_HASH, tmp_path / "empty")
    assert (tmp_path / "empty").read_bytes() == b""
    store.verify(EMPTY_HASH)


def test_large_file_streams_through_put_file_and_get_file(
    store: BlobStore, big_file: Path, tmp_path: Path
) -> None:
    info = store.put_file(big_file)
    assert info.hash == blake3(big_file.read_bytes()).hexdigest()
    dest = tmp_path / "copy.bin"
    store.get_file(info.hash, dest)
    assert dest.read_bytes() == big_file.read_bytes()
    store.verify(info.hash)


def test_get_file_replaces_an_existing_dest(store: BlobStore, tmp_path: Path) -> None:
    dest = tmp_path / "dest.txt"
    dest.write_bytes(b"old")
    store.get_file(store.put_bytes(b"new").hash, dest)
    assert dest.read_bytes() == b"new"


def test_open_read_is_a_streaming_context_manager(store: BlobStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 17)
    info = store.put_bytes(data)
    with store.open_read(info.hash) as reader:
        parts = []
        while part := reader.read(100_000):
            parts.append(part)
    assert reader.closed
    assert b"".join(parts) == data


# -- dedup, delete, listing -------------------------------------------------------------------


def test_same_content_is_stored_once(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "same.txt"
    source.write_bytes(b"same content")
    first = store.put_bytes(b"same content")
    assert store.put_bytes(b"same content") == first
    assert store.put_file(source) == first
    assert store.put_stream(io.BytesIO(b"same content")) == first
    assert stored(store) == [first.hash]


def test_delete(store: BlobStore) -> None:
    keep, gone = store.put_bytes(b"keep"), store.put_bytes(b"gone")
    assert store.delete(gone.hash) is True
    assert store.delete(gone.hash) is False
    assert not store.exists(gone.hash)
    assert stored(store) == [keep.hash]
    with pytest.raises(BlobNotFound):
        store.read_bytes(gone.hash)
    assert store.put_bytes(b"gone") == gone  # a deleted blob can be stored again
    assert store.read_bytes(gone.hash) == b"gone"


def test_iter_blobs_lists_exactly_the_stored_blobs(store: BlobStore) -> None:
    assert list(store.iter_blobs()) == []
    before_ms = int(time.time() * 1000) - 60_000
    infos = {store.put_bytes(f"blob {i}".encode()).hash: i for i in range(5)}
    listed = list(store.iter_blobs())
    assert sorted(info.hash for info in listed) == sorted(infos)
    for info in listed:
        assert info.size == len(f"blob {infos[info.hash]}")
        assert info.modified_ms is not None
        assert before_ms <= info.modified_ms <= int(time.time() * 1000) + 60_000


def test_iter_blobs_can_be_abandoned_midway(store: BlobStore) -> None:
    hashes = {store.put_bytes(bytes([i])).hash for i in range(3)}
    blobs = store.iter_blobs()
    assert next(blobs).hash in hashes
    del blobs  # no "unclosed scandir iterator" ResourceWarning (an error under -W error)
    gc.collect()


def test_iter_blobs_skips_temp_and_foreign_files(store: BlobStore) -> None:
    from fsspec.core import url_to_fs

    info = store.put_bytes(b"real")
    fs, root = url_to_fs(store.uri)
    for stray in [f"tmp/{info.hash}", f"{info.hash[:2]}/not-a-hash", f"{info.hash}/x", "README"]:
        fs.makedirs(f"{root}/{stray}".rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(f"{root}/{stray}", b"stray")
    assert stored(BlobStore.open(store.uri)) == [info.hash]


def test_stores_on_one_uri_see_each_others_changes(store: BlobStore) -> None:
    other = BlobStore.open(store.uri)
    assert list(other.iter_blobs()) == []
    info = store.put_bytes(b"shared")
    assert other.exists(info.hash)
    assert stored(other) == [info.hash]
    assert other.delete(info.hash)
    assert not store.exists(info.hash)
    assert list(store.iter_blobs()) == []


def test_store_reopened_from_its_uri_sees_the_same_blobs(store: BlobStore) -> None:
    info = store.put_bytes(b"persisted")
    again = BlobStore.open(store.uri)
    assert again.read_bytes(info.hash) == b"persisted"
    assert again.is_local == store.is_local


# -- properties -------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=4096))
def test_property_round_trip_and_hash(store: BlobStore, data: bytes) -> None:
    info = store.put_bytes(data)
    assert info.hash == blake3(data).hexdigest()
    assert info.size == len(data)
    assert store.read_bytes(info.hash) == data
    assert store.put_stream(io.BufferedReader(OneWayStream(data, piece=7))) == info


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=2048))
def test_property_put_is_idempotent(store: BlobStore, data: bytes) -> None:
    first, second = store.put_bytes(data), store.put_bytes(data)
    assert first == second
    assert [h for h in stored(store) if h == first.hash] == [first.hash]


# -- integrity --------------------------------------------------------------------------------


def test_a_flipped_byte_is_caught_by_every_read(store: BlobStore, tmp_path: Path) -> None:
    info = store.put_bytes(b"precious model weights" * 100)
    corrupt(store, info.hash)
    with pytest.raises(IntegrityError, match=rf"blob {info.hash} .*corrupt.*backup"):
        store.read_bytes(info.hash)
    with pytest.raises(IntegrityError, match=info.hash), store.open_read(info.hash) as reader:
        while reader.read(100):
            pass
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match=info.hash):
        store.get_file(info.hash, out / "restored.bin")
    assert list(out.iterdir()) == []  # neither dest nor its temp file
    with pytest.raises(IntegrityError, match=info.hash):
        store.verify(info.hash)


def test_corruption_in_a_large_blob_is_caught(store: BlobStore, big_file: Path) -> None:
    info = store.put_file(big_file)
    corrupt(store, info.hash)
    with pytest.raises(IntegrityError):
        store.verify(info.hash)


def test_a_missing_blob_is_named(store: BlobStore, tmp_path: Path) -> None:
    missing = blake3(b"never stored").hexdigest()
    assert not store.exists(missing)
    for call in (store.read_bytes, store.size, store.open_read, store.verify):
        with pytest.raises(BlobNotFound, match=missing):
            call(missing)
    with pytest.raises(BlobNotFound, match=missing):
        store.get_file(missing, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert store.delete(missing) is False


@pytest.mark.parametrize(
    "bad",
    ["../etc/passwd", "../" * 21 + "x", EMPTY_HASH.upper(), EMPTY_HASH[:63], EMPTY_HASH + "0", ""],
)
def test_bad_hashes_are_refused(store: BlobStore, bad: str, tmp_path: Path) -> None:
    calls = [store.exists, store.size, store.open_read, store.read_bytes, store.verify]
    for call in [*calls, store.delete]:
        with pytest.raises(InvalidInput, match="not valid"):
            call(bad)
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        store.get_file(bad, tmp_path / "dest")


# -- local specifics --------------------------------------------------------------------------


def test_local_layout_and_read_only_objects(local_blob_uri: str) -> None:
    store = BlobStore.open(local_blob_uri)
    assert store.is_local
    info = store.put_bytes(b"layout")
    path = Path(local_blob_uri) / info.hash[:2] / info.hash[2:]
    assert path.read_bytes() == b"layout"
    assert path.stat().st_mode & 0o777 == 0o444
    assert os.listdir(Path(local_blob_uri) / "tmp") == []


def test_a_repeated_local_put_freshens_and_repairs(local_blob_uri: str) -> None:
    store = BlobStore.open(local_blob_uri)
    info = store.put_bytes(b"x" * 100)
    path = Path(local_blob_uri) / info.hash[:2] / info.hash[2:]
    os.utime(path, (0, 0))
    assert store.put_bytes(b"x" * 100) == info
    [listed] = store.iter_blobs()
    assert listed.modified_ms is not None
    assert listed.modified_ms > (time.time() - 60) * 1000  # a gc grace period restarts
    path.chmod(0o644)
    path.write_bytes(b"x" * 10)  # truncated by some accident
    assert store.put_bytes(b"x" * 100) == info
    assert store.read_bytes(info.hash) == b"x" * 100


def test_file_urls_open_the_local_folder(local_blob_uri: str) -> None:
    info = BlobStore.open(local_blob_uri).put_bytes(b"via file url")
    store = BlobStore.open(Path(local_blob_uri).as_uri())
    assert store.is_local
    assert store.uri == local_blob_uri
    assert store.read_bytes(info.hash) == b"via file url"


def test_local_store_refuses_storage_options_and_empty_uris(local_blob_uri: str) -> None:
    with pytest.raises(InvalidInput, match="storage_options"):
        BlobStore(local_blob_uri, storage_options={"anon": True})
    with pytest.raises(InvalidInput, match="empty"):
        BlobStore("")


def test_put_file_does_not_load_the_file_into_memory(local_blob_uri: str, tmp_path: Path) -> None:
    source = tmp_path / "huge.bin"
    with source.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(CHUNK_SIZE))
    store = BlobStore.open(local_blob_uri)
    tracemalloc.start()
    try:
        info = store.put_file(source)
        store.get_file(info.hash, tmp_path / "huge.copy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 64 * CHUNK_SIZE
    assert peak < 8 * CHUNK_SIZE, f"peak {peak} bytes for a {info.size}-byte file"


def test_a_failing_stream_leaves_no_blob_and_no_temp(local_blob_uri: str) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            raise OSError("connection reset")

    store = BlobStore.open(local_blob_uri)
    with pytest.raises(OSError, match="connection reset"):
        store.put_stream(io.BufferedReader(Broken()))
    assert list(store.iter_blobs()) == []
    assert os.listdir(Path(local_blob_uri) / "tmp") == []


CRASHING_WRITER = """
import sys, time
from loopwright.store.blobs import BlobStore

class Endless:
    def read(self, size=-1):
        sys.stdout.write("wrote\\n"); sys.stdout.flush()
        time.sleep(0.05)
        return b"x" * 65536

BlobStore.open(sys.argv[1]).put_stream(Endless())
"""


def test_a_crash_mid_write_leaves_no_partial_blob(local_blob_uri: str) -> None:
    src = Path(blobs_module.__file__).parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    writer = subprocess.Popen(
        [sys.executable, "-c", CRASHING_WRITER, local_blob_uri], stdout=subprocess.PIPE, env=env
    )
    assert writer.stdout is not None
    for _ in range(3):
        assert writer.stdout.readline() == b"wrote\n"
    writer.kill()  # SIGKILL: no cleanup code runs
    writer.wait()
    writer.stdout.close()

    leftovers = os.listdir(Path(local_blob_uri) / "tmp")
    assert len(leftovers) == 1
    store = BlobStore.open(local_blob_uri)
    assert list(store.iter_blobs()) == []
    info = store.put_bytes(b"after the crash")
    assert stored(store) == [info.hash]
    assert store.read_bytes(info.hash) == b"after the crash"


# -- other fsspec filesystems -----------------------------------------------------------------


@pytest.fixture
def memory_store() -> Iterator[BlobStore]:
    """A non-object-store fsspec filesystem: uploads go to ``tmp/`` then move into place."""
    root = f"memory://lw-{uuid.uuid4().hex}/blobs"
    store = BlobStore.open(root)
    yield store
    import fsspec

    fsspec.filesystem("memory").rm(urlsplit(root).netloc, recursive=True)


def test_memory_filesystem_round_trip_via_temp_and_move(
    memory_store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    moves: list[tuple[str, str]] = []
    real_mv = MemoryFileSystem.mv

    def recording_mv(self: MemoryFileSystem, path1: str, path2: str, **kwargs: object) -> None:
        moves.append((path1, path2))
        real_mv(self, path1, path2, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "mv", recording_mv)
    assert not memory_store.is_local
    source = tmp_path / "file.bin"
    source.write_bytes(b"file" * 10_000)
    infos = [
        memory_store.put_bytes(b"bytes"),
        memory_store.put_file(source),
        memory_store.put_stream(io.BytesIO(b"stream")),
    ]
    assert memory_store.put_bytes(b"bytes") == infos[0]
    assert stored(memory_store) == sorted(info.hash for info in infos)
    assert memory_store.read_bytes(infos[1].hash) == source.read_bytes()
    assert all(info.modified_ms is not None for info in memory_store.iter_blobs())
    import fsspec

    assert fsspec.filesystem("memory").find(f"{memory_store.uri}/tmp") == []
    assert len(moves) == 3  # one per new blob, none for the duplicate
    assert all("/blobs/tmp/" in source for source, _ in moves)
    finals = {f"{info.hash[:2]}/{info.hash[2:]}" for info in infos}
    assert {target.split("/blobs/")[-1] for _, target in moves} == finals


# --- link modes (reflink / hardlink / copy) on a local store -------------------------------------


def _blob_path(store: BlobStore, hash: str) -> Path:
    return Path(store.uri) / hash[:2] / hash[2:]


def _reflinks_work(folder: Path) -> bool:
    """Whether this filesystem clones files (FICLONE), asked directly rather than assumed."""
    import fcntl

    source, clone = folder / "probe-source", folder / "probe-clone"
    source.write_bytes(b"probe")
    try:
        with source.open("rb") as src, clone.open("wb") as dst:
            fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())
        return True
    except OSError:
        return False
    finally:
        source.unlink()
        clone.unlink(missing_ok=True)


def test_a_hardlinked_blob_is_the_file_itself_and_read_only(
    local_blob_uri: str, big_file: Path
) -> None:
    store = BlobStore.open(local_blob_uri)
    info = store.put_file(big_file, link=("hardlink", "copy"))
    assert info.link == "hardlink"
    assert info == BlobInfo(blake3(big_file.read_bytes()).hexdigest(), big_file.stat().st_size)
    blob = _blob_path(store, info.hash)
    assert blob.stat().st_ino == big_file.stat().st_ino
    # The blob is read-only, and the workspace file with it (one inode).
    assert big_file.stat().st_mode & 0o777 == 0o444
    store.verify(info.hash)
    # The same content again is found, not linked twice.
    assert store.put_file(big_file, link=("hardlink",)).link is None


def test_an_in_place_edit_after_a_hardlink_is_caught_on_read(
    local_blob_uri: str, big_file: Path, tmp_path: Path
) -> None:
    store = BlobStore.open(local_blob_uri)
    info = store.put_file(big_file, link=("hardlink",))
    big_file.chmod(0o644)  # what it takes to edit in place (root needs not even that)
    with big_file.open("r+b") as handle:
        handle.write(b"edited")
    with pytest.raises(IntegrityError, match=info.hash):
        store.verify(info.hash)
    with pytest.raises(IntegrityError):
        store.read_bytes(info.hash)
    with pytest.raises(IntegrityError):
        store.get_file(info.hash, tmp_path / "restored.bin")
    assert not (tmp_path / "restored.bin").exists()


def test_copy_is_a_separate_file(local_blob_uri: str, big_file: Path) -> None:
    store = BlobStore.open(local_blob_uri)
    info = store.put_file(big_file, link=("copy",))
    assert info.link == "copy"
    assert _blob_path(store, info.hash).stat().st_ino != big_file.stat().st_ino
    assert big_file.stat().st_mode & 0o222  # the workspace file keeps its permissions


def test_reflink_falls_back_to_the_next_mode_where_the_filesystem_has_none(
    local_blob_uri: str, tmp_path: Path
) -> None:
    source = tmp_path / "medium.bin"
    source.write_bytes(os.urandom(200_000))  # below the kernel-copy size: linking still applies
    store = BlobStore.open(local_blob_uri)
    Path(local_blob_uri).mkdir(parents=True, exist_ok=True)
    supported = _reflinks_work(Path(local_blob_uri))
    info = store.put_file(source, link=("reflink", "copy"))
    assert info.link == ("reflink" if supported else "copy")
    blob = _blob_path(store, info.hash)
    assert blob.stat().st_ino != source.stat().st_ino  # a clone or a copy, never the file
    assert blob.read_bytes() == source.read_bytes()
    if not supported:
        other = tmp_path / "other.bin"
        other.write_bytes(os.urandom(200_000))
        with pytest.raises(InvalidInput, match="reflink"):
            store.put_file(other, link=("reflink",))
        assert not any((Path(local_blob_uri) / "tmp").iterdir())


def test_a_hardlink_to_another_filesystem_falls_back_to_a_copy(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the temp folder's")
    source = tmp_path / "medium.bin"
    source.write_bytes(os.urandom(100_000))
    root = shm / f"lw-test-{uuid.uuid4().hex}"
    try:
        info = BlobStore.open(str(root)).put_file(source, link=("hardlink", "copy"))
        assert info.link == "copy"
        assert source.stat().st_mode & 0o222  # not made read-only: it was not linked
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_unknown_link_modes_are_refused(store: BlobStore, tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"x")
    for order in (("symlink",), ()):
        with pytest.raises(InvalidInput, match="reflink, hardlink, copy"):
            store.put_file(path, link=order)


def test_exists_many_finds_loose_and_packed_blobs(local_blob_uri: str, tmp_path: Path) -> None:
    store = BlobStore.open(local_blob_uri)
    loose = store.put_bytes(b"loose").hash
    small = tmp_path / "small.txt"
    small.write_bytes(b"packed")
    [packed] = store.put_small_files([small])
    assert packed.link == "pack"
    absent = blake3(b"absent").hexdigest()
    assert store.exists_many({loose, packed.hash, absent}) == {loose, packed.hash}
    assert store.put_small_files([small])[0].link is None
    with pytest.raises(InvalidInput):
        store.exists_many({"nope"})
