"""Data versioning's domain objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Dataset", "DatasetDiff", "DatasetVersion", "FileEntry", "WorkspaceStatus"]


@dataclass(frozen=True)
class FileEntry:
    """One file of a version: its path inside the version, size and BLAKE3 hash."""

    path: str
    size: int
    hash: str


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str | None
    created_at: int
    version_count: int = 0


@dataclass(frozen=True)
class DatasetVersion:
    """An immutable version of a dataset: a content-addressed manifest and what it came from."""

    id: str
    dataset: str
    number: int
    content_hash: str
    message: str | None
    parent_id: str | None
    produced_by_run_id: str | None
    file_count: int
    total_size: int
    source: str | None
    created_by: str | None
    created_at: int
    schema: Mapping[str, Any] | None = None
    profile: Mapping[str, Any] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``name@vN``, the way the CLI names a version."""
        return f"{self.dataset}@v{self.number}"


@dataclass(frozen=True)
class DatasetDiff:
    """What changed between two versions (``old`` → ``new``)."""

    old: DatasetVersion
    new: DatasetVersion
    added: list[FileEntry]
    removed: list[FileEntry]
    changed: list[tuple[FileEntry, FileEntry]]
    tabular: Mapping[str, Any] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class WorkspaceStatus:
    """A folder on disk compared with a version."""

    version: DatasetVersion
    added: list[str]
    removed: list[str]
    modified: list[str]

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.modified)
