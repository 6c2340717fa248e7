"""``loopwright ui``: the dashboard over the local store, in a browser.

The same app as ``loopwright server`` (its API included, so ``lw.connect(url)`` works too), in
one process on 127.0.0.1 only; once it answers, the default browser opens on its ``/ui/``. With
API tokens in the store the dashboard asks for one (its login page); without, as on a server
without tokens, every visitor acts as the store's user.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Annotated

import typer

from ._context import state
from ._output import console, fail, handle_errors
from .server import export_settings

__all__ = ["register"]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _open_when_up(server: object, url: str) -> None:
    """Open ``url`` in the default browser once uvicorn says it has started (at most 30 s)."""
    import webbrowser

    deadline = time.monotonic() + 30
    while not getattr(server, "started", False):
        if time.monotonic() > deadline or getattr(server, "should_exit", False):
            return
        time.sleep(0.05)
    webbrowser.open(url)


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        ctx: typer.Context,
        port: Annotated[
            int,
            typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one)."),
        ] = 5005,
        browser: Annotated[
            bool, typer.Option("--browser/--no-browser", help="Open the default browser.")
        ] = True,
    ) -> None:
        """Open the dashboard on the local store (runs, data, models, approvals, deployments,
        monitoring, lineage, audit); stop with Ctrl+C."""
        import uvicorn

        from ..store.home import open_store

        cli = state(ctx)
        with handle_errors():
            settings = cli.local_settings("ui")
            with open_store(settings):
                pass  # a store that cannot open fails here, with its message, not in uvicorn
        if port == 0:
            port = _free_port()
        elif not _port_free(port):
            fail(f"port {port} on 127.0.0.1 is in use; pick another with --port (0: any free one)")
        url = f"http://127.0.0.1:{port}/ui/"
        out = console(stderr=True)
        out.print(f"Loopwright dashboard on {url}", markup=False, soft_wrap=True)
        out.print(f"  db: {settings.db_uri}", markup=False, soft_wrap=True)
        out.print("  stop with Ctrl+C", markup=False)
        export_settings(settings)
        os.environ.pop("LOOPWRIGHT_SERVER_SCHEDULER", None)
        config = uvicorn.Config(
            "loopwright.server.app:create_app",
            factory=True,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        if browser:
            threading.Thread(target=_open_when_up, args=(server, url), daemon=True).start()
        server.run()
