"""The request guard: who is calling is settled before a byte of the body is read, and no body
is read past its cap.

A request carrying a body (a ``Content-Length`` above 0, or ``Transfer-Encoding``) must
authenticate first when auth is on; it is refused with 401 otherwise, its body unread. Then:

- a JSON body may be at most ``max_request_bytes``;
- a body that its route streams to disk (an endpoint marked with :func:`streams_body`: artifact
  and blob uploads) may be at most ``max_upload_bytes``.

The route is known by identity (the route object the router matched), never by a substring of
the path. A body announced larger than its cap is refused with 413 before it is read; a chunked
body is counted as the app reads it and refused as soon as it passes the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.routing import Match

from ..errors import InvalidInput, LoopwrightError, RequestTooLarge
from ._route_index import RouteIndex
from .auth import LOGIN_PATH, LOGOUT_PATH, UI_PREFIX, identify_async
from .errors import error_response

if TYPE_CHECKING:
    from ._state import ServerState

__all__ = ["RequestGuard", "body_limit", "streams_body"]

Scope = dict[str, Any]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


# Signing in (no one is known yet) and out (a revoked token must still clear its cookie).
_ANYONE = frozenset({LOGIN_PATH, LOGOUT_PATH})
FORM_BYTES = 64 * 1024  # a dashboard form (/ui/...): a comment, a token, a CSRF token


def streams_body(endpoint: Endpoint) -> Endpoint:
    """Mark a route's endpoint as reading its body as a stream (capped by ``max_upload_bytes``
    rather than ``max_request_bytes``)."""
    endpoint.lw_streams_body = True  # type: ignore[attr-defined]
    return endpoint


def body_limit(route: object, state: ServerState) -> tuple[int, str]:
    """The byte cap on ``route``'s request body and the setting that sets it."""
    if getattr(getattr(route, "endpoint", None), "lw_streams_body", False):
        return state.settings.max_upload_bytes, "max_upload_bytes"
    return state.settings.max_request_bytes, "max_request_bytes"


def _too_large(limit: int, setting: str) -> RequestTooLarge:
    hint = (
        "send large files through the artifact or blob upload endpoints, which stream"
        if setting == "max_request_bytes"
        else "split the file"
    )
    return RequestTooLarge(
        f"the request body is larger than {limit} bytes, the limit of this endpoint; {hint}, "
        f"or have the server's operator raise the {setting} setting "
        f"(LOOPWRIGHT_{setting.upper()})"
    )


def _flat(routes: Iterable[Any]) -> list[Any]:
    """Routes in matching order, included routers flattened."""
    found = []
    for route in routes:
        if isinstance(route, RouteIndex):
            continue  # an index of the routes below: the route is one of them
        inner = getattr(route, "original_router", None)
        found.extend(_flat(inner.routes) if inner is not None else [route])
    return found


class RequestGuard:
    """ASGI middleware: authentication before the body, and each body capped (see the module)."""

    def __init__(
        self,
        app: Any,
        *,
        state: ServerState,
        routes: Callable[[], list[Any]],
        pages: Callable[[Request, LoopwrightError], Any] | None = None,
    ) -> None:
        """``pages`` answers a refusal on the dashboard's paths (an HTML page)."""
        self.app = app
        self.pages = pages
        self.state = state
        self._routes = routes
        self._flattened: list[Any] | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ()) if scope["type"] == "http" else {}
        declared = headers.get(b"content-length")
        if declared in (None, b"0") and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body to guard
            return
        try:
            receive = await self._admit(scope, receive, send, declared)
        except LoopwrightError as refusal:
            if self.pages is not None and scope["path"].startswith(f"{UI_PREFIX}/"):
                answer = self.pages(Request(scope), refusal)  # the dashboard's: a page
            else:
                answer = error_response(scope["path"], refusal)
            await answer(scope, receive, send)
            return
        if isinstance(receive, _CountedBody):
            await self.app(scope, receive.receive, receive.send)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Any, send: Any, declared: bytes | None) -> Any:
        """The ``receive`` the app may read the body with; raises the error refusing the
        request instead, before its body is read."""
        if self.state.auth_enabled and scope["path"] not in _ANYONE:
            await identify_async(Request(scope))  # cached on the request state
        settings = self.state.settings
        if scope["path"].startswith(f"{UI_PREFIX}/"):  # the dashboard's forms are small
            return await self._admit_form(receive, declared)
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InvalidInput("the Content-Length header is not a number") from None
            if size > min(settings.max_request_bytes, settings.max_upload_bytes):
                limit, setting = body_limit(self.route_of(scope), self.state)
                if size > limit:
                    raise _too_large(limit, setting)
            return receive  # the server reads no more than the announced length
        limit, setting = body_limit(self.route_of(scope), self.state)
        if setting == "max_upload_bytes":
            return _CountedBody(scope, receive, send, limit, setting)  # counted as it streams
        return await _read_whole(receive, limit, setting)

    async def _admit_form(self, receive: Any, declared: bytes | None) -> Any:
        if declared is None:
            return await _read_whole(receive, FORM_BYTES, "max_request_bytes")
        try:
            size = int(declared)
        except ValueError:
            raise InvalidInput("the Content-Length header is not a number") from None
        if size > FORM_BYTES:
            raise RequestTooLarge(
                f"the form is larger than {FORM_BYTES} bytes, the dashboard's limit; send less"
            )
        return receive

    def route_of(self, scope: Scope) -> Any:
        """The route the router will pick for ``scope`` (None for no route)."""
        if self._flattened is None:
            self._flattened = _flat(self._routes())
        for route in self._flattened:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return route
        return None


async def _read_whole(receive: Any, limit: int, setting: str) -> Any:
    """Read a chunked body of at most ``limit`` bytes; a ``receive`` that replays it."""
    chunks, seen = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive  # the client went away; the app will see it too
        chunks.append(message.get("body", b""))
        seen += len(chunks[-1])
        if seen > limit:
            raise _too_large(limit, setting)
        if not message.get("more_body", False):
            break
    replayed = False

    async def replay() -> Any:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    return replay


class _CountedBody:
    """A streamed body's ``receive`` and ``send``: past its cap, the request is answered 413
    and the handler's read fails (what the app then answers goes nowhere)."""

    def __init__(self, scope: Scope, receive: Any, send: Any, limit: int, setting: str) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.limit, self.setting = limit, setting
        self.seen = 0
        self.started = self.refused = False

    async def receive(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                refusal = _too_large(self.limit, self.setting)
                if not self.started:
                    answer = error_response(self.scope["path"], refusal)
                    await answer(self.scope, self._receive, self.send)
                self.refused = True
                raise refusal
        return message

    async def send(self, message: Any) -> None:
        if not self.refused:
            self.started = True
            await self._send(message)
