"""client.prompts' cache: versions are never re-read, aliases at most cache_ttl seconds old,
and this client's own moves show at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import loopwright as lw
from loopwright.errors import InvalidInput, NotFound
from loopwright.prompts import cache
from loopwright.prompts.service import PromptService


@pytest.fixture
def client(tmp_path: Path, db_uri: str) -> Iterator[lw.Client]:
    with lw.connect(db_uri, home=tmp_path / "home") as c:
        yield c


def test_a_version_once_loaded_is_served_without_reading_the_store(client: lw.Client) -> None:
    client.prompts.register("greet", "Hi {{ name }}")
    first = client.prompts.load("prompts:/greet/1")
    PromptService(client.store).delete("greet")  # gone from the store, by another writer
    assert client.prompts.load("prompts:/greet/1") is first
    with pytest.raises(NotFound):
        client.prompts.resolve("greet", 1)  # read now: it is gone


def test_an_alias_moved_elsewhere_shows_after_the_ttl(
    client: lw.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache's own clock, moved by hand: no sleeps, so a slow machine cannot flip the result.
    clock = [1000.0]
    monkeypatch.setattr(cache, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    prompts = client.prompts
    prompts.register("greet", "one")
    prompts.register("greet", "two")
    prompts.set_alias("greet", "beta", 1)
    assert prompts.load("prompts:/greet@beta", cache_ttl=60).version == 1
    PromptService(client.store).set_alias("greet", "beta", 2)  # another process's move
    clock[0] += 59.9
    assert prompts.load("prompts:/greet@beta", cache_ttl=60).version == 1  # stale, within TTL
    assert prompts.load("prompts:/greet@beta", cache_ttl=0).version == 2  # 0: read now
    clock[0] += 0.2  # 60.1 s after the cached read
    assert prompts.load("prompts:/greet@beta", cache_ttl=60).version == 2  # expired: re-read


def test_this_clients_moves_and_registers_clear_its_alias_entries(client: lw.Client) -> None:
    prompts = client.prompts
    prompts.register("greet", "one")
    assert prompts.load("prompts:/greet@latest").version == 1
    prompts.register("greet", "two")
    assert prompts.load("prompts:/greet@latest").version == 2
    prompts.set_alias("greet", "beta", 1)
    assert prompts.load("prompts:/greet@beta").version == 1
    prompts.set_alias("greet", "beta", 2)
    assert prompts.load("prompts:/greet@beta").version == 2
    assert prompts.format("prompts:/greet@beta") == "two"


def test_bad_ttls_are_refused(client: lw.Client) -> None:
    for ttl in (-1, float("inf"), "60", True):
        with pytest.raises(InvalidInput, match="cache_ttl"):
            client.prompts.load("prompts:/greet@beta", cache_ttl=ttl)  # type: ignore[arg-type]
