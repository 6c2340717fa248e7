"""The manifest of a model package (``loopwright-model.json``) and its strict reader.

A manifest names the flavor that reads the package, its signature and input example, the Python
and library versions it was saved with, whether loading it unpickles data or imports packaged
code, and the BLAKE3 hash and size of every other file in the package. The package's identity is
the BLAKE3 of the manifest's bytes, which therefore pins every file.

Manifests arrive from other machines, so :meth:`PackageManifest.from_json` trusts nothing: every
field is type-checked, unknown fields and formats are refused, and file paths go through the one
path resolver. Errors are :class:`~loopwright.errors.InvalidModelPackage` naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blake3 import blake3

from ...errors import InvalidInput, InvalidModelPackage
from ...paths import normalize_relpath
from .signature import Signature

__all__ = ["FORMAT", "MANIFEST_FILE", "MAX_MANIFEST_BYTES", "FileEntry", "PackageManifest"]

MANIFEST_FILE = "loopwright-model.json"
FORMAT = 1
MAX_MANIFEST_BYTES = 16 << 20
_HASH = re.compile(r"[0-9a-f]{64}")
_FLAVOR = re.compile(r"[a-z][a-z0-9_]{0,49}")
_FIELDS = frozenset(
    {"format", "flavor", "flavor_options", "signature", "input_example", "python", "libraries"}
    | {"uses_pickle", "executes_code", "created_at", "files"}
)


@dataclass(frozen=True)
class FileEntry:
    """The BLAKE3 hex digest and byte size of one file of a package."""

    hash: str
    size: int


@dataclass(frozen=True)
class PackageManifest:
    """What ``loopwright-model.json`` says; :attr:`hash` is the package's identity.

    Mappings are shared with the parsed document: treat them as read-only.
    """

    flavor: str
    flavor_options: Mapping[str, Any]
    signature: Signature | None
    input_example: str | None
    python: str
    libraries: Mapping[str, str]
    uses_pickle: bool
    executes_code: bool
    created_at: int
    files: Mapping[str, FileEntry]
    # The bytes this manifest was read from, so that ``hash`` matches the file exactly.
    raw: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def hash(self) -> str:
        """BLAKE3 hex digest of the manifest's bytes (as read, or as :meth:`to_json` writes)."""
        return blake3(self.to_json()).hexdigest()

    @property
    def needs_trust(self) -> bool:
        """Whether loading unpickles data or imports packaged code."""
        return self.uses_pickle or self.executes_code

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "flavor": self.flavor,
            "flavor_options": dict(self.flavor_options),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "python": self.python,
            "libraries": dict(self.libraries),
            "uses_pickle": self.uses_pickle,
            "executes_code": self.executes_code,
            "created_at": self.created_at,
            "files": {
                path: {"hash": entry.hash, "size": entry.size}
                for path, entry in sorted(self.files.items())
            },
        }

    def to_json(self) -> bytes:
        """The manifest's bytes: as read, or canonical JSON (sorted keys, two-space indent)."""
        if self.raw is not None:
            return self.raw
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, where: str = "model package") -> PackageManifest:
        """Parse and check untrusted manifest bytes.

        Raises:
            InvalidModelPackage: naming the field that is missing, mistyped or unsafe.
        """
        return _Reader(where).read(data)


