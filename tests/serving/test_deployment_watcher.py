"""The watcher's rounds against a store that is down or slow: backoff, heartbeats, pace.

The lookup is the CLI's own (:class:`ClientLookup`), counted by a subclass: on a server
address nothing listens on, and on a real store whose package fetch is slowed down.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import test_deployment_serving as served
from _served_model import MODEL

from loopwright.cli._serve_deployment import ClientLookup
from loopwright.client import Client
from loopwright.config import Settings, resolve_settings
from loopwright.serving.entities import Variant
from loopwright.serving.repository import ModelRepository
from loopwright.serving.sources import ModelSource
from loopwright.serving.watcher import MAX_BACKOFF_SECONDS, DeploymentWatcher

settings, client, versions = served.settings, served.client, served.versions
NAME = served.NAME


class _Counted(ClientLookup):
    """The CLI's lookup, counting its calls (and taking ``slow`` seconds per package fetch)."""

    def __init__(self, settings: Settings, *, slow: float = 0.0) -> None:
        super().__init__(settings, "http://127.0.0.1:1", trusted=False)
        self.reads = self.beats = 0
        self.slow = slow
        self.fetching = threading.Event()

    def deployment(self, name: str) -> Any:
        self.reads += 1
        return super().deployment(name)

    def heartbeat(self, name: str) -> None:
        self.beats += 1
        super().heartbeat(name)

    def source(self, model: str, version: int) -> ModelSource:
        self.fetching.set()
        time.sleep(self.slow)
        return super().source(model, version)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_rounds_back_off_while_the_server_is_unreachable(tmp_path: Path, caplog: Any) -> None:
    unreachable = resolve_settings(
        home=str(tmp_path / "home"), server_uri=f"http://127.0.0.1:{_closed_port()}"
    )
    lookup = _Counted(unreachable)
    watcher = DeploymentWatcher(
        NAME, lookup, ModelRepository([]), refresh_seconds=0.02, heartbeat_seconds=0
    )

    async def run() -> None:
        await watcher.start()
        await asyncio.sleep(1.5)
        await watcher.close()

    asyncio.run(run())
    # At 0.02 s a round that would be ~75 reads; doubling pauses (at least half of
    # 0.04, 0.08, 0.16 ...) leave room for about seven.
    assert 2 <= lookup.reads <= 10, lookup.reads
    assert watcher.failures == lookup.reads
    assert caplog.text.count("could not be read") == 1
    assert watcher.router.revision == 0  # nothing to serve was ever read: nothing changed
    # The pause grows to the cap and no further, with jitter below it.
    watcher.failures = 50
    pauses = [watcher.pause() for _ in range(200)]
    assert all(MAX_BACKOFF_SECONDS / 2 <= p <= MAX_BACKOFF_SECONDS for p in pauses)
    assert len(set(pauses)) > 1
    watcher.failures = 0
    assert watcher.pause() == 0.02


def test_heartbeats_go_on_while_a_swap_loads_a_slow_model(
    client: Client, settings: Settings, versions: dict[int, Any]
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}/1")
    lookup = _Counted(settings, slow=1.5)
    repository = ModelRepository([], max_batch_size=1)
    watcher = DeploymentWatcher(
        NAME, lookup, repository, refresh_seconds=0.05, heartbeat_seconds=0.1
    )
    lookup.slow = 0.0
    watcher.load()
    lookup.slow = 1.5
    lookup.fetching.clear()

    async def run() -> int:
        await watcher.start()
        client.deployments.set_traffic(NAME, [Variant("primary", f"models:/{MODEL}/2", 1.0)])
        while not lookup.fetching.is_set():
            await asyncio.sleep(0.01)
        before = lookup.beats
        await asyncio.sleep(1.2)  # the fetch of version 2 takes 1.5 s
        during = lookup.beats - before
        deadline = time.monotonic() + 10
        while watcher.router.revision != 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await watcher.close()
        await repository.close()
        return during

    during = asyncio.run(run())
    assert during >= 5, during  # one every 0.1 s, not held behind the load
    assert watcher.router.resolved == {"primary": (MODEL, 2)}
    [instance] = client.deployments.instances(NAME)
    assert instance.url == "http://127.0.0.1:1"
