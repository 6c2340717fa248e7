"""Opening the stores a Settings object points at: the metadata database and the blob store.

Example:
    >>> from loopwright.config import resolve_settings
    >>> store = open_store(resolve_settings(home="lw-doc-home"))
    >>> store.db.dialect
    'sqlite'
    >>> store.close()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, LoopwrightError, StoreError
from .blobs import BlobStore
from .database import Database
from .migrate import ensure_schema

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["Store", "acting_as", "open_blob_store", "open_store", "require_store"]

# The user a server request acts for; set around the service calls of one request.
_acting: ContextVar[str | None] = ContextVar("loopwright_acting_as", default=None)


@contextmanager
def acting_as(user: str) -> Iterator[None]:
    """Record changes made inside the block as ``user`` (a server acting for its caller)."""
    token = _acting.set(user)
    try:
        yield
    finally:
        _acting.reset(token)


_HOME_GITIGNORE = "# Loopwright's local store: metadata and blobs, not for Git.\n*\n"


@dataclass
class Store:
    """The metadata database and the blob store of one Loopwright home or server."""

    settings: Settings
    db: Database
    blobs: BlobStore

    @property
    def actor(self) -> str:
        """Who changes are recorded as: the caller a server is acting for (:func:`acting_as`),
        else the ``user`` setting, else the OS user."""
        from .audit import current_actor

        return _acting.get() or self.settings.user or current_actor()

    def close(self) -> None:
        """Release pooled database connections."""
        self.db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _prepare_home(settings: Settings) -> None:
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the Loopwright home {home}: {exc.strerror}; "
            "set LOOPWRIGHT_HOME or 'home' in loopwright.toml to a writable folder"
        ) from exc
    if not home.is_dir():
        raise StoreError(f"the Loopwright home {home} exists but is not a folder")
    ignore = home / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_HOME_GITIGNORE, encoding="utf-8")


def require_store(settings: Settings) -> None:
    """Refuse, creating nothing, unless the database ``settings`` name holds a Loopwright store.

    Commands that only read call this first, so a mistyped path is reported instead of
    becoming a new, empty store.
    """
    import sqlalchemy as sa

    from .database import sqlite_file
    from .migrate import current_revision

    fix = (
        "check --home / --db-uri (LOOPWRIGHT_HOME, LOOPWRIGHT_DB_URI), or create a store there "
        "with `loopwright init`"
    )
    path = sqlite_file(settings.db_uri)
    if path is not None and not path.is_file():
        raise StoreError(f"there is no Loopwright store at {path}: the file does not exist; {fix}")
    if path is not None and path.stat().st_size == 0:
        raise StoreError(f"{path} is an empty file, not a Loopwright store; {fix}")
    db = Database.open(settings.db_uri)
    try:
        revision = current_revision(db)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc).splitlines()[0]
        raise StoreError(f"cannot open the database {db.url}: {reason}; {fix}") from None
    finally:
        db.dispose()
    if revision is None:
        raise StoreError(f"the database {db.url} holds no Loopwright store; {fix}")


def open_blob_store(uri: str, *, what: str = "blob_uri") -> BlobStore:
    """:meth:`BlobStore.open`, with an error naming ``what`` for an unknown protocol or a
    protocol whose fsspec package is not installed."""
    try:
        return BlobStore.open(uri)
    except LoopwrightError:
        raise
    except (ValueError, ImportError) as exc:
        raise ConfigError(
            f"{what}: cannot open {uri!r} ({exc}); give a folder, a file:// URL or an fsspec "
            "URL such as s3://bucket/prefix whose package (s3fs, gcsfs, …) is installed"
        ) from exc


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    """Open (creating on first use) the home, database and blob store that ``settings`` name.

    Args:
        settings: the resolved settings.
        migrate: bring the schema to the newest revision (servers pass False and run
            ``loopwright db upgrade`` as a deployment step instead).
    """
    uses_home = settings.db_uri.startswith("sqlite") or "://" not in settings.blob_uri
    if uses_home:
        _prepare_home(settings)
    db = Database.open(settings.db_uri)
    try:
        if migrate:
            ensure_schema(db)
        blobs = open_blob_store(settings.blob_uri)
        if blobs.is_local:
            Path(settings.blob_uri).mkdir(parents=True, exist_ok=True)
    except BaseException:
        db.dispose()
        raise
    return Store(settings=settings, db=db, blobs=blobs)
