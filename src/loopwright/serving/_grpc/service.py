"""The RPCs of ``inference.GRPCInferenceService`` over a model repository.

Each RPC answers as the REST route of the same name does, through the same steps, those of
the inference core (:mod:`..core`): the deployment's router or the repository finds the model,
the message becomes the OIP request object (:mod:`.codec`), then ``oip.decode_request``, the
model's signature check and its batcher. Errors become the gRPC codes of the core's error
table (:func:`abort`); a model that raises is ``INTERNAL`` naming the request id, logged with
the traceback. The request id is the ``x-request-id``
metadata, else the request's ``id``, else a new one (:func:`request_id_of`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from ...errors import InvalidInput, NotFound
from .. import oip
from ..core import InferenceCore, new_request_id, prepare, problem
from ..routing import VARIANT_HEADER
from . import inference_pb2 as pb
from .codec import infer_response, metadata_response, request_body

if TYPE_CHECKING:
    from ..batching import Batcher
    from ..metrics import Meter, ServingMetrics
    from ..model import ServedModel
    from ..prediction_log import PredictionLog
    from ..repository import ModelRepository
    from ..shadow import ShadowCopies
    from ..watcher import DeploymentWatcher

__all__ = ["InferenceService", "abort", "request_id_of"]

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
        self.version = version
        self.metrics = metrics
        self.deployment = deployment
        self.core = InferenceCore(repository, log, metrics, deployment, shadows)

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
            self.core.ready(request.name, request.version or None)
        except NotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Any
    ) -> pb.ModelMetadataResponse:
        try:
            metadata = self.core.model_metadata(request.name, request.version or None)
        except Exception as exc:
            await abort(context, exc, request_id_of(context, ""))
        return metadata_response(metadata)

    # --- inference -------------------------------------------------------------------------

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Any
    ) -> pb.ModelInferResponse:
        arrived, start = datetime.now(UTC), time.perf_counter()
        request_id = request_id_of(context, request.id)
        context.set_trailing_metadata((("x-request-id", request_id),))
        meter: Meter | None = None
        core = self.core
        router, route = core.router(request.model_name, request.model_version or None), None
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
                meter = core.meter(model, router, route)
            data, outputs, _ = oip.decode_request(request_body(request), model)
            item, logged = prepare(model, data)
            result = await submit(item, outputs)
            response = infer_response(
                model, request.id, result, raw=bool(request.raw_input_contents)
            )
        except Exception as exc:
            await abort(context, exc, request_id, self._measured(meter, start))
        if self.metrics is not None:
            self.metrics.rpc("ModelInfer", "OK", meter, time.perf_counter() - start)
        after = core.after(
            model, router, route, outputs, request_id, arrived, start, logged, result
        )
        if after is not None:  # run in a later step of the loop: the answer does not wait
            asyncio.get_running_loop().call_soon(core.run_after, after)
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
        return self.core.model(request.model_name, request.model_version or None)

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
    return given if given and len(given) <= 200 else new_request_id()


async def abort(
    context: Any,
    exc: Exception,
    request_id: str,
    on_code: Callable[[str], None] | None = None,
) -> NoReturn:
    """End the RPC with the status and message ``exc`` maps to (never returns); ``on_code``
    is told the status code's name first (the metrics)."""
    import grpc

    answer = problem(exc, request_id)
    if on_code is not None:
        on_code(answer.grpc)
    code, message = getattr(grpc.StatusCode, answer.grpc), answer.message
    await context.abort(code, message, trailing_metadata=(("x-request-id", request_id),))
    raise AssertionError("grpc's context.abort returned")  # it raises to end the RPC
