"""The LLM gateway's OpenAI-compatible endpoints at the server's root: ``POST
/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings`` and ``GET /v1/models``.

``model`` names a gateway route; the caller needs the viewer role here and the route's own
``min_role`` (checked by the gateway). The data plane is ``gateway.proxy.Gateway``, one per
server process, made on the first request and closed with the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .api._deps import Viewer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..gateway.proxy import Gateway, Reply

__all__ = ["close_gateway", "gateway_of", "router"]

router = APIRouter(tags=["gateway"])


def gateway_of(app: FastAPI) -> Gateway:
    """The app's gateway (made on first use)."""
    gateway: Gateway | None = getattr(app.state, "lw_gateway", None)
    if gateway is None:
        from ..gateway._tracing import open_exporter
        from ..gateway.proxy import Gateway
        from ..gateway.service import GatewayService

        store = app.state.lw.store
        gateway = Gateway(
            GatewayService(store), exporter=open_exporter(store),
            max_answer_bytes=app.state.lw.settings.max_request_bytes,
        )  # fmt: skip
        app.state.lw_gateway = gateway
    return gateway


async def close_gateway(app: FastAPI) -> None:
    """Close the app's gateway, if it made one: its upstream clients, then its writers."""
    gateway: Gateway | None = getattr(app.state, "lw_gateway", None)
    if gateway is not None:
        app.state.lw_gateway = None
        await gateway.aclose()


def _response(reply: Reply) -> Response:
    if reply.stream is not None:
        return StreamingResponse(
            reply.stream, status_code=reply.status, headers=reply.headers,
            media_type=reply.media_type,
        )  # fmt: skip
    return Response(
        reply.body, status_code=reply.status, headers=reply.headers, media_type=reply.media_type
    )


async def _serve(request: Request, caller: Viewer, endpoint: str) -> Response:
    gateway = gateway_of(request.app)
    reply = await gateway.handle(
        endpoint, await request.body(), user=caller.user, role=caller.role,
        headers=request.headers,
    )  # fmt: skip
    return _response(reply)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, caller: Viewer) -> Response:
    """OpenAI's chat completions through the route ``model`` names (SSE with ``stream``)."""
    return await _serve(request, caller, "chat")


@router.post("/v1/completions")
async def completions(request: Request, caller: Viewer) -> Response:
    """OpenAI's (legacy) text completions through the route ``model`` names."""
    return await _serve(request, caller, "completions")


@router.post("/v1/embeddings")
async def embeddings(request: Request, caller: Viewer) -> Response:
    """OpenAI's embeddings through the route ``model`` names."""
    return await _serve(request, caller, "embeddings")


@router.get("/v1/models")
async def models(request: Request, caller: Viewer) -> Response:
    """The routes this caller may call, as OpenAI's model list."""
    routes = await gateway_of(request.app).models(caller.role)
    data = [
        {"id": r.name, "object": "model", "created": r.created_at // 1000,
         "owned_by": "loopwright"}
        for r in routes
    ]  # fmt: skip
    return JSONResponse({"object": "list", "data": data})
