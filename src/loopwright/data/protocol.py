"""The datasets capability as a protocol: what both backends of ``client.datasets`` provide.

:class:`~loopwright.data.service.DatasetService` (embedded) and
:class:`~loopwright.remote.datasets.RemoteDatasets` (over a server) implement it with the same
signatures; ``tests/test_service_parity.py`` compares all three. What works on a local store
only (the stat cache, ``push``/``pull`` between stores) is not part of it: the functions of
:mod:`loopwright.data.workspace` and :mod:`loopwright.data.sync` take a ``DatasetService``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .entities import Dataset, DatasetVersion, FileEntry

if TYPE_CHECKING:
    from .pointer import Pointer
    from .validation import ValidationResult

__all__ = ["Datasets"]


class Datasets(Protocol):
    """Add, find, label, validate and fetch dataset versions."""

    def close(self) -> None:
        """Release what the service holds (caches); the client calls it on close."""
        ...

    def add(
        self,
        name: str,
        source: Any,
        *,
        message: str | None = None,
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
        table_name: str = "data.parquet",
        progress: Callable[[int], None] | None = None,
    ) -> DatasetVersion:
        """Store a new version of ``name`` from files, folders, globs or a table (pandas/Arrow,
        written as the Parquet file ``table_name``); identical content gives the same version.
        ``progress`` is called with the bytes of each file stored."""
        ...

    def get(self, ref: str) -> DatasetVersion:
        """A version by ``name``, ``name@v3``, ``name@<alias>`` or ``name@<version id>``."""
        ...

    def get_by_id(self, version_id: str) -> DatasetVersion:
        """A version by its id (what run inputs and model versions record)."""
        ...

    def resolve_pointer(self, pointer: Pointer) -> DatasetVersion:
        """The version a pointer file names: by id, else by content (another store's id)."""
        ...

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        ...

    def list_datasets(self) -> list[Dataset]:
        """Every dataset by name, with its number of versions."""
        ...

    def files(self, version: DatasetVersion) -> list[FileEntry]:
        """The version's manifest: path, size and BLAKE3 hash of every file, by path."""
        ...

    def download(self, version: DatasetVersion, dst: str | os.PathLike[str]) -> Path:
        """Write the version's files into folder ``dst``, each verified; returns ``dst``."""
        ...

    def runs_using(self, version: DatasetVersion) -> list[str]:
        """Ids of the runs that declared this version as an input."""
        ...

    def validate(
        self, ref: str | DatasetVersion, suite: Any, *, files: str | None = None, save: bool = True
    ) -> ValidationResult:
        """Check a version's tabular files against an expectation suite (``save``: record the
        suite and the result with the version)."""
        ...

    def validation_results(self, version: DatasetVersion) -> list[dict[str, Any]]:
        """The latest result of each suite run against this version."""
        ...

    def set_alias(self, ref: str, alias: str) -> DatasetVersion:
        """Point ``alias`` (e.g. ``golden``) at the version ``ref``; moves it if it existed."""
        ...

    def tag(self, ref: str, key: str, value: str) -> DatasetVersion:
        """Set tag ``key`` on the version ``ref``."""
        ...

    def describe(self, name: str, description: str) -> None:
        """Set the description of dataset ``name``."""
        ...

    def create_empty(self, name: str) -> None:
        """Register a dataset name with no version yet."""
        ...
