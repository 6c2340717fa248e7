"""Where the prediction log's Parquet files live, and how one is written or found.

Layout under the log's root (``<blob store>/predictions`` by default)::

    deployment=<name>/hour=YYYY-MM-DDTHH/part-<epoch ms>-<random>.parquet
                                         compact-<epoch ms>-<random>.parquet  (+ .json)

Hive-style folders, so DuckDB, Spark and pyarrow datasets read the partitions by name. A file
appears whole or not at all: on a local folder it is written to a dot-named temp file beside
its final name, fsynced and renamed; on an object store it is a single PUT, which becomes
visible only once complete. Readers take ``part-*`` / ``compact-*`` ``.parquet`` names only, so
a temp file left by a killed process is never read.

Compaction (``_prediction_compaction``) merges an hour's files into one ``compact-<id>.parquet``.
Before writing it, it writes ``compact-<id>.json`` naming the files the merge replaces; while
both exist, readers skip those files (:meth:`LogFiles.live`), so a crash at any step leaves
each row readable exactly once, and the next compaction finishes the job.

Deployment names come from requests and end up in paths: :func:`check_deployment_name` passes
each through the project's path resolver (:func:`loopwright.paths.normalize_relpath`), which
must leave it one unchanged segment.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from ..paths import normalize_relpath
from ..store._local_files import create_temp, fsync_dir, write_all
from ..store.limits import MODEL_NAME

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ..store.blobs import BlobStore

__all__ = [
    "COMPACT",
    "LOG_FOLDER",
    "PART",
    "HourFiles",
    "LogFile",
    "LogFiles",
    "check_deployment_name",
    "hour_of",
    "log_uri",
    "new_name",
    "utc",
]

LOG_FOLDER = "predictions"  # under a blob store's root
PART, COMPACT = "part", "compact"  # what the writer adds; what compaction merges them into
_HOUR_FORMAT = "%Y-%m-%dT%H"
_HOUR_FOLDER = re.compile(r"hour=(\d{4}-\d{2}-\d{2}T\d{2})\Z")
_DEPLOYMENT_FOLDER = "deployment="
# Most filesystems (ext4, xfs, APFS) cap one path segment at 255 bytes.
_MAX_SEGMENT_BYTES = 255


def log_uri(blob_uri: str) -> str:
    """Where the prediction log of the blob store at ``blob_uri`` lives (its ``predictions/``)."""
    return f"{blob_uri.rstrip('/')}/{LOG_FOLDER}"


def check_deployment_name(name: object) -> str:
    """``name`` if it can name a deployment's folder, else :class:`InvalidInput` saying why.

    Any model name may name a deployment (a model served on its own logs under its name), so
    the rules are the path resolver's for one segment, plus: printable, no '/', no '=' (hive
    folders are ``key=value``), no spaces at either end, at most 256 characters.
    """
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MODEL_NAME
        or name != name.strip()
        or any(c in "/=" or not c.isprintable() for c in name)
    ):
        raise InvalidInput(
            f"deployment name {str(name)[:80]!r} must be 1-{MODEL_NAME} printable characters "
            "without '/', '=' or spaces at either end (e.g. 'churn-api')"
        )
    try:
        segment = normalize_relpath(name, what="deployment name")
    except InvalidInput as exc:  # traversal, drive letters, look-alike separators ...
        raise type(exc)(f"{exc.message} (it names a folder of the prediction log)") from None
    if segment != name:
        raise InvalidInput(f"deployment name {name!r} is not a plain folder name; rename it")
    if len(f"{_DEPLOYMENT_FOLDER}{name}".encode()) > _MAX_SEGMENT_BYTES:
        # Filesystems refuse a longer folder name (ENAMETOOLONG), which was a 500.
        raise InvalidInput(
            f"deployment name {name[:40]!r}... is {len(name.encode())} bytes in UTF-8; the "
            f"prediction log's folder names hold at most "
            f"{_MAX_SEGMENT_BYTES - len(_DEPLOYMENT_FOLDER)}: serve it under a shorter name "
            "(NAME=URI)"
        )
    return name


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is taken as UTC). One whose offset takes it past the
    years datetime can hold (``0001-01-01T00:30+01:00``) becomes the first or last moment
    there is, which every bound in the log compares to as it would."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in (``moment`` must carry a time zone)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class LogFile:
    """One Parquet file of the log: its path (local path or fsspec key) and its hour."""

    path: str
    hour: datetime


@dataclass(frozen=True)
class HourFiles:
    """What one hour folder holds, by kind (full paths): Parquet files written by the log
    (``parts``) or by compaction (``compacts``), and compaction manifests (``manifests``)."""

    folder: str
    hour: datetime
    parts: list[str]
    compacts: list[str]
    manifests: list[str]


class LogFiles:
    """The log's folder: a local path (plain ``os`` calls) or an fsspec URL such as S3.

    Args:
        location: a :class:`~loopwright.store.blobs.BlobStore` (the log lives in its
            ``predictions/`` folder), or a folder path / fsspec URL that is the log's root.
    """

    def __init__(self, location: BlobStore | str | os.PathLike[str]) -> None:
        from ..store.blobs import BlobStore

        uri = log_uri(location.uri) if isinstance(location, BlobStore) else os.fspath(location)
        if not uri:
            raise InvalidInput("prediction log location is empty: give a blob store or a folder")
        self._fs: AbstractFileSystem | None = None
        if "://" not in uri or uri.startswith("file://"):
            self._local: Path | None = Path(os.path.abspath(uri.removeprefix("file://")))
            self.root = self.uri = str(self._local)
            return
        from fsspec.core import url_to_fs

        # As the blob store does: no listing cache, so files other writers add are seen at once.
        self._fs, root = url_to_fs(uri, skip_instance_cache=True, use_listings_cache=False)
        self._local = None
        self.root = root.rstrip("/")
        self.uri = uri
        protocol = self._fs.protocol
        self._protocol = protocol if isinstance(protocol, str) else protocol[0]

    @property
    def filesystem(self) -> AbstractFileSystem | None:
        """The fsspec filesystem of a remote log; None for a local folder."""
        return self._fs

    def url(self, path: str) -> str:
        """``path`` as a URL that DuckDB or fsspec can open (local paths stay paths)."""
        return path if self._fs is None else f"{self._protocol}://{path}"

    def __repr__(self) -> str:
        return f"LogFiles({self.uri!r})"

    def prepare(self) -> None:
        """Reach the storage once (a remote filesystem starts its I/O thread here, not at exit)."""
        if self._fs is not None:
            self._fs.exists(self.root)

    def _folder(self, deployment: str) -> str:
        return f"{self.root}/deployment={check_deployment_name(deployment)}"

    def hour_folder(self, deployment: str, hour: datetime) -> str:
        # Not strftime: its %Y gives '1', not '0001', for early years on glibc, a folder
        # name that listing (hour=YYYY-...) would never find again.
        return f"{self._folder(deployment)}/hour={hour.isoformat(timespec='hours')[:13]}"

    def write(
        self, deployment: str, hour: datetime, data: bytes | memoryview, kind: str = PART
    ) -> str:
        """Store ``data`` as a new ``kind`` file (``part``, ``compact``) of ``deployment`` and
        ``hour``; return its path."""
        path = f"{self.hour_folder(deployment, hour)}/{new_name(kind)}.parquet"
        self.put(path, data)
        return path

    def put(self, path: str, data: bytes | memoryview) -> None:
        """Write ``data`` at ``path`` whole or not at all."""
        if self._fs is not None:
            self._fs.pipe_file(path, bytes(data))  # one PUT: complete or not at all
            return
        # The local blob store's temp-file, fsync and rename steps; the dot-named temp file is
        # never taken for a part (readers list part-*/compact-* .parquet only).
        folder, name = path.rsplit("/", 1)
        fd, temp = create_temp(Path(folder), f".{name}.")  # makes the hour's folder if needed
        try:
            write_all(fd, [data])
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(Path(folder))  # the rename itself survives a power cut once the folder is synced

    def create(self, path: str, data: bytes) -> bool:
        """Write ``data`` at ``path`` only if nothing is there; False if something is (an
        exclusive create: ``O_EXCL`` locally, a conditional PUT, If-None-Match, on S3)."""
        if self._fs is not None:
            try:
                self._fs.pipe_file(path, data, mode="create")
            except FileExistsError:
                return False
            return True
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        write_all(fd, [data])  # closes fd
        return True

    def read_bytes(self, path: str) -> bytes:
        if self._fs is not None:
            data: bytes = self._fs.cat_file(path)
            return data
        return Path(path).read_bytes()

    def remove(self, path: str) -> None:
        """Delete the file at ``path`` (already gone: nothing to do)."""
        with contextlib.suppress(FileNotFoundError):
            if self._fs is not None:
                self._fs.rm_file(path)
            else:
                os.unlink(path)

    def remove_folder(self, folder: str) -> None:
        """Delete an hour folder left empty (object stores have no folders to delete)."""
        if self._fs is None:
            with contextlib.suppress(OSError):  # not empty (a writer added a file), or gone
                os.rmdir(folder)

    def deployments(self) -> list[str]:
        """The names of the deployments with a folder in the log, sorted."""
        found = []
        for entry in self._list(self.root):
            name = entry.rsplit("/", 1)[-1]
            if name.startswith(_DEPLOYMENT_FOLDER):
                found.append(name[len(_DEPLOYMENT_FOLDER) :])
        return sorted(found)

    def hours(
        self, deployment: str, first: datetime | None = None, until: datetime | None = None
    ) -> list[HourFiles]:
        """The hour folders of ``deployment`` (those from hour ``first`` to before ``until``
        if given) with their files by kind, oldest first. Only those folders are listed."""
        found = []
        for folder, hour in self._hours(self._folder(deployment)):
            if (first is not None and hour < first) or (until is not None and hour >= until):
                continue
            parts, compacts, manifests = [], [], []
            for entry in self._list(folder):
                name = entry.rsplit("/", 1)[-1]
                if name.startswith(f"{PART}-") and name.endswith(".parquet"):
                    parts.append(entry)
                elif name.startswith(f"{COMPACT}-") and name.endswith(".parquet"):
                    compacts.append(entry)
                elif name.startswith(f"{COMPACT}-") and name.endswith(".json"):
                    manifests.append(entry)
            found.append(HourFiles(folder, hour, sorted(parts), sorted(compacts), manifests))
        return sorted(found, key=lambda h: h.hour)

    def replaced(self, files: HourFiles) -> set[str]:
        """The paths that a finished merge (its manifest and its merged file both present)
        replaced: readers skip them, compaction may delete them."""
        present = set(files.compacts)
        skipped: set[str] = set()
        for manifest in files.manifests:
            if manifest.removesuffix(".json") + ".parquet" not in present:
                continue  # the merge did not get as far as its file: the parts stand
            try:
                names = json.loads(self.read_bytes(manifest))["replaces"]
            except FileNotFoundError:
                continue  # finished meanwhile: the parts are gone too, and the reader retries
            skipped.update(f"{files.folder}/{name}" for name in names)
        return skipped

    def live(self, files: HourFiles) -> list[str]:
        """The Parquet files of an hour that hold its rows, each row once."""
        skipped = self.replaced(files) if files.manifests else set()
        return [p for p in [*files.compacts, *files.parts] if p not in skipped]

    def find(
        self, deployment: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[LogFile]:
        """The files of ``deployment`` whose hour overlaps ``[since, until)``, oldest first."""
        first = hour_of(since) if since is not None else None
        return [
            LogFile(path, files.hour)
            for files in self.hours(deployment, first, until)
            for path in self.live(files)
        ]

    def _hours(self, folder: str) -> Iterator[tuple[str, datetime]]:
        for entry in self._list(folder):
            match = _HOUR_FOLDER.match(entry.rsplit("/", 1)[-1])
            if match:
                hour = datetime.strptime(match.group(1), _HOUR_FORMAT).replace(tzinfo=UTC)
                yield entry, hour

    def _list(self, folder: str) -> list[str]:
        if self._fs is None:
            try:
                return [f"{folder}/{name}" for name in os.listdir(folder)]
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            listed: list[Any] = self._fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        return [str(entry).rstrip("/") for entry in listed]

    def read_table(self, path: str, columns: list[str] | None = None) -> Any:
        """The ``pyarrow.Table`` at ``path``: every column, or the ``columns`` it has."""
        if self._fs is None:
            return _read_parquet(path, columns)
        with self._fs.open(path, "rb") as source:
            return _read_parquet(source, columns)

    def read_metadata(self, path: str) -> Any:
        """The ``pyarrow.parquet.FileMetaData`` of the file at ``path`` (its footer only)."""
        import pyarrow.parquet as pq

        if self._fs is None:
            return pq.read_metadata(path)
        with self._fs.open(path, "rb") as source:
            return pq.read_metadata(source)


def new_name(kind: str) -> str:
    """A new file name (no suffix) of ``kind``: time-ordered, unique across writers."""
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    return f"{kind}-{stamp:013d}-{os.urandom(8).hex()}"


def _read_parquet(source: Any, columns: list[str] | None) -> Any:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    if columns is None:
        return parquet.read()
    names = set(parquet.schema_arrow.names)
    return parquet.read(columns=[c for c in columns if c in names])
