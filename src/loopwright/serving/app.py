"""The inference server: OIP v2 REST and MLflow's ``/invocations`` on plain Starlette.

Routes call the handlers directly — no dependency injection, no middleware stack beyond
Starlette's own — because per-request overhead is the ceiling of a server whose model takes a
millisecond. Every request gets an id (its ``X-Request-Id`` header, else the OIP ``id``, else a
new one), returned in ``X-Request-Id``. Client errors are 4xx with a message naming the
problem (``{"error": ...}`` on OIP routes, MLflow's ``{"error_code", "message"}`` on
``/invocations``); a model that raises is a 500 naming the request id, which the log repeats
with the traceback. Predictions are appended to the prediction log after the response is sent.
Triton's binary tensor extension (``tritonclient.http``'s default) is understood (``_binary``).
What REST shares with gRPC (the model or the deployment's variant, the meter, the record and
shadow copies after the answer, the error table) is :mod:`.core`'s; this module is the HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._numbers import is_number
from ..errors import InvalidInput, NotFound, RequestTooLarge
from . import _binary, oip, scoring
from ._json import loads as parse_json
from .core import After, InferenceCore, Problem, new_request_id, prepare, problem
from .metrics import ServingMetrics
from .routing import VARIANT_HEADER

if TYPE_CHECKING:
    from .prediction_log import PredictionLog
    from .repository import ModelRepository
    from .shadow import ShadowCopies
    from .watcher import DeploymentWatcher

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 64 * 1024 * 1024
_JSON = "application/json"


def create_app(
    repository: ModelRepository,
    *,
    log: PredictionLog | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    deployment: DeploymentWatcher | None = None,
) -> Starlette:
    """The ASGI app serving ``repository``'s models (loaded before, see ``load_all``).

    Args:
        log: where predictions go (``None``: not logged).
        max_body_bytes: larger request bodies get 413.
        deployment: a deployment (loaded, see ``DeploymentWatcher.load``) whose name routes
            ``/v2/models/<name>/infer`` and ``/invocations`` through its traffic policy; the
            app starts and stops following it.
    """
    from .. import __version__

    metrics = ServingMetrics(repository, log)
    shadows = None
    if deployment is not None:
        from .shadow import ShadowCopies

        shadows = ShadowCopies(deployment.name, log, metrics=metrics)
    server = _Server(repository, log, max_body_bytes, __version__, metrics, deployment, shadows)
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
    # Every answer is counted by route and status; /metrics itself is not.
    routes = [_metered(metrics, route) for route in routes]
    routes.append(Route("/metrics", metrics.scrape, methods=["GET"]))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if deployment is not None:
            await deployment.start()
        metrics.start()
        try:
            yield
        finally:
            # Each step runs even if one before it fails, the log's last (the exit stack
            # runs them in reverse): a failing close never costs acknowledged log rows.
            async with AsyncExitStack() as steps:
                if log is not None:
                    steps.callback(log.close)
                steps.push_async_callback(repository.close)
                if shadows is not None:
                    steps.push_async_callback(shadows.close)
                if deployment is not None:
                    steps.push_async_callback(deployment.close)
                steps.push_async_callback(metrics.stop)

    async def no_route(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        what = "has no route" if status == 404 else f"does not allow {request.method} on"
        metrics.no_route(status)
        message = (
            f"this server {what} {request.url.path}; see GET /v2 and "
            "/v2/models/<name>[/versions/<v>][/ready|/infer], /v2/repository/..., /invocations"
        )
        return _json({"error": message}, _request_id(request), status=status)

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={404: no_route, 405: no_route}
    )
    app.state.repository = repository
    app.state.metrics = metrics
    app.state.deployment, app.state.shadows = deployment, shadows
    return app


def _metered(metrics: ServingMetrics, route: Route) -> Route:
    protocol = "oip" if route.path.startswith("/v2") else "mlflow"
    endpoint = metrics.metered(route.endpoint, protocol, route.path)
    return Route(route.path, endpoint, methods=list(route.methods or ()))


class _Server:
    def __init__(
        self,
        repository: ModelRepository,
        log: PredictionLog | None,
        max_body_bytes: int,
        version: str,
        metrics: ServingMetrics,
        deployment: DeploymentWatcher | None = None,
        shadows: ShadowCopies | None = None,
    ) -> None:
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        self.version = version
        self.metrics = metrics
        self.deployment = deployment
        self.core = InferenceCore(repository, log, metrics, deployment, shadows)

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
        params = request.path_params
        return _json(self.core.model_metadata(params["name"], params.get("version")), request_id)

    async def model_ready(self, request: Request) -> Response:
        async def ready(request: Request, request_id: str) -> Response:
            name, version = request.path_params["name"], request.path_params.get("version")
            try:
                self.core.ready(name, version)
            except NotFound as exc:
                raise Problem(400, f"not ready: {exc.message}", "RESOURCE_DOES_NOT_EXIST") from None
            return Response(b"", 200, headers={"X-Request-Id": request_id})

        return await self._oip(request, ready)

    # --- OIP: inference -------------------------------------------------------------------

    async def infer(self, request: Request) -> Response:
        return await self._oip(request, self._infer)

    async def _infer(self, request: Request, request_id: str) -> Response:
        arrived, start = datetime.now(UTC), time.perf_counter()
        name, version = request.path_params["name"], request.path_params.get("version")
        core = self.core
        router = core.router(name, version)
        if router is None:
            model, batcher = core.model(name, version)
        binary_header = request.headers.get(_binary.HEADER)
        if binary_header is None:
            body = await self._body(request)
        else:
            body, data = _binary.split_body(await self._raw(request), binary_header)
            _binary.attach_inputs(body, data)
        body_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(body_id, str) and body_id and "x-request-id" not in request.headers:
            request_id = request.state.request_id = body_id  # errors from here on name it too
        route = None
        if router is not None:
            # Chosen after the body is read, with no await before submit: a request never
            # reaches a slot the watcher has retired meanwhile.
            route = router.choose(request.headers)
            model = route.slot.model
        meter = request.state.meter = core.meter(model, router, route)  # errors: see _failed
        data, outputs, body_id = oip.decode_request(body, model)
        item, logged = prepare(model, data)
        if route is None:
            result = await batcher.submit(item, outputs)
        else:
            result = await route.submit(item, outputs)
        payload = oip.encode_response(model, model.version_name, body_id, result)
        after = core.after(
            model, router, route, outputs, request_id, arrived, start, logged, result
        )
        task = None if after is None else BackgroundTask(_run_after, core, after)
        binary = _binary.binary_outputs(body)
        variant = None if route is None else route.variant
        if not binary:
            response = _json(payload, request_id, task, variant=variant)
            meter.observe(time.perf_counter() - start)
            return response
        content, header_length = _binary.encode_binary(payload, result, binary)
        headers = {
            "X-Request-Id": request_id,
            "Inference-Header-Content-Length": str(header_length),
        }
        if variant is not None:
            headers[VARIANT_HEADER] = variant
        response = Response(
            content, 200, headers=headers, media_type="application/octet-stream", background=task
        )
        meter.observe(time.perf_counter() - start)
        return response

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
        request_id, start = _request_id(request), time.perf_counter()
        try:
            return await self._invocations(request, request_id)
        except Exception as exc:
            answer = problem(exc, request_id)
            self._failed(request, "mlflow", answer, start)
            body = {"error_code": answer.code, "message": answer.message}
            return _json(body, request_id, status=answer.status, retry=answer.retry)

    async def _invocations(self, request: Request, request_id: str) -> Response:
        arrived, start = datetime.now(UTC), time.perf_counter()
        names = self.repository.names
        name = request.query_params.get("model")
        if name is None and self.deployment is not None:
            name = self.deployment.name
        elif name is None and len(names) == 1:
            name = names[0]
        if name is None:
            raise InvalidInput(
                f"this server holds several models ({', '.join(names)}); name one with "
                "/invocations?model=NAME"
            )
        version = request.query_params.get("version")
        core = self.core
        router = core.router(name, version)
        if router is None:
            model, batcher = core.model(name, version)
        content_type = request.headers.get("content-type", _JSON).split(";")[0].strip().lower()
        if content_type == "text/csv":
            body = await self._raw(request)
        elif content_type == _JSON:
            body = await self._body(request)
        else:
            raise Problem(
                415,
                f"content type {content_type!r} is not supported; send application/json or "
                "text/csv",
                "BAD_REQUEST",
            )
        route = None
        if router is not None:  # chosen after the body is read, as in _infer
            route = router.choose(request.headers)
            model = route.slot.model
        meter = request.state.meter = core.meter(model, router, route)  # errors: see _failed
        if content_type == "text/csv":
            data = scoring.decode_csv(body)
        else:
            data = scoring.decode_json(body, model)
        item, logged = prepare(model, data)
        if route is None:
            result = await batcher.submit(item, ("predict",))
        else:
            result = await route.submit(item, ("predict",))
        selected = ("predict",)
        after = core.after(
            model, router, route, selected, request_id, arrived, start, logged, result
        )
        task = None if after is None else BackgroundTask(_run_after, core, after)
        variant = None if route is None else route.variant
        response = _json(scoring.encode_predictions(result), request_id, task, variant=variant)
        meter.observe(time.perf_counter() - start)
        return response

    # --- shared -----------------------------------------------------------------------------

    async def _oip(
        self, request: Request, handler: Callable[[Request, str], Awaitable[Response]]
    ) -> Response:
        request_id, start = _request_id(request), time.perf_counter()
        try:
            return await handler(request, request_id)
        except Exception as exc:
            request_id = getattr(request.state, "request_id", request_id)
            answer = problem(exc, request_id)
            self._failed(request, "oip", answer, start)
            return _json(
                {"error": answer.message}, request_id, status=answer.status, retry=answer.retry
            )

    async def _raw(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and is_number(declared) and int(declared) > self.max_body_bytes:
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

    def _failed(self, request: Request, protocol: str, problem: Problem, start: float) -> None:
        """Count an error answer, also in its model's series once the request reached one."""
        self.metrics.error(protocol, problem.status, problem.code)
        meter = getattr(request.state, "meter", None)
        if meter is not None:
            meter.failed(problem.status, time.perf_counter() - start)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body_bytes} bytes; send fewer rows"


async def _run_after(core: InferenceCore, after: After) -> None:
    """A coroutine, so Starlette runs it on the loop: a plain function would be handed to a
    thread per request, which cost more than building and queueing the record (~12 us)."""
    core.run_after(after)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 200:
        return given
    return new_request_id()


def _json(
    body: Any,
    request_id: str,
    background: BackgroundTask | None = None,
    *,
    status: int = 200,
    retry: bool = False,
    variant: str | None = None,
) -> Response:
    headers = {"X-Request-Id": request_id}
    if retry:
        headers["Retry-After"] = "1"
    if variant is not None:
        headers[VARIANT_HEADER] = variant
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status, headers=headers, media_type=_JSON, background=background)
