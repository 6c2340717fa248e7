"""Garbage collection keeps every referenced blob and deletes only on request."""

from __future__ import annotations

from pathlib import Path

from loopwright.client import Client
from loopwright.config import resolve_settings
from loopwright.store.gc import collect_garbage


def test_gc_deletes_only_unreferenced_blobs_and_only_when_asked(
    tmp_path: Path, db_uri: str, blob_uri: str
) -> None:
    client = Client(resolve_settings(home=tmp_path / "home", db_uri=db_uri, blob_uri=blob_uri))
    source = tmp_path / "model.txt"
    source.write_text("weights")
    with client.start_run(experiment="gc") as run:
        kept = run.log_artifact(source)
    orphan = client.store.blobs.put_bytes(b"nobody points at me")

    dry = collect_garbage(client.store, dry_run=True, grace_ms=0)
    assert [b.hash for b in dry.unreferenced] == [orphan.hash]
    assert dry.bytes == orphan.size
    assert client.store.blobs.exists(orphan.hash), "a dry run must not delete"

    young = collect_garbage(client.store, dry_run=False)  # default grace: an hour
    assert young.unreferenced == [] and young.kept_young == 1
    assert client.store.blobs.exists(orphan.hash)

    done = collect_garbage(client.store, dry_run=False, grace_ms=0)
    assert done.deleted and [b.hash for b in done.unreferenced] == [orphan.hash]
    assert not client.store.blobs.exists(orphan.hash)
    assert client.store.blobs.read_bytes(kept.blob_hash) == b"weights"
    client.download_artifacts(run.id, tmp_path / "out")
    assert (tmp_path / "out" / "model.txt").read_text() == "weights"
    client.close()


def test_gc_counts_but_keeps_unreferenced_blobs_inside_packs(tmp_path: Path) -> None:
    client = Client(resolve_settings(home=tmp_path / "home"))
    small = tmp_path / "small.txt"
    small.write_text("tiny")
    info = client.store.blobs.put_small_files([small])[0]
    report = collect_garbage(client.store, dry_run=False, grace_ms=0)
    assert report.kept_packed == 1 and report.unreferenced == []
    assert client.store.blobs.read_bytes(info.hash) == b"tiny"
    client.close()
