"""A real ``loopwright server`` (uvicorn on 127.0.0.1, a free port, a background thread) over a
fresh home, once on SQLite and once on PostgreSQL; and the MLflow client pointed at it."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopwright.config import Settings, resolve_settings


@dataclass(frozen=True)
class LiveServer:
    url: str
    home: Path
    db_uri: str
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)  # user -> API token (auth on)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(settings: Settings, *, auth: bool) -> Iterator[str]:
    """Run the app for ``settings`` under uvicorn until the block ends; yields its URL."""
    import uvicorn

    from loopwright.server.app import create_app

    app = create_app(settings, auth=auth)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="loopwright-test-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the server thread stopped while starting"
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.02)
    # The first request builds the route index: seconds on a loaded machine (CI's).
    assert httpx.get(f"{url}/health", timeout=30).text == "OK"
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def serve_app() -> Callable[..., AbstractContextManager[str]]:
    """:func:`serve` for fixtures in folders below (``with serve_app(settings, auth=True)``)."""
    return serve


@pytest.fixture(scope="session")
def module_server(
    serve_app: Callable[..., AbstractContextManager[str]],
    pg_database: Callable[[], AbstractContextManager[str]],
) -> Callable[..., AbstractContextManager[LiveServer]]:
    """For a module-scoped server fixture parametrized ``sqlite``/``postgres``:
    ``with module_server(request, tmp_path_factory, users=(("ada", "editor"),)) as server``
    serves a fresh home (auth on when ``users`` get tokens), ``LOOPWRIGHT_*`` cleared first:
    module fixtures run before the per-test isolation does."""

    @contextmanager
    def start(
        request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory,
        *,
        users: tuple[tuple[str, str], ...] = (),
        user: str = "server-admin",
        **settings: Any,  # resolve_settings' keywords, passed on as they are
    ) -> Iterator[LiveServer]:
        from loopwright.governance.tokens import TokenService
        from loopwright.governance.users import UserService
        from loopwright.store.home import open_store

        isolated = pytest.MonkeyPatch()
        for name in list(os.environ):
            if name.startswith("LOOPWRIGHT_") and not name.startswith("LOOPWRIGHT_TEST_"):
                isolated.delenv(name)
        request.addfinalizer(isolated.undo)
        home = tmp_path_factory.mktemp("server-home")
        sqlite = nullcontext(f"sqlite:///{home / 'loopwright.db'}")
        with pg_database() if request.param == "postgres" else sqlite as db_uri:
            found = resolve_settings(home=home, db_uri=db_uri, user=user, **settings)
            tokens = {}
            with open_store(found) as store:
                for name, role in users:
                    UserService(store, actor=user).add(name, role)
                    tokens[name] = TokenService(store, actor=user).create(name).secret
            with serve_app(found, auth=bool(users)) as url:
                yield LiveServer(url, home, db_uri, found, tokens)

    return start


@pytest.fixture
def live_server(db_uri: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server without auth (every caller acts as the server's user, ``server-admin``)."""
    home = tmp_path / "server-home"
    settings = resolve_settings(home=home, db_uri=db_uri, user="server-admin")
    with serve(settings, auth=False) as url:
        yield LiveServer(url, home, db_uri, settings)


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client on ``live_server`` (a test module may override it for its own server)."""
    with httpx.Client(base_url=live_server.url, timeout=60) as client:
        yield client


def add_team(settings: Settings) -> dict[str, str]:
    """Users ``boss`` (admin), ``ada`` (editor) and ``vic`` (viewer) on the store of
    ``settings``; their API tokens by name."""
    from loopwright.governance.tokens import TokenService
    from loopwright.governance.users import UserService
    from loopwright.store.home import open_store

    tokens = {}
    with open_store(settings) as store:
        users = UserService(store, actor="boss")
        for name, role in (("boss", "admin"), ("ada", "editor"), ("vic", "viewer")):
            users.add(name, role)
            tokens[name] = TokenService(store, actor="boss").create(name).secret
    return tokens


@pytest.fixture(scope="session")
def team_of() -> Callable[[Settings], dict[str, str]]:
    """:func:`add_team` for fixtures of a wider scope (a module's own server with auth on)."""
    return add_team


@pytest.fixture
def auth_server(db_uri: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server with auth on and three users holding tokens: ``boss`` (admin), ``ada``
    (editor) and ``vic`` (viewer)."""
    home = tmp_path / "server-home"
    settings = resolve_settings(home=home, db_uri=db_uri, user="boss")
    tokens = add_team(settings)
    with serve(settings, auth=True) as url:
        yield LiveServer(url, home, db_uri, settings, tokens)


@pytest.fixture
def mlflow_client(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """The real ``mlflow`` module, tracking to ``live_server``; fails fast, sends no telemetry."""
    import mlflow
    import mlflow.tracking.fluent as fluent

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "true")
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", live_server.url)  # restored at teardown
    mlflow.set_tracking_uri(live_server.url)
    mlflow.set_registry_uri(live_server.url)
    try:
        yield mlflow
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        fluent._active_experiment_id = None
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
