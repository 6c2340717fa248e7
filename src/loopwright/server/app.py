"""``create_app``: the ASGI application of ``loopwright server``.

Example:
    >>> from fastapi.testclient import TestClient
    >>> from loopwright.config import resolve_settings
    >>> app = create_app(resolve_settings(home="lw-doc-server"))
    >>> with TestClient(app) as http:
    ...     http.get("/health").text
    'OK'
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import InvalidInput, LoopwrightError
from ._limits import RequestGuard
from ._route_index import RouteIndex
from ._state import ServerState
from .auth import UI_PREFIX, public
from .errors import MLFLOW_PREFIXES, error_body, error_response

if TYPE_CHECKING:
    from ..config import Settings
    from ..loop.scheduler import Scheduler

__all__ = ["MLFLOW_PREFIXES", "create_app"]

_logger = logging.getLogger("loopwright.server")


def _open_state(settings: Settings, auth: bool | None) -> ServerState:
    from dataclasses import replace

    from ..data.service import DatasetService
    from ..governance.tokens import TokenService
    from ..store.home import open_store
    from ..tracking import TrackingService

    # Scorers that callers choose run here under the server's rules (Settings.hosted).
    settings = replace(settings, hosted=True)
    store = open_store(settings)
    tokens = TokenService(store)
    return ServerState(
        settings=settings,
        store=store,
        tracking=TrackingService(store, capture=False),  # runs carry their client's context
        datasets=DatasetService(store),
        tokens=tokens,
        auth_enabled=tokens.any_active() if auth is None else auth,
        default_user=store.actor,
    )


def _scheduler_interval(given: float | None) -> float | None:
    import os

    from ..errors import ConfigError

    text = os.environ.get("LOOPWRIGHT_SERVER_SCHEDULER") if given is None else str(given)
    if not text:
        return None
    try:
        interval = float(text)
    except ValueError:
        interval = 0.0
    if not 0 < interval <= 86_400:
        raise ConfigError(
            f"scheduler interval {text!r} (LOOPWRIGHT_SERVER_SCHEDULER) must be seconds between "
            "ticks, above 0 and at most 86400 (e.g. 10)"
        )
    return interval


def _start_scheduler(state: ServerState, interval: float) -> Scheduler:
    """One scheduler per server process, on its own embedded client of the server's stores;
    several processes (workers, servers) fire each job once between them (the database's
    unique fire row)."""
    from ..client import Client
    from ..loop.scheduler import Scheduler

    runner = Scheduler(Client(state.settings))
    runner.start(interval)
    _logger.info("scheduler %s started, ticking every %s s", runner.owner, interval)
    return runner


def create_app(
    settings: Settings | None = None,
    *,
    auth: bool | None = None,
    state: ServerState | None = None,
    scheduler: float | None = None,
) -> FastAPI:
    """The server app over the stores ``settings`` name.

    Args:
        settings: resolved settings (default: from the environment and ``loopwright.toml``).
        auth: force authentication on or off; by default it is on exactly when some enabled
            user holds an active API token.
        state: an already opened state (tests); ``settings`` and ``auth`` are then ignored.
        scheduler: run the schedules' scheduler in a background thread of this process,
            ticking every so many seconds (default: ``LOOPWRIGHT_SERVER_SCHEDULER``, which
            ``loopwright server --scheduler`` sets; unset: no scheduler).
    """
    interval = _scheduler_interval(scheduler)  # a bad one fails before the stores open
    if state is None:
        from ..config import resolve_settings

        state = _open_state(settings or resolve_settings(), auth)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = None if interval is None else _start_scheduler(state, interval)
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
                runner.client.close()
            from .gateway_routes import close_gateway

            await close_gateway(app)  # its queued usage rows and traces written first
            state.close()

    app = FastAPI(
        title="Loopwright",
        version=__version__,
        summary="Versioned data, experiment tracking and a model registry, over one store.",
        lifespan=lifespan,
    )
    app.state.lw = state
    from .ui._errors import error_page

    app.add_middleware(RequestGuard, state=state, routes=lambda: app.routes, pages=error_page)

    def on_dashboard(request: Request) -> bool:
        return request.url.path.startswith(f"{UI_PREFIX}/")

    @app.exception_handler(LoopwrightError)
    async def loopwright_error(request: Request, exc: LoopwrightError) -> Response:
        if on_dashboard(request):
            from .ui._errors import error_page

            return error_page(request, exc)
        return error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(MLFLOW_PREFIXES):  # MLflow's clients match its wording
            from .mlflow.errors import validation_message

            message = validation_message(exc.errors(), exc.body)
            return error_body(request.url.path, "INVALID_PARAMETER_VALUE", message, 400)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error.get('loc', ()))}: {error.get('msg')}"
            for error in exc.errors()
        )
        if on_dashboard(request):
            from .ui._errors import ui_error

            return ui_error(request, 400, "Bad request", problems or "invalid request")
        return error_body(
            request.url.path, "INVALID_PARAMETER_VALUE", problems or "invalid request", 400
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if on_dashboard(request):
            from .ui._errors import ui_error

            title = "Not found" if exc.status_code == 404 else "Bad request"
            return ui_error(request, exc.status_code, title, f"{request.url.path}: {exc.detail}")
        code = {404: "ENDPOINT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
        )
        return error_body(request.url.path, code, str(exc.detail), exc.status_code)

    import sqlalchemy.exc

    @app.exception_handler(sqlalchemy.exc.DataError)
    async def refused_value(request: Request, exc: sqlalchemy.exc.DataError) -> Response:
        """A value the database cannot hold (a NUL character on PostgreSQL, a number out of
        its column's range) that no check caught before: the request's fault, said as such;
        nothing was written (the transaction rolled back)."""
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else type(exc).__name__
        _logger.warning(
            "%s %s: the database refused a value: %s", request.method, request.url.path, reason
        )
        message = f"the database refused a value of this request ({reason}); correct it and retry"
        return await loopwright_error(request, InvalidInput(message))

    @app.exception_handler(OverflowError)
    async def overflowed(request: Request, exc: OverflowError) -> Response:
        """SQLite's twin of PostgreSQL's out-of-range DataError: sqlite3 cannot bind an int past
        64 bits. The bounds at the API's edge (tests/server/test_integer_bounds.py) keep such
        numbers out; this keeps one they miss a 400, as PostgreSQL's driver makes it. Any other
        overflow is a fault of ours."""
        if "SQLite INTEGER" not in str(exc):
            return await unexpected(request, exc)
        _logger.warning("%s %s: a number past 64 bits: %s", request.method, request.url.path, exc)
        message = "a number of this request does not fit in 64 bits; correct it and retry"
        return await loopwright_error(request, InvalidInput(message))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        _logger.exception("unhandled error on %s %s", request.method, request.url.path)
        if on_dashboard(request):
            from .ui._errors import ui_error

            message = f"internal error ({type(exc).__name__}); the server's log has the details"
            return ui_error(request, 500, "Server error", message)
        return error_body(
            request.url.path, "INTERNAL_ERROR", f"internal error ({type(exc).__name__})", 500
        )

    @app.get("/health", response_class=PlainTextResponse, dependencies=[Depends(public)])
    def health() -> str:
        """Liveness: the process answers (``OK``, as ``mlflow server`` answers)."""
        return "OK"

    @app.get("/ready", dependencies=[Depends(public)])
    def ready() -> Any:
        """Readiness: the metadata database answers a query and the blob store is reachable."""
        import sqlalchemy as sa

        try:
            with state.store.db.read() as conn:
                conn.execute(sa.text("SELECT 1"))
            state.store.blobs.exists("0" * 64)
        except Exception as exc:
            return JSONResponse(
                {"code": "NOT_READY", "message": f"{type(exc).__name__}: {exc}"}, status_code=503
            )
        return {"status": "ready", "version": __version__, "auth": state.auth_enabled}

    from .routes import include_routes

    include_routes(app)
    from .gateway_routes import router as gateway_router

    app.include_router(gateway_router)  # the LLM gateway's OpenAI-compatible /v1/... routes
    app.router.routes.insert(0, RouteIndex(app.router))  # first: it finds the others' routes
    return app
