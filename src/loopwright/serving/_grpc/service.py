"""The RPCs of ``inference.GRPCInferenceService`` over a model repository.

Each RPC answers as the REST route of the same name does, through the same steps: the
repository finds the model, the message becomes the OIP request object (:mod:`.codec`), then
``oip.decode_request``, the model's signature check and its batcher. Errors become the status
codes REST's statuses correspond to (:func:`abort`); a model that raises is ``INTERNAL``
naming the request id, logged with the traceback. The request id is the ``x-request-id``
metadata, else the request's ``id``, else a new one (:func:`request_id_of`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from ..._logging import get_logger
from ...errors import (
    InvalidInput,
    LoopwrightError,
    ModelFailed,
    NotFound,
    Overloaded,
    PermissionDenied,
    RequestTooLarge,
)
from .. import oip
from .._records import PRIMARY, prediction_record
from ..routing import VARIANT_HEADER
from . import inference_pb2 as pb
from .codec import infer_response, metadata_response, request_body

if TYPE_CHECKING:
    from ..batching import Batcher
    from ..metrics import Meter, ServingMetrics
    from ..model import ServedModel
    from ..prediction_log import PredictionLog
    from ..repository import ModelRepository
    from ..routing import Route, Router
    from ..shadow import ShadowCopies
    from ..watcher import DeploymentWatcher

__all__ = ["InferenceService", "abort", "request_id_of"]

_logger = get_logger(__name__)
_VARIANT_KEY = VARIANT_HEADER.lower()  # gRPC metadata keys are lower case


class InferenceService:
    """The RPCs of ``inference.GRPCInferenceService`` (method names are the protocol's)."""

    def __init__(
        self,
        repository: ModelRepository,
        log: PredictionLog | None,
        version: str,
        metrics: ServingMetrics | None = None,
        deployment: DeploymentWatcher | None = None,
        shadows: ShadowCopies | None = None,
    ) -> None:
        self.repository = repository
        self.log = log
        self.version = version
        self.metrics = metrics
        self.deployment = deployment
        self.shadows = shadows

    def _router(self, name: str, version: str) -> Router | None:
        """The deployment's router when a call names the deployment (and no version)."""
        deployment = self.deployment
        if deployment is None or version or name != deployment.name:
            return None
        return deployment.router

    # --- server and model state ------------------------------------------------------------

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(
            name="loopwright", version=self.version, extensions=["model_repository"]
        )

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Any
    ) -> pb.ModelReadyResponse:
        try:
            if self._router(request.name, request.version) is None:
                self.repository.get(request.name, request.version or None)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        router = self._router(request.name, request.version)
        if router is not None:  # a deployment: described by its first live variant's model
            live = router.live
            versions = list(dict.fromkeys(r.model.version_name for r in live))
            metadata = oip.model_metadata(live[0].model, versions)
            return metadata_response({**metadata, "name": request.name})
        try:
            model, _ = self.repository.get(request.name, request.version or None)
        except Exception as exc:
            await abort(context, exc, request_id_of(context, ""))
        return metadata_response(oip.model_metadata(model, self.repository.versions(model.name)))

    # --- inference -------------------------------------------------------------------------

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Any
    ) -> pb.ModelInferResponse:
        arrived, start = datetime.now(UTC), time.perf_counter()
        request_id = request_id_of(context, request.id)
        context.set_trailing_metadata((("x-request-id", request_id),))
        meter: Meter | None = None
        router, route = self._router(request.model_name, request.model_version), None
        try:
            if router is not None:
                # The call's metadata are its headers (keys in lower case): a sticky a/b
                # policy reads its header there. Nothing awaits between this choice and the
                # submit, so the request never reaches a slot the watcher retired meanwhile.
                route = router.choose(dict(context.invocation_metadata() or ()))
                model, submit = route.model, route.submit
                context.set_trailing_metadata(
                    (("x-request-id", request_id), (_VARIANT_KEY, route.variant))
                )
            else:
                model, batcher = self._model(request)
                submit = batcher.submit
            if self.metrics is not None:
                meter = self._meter(model, router, route)
            data, outputs, _ = oip.decode_request(request_body(request), model)
            item = model.prepare(data)
            result = await submit(item, outputs)
            response = infer_response(
                model, request.id, result, raw=bool(request.raw_input_contents)
            )
        except Exception as exc:
            await abort(context, exc, request_id, self._measured(meter, start))
        if self.metrics is not None:
            self.metrics.rpc("ModelInfer", "OK", meter, time.perf_counter() - start)
        log = self.log
        if log is not None and not log.keeps(request_id):
            return response  # sampled out: no record, and a shadow's answer would not be kept
        latency_ms = (time.perf_counter() - start) * 1000
        # Built in a later step of the loop: the answer does not wait for the record.
        loop = asyncio.get_running_loop()
        if route is None or router is None:
            if log is not None:
                loop.call_soon(
                    _append, log, model, request_id, arrived, latency_ms, item.data, result
                )
        else:
            copies = router.shadow_copies() if router.shadows else []
            loop.call_soon(
                self._after_routed,
                (router.deployment, route, copies, outputs),
                request_id,
                arrived,
                latency_ms,
                item.data,
                result,
            )
        return response

    def _model(self, request: pb.ModelInferRequest) -> tuple[ServedModel, Batcher]:
        if not request.model_name:
            names = self.repository.names
            if self.deployment is not None:
                names = [self.deployment.name, *names]
            raise InvalidInput(
                "model_name is empty; name one of the models served here: "
                f"{', '.join(names) or 'none'}"
            )
        return self.repository.get(request.model_name, request.model_version or None)

    def _meter(self, model: ServedModel, router: Router | None, route: Route | None) -> Meter:
        assert self.metrics is not None
        if router is None or route is None:
            return self.metrics.meter(model)
        return self.metrics.meter(model, router.deployment, route.variant)

    def _after_routed(
        self,
        routed: tuple[str, Route, list[Route], tuple[str, ...]],
        request_id: str,
        arrived: datetime,
        latency_ms: float,
        inputs: Any,
        outputs: dict[str, Any],
    ) -> None:
        """A routed call's record (deployment, variant) and its shadow copies, after the
        answer; neither can fail the call (``routed``: deployment, route, copies, selected)."""
        deployment, route, copies, selected = routed
        if self.log is not None:
            _append(
                self.log,
                route.model,
                request_id,
                arrived,
                latency_ms,
                inputs,
                outputs,
                deployment=deployment,
                variant=route.variant,
            )
        if copies and self.shadows is not None:
            try:
                self.shadows.send(copies, inputs, selected, request_id, arrived)
            except Exception:
                _logger.exception("request %s: the shadow copies could not be sent", request_id)

    def _measured(self, meter: Meter | None, start: float) -> Callable[[str], None] | None:
        """What counts a failed inference call's status code in the metrics."""
        metrics = self.metrics
        if metrics is None:
            return None
        return lambda code: metrics.rpc("ModelInfer", code, meter, time.perf_counter() - start)

    # --- repository extension --------------------------------------------------------------

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: Any
    ) -> pb.RepositoryIndexResponse:
        entry = pb.RepositoryIndexResponse.ModelIndex
        rows = self.repository.index(ready_only=request.ready)
        return pb.RepositoryIndexResponse(models=[entry(**row) for row in rows])

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Any
    ) -> pb.RepositoryModelLoadResponse:
        try:
            _refuse_parameters("load", request.parameters, allowed=())
            await self.repository.load(request.model_name)
        except Exception as exc:
            await abort(context, exc, request_id_of(context, ""))
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Any
    ) -> pb.RepositoryModelUnloadResponse:
        try:
            # tritonclient always sends unload_dependents; a served model has no dependents.
            _refuse_parameters("unload", request.parameters, allowed=("unload_dependents",))
            await self.repository.unload(request.model_name)
        except Exception as exc:
            await abort(context, exc, request_id_of(context, ""))
        return pb.RepositoryModelUnloadResponse()


