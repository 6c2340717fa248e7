"""Experiment artifact locations: only local folders inside the roots a server allows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopwright.errors import InvalidInput, UnsafePath
from loopwright.tracking.artifact_locations import (
    ArtifactRoots,
    local_folder,
    new_location,
    run_artifact_folder,
    write_run_file,
)


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root


@pytest.fixture
def roots(tmp_path: Path, allowed: Path) -> ArtifactRoots:
    home = tmp_path / "home"
    return ArtifactRoots(default=None, allowed=(str(allowed),), store=(str(home),))


def test_a_folder_inside_an_allowed_root_is_kept_as_given(
    roots: ArtifactRoots, allowed: Path
) -> None:
    assert new_location(roots, f"{allowed}/team", "e1", cwd="/") == f"{allowed}/team"
    uri = (allowed / "team").as_uri()
    assert new_location(roots, uri, "e1", cwd="/") == uri
    assert (
        new_location(roots, f"file://localhost{allowed}/t", "e1", cwd="/")
        == (allowed / "t").as_uri()
    )
    assert new_location(roots, str(allowed), "e1", cwd="/") == str(allowed)


def test_a_relative_location_is_taken_from_the_servers_working_directory(
    roots: ArtifactRoots, allowed: Path
) -> None:
    assert new_location(roots, "here", "e1", cwd=allowed) == f"{allowed}/here"
    with pytest.raises(InvalidInput, match="not inside a folder this server allows"):
        new_location(roots, "here", "e1", cwd=allowed.parent)


def test_without_a_location_the_default_root_or_the_server_keeps_the_files(
    roots: ArtifactRoots, allowed: Path
) -> None:
    assert new_location(roots, None, "e1", cwd="/") is None
    assert new_location(roots, "", "e1", cwd="/") is None
    with_default = ArtifactRoots(default=str(allowed), allowed=(str(allowed),), store=())
    assert new_location(with_default, None, "0", cwd="/") == (allowed / "0").as_uri()


@pytest.mark.parametrize("outside", ["/etc", "/", "file:///etc/passwd", "/tmp"])
def test_a_folder_outside_every_root_is_refused_naming_the_setting(
    roots: ArtifactRoots, outside: str
) -> None:
    with pytest.raises(InvalidInput, match="LOOPWRIGHT_ARTIFACT_ROOTS") as caught:
        new_location(roots, outside, "e1", cwd="/")
    assert "artifact_location" in str(caught.value)


def test_a_root_with_a_common_prefix_is_not_inside_it(roots: ArtifactRoots, allowed: Path) -> None:
    with pytest.raises(InvalidInput, match="not inside"):
        new_location(roots, f"{allowed}-evil/x", "e1", cwd="/")


@pytest.mark.parametrize(
    "below",
    ["../outside", "a/../../outside", "a/%2e%2e/%2e%2e/x", "a/%252e%252e/x", "a/\x01b"],
)
def test_traversal_below_a_root_is_refused(roots: ArtifactRoots, allowed: Path, below: str) -> None:
    for given in (f"{allowed}/{below}", f"file://{allowed}/{below}"):
        with pytest.raises(InvalidInput):  # UnsafePath is an InvalidInput
            new_location(roots, given, "e1", cwd="/")


def test_a_symlink_out_of_the_root_is_refused(
    roots: ArtifactRoots, allowed: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (allowed / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match="symbolic link"):
        new_location(roots, f"{allowed}/link/x", "e1", cwd="/")


@pytest.mark.parametrize(
    "location",
    [
        "s3://bucket/prefix",
        "runs:/0123/artifacts",
        "mlflow-artifacts:/elsewhere",
        "http://host/x",
        "file://otherhost/srv/x",
        "file:///srv/x?query=1",
        "file:///srv/x#frag",
        "/srv/\x00x",
    ],
)
def test_other_schemes_and_remote_hosts_are_refused(
    roots: ArtifactRoots, allowed: Path, location: str
) -> None:
    with pytest.raises(InvalidInput, match="artifact_location"):
        new_location(roots, location.replace("/srv", str(allowed)), "e1", cwd="/")


def test_a_location_overlapping_the_servers_store_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "blobs").mkdir(parents=True)
    roots = ArtifactRoots(default=None, allowed=(str(tmp_path),), store=(str(home),))
    for given in (str(home / "blobs" / "x"), str(home), str(tmp_path)):
        with pytest.raises(InvalidInput, match="overlaps the server's own store"):
            new_location(roots, given, "e1", cwd="/")
    assert new_location(roots, str(tmp_path / "other"), "e1", cwd="/") == str(tmp_path / "other")


def test_a_recorded_location_is_checked_again_when_used(
    roots: ArtifactRoots, allowed: Path
) -> None:
    location = new_location(roots, f"{allowed}/team", "e1", cwd="/")
    assert location is not None
    assert run_artifact_folder(roots, location, "r1") == allowed / "team" / "r1" / "artifacts"
    narrowed = ArtifactRoots(default=None, allowed=(), store=())
    with pytest.raises(InvalidInput, match="not inside"):
        local_folder(narrowed, location)


def test_files_are_written_below_the_run_folder(
    roots: ArtifactRoots, allowed: Path, tmp_path: Path
) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights")
    written = write_run_file(roots, f"{allowed}/team", "r1", "dir/model.pkl", source)
    assert written == allowed / "team" / "r1" / "artifacts" / "dir" / "model.pkl"
    assert written.read_bytes() == b"weights"
    with pytest.raises(UnsafePath):
        write_run_file(roots, f"{allowed}/team", "r1", "../../escape", source)


def test_a_symlink_planted_in_a_run_folder_is_never_followed(
    roots: ArtifactRoots, allowed: Path, tmp_path: Path
) -> None:
    """A client may write into its run folder: a link it plants there is not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    source = tmp_path / "data.txt"
    source.write_text("x")
    run_folder = allowed / "team" / "r1" / "artifacts"
    run_folder.mkdir(parents=True)
    (run_folder / "dir").symlink_to(outside)
    (run_folder / "file.txt").symlink_to(outside / "victim.txt")
    for path in ("dir/data.txt", "file.txt"):
        with pytest.raises(UnsafePath):
            write_run_file(roots, f"{allowed}/team", "r1", path, source)
    assert os.listdir(outside) == []


def test_the_roots_from_settings_keep_clear_of_the_store(tmp_path: Path) -> None:
    from loopwright.config import resolve_settings

    database = tmp_path / "db" / "lw.db"
    settings = resolve_settings(
        home=tmp_path / "home",
        db_uri=f"sqlite:///{database}",
        blob_uri=str(tmp_path / "blobs"),
        default_artifact_root=str(tmp_path / "mlruns"),
        artifact_roots=str(tmp_path),
    )
    roots = ArtifactRoots.from_settings(settings)
    assert roots.default == str(tmp_path / "mlruns")
    assert roots.allowed == (str(tmp_path / "mlruns"), str(tmp_path))
    for inside in ("home/x", "blobs", "db", "db/lw.db"):
        with pytest.raises(InvalidInput, match="overlaps the server's own store"):
            new_location(roots, str(tmp_path / inside), "e1", cwd="/")
    assert new_location(roots, str(tmp_path / "team"), "e1", cwd="/") == str(tmp_path / "team")
