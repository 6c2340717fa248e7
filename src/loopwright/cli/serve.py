"""``loopwright serve``: models over the Open Inference Protocol v2 and MLflow's scoring API."""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import CliState, state
from ._output import console, handle_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.applications import Starlette

    from ..client import Client
    from ..config import Settings
    from ..features.protocol import Features
    from ..serving.server import ServeConfig
    from ..serving.sources import ModelSource

__all__ = ["app_from_environment", "register"]


# Help paragraphs are one line each: the CLI's rich help keeps a paragraph's line breaks.
_HELP = "\n\n".join(
    [
        "Serve models: OIP v2 under /v2 (KServe, Triton, MLServer clients) and /invocations.",
        "Aliases and stages are resolved once at start, so every worker serves the same version.",
        "Predictions are logged (see --log-sample-rate) to the prediction_log setting "
        "(LOOPWRIGHT_PREDICTION_LOG: a folder or a URL such as s3://bucket/predictions) if "
        "given, else to the blob store's predictions/ folder, where client.predictions and "
        "`loopwright predictions` read them. With a server configured and no prediction_log, "
        "the log stays on this machine (<home>/prediction-log), which the server does not "
        "read: give serve and the server the same prediction_log.",
    ]
)


def register(app: typer.Typer) -> None:
    @app.command("serve", help=_HELP)
    def serve(
        ctx: typer.Context,
        models: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="MODEL_URI",
                help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN/PATH or a package "
                "folder; NAME=URI serves it under another name.",
                show_default=False,
            ),
        ] = None,
        deployment: Annotated[
            str | None,
            typer.Option(
                "--deployment",
                help="Serve this deployment (instead of MODEL_URIs): /v2/models/NAME/infer and "
                "/invocations route by its traffic policy, followed while serving.",
            ),
        ] = None,
        refresh_seconds: Annotated[
            float,
            typer.Option(
                "--refresh-seconds",
                min=0.05,
                help="How often --deployment's policy and aliases are read (hot swap).",
            ),
        ] = 1.0,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
        grpc_port: Annotated[
            int | None,
            typer.Option(
                "--grpc-port",
                min=1,
                max=65535,
                help="Also serve OIP v2 over gRPC on this port (on --host; with --workers, "
                "every worker listens on it).",
            ),
        ] = None,
        workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
        max_batch_size: Annotated[
            int,
            typer.Option(
                "--max-batch-size",
                min=1,
                help="Rows merged into one predict call: what waits while the model is busy, "
                "and what keeps arriving (1: off).",
            ),
        ] = 32,
        max_batch_latency_ms: Annotated[
            float,
            typer.Option(
                "--max-batch-latency-ms",
                min=0.0,
                help="Longest a batch stays open while requests keep arriving (it closes once "
                "they stop; 0: never waits).",
            ),
        ] = 5.0,
        trusted: Annotated[
            bool,
            typer.Option("--trusted", help="Allow models that unpickle data or run packaged code."),
        ] = False,
        log_sample_rate: Annotated[
            float,
            typer.Option(
                "--log-sample-rate", min=0.0, max=1.0, help="Share of predictions logged."
            ),
        ] = 1.0,
        no_log: Annotated[
            bool, typer.Option("--no-log", help="Do not write the prediction log.")
        ] = False,
    ) -> None:
        import uvicorn

        from ..errors import UntrustedModel
        from ..serving.grpc_server import check_address, grpc_address
        from ..serving.prediction_log import log_location
        from ..serving.server import CONFIG_VARIABLE, ServeConfig, build_app, build_repository
        from ._serve_deployment import load_deployment, public_url

        cli = state(ctx)
        watcher = None
        with handle_errors():
            if grpc_port is not None:
                check_address(host, grpc_port)  # before loading models, and once for all workers
            _check_what(models, deployment)
            sources: list[ModelSource] = []
            if deployment is not None:
                settings = cli.settings()
            else:
                settings, sources = _resolve(cli, models or [], trusted=trusted)
            log_root = None if no_log else log_location(settings)
            config = ServeConfig(
                sources=tuple(sources),
                max_batch_size=max_batch_size,
                max_batch_latency_ms=max_batch_latency_ms,
                log_root=log_root,
                log_sample_rate=log_sample_rate,
                trusted=trusted,
                registry=any(s.uri.startswith(("models:", "runs:")) for s in sources),
                grpc_address=None if grpc_port is None else grpc_address(host, grpc_port),
                grpc_reuse_port=workers > 1,
                deployment=deployment,
                refresh_seconds=refresh_seconds,
                url=None if deployment is None else public_url(host, port),
            )
            # Loaded here even with several workers: a package that fails verification or
            # needs --trusted stops the command with its message, instead of every worker
            # failing in turn.
            try:
                if deployment is None:
                    repository = build_repository(
                        config, _resolver(config), _feature_store(settings)
                    )
                else:
                    repository, watcher = load_deployment(config, settings)
            except UntrustedModel as exc:
                raise UntrustedModel(
                    f"{exc.message}. For `loopwright serve` that is the --trusted flag"
                ) from None
        out = console(stderr=True)
        for line in _banner(host, port, workers, config, repository.index()):
            out.print(line, markup=False, soft_wrap=True)
        if watcher is not None:
            router = watcher.router
            out.print(
                f"  deployment {router.deployment} revision {router.revision}: "
                f"{router.describe()} (read every {refresh_seconds:g} s)",
                markup=False,
                soft_wrap=True,
            )
        if workers == 1:
            app = build_app(config, repository, watcher)
            _freeze_heap()
            uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
            return
        if watcher is not None:
            watcher.lookup.close()  # each worker follows the deployment on its own client
        del repository, watcher
        _export_settings(settings)
        os.environ[CONFIG_VARIABLE] = config.to_json()
        from ..serving.metrics import multiprocess_dir

        with multiprocess_dir():  # each worker's metrics in files there: /metrics sums them
            uvicorn.run(
                "loopwright.cli.serve:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="warning",
                access_log=False,
            )


