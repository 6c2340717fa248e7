"""Dataset versions over HTTP: add from local files (only missing blobs travel), find, download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from blake3 import blake3

import loopwright as lw
from loopwright.client import Client
from loopwright.errors import InvalidInput, NotFound

LiveServer = Any  # tests/server/conftest.py's fixture: .url, .settings …


@pytest.fixture
def client(live_server: LiveServer, tmp_path: Path) -> Iterator[Client]:
    with lw.connect(live_server.url, home=tmp_path / "client-home") as remote:
        yield remote


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "train.csv").write_text("id,age\n1,30\n2,45\n")
    (data / "part" / "b.bin").write_bytes(bytes(range(256)) * 5000)
    return data


def test_add_find_and_download_a_version(
    client: Client, live_server: LiveServer, folder: Path, tmp_path: Path
) -> None:
    version = client.datasets.add("people", folder, message="first", tags={"src": "test"})
    assert (version.ref, version.file_count, version.message) == ("people@v1", 2, "first")
    assert version.tags == {"src": "test"} and version.produced_by_run_id is None
    again = client.datasets.add("people", folder, aliases=["golden"])
    assert again.id == version.id and again.aliases == ("golden",)  # same content, same version
    assert client.datasets.get("people@golden").id == version.id
    assert client.datasets.get("people").id == version.id
    assert [v.number for v in client.datasets.versions("people")] == [1]
    assert [(d.name, d.version_count) for d in client.datasets.list_datasets()] == [("people", 1)]
    assert [f.path for f in client.datasets.files(version)] == ["part/b.bin", "train.csv"]
    out = client.datasets.download(version, tmp_path / "out")
    assert (out / "part" / "b.bin").read_bytes() == (folder / "part" / "b.bin").read_bytes()
    with client.start_run(experiment="data") as run:
        run.use_dataset(version.id)
    with lw.connect(live_server.settings.db_uri, home=live_server.home) as local:
        embedded = local.datasets.add("people-local", folder)
        assert embedded.content_hash == version.content_hash  # one manifest, either way
        assert local.tracking.get_run(run.id).status.value == "FINISHED"


def test_blobs_are_checked_against_their_names(live_server: LiveServer) -> None:
    api = f"{live_server.url}/api/v1"
    body = b"some bytes"
    digest = blake3(body).hexdigest()
    assert httpx.head(f"{api}/blobs/{digest}").status_code == 404
    wrong = httpx.put(f"{api}/blobs/{'0' * 64}", content=body)
    assert wrong.status_code == 400 and "hashes to" in wrong.json()["message"]
    assert httpx.put(f"{api}/blobs/{digest}", content=body).status_code == 201
    assert httpx.head(f"{api}/blobs/{digest}").status_code == 200
    assert httpx.get(f"{api}/blobs/{digest}").content == body
    missing = {"files": [{"path": "a.txt", "size": 3, "hash": "1" * 64}]}
    refused = httpx.post(f"{api}/datasets/d/versions", json=missing)
    assert refused.status_code == 400 and "not stored" in refused.json()["message"]
    lying = {"files": [{"path": "a.txt", "size": 99, "hash": digest}]}
    assert httpx.post(f"{api}/datasets/d/versions", json=lying).status_code == 400
    unsafe = {"files": [{"path": "../a.txt", "size": len(body), "hash": digest}]}
    assert httpx.post(f"{api}/datasets/d/versions", json=unsafe).json()["code"] == "UNSAFE_PATH"
    bad_name = {"files": [{"path": "a.txt", "size": len(body), "hash": digest}]}
    assert httpx.post(f"{api}/datasets/-x/versions", json=bad_name).status_code == 400


def test_errors_come_back_as_the_same_classes(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        client.datasets.get("nothing@v1")
    with pytest.raises(InvalidInput):
        client.datasets.add("people", tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match="local files"):
        client.datasets.add("people", "s3://bucket/data")
