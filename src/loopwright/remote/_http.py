"""One HTTP session to a Loopwright server: the bearer token, JSON calls, streamed files, and
errors mapped back onto :mod:`loopwright.errors` by their ``code``.

A server error ``{"code": "RESOURCE_DOES_NOT_EXIST", "message": ...}`` is raised as ``NotFound``
with the server's message, so ``except NotFound`` works the same against either backend.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from blake3 import blake3

from .. import errors
from ..errors import IntegrityError, LoopwrightError, StoreError

__all__ = ["HASH_HEADER", "Http", "error_for", "hash_file", "quote_path"]

HASH_HEADER = "X-Content-Blake3"
_API = "/api/v1"
_CHUNK = 1 << 20


def _codes() -> dict[str, type[LoopwrightError]]:
    found: dict[str, type[LoopwrightError]] = {}
    for name in errors.__all__:
        kind = getattr(errors, name)
        # The most general class of a shared code wins (InvalidInput, not ConfigError).
        if kind.code not in found or issubclass(found[kind.code], kind):
            found[kind.code] = kind
    found["INVALID_CONFIG"] = errors.InvalidInput  # a server's setting is not the caller's
    return found


_BY_CODE = _codes()
_BY_STATUS: dict[int, type[LoopwrightError]] = {
    400: errors.InvalidInput,
    401: errors.Unauthenticated,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.InvalidInput,
}


def error_for(status: int, body: object) -> LoopwrightError:
    """The error a server response stands for (by its ``code``, else by the HTTP status)."""
    code = message = None
    if isinstance(body, Mapping):
        code, message = body.get("code"), body.get("message")
    kind = _BY_CODE.get(code) if isinstance(code, str) else None
    kind = kind or _BY_STATUS.get(status) or StoreError
    text = message if isinstance(message, str) else f"the server answered HTTP {status}: {body}"
    error = kind(text)
    if isinstance(code, str) and kind.code != code:
        error.code = code  # keep the server's code (e.g. ENDPOINT_NOT_FOUND)
    return error


def quote_path(path: str) -> str:
    """A relative path as URL segments (``/`` kept, everything else escaped)."""
    return quote(path, safe="/")


class Http:
    """JSON over HTTP to ``base_url`` + ``/api/v1``, with ``token`` as the bearer."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        user: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        headers = {"User-Agent": "loopwright-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if user:  # heeded only by servers without auth (loopback), as the embedded store does
            headers["X-Loopwright-User"] = user
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url + _API,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    # --- JSON -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a call and return its decoded JSON (None for an empty answer)."""
        content = None
        headers = {}
        if json_body is not None:
            # allow_nan: NaN metric values travel as the JSON extension Python reads back.
            content = json.dumps(json_body, allow_nan=True).encode("utf-8")
            headers["Content-Type"] = "application/json"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self._send(method, path, content=content, headers=headers, params=query)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, /, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def get_bytes(self, path: str, /, **params: Any) -> bytes:
        """A binary answer whole (an Arrow stream ...); the server bounds its size."""
        query = {k: v for k, v in params.items() if v is not None}
        return self._send("GET", path, params=query).content

    def exists(self, path: str) -> bool:
        """Whether ``HEAD path`` finds something (404: no; other errors raise)."""
        try:
            self._send("HEAD", path)
        except errors.NotFound:
            return False
        return True

    def post(self, path: str, body: object = None) -> Any:
        return self.request("POST", path, json_body={} if body is None else body)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise error_for(response.status_code, _json_or_text(response))
        return response

    def _unreachable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"cannot reach the Loopwright server at {self.base_url}: {exc}; check server_uri "
            "and that `loopwright server` is running"
        )

    # --- files ----------------------------------------------------------------------------

    def upload(self, path: str, source: str | os.PathLike[str]) -> Any:
        """PUT a local file's bytes (streamed) with its BLAKE3 hash; returns the JSON answer."""
        digest = hash_file(source)
        with open(source, "rb") as handle:
            response = self._send(
                "PUT",
                path,
                content=_read_chunks(handle),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(os.fstat(handle.fileno()).st_size),
                    HASH_HEADER: digest,
                },
            )
        return response.json()

    @contextlib.contextmanager
    def stream_upload(
        self, method: str, path: str, source: Path | None, params: Mapping[str, Any]
    ) -> Iterator[httpx.Response]:
        """Send a local file's bytes (streamed; an empty body without ``source``) and yield the
        answer unread, to be streamed (an error answer is raised instead)."""
        query = {k: v for k, v in params.items() if v is not None}
        headers = {"Content-Type": "application/octet-stream"}
        with contextlib.ExitStack() as stack:
            content: Iterator[bytes] | bytes = b""
            if source is not None:
                handle = stack.enter_context(open(source, "rb"))
                headers["Content-Length"] = str(os.fstat(handle.fileno()).st_size)
                content = _read_chunks(handle)
            try:
                with self._client.stream(
                    method, path, content=content, headers=headers, params=query
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise error_for(response.status_code, _json_or_text(response))
                    yield response
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc

    def download(self, path: str, dest: str | os.PathLike[str], expected_hash: str) -> None:
        """GET a file into ``dest``, streamed and verified; ``dest`` appears only when whole."""
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            hasher = blake3()
            with os.fdopen(fd, "wb") as out:
                try:
                    with self._client.stream("GET", path) as response:
                        if response.status_code >= 400:
                            response.read()
                            raise error_for(response.status_code, _json_or_text(response))
                        for chunk in response.iter_bytes(_CHUNK):
                            hasher.update(chunk)
                            out.write(chunk)
                except httpx.TransportError as exc:
                    raise self._unreachable(exc) from exc
            actual = hasher.hexdigest()
            if actual != expected_hash:
                raise IntegrityError(
                    f"{self.base_url}{_API}{path} sent bytes hashing to {actual}, not "
                    f"{expected_hash}; the transfer was cut short or the stored file is corrupt"
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)


def _json_or_text(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _read_chunks(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


def hash_file(path: str | os.PathLike[str]) -> str:
    hasher = blake3()
    with open(path, "rb") as handle:
        for chunk in _read_chunks(handle):
            hasher.update(chunk)
    return str(hasher.hexdigest())
