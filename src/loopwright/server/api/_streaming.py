"""Streaming file bodies both ways: uploads go chunk by chunk to a temp file, downloads come
chunk by chunk from the blob store. Neither holds a whole file in memory.

An upload may name its BLAKE3 hash in ``X-Content-Blake3``; a body that does not match is
refused before anything is stored. A download carries the blob's hash in the same header so the
client can verify what it received (the blob store verifies as it reads, too: a corrupt blob
cuts the response short rather than completing it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blake3 import blake3
from fastapi import Request
from fastapi.responses import StreamingResponse

from ...errors import InvalidInput
from ...store.home import Store

__all__ = [
    "BINARY_BODY",
    "BINARY_RESPONSE",
    "HASH_HEADER",
    "blob_response",
    "receive_to_file",
]

HASH_HEADER = "X-Content-Blake3"
_CHUNK = 1 << 20

# OpenAPI descriptions of the raw bodies these endpoints take and give.
BINARY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file's bytes; its BLAKE3 hash is in the X-Content-Blake3 header.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def receive_to_file(request: Request, dest: Path) -> str:
    """Write the request body to ``dest``; return its BLAKE3 hash (checked against the header)."""
    hasher = blake3()
    with dest.open("wb") as out:
        async for chunk in request.stream():
            if chunk:
                hasher.update(chunk)
                out.write(chunk)
    digest = str(hasher.hexdigest())
    expected = request.headers.get(HASH_HEADER)
    if expected is not None and expected.lower() != digest:
        raise InvalidInput(
            f"the uploaded body hashes to {digest}, not {expected} as {HASH_HEADER} says; "
            "it was changed or cut short on the way; send it again"
        )
    return digest


def _chunks(store: Store, blob_hash: str) -> Iterator[bytes]:
    with store.blobs.open_read(blob_hash) as reader:
        while chunk := reader.read(_CHUNK):
            yield chunk


def blob_response(store: Store, blob_hash: str, size: int) -> StreamingResponse:
    """The blob's bytes as a streamed response (404 first if the blob is missing)."""
    if not store.blobs.exists(blob_hash):
        store.blobs.open_read(blob_hash).close()  # raises BlobNotFound, naming the store
    return StreamingResponse(
        _chunks(store, blob_hash),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size), HASH_HEADER: blob_hash},
    )
