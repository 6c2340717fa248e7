"""The inference server: OIP v2 REST and MLflow's ``/invocations`` on plain Starlette.

Routes call the handlers directly — no dependency injection, no middleware stack beyond
Starlette's own — because per-request overhead is the ceiling of a server whose model takes a
millisecond. Every request gets an id (its ``X-Request-Id`` header, else the OIP ``id``, else a
new one), returned in ``X-Request-Id``. Client errors are 4xx with a message naming the
problem (``{"error": ...}`` on OIP routes, MLflow's ``{"error_code", "message"}`` on
``/invocations``); a model that raises is a 500 naming the request id, which the log repeats
with the traceback. Predictions are appended to the prediction log after the response is sent.
Triton's binary tensor extension (``tritonclient.http``'s default) is understood (``_binary``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._logging import get_logger
from ..errors import (
    InvalidInput,
    LoopwrightError,
    ModelFailed,
    NotFound,
    Overloaded,
    PermissionDenied,
    RequestTooLarge,
)
from . import _binary, oip, scoring
from ._json import loads as parse_json
from .model import ServedModel

if TYPE_CHECKING:
    from .prediction_log import PredictionLog
    from .repository import ModelRepository

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024 * 1024
_logger = get_logger(__name__)
_JSON = "application/json"


class _Problem(Exception):
    """An error answer: status, message, and the MLflow error code for /invocations."""

    def __init__(self, status: int, message: str, code: str, retry: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.retry = status, message, code, retry


def create_app(
    repository: ModelRepository,
    *,
    log: PredictionLog | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The ASGI app serving ``repository``'s models (loaded before, see ``load_all``).

    Args:
        log: where predictions go (``None``: not logged).
        max_body_bytes: larger request bodies get 413.
    """
    from .. import __version__

    server = _Server(repository, log, max_body_bytes, __version__)
    base = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    # The router tries routes in order: the inference routes come first.
    routes = [
        Route(f"{base}/infer", server.infer, methods=["POST"]),
        Route(f"{versioned}/infer", server.infer, methods=["POST"]),
        Route("/invocations", server.invocations, methods=["POST"]),
        Route("/v2", server.metadata, methods=["GET"]),
        Route("/v2/health/live", server.health, methods=["GET"]),
        Route("/v2/health/ready", server.health, methods=["GET"]),
        Route(base, server.model_metadata, methods=["GET"]),
        Route(versioned, server.model_metadata, methods=["GET"]),
        Route(f"{base}/ready", server.model_ready, methods=["GET"]),
        Route(f"{versioned}/ready", server.model_ready, methods=["GET"]),
        Route("/v2/repository/index", server.repository_index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", server.load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", server.unload, methods=["POST"]),
        Route("/ping", server.health, methods=["GET"]),
        Route("/health", server.health, methods=["GET"]),
        Route("/version", server.version_text, methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await repository.close()
            if log is not None:
                log.close()

    async def no_route(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        what = "has no route" if status == 404 else f"does not allow {request.method} on"
        message = (
            f"this server {what} {request.url.path}; see GET /v2 and "
            "/v2/models/<name>[/versions/<v>][/ready|/infer], /v2/repository/..., /invocations"
        )
        return _json({"error": message}, _request_id(request), status=status)

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: no_route, 405: no_route}
    )
    app.state.repository = repository
    return app


class _Server:
    def __init__(
        self,
        repository: ModelRepository,
        log: PredictionLog | None,
        max_body_bytes: int,
        version: str,
    ) -> None:
        self.repository = repository
        self.log = log
        self.max_body_bytes = max_body_bytes
        self.version = version

    # --- OIP: server and model state ---------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        body = {"name": "loopwright", "version": self.version, "extensions": ["model_repository"]}
        return _json(body, _request_id(request))

    async def version_text(self, request: Request) -> Response:
        """``GET /version`` as MLflow's scoring server answers it (plain text)."""
        return Response(self.version, 200, media_type="text/plain")

    async def health(self, request: Request) -> Response:
        return Response(b"", 200, headers={"X-Request-Id": _request_id(request)})

    async def model_metadata(self, request: Request) -> Response:
        return await self._oip(request, self._model_metadata)

    async def _model_metadata(self, request: Request, request_id: str) -> Response:
        name = request.path_params["name"]
        model, _ = self.repository.get(name, request.path_params.get("version"))
        return _json(oip.model_metadata(model, self.repository.versions(name)), request_id)

    async def model_ready(self, request: Request) -> Response:
        async def ready(request: Request, request_id: str) -> Response:
            try:
                self.repository.get(request.path_params["name"], request.path_params.get("version"))
            except NotFound as exc:
                raise _Problem(
                    400, f"not ready: {exc.message}", "RESOURCE_DOES_NOT_EXIST"
                ) from None
            return Response(b"", 200, headers={"X-Request-Id": request_id})

        return await self._oip(request, ready)

    # --- OIP: inference -------------------------------------------------------------------

    async def infer(self, request: Request) -> Response:
        return await self._oip(request, self._infer)

    async def _infer(self, request: Request, request_id: str) -> Response:
        arrived, start = datetime.now(UTC), time.perf_counter()
        model, batcher = self.repository.get(
            request.path_params["name"], request.path_params.get("version")
        )
        binary_header = request.headers.get(_binary.HEADER)
        if binary_header is None:
            body = await self._body(request)
        else:
            body, data = _binary.split_body(await self._raw(request), binary_header)
            _binary.attach_inputs(body, data)
        body_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(body_id, str) and body_id and "x-request-id" not in request.headers:
            request_id = request.state.request_id = body_id  # errors from here on name it too
        data, outputs, body_id = oip.decode_request(body, model)
        item = model.prepare(data)
        result = await batcher.submit(item, outputs)
        payload = oip.encode_response(model, model.version_name, body_id, result)
        task = self._logged(model, request_id, arrived, start, item.data, result)
        binary = _binary.binary_outputs(body)
        if not binary:
            return _json(payload, request_id, task)
        content, header_length = _binary.encode_binary(payload, result, binary)
        headers = {
            "X-Request-Id": request_id,
            "Inference-Header-Content-Length": str(header_length),
        }
        return Response(
            content, 200, headers=headers, media_type="application/octet-stream", background=task
        )

    # --- OIP: repository extension --------------------------------------------------------

    async def repository_index(self, request: Request) -> Response:
        async def index(request: Request, request_id: str) -> Response:
            body = await self._body(request, optional=True)
            ready = isinstance(body, dict) and body.get("ready") is True
            return _json(self.repository.index(ready_only=ready), request_id)

        return await self._oip(request, index)

    async def load(self, request: Request) -> Response:
        async def load(request: Request, request_id: str) -> Response:
            await self.repository.load(request.path_params["name"])
            return Response(b"", 200, headers={"X-Request-Id": request_id})

        return await self._oip(request, load)

    async def unload(self, request: Request) -> Response:
        async def unload(request: Request, request_id: str) -> Response:
            await self.repository.unload(request.path_params["name"])
            return Response(b"", 200, headers={"X-Request-Id": request_id})

        return await self._oip(request, unload)

    # --- MLflow scoring protocol ----------------------------------------------------------

    async def invocations(self, request: Request) -> Response:
        request_id = _request_id(request)
        try:
            return await self._invocations(request, request_id)
        except Exception as exc:
            problem = _problem(exc, request_id)
            body = {"error_code": problem.code, "message": problem.message}
            return _json(body, request_id, status=problem.status, retry=problem.retry)

    async def _invocations(self, request: Request, request_id: str) -> Response:
        arrived, start = datetime.now(UTC), time.perf_counter()
        names = self.repository.names
        name = request.query_params.get("model") or (names[0] if len(names) == 1 else None)
        if name is None:
            raise InvalidInput(
                f"this server holds several models ({', '.join(names)}); name one with "
                "/invocations?model=NAME"
            )
        model, batcher = self.repository.get(name, request.query_params.get("version"))
        content_type = request.headers.get("content-type", _JSON).split(";")[0].strip().lower()
        if content_type == "text/csv":
            data = scoring.decode_csv(await self._raw(request))
        elif content_type == _JSON:
            data = scoring.decode_json(await self._body(request), model)
        else:
            raise _Problem(
                415,
                f"content type {content_type!r} is not supported; send application/json or "
                "text/csv",
                "BAD_REQUEST",
            )
        item = model.prepare(data)
        result = await batcher.submit(item, ("predict",))
        task = self._logged(model, request_id, arrived, start, item.data, result)
        return _json(scoring.encode_predictions(result), request_id, task)

    # --- shared -----------------------------------------------------------------------------

    async def _oip(
        self, request: Request, handler: Callable[[Request, str], Awaitable[Response]]
    ) -> Response:
        request_id = _request_id(request)
        try:
            return await handler(request, request_id)
        except Exception as exc:
            request_id = getattr(request.state, "request_id", request_id)
            problem = _problem(exc, request_id)
            return _json(
                {"error": problem.message}, request_id, status=problem.status, retry=problem.retry
            )

    async def _raw(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise RequestTooLarge(self._too_large())
        body = await request.body()
        if len(body) > self.max_body_bytes:
            raise RequestTooLarge(self._too_large())
        return body

    async def _body(self, request: Request, *, optional: bool = False) -> Any:
        raw = await self._raw(request)
        if optional and not raw.strip():
            return None
        try:
            return parse_json(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"the request body is not valid JSON: {exc}") from None

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes; send fewer rows"

    def _logged(
        self,
        model: ServedModel,
        request_id: str,
        arrived: datetime,
        start: float,
        inputs: Any,
        outputs: dict[str, Any],
    ) -> BackgroundTask | None:
        if self.log is None or not self.log.keeps(request_id):
            return None  # a request the sampling drops costs no record (columns to lists)
        latency_ms = (time.perf_counter() - start) * 1000
        return BackgroundTask(
            _append, self.log, model, request_id, arrived, latency_ms, inputs, outputs
        )


async def _append(
    log: PredictionLog,
    model: ServedModel,
    request_id: str,
    arrived: datetime,
    latency_ms: float,
    inputs: Any,
    outputs: dict[str, Any],
) -> None:
    """Runs after the response is sent; a log that refuses a record never fails the request.

    A coroutine, so Starlette runs it on the loop: a plain function would be handed to a
    thread per request, which cost more than building and queueing the record (~12 us).
    """
    from ._records import prediction_record

    try:
        record = prediction_record(model, request_id, arrived, latency_ms, 200, inputs, outputs)
        log.append(record)
    except Exception:
        _logger.exception("request %s: the prediction could not be logged", request_id)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 200:
        return given
    return uuid.uuid4().hex


def _problem(exc: Exception, request_id: str) -> _Problem:
    if isinstance(exc, _Problem):
        return exc
    if isinstance(exc, NotFound):
        return _Problem(404, exc.message, exc.code)
    if isinstance(exc, RequestTooLarge):
        return _Problem(413, exc.message, exc.code)
    if isinstance(exc, InvalidInput):
        return _Problem(400, exc.message, "BAD_REQUEST")
    if isinstance(exc, PermissionDenied):
        return _Problem(403, exc.message, exc.code)
    if isinstance(exc, Overloaded):
        return _Problem(503, exc.message, exc.code, retry=True)
    if isinstance(exc, ModelFailed):
        _logger.error("request %s: %s", request_id, exc.message, exc_info=exc.__cause__)
        return _Problem(500, f"{exc.message} (request id {request_id})", exc.code)
    if isinstance(exc, LoopwrightError):
        _logger.error("request %s: %s", request_id, exc.message)
        return _Problem(500, f"{exc.message} (request id {request_id})", exc.code)
    _logger.exception("request %s failed", request_id, exc_info=exc)
    return _Problem(
        500,
        f"internal error {type(exc).__name__} (request id {request_id}); the server log has "
        "the traceback",
        "INTERNAL_ERROR",
    )


def _json(
    body: Any,
    request_id: str,
    background: BackgroundTask | None = None,
    *,
    status: int = 200,
    retry: bool = False,
) -> Response:
    headers = {"X-Request-Id": request_id}
    if retry:
        headers["Retry-After"] = "1"
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status, headers=headers, media_type=_JSON, background=background)
