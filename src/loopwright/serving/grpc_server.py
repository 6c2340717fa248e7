"""OIP v2 over gRPC (``inference.GRPCInferenceService``) beside the REST app, on its event loop.

:func:`attach_grpc` makes an app start a ``grpc.aio`` server when it starts and stop it before
the app's own shutdown closes the models and the prediction log, so both protocols share one
loop, one model repository (its batch queues included), one prediction log, the app's metrics
and, with ``serve --deployment``, its router and shadow copies (the deployment's name routes
``ModelInfer`` by its policy; the variant comes back as ``x-loopwright-variant`` trailing
metadata). The RPCs (:mod:`._grpc.service`) go through the REST route's core: the message
becomes the OIP request object (:mod:`._grpc.codec`), then ``oip.decode_request``, the
signature check, the batcher.

Errors map to gRPC status codes as REST maps them to HTTP statuses: a malformed request or one
the signature refuses is ``INVALID_ARGUMENT``, an unknown model or version ``NOT_FOUND``, a
full queue ``UNAVAILABLE`` (retry), a model that raises ``INTERNAL`` naming the request id
(logged with the traceback). The request id is the ``x-request-id`` metadata, else the
request's ``id``, else a new one; it comes back as ``x-request-id`` trailing metadata, and the
response's ``id`` echoes the request's. RPCs of Triton's superset that this server lacks
(streaming, model config, statistics, shared memory, ...) are ``UNIMPLEMENTED``, named.

With several worker processes each one serves gRPC on the same address with ``SO_REUSEPORT``
(``grpc.so_reuseport``): the kernel hands each new connection to one of them. A gRPC channel
is one long-lived connection, so a client's calls all reach the worker it connected to, and
repository load/unload act on that worker alone, as over REST. With one process the option is
off, so a port another server holds is an error rather than silently shared.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ._grpc.service import InferenceService
    from .prediction_log import PredictionLog
    from .repository import ModelRepository

__all__ = ["SERVICE", "attach_grpc", "check_address", "grpc_address", "start_grpc"]

SERVICE = "inference.GRPCInferenceService"
_GRACE_SECONDS = 10.0


def grpc_address(host: str, port: int) -> str:
    """``host:port`` as gRPC takes it (an IPv6 host in brackets).

    Example:
        >>> grpc_address("127.0.0.1", 8081), grpc_address("::1", 8081)
        ('127.0.0.1:8081', '[::1]:8081')
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_address(host: str, port: int) -> None:
    """Fail now, naming the option, if ``host:port`` cannot be listened on.

    ``loopwright serve`` calls this before starting workers: each worker binds with
    ``SO_REUSEPORT`` and would otherwise fail (and be restarted) one by one.

    Raises:
        ConfigError: the port is taken or the address is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for gRPC on {grpc_address(host, port)} ({exc.strerror}); "
                "choose another --grpc-port"
            ) from None


def attach_grpc(
    app: Starlette,
    repository: ModelRepository,
    log: PredictionLog | None,
    address: str,
    *,
    reuse_port: bool = False,
    max_message_bytes: int | None = None,
) -> None:
    """Serve gRPC on ``address`` for as long as ``app`` runs (wraps its lifespan)."""
    inner: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        from .. import __version__
        from ._grpc.service import InferenceService

        async with inner(app) as state:
            # The REST app's metrics (one /metrics), deployment router and shadow copies.
            service = InferenceService(
                repository,
                log,
                __version__,
                metrics=getattr(app.state, "metrics", None),
                deployment=getattr(app.state, "deployment", None),
                shadows=getattr(app.state, "shadows", None),
            )
            server = await start_grpc(
                service, address, reuse_port=reuse_port, max_message_bytes=max_message_bytes
            )
            try:
                yield state
            finally:
                # Before the inner lifespan closes the models and the log.
                await server.stop(_GRACE_SECONDS)

    app.router.lifespan_context = lifespan


async def start_grpc(
    service: InferenceService,
    address: str,
    *,
    reuse_port: bool = False,
    max_message_bytes: int | None = None,
) -> Any:
    """A started ``grpc.aio.Server`` answering with ``service`` on the running loop (stop it
    with ``await .stop(grace)``).

    Raises:
        ConfigError: ``address`` cannot be listened on.
    """
    import grpc

    from .app import MAX_BODY_BYTES

    limit = max_message_bytes or MAX_BODY_BYTES
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
        ]
    )
    handlers = _handlers(service)
    server.add_registered_method_handlers(SERVICE, handlers)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, handlers), _Unimplemented())
    )
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        port, reason = 0, str(exc)
    else:
        reason = "the port is in use or the address is not this machine's"
    if port == 0:
        raise ConfigError(f"cannot listen for gRPC on {address} ({reason}); choose another port")
    await server.start()
    return server


def _handlers(service: InferenceService) -> dict[str, Any]:
    """A handler per RPC of the proto's service, from its descriptor.

    Written out rather than the generated ``add_GRPCInferenceServiceServicer_to_server`` for
    one reason: a request that is not a valid message gets ``INVALID_ARGUMENT`` naming it (as
    REST answers 400 to a body that is not JSON), where grpc answers ``INTERNAL``.
    """
    import grpc

    from ._grpc import inference_pb2

    descriptor = _descriptor()
    return {
        method.name: grpc.unary_unary_rpc_method_handler(
            _checked(getattr(service, method.name)),
            request_deserializer=_parser(getattr(inference_pb2, method.input_type.name)),
            response_serializer=getattr(inference_pb2, method.output_type.name).SerializeToString,
        )
        for method in descriptor.methods
    }


class _Malformed:
    """What a request that is not a valid message is parsed into (grpc would abort on None)."""

    def __init__(self, message: str) -> None:
        self.message = message


def _parser(message_class: Any) -> Callable[[bytes], Any]:
    from google.protobuf.message import DecodeError

    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except DecodeError as exc:
            return _Malformed(
                f"the request is not a valid {message_class.DESCRIPTOR.full_name} message "
                f"({exc}); send the protocol's message, as generated from inference.proto"
            )

    return parse


def _checked(method: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Any]:
    from ._grpc.service import abort, request_id_of

    async def handle(request: Any, context: Any) -> Any:
        if isinstance(request, _Malformed):
            await abort(context, InvalidInput(request.message), request_id_of(context, ""))
        return await method(request, context)

    return handle


def _descriptor() -> Any:
    from ._grpc import inference_pb2

    return inference_pb2.DESCRIPTOR.services_by_name[SERVICE.rsplit(".", 1)[1]]


class _Unimplemented:
    """Answers the RPCs this server does not have with ``UNIMPLEMENTED``, naming those it has."""

    def service(self, details: Any) -> Any:
        import grpc

        method = details.method
        service = method.rsplit("/", 1)[0].lstrip("/")
        supported = ", ".join(m.name for m in _descriptor().methods)
        message = (
            f"{method} is not served here; {SERVICE} offers {supported}"
            if service == SERVICE
            else f"{method} is not served here; this server offers {SERVICE}"
        )

        async def refuse(requests: Any, context: Any) -> None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

        # A streaming handler answers any call shape (unary or streaming) without reading it.
        return grpc.stream_stream_rpc_method_handler(refuse)