class _Reader:
    def __init__(self, where: str) -> None:
        self.where = where

    def bad(self, problem: str) -> InvalidModelPackage:
        return InvalidModelPackage(
            f"{self.where}: {MANIFEST_FILE} {problem}; the package is damaged or was not written "
            "by loopwright.registry.packaging.package.save_model, so rebuild it"
        )

    def read(self, data: bytes) -> PackageManifest:
        if not isinstance(data, bytes):
            raise self.bad(f"must be read as bytes, not {type(data).__name__}")
        if len(data) > MAX_MANIFEST_BYTES:
            raise self.bad(f"is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            doc = json.loads(
                data.decode("utf-8"),
                object_pairs_hook=self._object,
                parse_constant=self._constant,
            )
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise self.bad(f"is not valid UTF-8 JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(doc, dict):
            raise self.bad("must hold a JSON object")
        unknown = sorted(set(doc) - _FIELDS)
        if unknown:
            raise self.bad(f"has unknown fields {unknown}")
        missing = sorted(_FIELDS - set(doc))
        if missing:
            raise self.bad(f"lacks the fields {missing}")
        if doc["format"] != FORMAT or isinstance(doc["format"], bool):
            raise self.bad(
                f"field 'format' is {doc['format']!r}, but this Loopwright reads format {FORMAT}; "
                "upgrade Loopwright if the package is newer"
            )
        flavor = self.typed(doc, "flavor", str)
        if not _FLAVOR.fullmatch(flavor):
            raise self.bad(f"field 'flavor' is {flavor!r}, not a flavor name ([a-z][a-z0-9_]*)")
        files = self.files(doc["files"])
        example = doc["input_example"]
        if example is not None:
            example = self.path(self.typed(doc, "input_example", str), "input_example")
            if example not in files:
                raise self.bad(f"field 'input_example' names {example!r}, which 'files' lacks")
        libraries = self.typed(doc, "libraries", dict)
        for name, version in libraries.items():
            if not isinstance(version, str):
                raise self.bad(f"field 'libraries' gives {name!r} a non-string version")
        created_at = self.typed(doc, "created_at", int)
        if created_at < 0:
            raise self.bad("field 'created_at' is negative")
        return PackageManifest(
            flavor=flavor,
            flavor_options=self.typed(doc, "flavor_options", dict),
            signature=self.signature(doc["signature"]),
            input_example=example,
            python=self.typed(doc, "python", str),
            libraries=libraries,
            uses_pickle=self.typed(doc, "uses_pickle", bool),
            executes_code=self.typed(doc, "executes_code", bool),
            created_at=created_at,
            files=files,
            raw=data,
        )

    def typed(self, doc: Mapping[str, Any], key: str, kind: type) -> Any:
        value = doc[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.bad(f"field {key!r} must be {_KIND_NAMES[kind]}, not {_json_kind(value)}")
        return value

    def path(self, value: str, name: str) -> str:
        try:
            path = normalize_relpath(value, what=f"field {name!r} path")
        except InvalidInput as exc:
            raise self.bad(exc.message) from None
        if path != value:
            raise self.bad(f"field {name!r} path {value!r} is not in normal form ({path!r})")
        if path == MANIFEST_FILE:
            raise self.bad(f"field {name!r} names the manifest itself")
        return path

    def files(self, listed: Any) -> dict[str, FileEntry]:
        if not isinstance(listed, dict):
            raise self.bad(f"field 'files' must be an object, not {_json_kind(listed)}")
        files: dict[str, FileEntry] = {}
        for raw_path, entry in listed.items():
            path = self.path(raw_path, "files")
            if not isinstance(entry, dict) or set(entry) != {"hash", "size"}:
                raise self.bad(f"field 'files' entry {path!r} must be an object with hash and size")
            digest, size = entry["hash"], entry["size"]
            if not isinstance(digest, str) or not _HASH.fullmatch(digest):
                raise self.bad(f"field 'files' gives {path!r} a hash that is not 64 lowercase hex")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise self.bad(f"field 'files' gives {path!r} a size that is not an integer >= 0")
            files[path] = FileEntry(digest, size)
        return files

    def signature(self, value: Any) -> Signature | None:
        if value is None:
            return None
        try:
            return Signature.from_dict(value, where="field 'signature'")
        except InvalidInput as exc:
            raise self.bad(exc.message) from None

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            keys = [key for key, _ in pairs]
            twice = sorted({key for key in keys if keys.count(key) > 1})
            raise self.bad(f"repeats the keys {twice} in one object")
        return result

    def _constant(self, name: str) -> Any:
        raise self.bad(f"holds {name}, which is not JSON")


_KIND_NAMES = {str: "a string", dict: "an object", bool: "true or false", int: "an integer"}
_JSON_KINDS = {
    str: "a string",
    dict: "an object",
    list: "a list",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)
