"""Where a server request's time goes: the hot requests against a bare ASGI app, and a breakdown.

    .venv/bin/python benchmarks/server_profile.py [--requests 300] [--db sqlite,postgresql]
                                                  [--auth off,on] [--skip-http] [--skip-profile]
                                                  [--pin CPU] [--detail N] [--hop]

The requests: MLflow's ``runs/log-metric``, ``runs/create`` and ``runs/get`` and their native
``/api/v1`` equivalents (``POST runs/{id}/metrics``, ``POST runs``, ``GET runs/{id}``), on SQLite
and on PostgreSQL (a scratch database made on ``--pg-uri``, default ``$LOOPWRIGHT_TEST_PG_URI``;
``eval "$(scripts/services.sh env)"`` sets it), with auth off and on (a bearer token).

1. **Over HTTP**: ``loopwright server`` (uvicorn, as the CLI starts it) and a bare Starlette app
   answering a constant JSON body, served by ``uvicorn.run`` with the same settings, are called by
   one ``httpx.Client`` on loopback, one request at a time. "own" is the median minus the bare
   app's median for the same method: the time the server adds over answering at all. On
   PostgreSQL, ">trip" is the median minus a bare app's that makes one round trip to the same
   PostgreSQL per request (a read for a GET, an insert committed for a POST; ``bare_db_app``):
   the time the server adds over reaching the database once, which every request must.
2. **In process**: the same requests driven straight through the ASGI app (no sockets), timed
   (median, and the bare app the same way), then profiled with cProfile (the event loop thread
   and, through a wrapper around ``anyio.to_thread.run_sync``, the worker threads). Each
   function's own time is put in one group by its module (routing, middleware, body parsing and
   validation, auth, thread-pool hop, session/connection, SQL, response building, logging, the
   handler's own code); builtins and generic helpers (``contextlib``, ``functools`` ...) count
   for their callers. cProfile slows call-heavy code more than the rest, so the groups are
   shares of a profiled request, scaled to its unprofiled in-process median.

3. **Round trips**: "trips" counts the database's round trips per request (each statement and
   ``COMMIT``, psycopg's implicit ``BEGIN``, a pipeline of statements sent together as one; on
   SQLite, the statements Loopwright runs by raw SQL). It does not move with the machine's load.

4. **The thread hop** (``--hop``, alone): the MLflow handlers of log-metric, runs/create,
   runs/get and runs/update served twice by one server (SQLite, auth off), as ``def`` routes
   (FastAPI's thread pool, as they were served before) and as they are served now (on the event
   loop through ``server/_hot.run_hot``), requested alternately; the difference of the medians
   is the hop's cost end to end, wake-ups of the worker thread included.

The load average is printed at start and end: on a loaded machine the figures are only
comparable within one run. ``--pin CPU`` runs both servers on one CPU (``taskset``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOOPWRIGHT_CLI = Path(sys.executable).parent / "loopwright"
BARE_BODY = b'{"ok":true}'

# --- the bare app (the floor) ------------------------------------------------------------------


def bare_app() -> Any:
    """A Starlette app answering every GET and POST with a constant JSON body."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def answer(request: Request) -> Response:
        await request.body()
        return Response(BARE_BODY, media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", answer, methods=["GET", "POST"])])


def bare_db_app() -> Any:
    """The bare app making one PostgreSQL round trip per request, as plainly as it can be made:
    one async psycopg connection in autocommit (``$BARE_DB_URI``), a GET reading one value, a
    POST inserting one row (a commit: durable when answered). The floor of a request that must
    reach the database once."""
    import psycopg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    held: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        uri = os.environ["BARE_DB_URI"].replace("postgresql+psycopg://", "postgresql://")
        conn = held["conn"] = await psycopg.AsyncConnection.connect(uri, autocommit=True)
        await conn.execute("CREATE TABLE IF NOT EXISTS bare_floor (x BIGINT)")
        yield
        await conn.close()

    async def answer(request: Request) -> Response:
        await request.body()
        async with held["conn"].cursor() as cursor:
            if request.method == "GET":
                await cursor.execute("SELECT %s::bigint", (1,))
                await cursor.fetchall()
            else:
                await cursor.execute("INSERT INTO bare_floor VALUES (%s)", (1,))
        return Response(BARE_BODY, media_type="application/json")

    routes = [Route("/{path:path}", answer, methods=["GET", "POST"])]
    return Starlette(routes=routes, lifespan=lifespan)


def _serve_bare(port: int, app: str = "bare_app") -> None:
    import uvicorn

    # The settings `loopwright server` passes (cli/server.py), so only the app differs.
    uvicorn.run(
        f"benchmarks.server_profile:{app}",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
    )


# --- the requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request: method, path and JSON body, made afresh for each repetition."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    query: str = ""


class Workload:
    """The hot requests over one experiment and run, with a counter for fresh steps; runs/update
    ends a run of its own (``ended``), as ``mlflow.end_run()`` does."""

    def __init__(self, experiment_id: str, experiment_name: str, run_id: str, ended: str) -> None:
        self.experiment_id, self.experiment_name, self.run_id = (
            experiment_id,
            experiment_name,
            run_id,
        )
        self.ended = ended
        self.step = 0

    def names(self) -> list[str]:
        return list(self.makers())

    def makers(self) -> dict[str, Callable[[], Call]]:
        mlflow = "/api/2.0/mlflow"

        def log_metric() -> Call:
            self.step += 1
            return Call(
                "POST",
                f"{mlflow}/runs/log-metric",
                {
                    "run_id": self.run_id,
                    "key": "m",
                    "value": 0.5,
                    "timestamp": 1,
                    "step": self.step,
                },
            )

        def log_batch() -> Call:
            # MlflowClient().log_batch's most: 1,000 points of 10 keys (benchmarks/server.py (b)).
            self.step += 1
            first = self.step * 100
            metrics = [
                {"key": f"m{i % 10}", "value": i * 0.001, "timestamp": 1, "step": first + i // 10}
                for i in range(BATCH)
            ]
            return Call(
                "POST", f"{mlflow}/runs/log-batch", {"run_id": self.run_id, "metrics": metrics}
            )

        def native_metric() -> Call:
            self.step += 1
            point = {"key": "n", "value": 0.5, "step": self.step, "timestamp": 1}
            return Call("POST", f"/api/v1/runs/{self.run_id}/metrics", {"metrics": [point]})

        return {
            "mlflow log-metric": log_metric,
            "mlflow runs/create": lambda: Call(
                "POST", f"{mlflow}/runs/create", {**CLIENT_RUN, "experiment_id": self.experiment_id}
            ),
            "mlflow runs/get": lambda: Call(
                "GET", f"{mlflow}/runs/get", query=f"run_uuid={self.run_id}&run_id={self.run_id}"
            ),
            "mlflow runs/update": lambda: Call(
                "POST",
                f"{mlflow}/runs/update",
                {"run_id": self.ended, "status": "FINISHED", "end_time": 2},
            ),
            f"mlflow log-batch ({BATCH})": log_batch,
            "native runs/{id}/metrics": native_metric,
            "native POST runs": lambda: Call(
                "POST", "/api/v1/runs", {"experiment": self.experiment_name}
            ),
            "native GET runs/{id}": lambda: Call("GET", f"/api/v1/runs/{self.run_id}"),
        }


BATCH = 1000  # points per log-batch request
# What ``mlflow.start_run()`` sends to runs/create (MLflow 3.17), beside the experiment's id.
CLIENT_RUN = {
    "user_id": "bench",
    "start_time": 1,
    "tags": [
        {"key": "mlflow.user", "value": "bench"},
        {"key": "mlflow.source.name", "value": "bench.py"},
        {"key": "mlflow.source.type", "value": "LOCAL"},
    ],
}


# --- stores and servers ------------------------------------------------------------------------


@dataclass
class Config:
    db: str  # "sqlite" or "postgresql"
    auth: bool

    @property
    def label(self) -> str:
        return f"{self.db}, auth {'on' if self.auth else 'off'}"


@contextmanager
def store_env(config: Config, pg_uri: str) -> Iterator[tuple[dict[str, str], str | None]]:
    """Environment naming a fresh store (and its token when auth is on); dropped afterwards."""
    import sqlalchemy as sa

    with tempfile.TemporaryDirectory(prefix="lw-profile-") as tmp:
        env = {**os.environ, "LOOPWRIGHT_HOME": str(Path(tmp) / ".lw"), "LOOPWRIGHT_USER": "bench"}
        env.pop("LOOPWRIGHT_SERVER_URI", None)
        env.pop("LOOPWRIGHT_DB_URI", None)
        database = None
        if config.db == "postgresql":
            if not pg_uri:
                raise SystemExit("--pg-uri (or LOOPWRIGHT_TEST_PG_URI) is needed for PostgreSQL")
            database = f"lw_profile_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(pg_uri, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
            env["LOOPWRIGHT_DB_URI"] = (
                sa.make_url(pg_uri).set(database=database).render_as_string(hide_password=False)
            )
        try:
            token = _prepare_store(env, config.auth)
            yield env, token
        finally:
            if database is not None:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                admin.dispose()


def _prepare_store(env: dict[str, str], auth: bool) -> str | None:
    """Create the schema (and the user and token when auth is on); the token's secret."""
    code = (
        "from loopwright.config import resolve_settings\n"
        "from loopwright.store.home import open_store\n"
        "from loopwright.governance.users import UserService\n"
        "from loopwright.governance.tokens import TokenService\n"
        "store = open_store(resolve_settings())\n"
        f"if {auth!r}:\n"
        "    UserService(store, actor='bench').add('bench', 'admin')\n"
        "    print(TokenService(store, actor='bench').create('bench').secret)\n"
        "store.close()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip() or None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int) -> Iterator[str]:
    import httpx

    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not answer within 60 s")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _setup(client: Any) -> Workload:
    name = f"profile-{uuid.uuid4().hex[:8]}"
    created = client.post("/api/2.0/mlflow/experiments/create", json={"name": name})
    created.raise_for_status()
    experiment_id = created.json()["experiment_id"]
    runs = []
    for _ in range(2):
        run = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment_id})
        run.raise_for_status()
        runs.append(run.json()["run"]["info"]["run_id"])
    return Workload(experiment_id, name, *runs)


def _interleaved_ms(
    senders: dict[str, Callable[[], Any]], n: int, block: int = 25
) -> dict[str, float]:
    """Median milliseconds of each sender, sent in turn ``block`` at a time until each was sent
    ``n`` times: a machine slowing down or speeding up meanwhile moves every figure alike, not
    the ones measured then. (Blocks, not one at a time: a server answering its first request
    after another's turn starts cold — caches, a CPU waking — and the bare apps, doing less,
    suffer that less, which would inflate the difference.)"""
    for send in senders.values():  # warm up
        for _ in range(min(20, n)):
            send()
    times: dict[str, list[float]] = {name: [] for name in senders}
    for start in range(0, n, block):
        for name, send in senders.items():
            for _ in range(min(block, n - start)):
                began = time.perf_counter()
                send()
                times[name].append(time.perf_counter() - began)
    return {name: statistics.median(found) * 1000 for name, found in times.items()}


FLOOR_GET, FLOOR_POST = "floor GET", "floor POST"  # the bare app's, over HTTP
TRIP_GET, TRIP_POST = "trip GET", "trip POST"  # the bare app's with one PostgreSQL round trip


def _floor_senders(client: Any, prefix: str) -> dict[str, Callable[[], Any]]:
    """A GET and a POST (a small JSON body) to a bare app; named ``prefix`` GET and POST."""
    body = {"run_id": "0" * 32, "key": "m", "value": 0.5, "timestamp": 1, "step": 1}

    def get() -> None:
        client.get("/api/2.0/mlflow/runs/get?run_id=x").raise_for_status()

    def post() -> None:
        client.post("/api/2.0/mlflow/runs/log-metric", json=body).raise_for_status()

    return {f"{prefix} GET": get, f"{prefix} POST": post}


@contextmanager
def bare_servers(pg_uri: str | None) -> Iterator[dict[str, Callable[[], Any]]]:
    """The bare app served (and, with ``pg_uri``, :func:`bare_db_app` on a scratch database of
    it): their GET and POST senders, for :func:`http_medians` to interleave with its requests."""
    import httpx

    with contextlib.ExitStack() as stack:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        senders: dict[str, Callable[[], Any]] = {}
        servers = [("--serve-bare", "floor", env)]
        if pg_uri:
            store, _ = stack.enter_context(store_env(Config("postgresql", False), pg_uri))
            servers.append(
                ("--serve-bare-db", "trip", {**env, "BARE_DB_URI": store["LOOPWRIGHT_DB_URI"]})
            )
        for flag, prefix, server_env in servers:
            port = _free_port()
            command = [*PIN, sys.executable, str(Path(__file__).resolve()), flag, str(port)]
            url = stack.enter_context(serving(command, server_env, port))
            client = stack.enter_context(httpx.Client(base_url=url))
            senders.update(_floor_senders(client, prefix))
        yield senders


def http_medians(
    config: Config, pg_uri: str, n: int, floors: dict[str, Callable[[], Any]]
) -> dict[str, float]:
    """Median milliseconds per request over HTTP, by request name, and of each of ``floors``
    (the bare apps' requests), all sent in turn."""
    import httpx

    with store_env(config, pg_uri) as (env, token):
        port = _free_port()
        command = [*PIN, str(LOOPWRIGHT_CLI), "server", "--port", str(port)]
        with (
            serving(command, env, port) as url,
            httpx.Client(base_url=url, headers=_headers(token)) as client,
        ):
            return _interleaved_ms({**floors, **http_senders(client)}, n)


def http_senders(client: Any, prefix: str = "") -> dict[str, Callable[[], None]]:
    """One sender per hot request (named ``prefix`` + its name) on ``client``'s server, whose
    experiment and runs :func:`_setup` makes; a reply of 300 or more raises."""
    work = _setup(client)
    senders: dict[str, Callable[[], None]] = {}
    for name, make in work.makers().items():

        def send(make: Callable[[], Call] = make) -> None:
            call = make()
            path = call.path + (f"?{call.query}" if call.query else "")
            reply = client.request(call.method, path, json=call.body)
            if reply.status_code >= 300:
                raise RuntimeError(f"{call.path}: {reply.status_code} {reply.text[:300]}")

        senders[prefix + name] = send
    return senders


# --- the thread hop: the same handlers run in the thread pool and inline ---------------------

HOP_ROUTES = ("log-metric", "runs/create", "runs/get", "runs/update")


def hop_app() -> Any:
    """``create_app`` (auth off, over ``LOOPWRIGHT_HOME``) plus, for each of ``HOP_ROUTES``, the
    MLflow handler's work under ``/hop/thread/...`` (a ``def`` route: FastAPI runs it in its
    thread pool, as the MLflow routes ran before) and ``/hop/inline/...`` (the route as served,
    through ``run_hot`` on the event loop), with the same dependencies and error handling."""
    from typing import Annotated

    from fastapi import APIRouter, Query
    from fastapi.responses import Response

    from loopwright.config import resolve_settings
    from loopwright.server._hot import run_hot
    from loopwright.server.app import create_app
    from loopwright.server.mlflow import _logging, _runs
    from loopwright.server.mlflow import _messages as m
    from loopwright.server.mlflow._common import Editor, MlflowRoute, State, Viewer

    app = create_app(resolve_settings(), auth=False)
    router = APIRouter(route_class=MlflowRoute)

    # One pair per handler; the signatures are the MLflow routes' own.
    def thread_metric(body: m.LogMetric, state: State, caller: Editor) -> Response:
        return _logging._log_metric(body, state, caller)

    async def inline_metric(body: m.LogMetric, state: State, caller: Editor) -> Response:
        return await run_hot(state.store.db, lambda: _logging._log_metric(body, state, caller))

    def thread_create(body: m.CreateRun, state: State, caller: Editor) -> Response:
        return _runs._create(body, state, caller)

    async def inline_create(body: m.CreateRun, state: State, caller: Editor) -> Response:
        return await run_hot(state.store.db, lambda: _runs._create(body, state, caller))

    def thread_get(q: Annotated[m.RunRef, Query()], state: State, caller: Viewer) -> Response:
        return _runs._get(q.run, state)

    async def inline_get(q: Annotated[m.RunRef, Query()], state: State, caller: Viewer) -> Response:
        return await run_hot(state.store.db, lambda: _runs._get(q.run, state))

    def thread_update(body: m.UpdateRun, state: State, caller: Editor) -> Response:
        return _runs._update(body, state)

    async def inline_update(body: m.UpdateRun, state: State, caller: Editor) -> Response:
        return await run_hot(state.store.db, lambda: _runs._update(body, state))

    # This module's annotations are strings, which FastAPI resolves in the module's globals,
    # where these local imports are not: the handlers get resolved ones.
    names = {"m": m, "State": State, "Editor": Editor, "Viewer": Viewer, "Response": Response}
    names |= {"Annotated": Annotated, "Query": Query}
    handlers: dict[str, tuple[str, Callable[..., Any], Callable[..., Any]]] = {
        "log-metric": ("POST", thread_metric, inline_metric),
        "runs/create": ("POST", thread_create, inline_create),
        "runs/get": ("GET", thread_get, inline_get),
        "runs/update": ("POST", thread_update, inline_update),
    }
    for name, (method, *pair) in handlers.items():
        for way, endpoint in zip(("thread", "inline"), pair, strict=True):
            endpoint.__annotations__ = typing.get_type_hints(
                endpoint, localns=names, include_extras=True
            )
            router.add_api_route(f"/hop/{way}/{name}", endpoint, methods=[method])
    app.include_router(router)
    hop = [r for r in app.router.routes if getattr(r, "path", "").startswith("/hop/")]
    for route in hop:  # before the route index, which knows only the app's own routes
        app.router.routes.remove(route)
    app.router.routes[0:0] = hop
    return app


def _serve_hop(port: int) -> None:
    import uvicorn

    uvicorn.run(
        "benchmarks.server_profile:hop_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        access_log=False,
    )


def hop_medians(n: int) -> None:
    """Median ms per request over HTTP of each handler in the thread pool and inline, the two
    sent alternately (which goes first alternating too), so load hits both alike."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="lw-hop-") as tmp:
        env = {**os.environ, "LOOPWRIGHT_HOME": str(Path(tmp) / ".lw"), "LOOPWRIGHT_USER": "b"}
        env.pop("LOOPWRIGHT_SERVER_URI", None)
        env.pop("LOOPWRIGHT_DB_URI", None)
        env["PYTHONPATH"] = str(ROOT)
        port = _free_port()
        command = [*PIN, sys.executable, str(Path(__file__).resolve()), "--serve-hop", str(port)]
        with serving(command, env, port) as url, httpx.Client(base_url=url) as client:
            work = _setup(client)
            update = {"run_id": work.ended, "status": "FINISHED", "end_time": 2}
            calls: dict[str, Callable[[str], Any]] = {
                "log-metric": lambda way: client.post(
                    f"/hop/{way}/log-metric", json=work.makers()["mlflow log-metric"]().body
                ),
                "runs/create": lambda way: client.post(
                    f"/hop/{way}/runs/create", json={"experiment_id": work.experiment_id}
                ),
                "runs/get": lambda way: client.get(
                    f"/hop/{way}/runs/get", params={"run_id": work.run_id}
                ),
                "runs/update": lambda way: client.post(f"/hop/{way}/runs/update", json=update),
            }
            print(f"\nthe thread hop (SQLite, auth off, over HTTP, {n} requests each way):")
            for name in HOP_ROUTES:
                times: dict[str, list[float]] = {"thread": [], "inline": []}
                for i in range(n + 20):
                    for way in ("thread", "inline") if i % 2 else ("inline", "thread"):
                        start = time.perf_counter()
                        answer = calls[name](way)
                        took = time.perf_counter() - start
                        if answer.status_code != 200:
                            raise RuntimeError(f"{name} ({way}): {answer.text[:300]}")
                        if i >= 20:  # warmed up
                            times[way].append(took)
                thread, inline = (statistics.median(times[w]) * 1000 for w in ("thread", "inline"))
                print(
                    f"  {name:<12} thread pool {thread:.3f} ms   inline {inline:.3f} ms   "
                    f"hop {thread - inline:+.3f} ms"
                )


# --- in process --------------------------------------------------------------------------------


class AsgiDriver:
    """Sends requests straight into an ASGI app on one event loop (no sockets, no HTTP parser)."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.loop = asyncio.new_event_loop()
        self.last_cpu_ms = 0.0  # process CPU per request of the last median_ms, all threads

    def __call__(self, call: Call) -> tuple[int, bytes]:
        return self.loop.run_until_complete(self._send(call))

    def median_ms(self, make: Callable[[], Call], n: int) -> float:
        """Median ms of ``n`` requests, all in one root task, as under a server: AnyIO stops
        the worker threads a root task started when it ends."""
        return self.loop.run_until_complete(self._median(make, n))

    async def _median(self, make: Callable[[], Call], n: int) -> float:
        for _ in range(min(20, n)):
            await self._checked(make())
        times = []
        cpu = 0.0
        for _ in range(n):
            call = make()  # the request's body made and encoded outside the timed part
            body = _encoded(call)
            cpu -= time.process_time()
            start = time.perf_counter()
            await self._checked(call, body)
            times.append(time.perf_counter() - start)
            cpu += time.process_time()
        self.last_cpu_ms = cpu / n * 1000
        return statistics.median(times) * 1000

    def repeat(self, make: Callable[[], Call], n: int) -> None:
        self.send_all(self.prepare(make, n))

    @staticmethod
    def prepare(make: Callable[[], Call], n: int) -> list[tuple[Call, bytes]]:
        """``n`` requests with their bodies encoded, to send without timing the making."""
        return [(call, _encoded(call)) for call in (make() for _ in range(n))]

    def send_all(self, calls: list[tuple[Call, bytes]]) -> None:
        async def many() -> None:
            for call, body in calls:
                await self._checked(call, body)

        self.loop.run_until_complete(many())

    async def _checked(self, call: Call, body: bytes | None = None) -> None:
        status, answer = await self._send(call, body)
        if status >= 300:
            raise RuntimeError(f"{call.path}: {status} {answer[:300]!r}")

    async def _send(self, call: Call, encoded: bytes | None = None) -> tuple[int, bytes]:
        body = _encoded(call) if encoded is None else encoded
        headers = [*self.headers, (b"host", b"127.0.0.1")]
        if call.body is not None:
            headers += [(b"content-type", b"application/json")]
            headers += [(b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": call.method,
            "scheme": "http",
            "path": call.path,
            "raw_path": call.path.encode(),
            "root_path": "",
            "query_string": call.query.encode(),
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        sent = False
        status, chunks = 0, []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)

    def checked(self, call: Call) -> None:
        status, body = self(call)
        if status >= 300:
            raise RuntimeError(f"{call.path}: {status} {body[:300]!r}")

    def close(self) -> None:
        self.loop.close()


def _encoded(call: Call) -> bytes:
    return b"" if call.body is None else json.dumps(call.body).encode()


@contextmanager
def app_in_process(env: dict[str, str], auth: bool) -> Iterator[Any]:
    """``create_app`` over the store ``env`` names, its lifespan handled by hand."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        from loopwright.config import resolve_settings
        from loopwright.server.app import create_app

        app = create_app(resolve_settings(), auth=auth)
        try:
            yield app
        finally:
            app.state.lw.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)


class ThreadProfiles:
    """cProfile in the worker threads too: wraps what ``anyio.to_thread.run_sync`` runs."""

    def __init__(self) -> None:
        self.profiles: dict[int, cProfile.Profile] = {}
        self.active = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        import anyio.to_thread

        original = anyio.to_thread.run_sync

        async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            if not self.active:
                return await original(func, *args, **kwargs)

            def profiled(*inner: Any) -> Any:
                profile = self.profiles.setdefault(threading.get_ident(), cProfile.Profile())
                profile.enable()
                try:
                    return func(*inner)
                finally:
                    profile.disable()

            return await original(profiled, *args, **kwargs)

        anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]
        try:
            yield
        finally:
            anyio.to_thread.run_sync = original


# Groups by where a function is defined (first match wins); None: counted for its callers.
GROUPS: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    ("logging", ("/logging/",)),
    ("auth", ("loopwright/server/auth.py", "loopwright/governance/tokens.py", "hashlib", "hmac")),
    ("middleware", ("loopwright/server/_limits.py", "starlette/middleware/", "exception_handler")),
    (
        "body parse + validation",
        (
            "pydantic",
            "fastapi/dependencies/",
            "fastapi/_compat",
            "json/decoder.py",
            "json/__init__.py:",
            "starlette/requests.py",
            "starlette/datastructures.py",
            "starlette/formparsers.py",
            "urllib/parse.py",
            "loopwright/server/mlflow/_messages.py",
            "loopwright/server/api/_schemas.py",
        ),
    ),
    (
        "response building",
        (
            "starlette/responses.py",
            "fastapi/encoders.py",
            "json/encoder.py",
            "fastapi/responses.py",
        ),
    ),
    (
        "routing + framework",
        (
            "starlette/routing.py",
            "fastapi/routing.py",
            "starlette/applications.py",
            "fastapi/applications.py",
            "starlette/convertors.py",
            "starlette/_utils.py",
        ),
    ),
    (
        "event loop + thread hop",
        (
            "anyio/",
            "starlette/concurrency.py",
            "threading.py",
            "concurrent/futures",
            "asyncio/",
            "selectors.py",
            "queue.py",
            "select.epoll",
            "_thread.lock",
            "server_profile.py",
        ),
    ),
    (
        "SQL (driver + statement)",
        (
            "sqlite3",
            "psycopg",
            "sqlalchemy/sql/",
            "sqlalchemy/dialects/",
            "sqlalchemy/orm/",
            "loopwright/store/statements.py",
            "loopwright/store/_loop_postgres.py",
            "sqlalchemy/cyextension",
            "sqlalchemy/engine/cursor.py",
            "sqlalchemy/engine/result.py",
            "sqlalchemy/engine/row.py",
            "sqlalchemy/engine/default.py",
        ),
    ),
    (
        "session/connection",
        (
            "sqlalchemy/engine/",
            "sqlalchemy/pool/",
            "sqlalchemy/event/",
            "loopwright/store/database",
        ),
    ),
    ("handler (loopwright)", ("loopwright/",)),
    (None, ("~:", "contextlib", "functools", "typing", "enum.py", "abc.py", "dataclasses", "copy")),
    (
        None,
        ("sqlalchemy/util/", "inspect.py", "weakref", "collections/", "re/", "<frozen", "<string"),
    ),
    (None, ("contextvars", "types.py", "operator")),
)


def _group_of(func: tuple[str, int, str]) -> str | bool | None:
    """The group of a function; None for builtins and helpers (their callers count); False
    for anything else ("other")."""
    file, _, name = func
    where = f"{file.replace(os.sep, '/')}:{name}"
    for group, needles in GROUPS:
        if any(needle in where for needle in needles):
            return group
    return False


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of own time per group; a helper's own time is split among its callers' groups
    by the time each call edge took."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(func: Any, depth: int = 0) -> dict[str, float]:
        """How ``func``'s own time divides among groups (fractions summing to 1)."""
        if func in memo:
            return memo[func]
        group = _group_of(func)
        found: dict[str, float] = defaultdict(float)
        if group is not None:
            found[group if isinstance(group, str) else "other"] = 1.0
        else:
            callers = table[func][4] if func in table else {}
            total = sum(edge[3] for edge in callers.values()) or 0.0
            if depth > 12 or not callers or total == 0:
                found["other"] = 1.0
            else:
                for caller, edge in callers.items():
                    for name, part in shares(caller, depth + 1).items():
                        found[name] += part * edge[3] / total
        memo[func] = dict(found)
        return memo[func]

    groups: dict[str, float] = defaultdict(float)
    for func, (_, _, tottime, _, _) in table.items():
        for name, part in shares(func).items():
            groups[name] += tottime * part
    return groups


def _waiting(stats: pstats.Stats) -> float:
    """Seconds the event loop thread slept in epoll (while the worker thread ran)."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return float(sum(v[2] for k, v in table.items() if "epoll" in k[2] or "select" in k[2]))


def in_process(
    config: Config, pg_uri: str, n: int, profile: bool
) -> tuple[dict[str, float], dict[str, float], dict[str, dict[str, float]]]:
    """Median ms per request in process, CPU ms per request (every thread of this process,
    so less disturbed by other load), and each request's profile in ms per group."""
    with store_env(config, pg_uri) as (env, token), app_in_process(env, config.auth) as app:
        driver = AsgiDriver(app, _headers(token))
        try:
            work = _bootstrap(driver)
            medians, cpu = {}, {}
            for name, make in work.makers().items():
                medians[name] = driver.median_ms(make, n)
                cpu[name] = driver.last_cpu_ms
            with RoundTrips.installed() as counter:
                for name, make in work.makers().items():
                    counter.count = 0
                    driver.repeat(make, 10)
                    TRIPS[name] = counter.count / 10
            groups: dict[str, dict[str, float]] = {}
            if profile:
                threads = ThreadProfiles()
                with threads.installed():
                    for name, make in work.makers().items():
                        if DETAIL:
                            print(f"  {name} (profiled, worker threads merged):")
                        groups[name] = _profile_one(driver, make, n, threads, medians[name])
            return medians, cpu, groups
        finally:
            driver.close()


TRIPS: dict[str, float] = {}  # database round trips per request, by name (of the last run)


class RoundTrips:
    """Counts the database's round trips: each statement and ``COMMIT`` on its own, plus the
    ``BEGIN`` psycopg sends before a transaction's first statement; a pipeline (statements
    sent together, ``tracking/_round_trip.py``) is one. On SQLite, statements (no network).
    Deterministic, so comparable between runs on a loaded machine, unlike times."""

    def __init__(self) -> None:
        self.count = 0
        self.piped = 0  # pipelines open (their statements are not counted one by one)

    @classmethod
    @contextmanager
    def installed(cls) -> Iterator[RoundTrips]:
        import psycopg

        from loopwright.store import _loop_postgres, statements

        counter = cls()
        idle = psycopg.pq.TransactionStatus.IDLE
        saved = (
            psycopg.Cursor.execute,
            psycopg.Connection.commit,
            psycopg.Connection.pipeline,
            statements._run,
            _loop_postgres._Link.round_trip,
        )
        execute, commit, pipeline, run, loop_trip = saved

        def counted_execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            conn = cursor.connection
            if not counter.piped:
                begins = not conn.autocommit and conn.info.transaction_status == idle
                counter.count += 2 if begins else 1
            return execute(cursor, *args, **kwargs)

        def counted_commit(conn: Any) -> Any:
            if conn.info.transaction_status != idle:
                counter.count += 1
            return commit(conn)

        @contextmanager
        def counted_pipeline(conn: Any) -> Iterator[Any]:
            counter.count += 1
            counter.piped += 1
            try:
                with pipeline(conn) as piped:
                    yield piped
            finally:
                counter.piped -= 1

        # The hot requests' round trips on the event loop (store/_loop_postgres.py): one each.
        async def counted_loop_trip(link: Any, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return await loop_trip(link, *args, **kwargs)

        def counted_run(conn: Any, *args: Any, **kwargs: Any) -> Any:
            if conn.dialect.name == "sqlite":
                counter.count += 1
            return run(conn, *args, **kwargs)

        patched: tuple[tuple[Any, str, Any], ...] = (
            (psycopg.Cursor, "execute", counted_execute),
            (psycopg.Connection, "commit", counted_commit),
            (psycopg.Connection, "pipeline", counted_pipeline),
            (statements, "_run", counted_run),
            (_loop_postgres._Link, "round_trip", counted_loop_trip),
        )
        for owner, name, replacement in patched:
            setattr(owner, name, replacement)
        try:
            yield counter
        finally:
            for (owner, name, _replacement), original in zip(patched, saved, strict=True):
                setattr(owner, name, original)


def _bootstrap(driver: AsgiDriver) -> Workload:
    name = f"profile-{uuid.uuid4().hex[:8]}"
    status, body = driver(Call("POST", "/api/2.0/mlflow/experiments/create", {"name": name}))
    if status != 200:
        raise RuntimeError(f"cannot create an experiment: {status} {body[:300]!r}")
    experiment_id = json.loads(body)["experiment_id"]
    runs = []
    for _ in range(2):
        status, body = driver(
            Call("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id})
        )
        runs.append(json.loads(body)["run"]["info"]["run_id"])
    return Workload(experiment_id, name, *runs)


def _profile_one(
    driver: AsgiDriver, make: Callable[[], Call], n: int, threads: ThreadProfiles, median: float
) -> dict[str, float]:
    threads.profiles.clear()
    main = cProfile.Profile()
    threads.active = True
    driver.repeat(make, min(20, n))  # the worker thread started before profiling
    calls = driver.prepare(make, n)
    main.enable()
    driver.send_all(calls)
    main.disable()
    threads.active = False
    stats = pstats.Stats(main)
    worker_seconds = 0.0
    merged = breakdown(stats)
    for worker in threads.profiles.values():
        worker_stats = pstats.Stats(worker)
        if DETAIL:
            stats.add(worker_stats)
        worker_seconds += sum(v[2] for v in worker_stats.stats.values())  # type: ignore[attr-defined]
        for name, seconds in breakdown(worker_stats).items():
            merged[name] += seconds
    # The loop thread sleeps in epoll while the worker runs: only the excess is the hop.
    waited = _waiting(stats)
    merged["event loop + thread hop"] -= min(waited, worker_seconds)
    total = sum(merged.values()) or 1.0
    if DETAIL:
        _print_top(stats, n, DETAIL)
    return {name: median * seconds / total for name, seconds in merged.items()}


# --pin CPU: both servers under `taskset -c CPU`. The event loop and the worker thread running a
# handler then share one CPU: handing a request over wakes no idle CPU (on a quiet machine the
# hop to the worker and back costs ~0.15 ms, mostly such wake-ups; ~0.05 ms under load).
PIN: list[str] = []

DETAIL = 0  # --detail N: the N functions with the most own time per request, with their group


def _print_top(stats: pstats.Stats, n: int, count: int) -> None:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    top = sorted(table.items(), key=lambda item: -item[1][2])[:count]
    for (file, line, name), (_, calls, tottime, _, _) in top:
        group = _group_of((file, line, name))
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}" if file != "~" else ""
        label = "callers" if group is None else group or "other"
        print(
            f"    {tottime / n * 1e6:8.1f} us {calls / n:6.1f}x  {label:<24} {where} {name}"[:150]
        )


# --- report ------------------------------------------------------------------------------------

COLUMNS = (
    "routing + framework",
    "middleware",
    "body parse + validation",
    "auth",
    "event loop + thread hop",
    "session/connection",
    "SQL (driver + statement)",
    "handler (loopwright)",
    "response building",
    "logging",
    "other",
)
SHORT = ("route", "mw", "body", "auth", "hop", "conn", "SQL", "handler", "reply", "log", "other")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--auth", default="off,on")
    parser.add_argument("--pg-uri", default=os.environ.get("LOOPWRIGHT_TEST_PG_URI", ""))
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--detail", type=int, default=0, help="top N functions per request")
    parser.add_argument("--pin", help="run both servers on this CPU (taskset -c)")
    parser.add_argument(
        "--hop", action="store_true", help="only the thread hop: handlers pooled vs inline"
    )
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare-db", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-hop", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global DETAIL
    DETAIL = args.detail
    if args.pin is not None:
        PIN[:] = ["taskset", "-c", args.pin]
    if args.serve_bare:
        _serve_bare(args.serve_bare)
        return
    if args.serve_bare_db:
        _serve_bare(args.serve_bare_db, "bare_db_app")
        return
    if args.serve_hop:
        _serve_hop(args.serve_hop)
        return
    if args.hop:
        print(f"load average at start: {_load()}")
        hop_medians(args.requests)
        print(f"load average at end: {_load()}")
        return
    configs = [
        Config(db, auth == "on") for db in args.db.split(",") for auth in args.auth.split(",")
    ]
    n = args.requests
    print(f"load average at start: {_load()} ({os.cpu_count()} CPUs); {n} requests each")
    bare = _bare_in_process(n)
    print(
        f"bare Starlette app in process: GET {bare['GET']:.3f} ms, POST {bare['POST']:.3f} ms "
        f"(cpu {bare['cpu']:.3f} ms)"
    )
    with contextlib.ExitStack() as stack:
        floors: dict[str, Callable[[], Any]] = {}
        if not args.skip_http:
            on_pg = any(c.db == "postgresql" for c in configs)
            floors = stack.enter_context(bare_servers(args.pg_uri if on_pg else None))
        for config in configs:
            _report(config, args, floors, bare)
    print(f"\nload average at end: {_load()}")
    print(
        "own = median minus the bare app's median for the same method; >trip (PostgreSQL) = "
        "median minus the bare app's with one round trip to PostgreSQL (a read for GET, a "
        "commit for POST); cpu = this process's CPU "
        "time per request (ms, all threads); trips = database round trips per request "
        "(SQLite: statements); the groups (ms) share out the in-process median by "
        "cProfile's own time per module"
    )


def _report(
    config: Config,
    args: argparse.Namespace,
    floors: dict[str, Callable[[], Any]],
    bare: dict[str, float],
) -> None:
    n = args.requests
    print(f"\n== {config.label} ==")
    http: dict[str, float] = {}
    trip = False
    if not args.skip_http:
        senders = (
            floors
            if config.db == "postgresql"
            else {name: send for name, send in floors.items() if not name.startswith("trip")}
        )
        http = http_medians(config, args.pg_uri, n, senders)
        trip = TRIP_GET in http
        line = f"bare app over HTTP, in turn with these: GET {http[FLOOR_GET]:.3f} ms, POST "
        line += f"{http[FLOOR_POST]:.3f} ms"
        if trip:
            line += f"; with one round trip: GET (a read) {http[TRIP_GET]:.3f} ms, "
            line += f"POST (a commit) {http[TRIP_POST]:.3f} ms"
        print(line)
    medians, cpu, groups = in_process(config, args.pg_uri, n, not args.skip_profile)
    head = f"{'request':<26}{'http ms':>9}{'own ms':>8}" + (f"{'>trip':>7}" if trip else "")
    head += f"{'in-proc':>9}{'own':>7}{'cpu':>7}{'trips':>6}"
    if groups:
        head += " |" + "".join(f"{s:>8}" for s in SHORT)
    print(head)
    for name, median in medians.items():
        method = "GET" if " GET " in f" {name} " or name.endswith("runs/get") else "POST"
        line = f"{name:<26}"
        if http:
            line += f"{http[name]:>9.3f}{http[name] - http[f'floor {method}']:>8.3f}"
            line += f"{http[name] - http[f'trip {method}']:>7.3f}" if trip else ""
        else:
            line += f"{'-':>9}{'-':>8}"
        line += f"{median:>9.3f}{median - bare[method]:>7.3f}{cpu[name]:>7.3f}"
        line += f"{TRIPS.get(name, 0):>6.1f}"
        if groups:
            line += " |" + "".join(f"{groups[name].get(c, 0.0):>8.3f}" for c in COLUMNS)
        print(line)


def _bare_in_process(n: int) -> dict[str, float]:
    driver = AsgiDriver(bare_app(), {})
    body = {"run_id": "0" * 32, "key": "m", "value": 0.5, "timestamp": 1, "step": 1}
    try:
        return {
            "GET": driver.median_ms(lambda: Call("GET", "/x/runs/get", query="run_id=x"), n),
            "POST": driver.median_ms(lambda: Call("POST", "/x/runs/log-metric", body), n),
            "cpu": driver.last_cpu_ms,
        }
    finally:
        driver.close()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