def _refuse_parameters(action: str, parameters: Any, *, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"{action} parameters {unknown} are not supported: this server loads models by "
            "name from where they were served or from the registry"
        )


def request_id_of(context: Any, given: str) -> str:
    """The ``x-request-id`` metadata, else ``given`` (the request's ``id``), else a new id."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str) and 0 < len(value) <= 200:
            return value
    return given if given and len(given) <= 200 else uuid.uuid4().hex


async def abort(
    context: Any,
    exc: Exception,
    request_id: str,
    on_code: Callable[[str], None] | None = None,
) -> NoReturn:
    """End the RPC with the status and message ``exc`` maps to (never returns); ``on_code``
    is told the status code's name first (the metrics)."""
    import grpc

    codes = grpc.StatusCode
    if isinstance(exc, NotFound):
        code, message = codes.NOT_FOUND, exc.message
    elif isinstance(exc, RequestTooLarge):
        code, message = codes.RESOURCE_EXHAUSTED, exc.message
    elif isinstance(exc, InvalidInput):
        code, message = codes.INVALID_ARGUMENT, exc.message
    elif isinstance(exc, PermissionDenied):
        code, message = codes.PERMISSION_DENIED, exc.message
    elif isinstance(exc, Overloaded):
        code, message = codes.UNAVAILABLE, exc.message
    elif isinstance(exc, ModelFailed):
        _logger.error("request %s: %s", request_id, exc.message, exc_info=exc.__cause__)
        code, message = codes.INTERNAL, f"{exc.message} (request id {request_id})"
    elif isinstance(exc, LoopwrightError):
        _logger.error("request %s: %s", request_id, exc.message)
        code, message = codes.INTERNAL, f"{exc.message} (request id {request_id})"
    else:
        _logger.exception("request %s failed", request_id, exc_info=exc)
        code = codes.INTERNAL
        message = (
            f"internal error {type(exc).__name__} (request id {request_id}); the server log "
            "has the traceback"
        )
    if on_code is not None:
        on_code(code.name)
    await context.abort(code, message, trailing_metadata=(("x-request-id", request_id),))
    raise AssertionError("grpc's context.abort returned")  # it raises to end the RPC


def _append(
    log: PredictionLog,
    model: ServedModel,
    request_id: str,
    arrived: datetime,
    latency_ms: float,
    inputs: Any,
    outputs: dict[str, Any],
    *,
    deployment: str | None = None,
    variant: str = PRIMARY,
) -> None:
    """Queue the request's record; a log that refuses it never fails the request."""
    try:
        record = prediction_record(
            model,
            request_id,
            arrived,
            latency_ms,
            200,
            inputs,
            outputs,
            deployment=deployment,
            variant=variant,
        )
        log.append(record)
    except Exception:
        _logger.exception("request %s: the prediction could not be logged", request_id)
