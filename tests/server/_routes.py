"""The app's routes as one flat list (FastAPI keeps an included router as one entry)."""

from __future__ import annotations

from typing import Any

from loopwright.server._route_index import RouteIndex


def all_routes(routes: Any) -> list[Any]:
    """Routes with included routers flattened, the route index left out."""
    flat = []
    for route in routes:
        if isinstance(route, RouteIndex):
            continue  # an index of the routes below, not a route of its own
        inner = getattr(route, "original_router", None)
        flat.extend(all_routes(inner.routes) if inner is not None else [route])
    return flat
