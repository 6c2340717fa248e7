"""Request size limits: JSON bodies are capped; artifact and blob uploads stream to disk.

A body announced larger than the limit is refused before it is read (413); a chunked body is
read up to the limit first and refused as soon as it passes it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["STREAMING_PATH_PARTS", "BodySizeLimit"]

# Uploads that handlers stream to the blob store chunk by chunk; no in-memory cap applies.
STREAMING_PATH_PARTS = ("/mlflow-artifacts/artifacts/", "/artifacts/files/", "/blobs/")

Scope = dict[str, Any]


class BodySizeLimit:
    """ASGI middleware: 413 with a JSON error for bodies over ``default_limit`` bytes."""

    def __init__(self, app: Any, *, default_limit: int) -> None:
        self.app = app
        self.limit = default_limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or any(p in scope["path"] for p in STREAMING_PATH_PARTS):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                await self._refuse(send, 400, "Content-Length is not a number")
                return
            if too_large:
                await self._refuse(send, 413, self._message())
                return
        if declared is None and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            # A chunked body: read it (it is capped, so this is bounded) before the app sees it.
            chunks, seen = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return  # the client went away
                chunks.append(message.get("body", b""))
                seen += len(chunks[-1])
                if seen > self.limit:
                    await self._refuse(send, 413, self._message())
                    return
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    def _message(self) -> str:
        return (
            f"the request body is larger than {self.limit} bytes; send large files through the "
            "artifact or blob upload endpoints, which stream"
        )

    @staticmethod
    async def _refuse(send: Any, status: int, message: str) -> None:
        code = "REQUEST_TOO_LARGE" if status == 413 else "INVALID_PARAMETER_VALUE"
        body = json.dumps({"code": code, "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