def app_from_environment() -> Starlette:
    """The uvicorn factory each worker process calls (configuration from the environment)."""
    from ..errors import ConfigError
    from ..serving.server import CONFIG_VARIABLE, ServeConfig, build_app, build_repository

    text = os.environ.get(CONFIG_VARIABLE)
    if not text:
        raise ConfigError(
            f"{CONFIG_VARIABLE} is not set; start serving processes with `loopwright serve`"
        )
    config = ServeConfig.from_json(text)
    if config.deployment is not None:
        from ..config import resolve_settings
        from ._serve_deployment import load_deployment

        repository, watcher = load_deployment(config, resolve_settings())
        app = build_app(config, repository, watcher)
    else:
        from ..config import resolve_settings

        repository = build_repository(config, _resolver(config), _feature_store(resolve_settings()))
        app = build_app(config, repository)
    _freeze_heap()
    return app


def _freeze_heap() -> None:
    """Keep what is loaded by now (modules, models) out of the garbage collector's full
    collections, which then walk only what serving creates: with the prediction log's writer
    their pauses on the event loop fell from ~35 ms to ~2.5 ms (measured). Not in build_app,
    which tests call many times in one process."""
    import gc

    gc.collect()  # garbage frozen now would never be freed
    gc.freeze()


def _check_what(models: list[str] | None, deployment: str | None) -> None:
    from ..errors import InvalidInput

    if models and deployment is not None:
        raise InvalidInput(
            "give MODEL_URIs or --deployment NAME, not both: a deployment names its models "
            "in its traffic policy (loopwright deployments set-traffic)"
        )
    if not models and deployment is None:
        raise InvalidInput(
            "nothing to serve: give MODEL_URIs (models:/NAME@ALIAS, a package folder ...) or "
            "--deployment NAME"
        )


def _resolve(
    cli: CliState, models: list[str], *, trusted: bool
) -> tuple[Settings, list[ModelSource]]:
    from ..client import Client
    from ..errors import InvalidInput
    from ..serving.sources import resolve_source

    registry = [m for m in models if m.split("=", 1)[-1].startswith(("models:", "runs:"))]
    if registry:
        settings = cli.settings()  # a missing store is an error naming it, and stays missing
        with Client(settings) as client:
            sources = [resolve_source(m, client, trusted=trusted) for m in models]
    else:
        # Only package folders: no store is needed, so a missing one is no error.
        settings = dataclasses.replace(cli, command="").settings()
        sources = [resolve_source(m, None, trusted=trusted) for m in models]
    seen: set[tuple[str, int | None]] = set()
    for source in sources:
        key = (source.name, source.version)
        if key in seen:
            raise InvalidInput(
                f"model {source.name!r} is given twice ({source.uri}); serve it once, or "
                "under another name with NAME=URI"
            )
        seen.add(key)
    return settings, sources


def _resolver(config: ServeConfig) -> Callable[[str], ModelSource] | None:
    """``name -> ModelSource`` through the registry the environment's settings name."""
    if not config.registry:
        return None

    def resolve(name: str) -> ModelSource:
        from ..client import Client
        from ..config import resolve_settings
        from ..serving.sources import resolve_source

        with Client(resolve_settings()) as client:
            return resolve_source(f"models:/{name}/latest", client, trusted=config.trusted)

    return resolve


def _feature_store(settings: Settings) -> Callable[[], Features]:
    """The feature store that models trained on a feature service read their features from,
    through a client opened when the first such model loads and kept while the process serves."""
    opened: list[Client] = []
    opening = threading.Lock()

    def features() -> Features:
        with opening:
            if not opened:
                from ..client import Client

                opened.append(Client(settings))
            return opened[0].features

    return features


def _export_settings(settings: Settings) -> None:
    """Worker processes rebuild their settings from the environment: pass these on."""
    os.environ.update(LOOPWRIGHT_HOME=str(settings.home), LOOPWRIGHT_BLOB_URI=settings.blob_uri)
    if settings.is_embedded:
        os.environ["LOOPWRIGHT_DB_URI"] = settings.db_uri
    elif settings.server_uri:
        os.environ["LOOPWRIGHT_SERVER_URI"] = settings.server_uri
        if settings.token:
            os.environ["LOOPWRIGHT_TOKEN"] = settings.token


def _banner(
    host: str, port: int, workers: int, config: ServeConfig, index: list[dict[str, str]]
) -> list[str]:
    batching = (
        f"batching up to {config.max_batch_size} rows, {config.max_batch_latency_ms:g} ms"
        if config.max_batch_size > 1
        else "batching off"
    )
    log = (
        f"prediction log: {config.log_root} (sample rate {config.log_sample_rate:g})"
        if config.log_root
        else "prediction log: off"
    )
    lines = [
        f"loopwright serve on http://{host}:{port} ({workers} worker{'s' * (workers > 1)}; "
        f"{batching})",
        f"  {log}",
    ]
    if config.grpc_address is not None:
        every = " in every worker (SO_REUSEPORT)" if workers > 1 else ""
        lines.append(f"  OIP v2 over gRPC on {config.grpc_address}{every}")
    for source, row in zip(config.sources, index, strict=False):
        lines.append(f"  {row['name']} version {row['version']}  <- {source.uri}")
    from .server import _is_loopback  # the server command's test: any loopback address

    if not _is_loopback(host):
        lines.append(f"  listening on {host}: anyone who can connect may call the models")
    return lines
