"""``loopwright server``: serve the native REST API and MLflow's REST API with uvicorn."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Annotated

import typer

from ._context import state
from ._output import console, fail, handle_errors

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["export_settings", "register"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _banner(host: str, port: int, workers: int, settings: Settings, *, auth: bool) -> list[str]:
    """What the server prints on start: where it listens, its stores, and who may call it."""
    lines = [
        f"loopwright server on http://{host}:{port} ({workers} worker{'s' * (workers > 1)})",
        f"  db: {settings.db_uri}",
        f"  blobs: {settings.blob_uri}",
    ]
    if auth:
        lines.append("  auth: on; requests need 'Authorization: Bearer <token>'")
    else:
        lines.append("  auth: off, as no API tokens exist; listening on loopback only")
        lines.append(f"  every caller acts as admin {settings.user or 'the server user'}")
    served = "mlflow-artifacts:/ (kept in the blob store)"
    lines.append(f"  artifacts: {settings.default_artifact_root or served}")
    if settings.artifact_roots:
        lines.append(f"  artifact roots allowed: {', '.join(settings.artifact_roots)}")
    return lines


def _with_artifact_roots(
    settings: Settings, default_root: str | None, roots: list[str] | None
) -> Settings:
    """``settings`` with the command line's artifact roots in place of the resolved ones."""
    import dataclasses

    from ..config import resolve_settings

    given = resolve_settings(
        home=settings.home,
        default_artifact_root=default_root,
        artifact_roots=",".join(roots) if roots else None,
    )
    changes: dict[str, object] = {}
    sources = dict(settings.sources)
    if default_root is not None:
        changes["default_artifact_root"] = given.default_artifact_root
        sources["default_artifact_root"] = "argument"
    if roots:
        changes["artifact_roots"] = given.artifact_roots
        sources["artifact_roots"] = "argument"
    return dataclasses.replace(settings, **changes, sources=sources)  # type: ignore[arg-type]


def export_settings(settings: Settings) -> None:
    """Put ``settings`` in the environment: the app (each worker process) is built from it by
    uvicorn's factory ``loopwright.server.app:create_app``."""
    os.environ.update(
        LOOPWRIGHT_HOME=str(settings.home),
        LOOPWRIGHT_DB_URI=settings.db_uri,
        LOOPWRIGHT_BLOB_URI=settings.blob_uri,
    )
    if settings.user:
        os.environ["LOOPWRIGHT_USER"] = settings.user
    os.environ["LOOPWRIGHT_DEFAULT_ARTIFACT_ROOT"] = (
        settings.default_artifact_root or "mlflow-artifacts:/"
    )
    os.environ["LOOPWRIGHT_ARTIFACT_ROOTS"] = ",".join(settings.artifact_roots)
    os.environ.pop("LOOPWRIGHT_SERVER_URI", None)


def register(app: typer.Typer) -> None:
    @app.command("server")
    def server(
        ctx: typer.Context,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5000,
        db_uri: Annotated[
            str | None, typer.Option("--db-uri", help="Metadata database URL.")
        ] = None,
        blob_uri: Annotated[
            str | None, typer.Option("--blob-uri", help="Blob store folder or URL.")
        ] = None,
        workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
        default_artifact_root: Annotated[
            str | None,
            typer.Option(
                "--default-artifact-root",
                help="Where new experiments keep artifacts: mlflow-artifacts:/ (this server's "
                "blob store, the default) or a local folder (MLflow clients then write there).",
            ),
        ] = None,
        artifact_roots: Annotated[
            list[str] | None,
            typer.Option(
                "--artifact-root",
                help="A local folder experiments may name as artifact_location (repeatable).",
            ),
        ] = None,
        scheduler: Annotated[
            bool,
            typer.Option(
                "--scheduler",
                help="Also fire schedules and move loop iterations on, in a background thread "
                "of each worker (as `loopwright scheduler` does).",
            ),
        ] = False,
        scheduler_interval: Annotated[
            float,
            typer.Option("--scheduler-interval", min=0.1, max=86_400, help="Seconds per tick."),
        ] = 10.0,
    ) -> None:
        """Run the server (MLflow clients: MLFLOW_TRACKING_URI=http://HOST:PORT).

        Authentication is on as soon as some user holds an API token (`loopwright tokens
        create`). Without tokens anyone who can connect acts as admin, so the server then
        refuses to listen anywhere but on loopback.
        """
        import uvicorn

        from ..governance.tokens import TokenService
        from ..store.home import open_store

        cli = state(ctx)
        if db_uri is not None:
            cli.db_uri = db_uri
        if blob_uri is not None:
            cli.blob_uri = blob_uri
        with handle_errors():
            settings = cli.local_settings("server")
            if default_artifact_root is not None or artifact_roots:
                settings = _with_artifact_roots(settings, default_artifact_root, artifact_roots)
            with open_store(settings) as store:
                auth = TokenService(store).any_active()
        out = console(stderr=True)
        if not auth and not _is_loopback(host):
            fail(
                f"no API tokens exist, so the server would let anyone on the network act as "
                f"admin; refusing to listen on {host}. Create a token (`loopwright tokens "
                "create USER`) or listen on 127.0.0.1"
            )
        export_settings(settings)
        if scheduler:
            os.environ["LOOPWRIGHT_SERVER_SCHEDULER"] = f"{scheduler_interval:g}"
        else:
            os.environ.pop("LOOPWRIGHT_SERVER_SCHEDULER", None)
        for line in _banner(host, port, workers, settings, auth=auth):
            # One fact per line, never folded by Rich: a narrow terminal wraps, but copying a
            # line still gives the whole URL or path.
            out.print(line, markup=False, soft_wrap=True)
        if scheduler:
            out.print(f"  scheduler: on, every {scheduler_interval:g} s", markup=False)
        uvicorn.run(
            "loopwright.server.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
