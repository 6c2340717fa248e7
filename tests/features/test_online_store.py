"""The online store protocol's conformance suite: every store (SQLite, Redis) runs it."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loopwright.config import resolve_settings
from loopwright.errors import InvalidInput
from loopwright.features.online import OnlineStore, open_online_store
from loopwright.features.online.base import encode_key
from loopwright.features.online.redis import RedisOnlineStore
from loopwright.features.online.sqlite import SQLiteOnlineStore


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    """Each test runs once on a SQLite file and once on the test Redis server."""
    if request.param == "sqlite":
        opened: OnlineStore = SQLiteOnlineStore(tmp_path / "online.db")
    else:
        opened = RedisOnlineStore(request.getfixturevalue("redis_url"))
    yield opened
    opened.close()


def _write(online: OnlineStore, rows: list[tuple[int, int, int | None, float]]) -> int:
    """Write (driver, event_ms, created_ms, conv_rate) rows to view 'drivers', version 1."""
    return online.write(
        "drivers",
        [(driver,) for driver, *_ in rows],
        [event for _, event, _, _ in rows],
        [created for _, _, created, _ in rows],
        [{"conv_rate": rate} for *_, rate in rows],
        1,
    )


def test_rows_read_back_in_key_order_with_missing_keys_as_none(online: OnlineStore) -> None:
    assert _write(online, [(1, 1000, None, 0.5), (2, 2000, 5, 0.25)]) == 2

    rows = online.read("drivers", [(2,), (3,), (1,), (2,)])

    assert [row and (row.event_ms, row.values, row.view_version) for row in rows] == [
        (2000, {"conv_rate": 0.25}, 1),
        None,
        (1000, {"conv_rate": 0.5}, 1),
        (2000, {"conv_rate": 0.25}, 1),
    ]
    assert online.read("drivers", []) == []
    assert online.read("other_view", [(1,)]) == [None]


def test_an_older_row_never_replaces_a_newer_one(online: OnlineStore) -> None:
    _write(online, [(1, 2000, 10, 0.5), (2, 2000, None, 0.5)])

    written = _write(
        online,
        [
            (1, 1000, 99, 0.1),  # older event: skipped, whatever its created time
            (1, 2000, 9, 0.2),  # same event, older created: skipped
            (2, 2000, 1, 0.3),  # same event, a created time beats none: written
        ],
    )

    rows = online.read("drivers", [(1,), (2,)])
    assert written == 1
    assert [row and row.values["conv_rate"] for row in rows] == [0.5, 0.3]
    assert _write(online, [(1, 3000, None, 0.9)]) == 1  # a newer event wins
    assert online.read("drivers", [(1,)])[0] == (3000, {"conv_rate": 0.9}, 1)


def test_the_same_row_again_is_rewritten_with_the_new_view_version(online: OnlineStore) -> None:
    _write(online, [(1, 1000, None, 0.5)])
    online.write("drivers", [(1,)], [1000], [None], [{"conv_rate": 0.5, "trips": 3}], 2)

    assert online.read("drivers", [(1,)])[0] == (1000, {"conv_rate": 0.5, "trips": 3}, 2)


def test_newest_event_time_is_kept_per_view_and_never_goes_back(online: OnlineStore) -> None:
    assert online.newest_event_ms("drivers") is None
    _write(online, [(1, 5000, None, 0.5), (2, 3000, None, 0.5)])
    _write(online, [(3, 4000, None, 0.5)])

    assert online.newest_event_ms("drivers") == 5000
    assert online.newest_event_ms("riders") is None


def test_composite_string_bytes_and_time_keys_and_values_round_trip(online: OnlineStore) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    keys = [("a", 1), ("a", 2), ("1", 1), (b"\x00\xff", 1)]
    values = [{"s": "é", "b": b"\x01", "t": moment, "n": None, "f": 1.5, "ok": True}] * 4

    online.write("pairs", keys, [1, 2, 3, 4], [None] * 4, values, 7)

    rows = online.read("pairs", [("a", 2), ("1", 1), (1, 1), (b"\x00\xff", 1)])
    assert [row and row.event_ms for row in rows] == [2, 3, None, 4]
    assert rows[0] is not None
    assert rows[0].values == {
        "s": "é",
        "b": "AQ==",  # bytes and times stay encoded; lookups decode them by dtype
        "t": 1767323045678901,
        "n": None,
        "f": 1.5,
        "ok": True,
    }


def test_keys_of_different_types_never_collide() -> None:
    encoded = {encode_key(key) for key in [(1,), ("1",), (1, 2), ("1", 2), ((True),), (1.0,)]}
    assert len(encoded) == 6


def test_a_big_batch_is_written_and_read_whole(online: OnlineStore) -> None:
    count = 25_000  # over Redis' batch of 10,000 and SQLite's chunk of 256 keys per read
    keys = [(index,) for index in range(count)]
    written = online.write(
        "drivers", keys, list(range(count)), [None] * count, [{"v": i} for i in range(count)], 1
    )

    rows = online.read("drivers", keys[::-1])
    assert written == count
    assert [row and row.values["v"] for row in rows] == list(range(count))[::-1]


def test_concurrent_writers_keep_the_newest_row(online: OnlineStore) -> None:
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for event in range(offset, 200, 4):
                _write(online, [(1, event, None, float(event))])
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert online.read("drivers", [(1,)])[0] == (199, {"conv_rate": 199.0}, 1)


def test_a_forked_process_uses_connections_of_its_own(tmp_path: Path) -> None:
    online = SQLiteOnlineStore(tmp_path / "online.db")
    _write(online, [(1, 1000, None, 0.5)])  # the parent's connection exists before the fork

    pid = os.fork()
    if pid == 0:  # the child: read, write, and report by its exit code (never return)
        ok = False
        try:
            ok = online.read("drivers", [(1,)])[0] == (1000, {"conv_rate": 0.5}, 1)
            ok = ok and _write(online, [(2, 2000, None, 0.25)]) == 1
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert [row and row.event_ms for row in online.read("drivers", [(1,), (2,)])] == [1000, 2000]
    online.close()


def test_open_online_store_follows_the_setting(tmp_path: Path) -> None:
    default = open_online_store(resolve_settings(home=tmp_path / "home", environ={}))
    named = open_online_store(
        resolve_settings(home=tmp_path, online_store=f"sqlite:///{tmp_path}/x.db", environ={})
    )
    try:
        assert default.name == f"sqlite:///{tmp_path / 'home' / 'online.db'}"
        assert named.name == f"sqlite:///{tmp_path / 'x.db'}"
    finally:
        default.close()
        named.close()


@pytest.mark.redis
def test_open_online_store_opens_redis_from_the_setting(redis_url: str, tmp_path: Path) -> None:
    opened = open_online_store(resolve_settings(home=tmp_path, online_store=redis_url, environ={}))
    try:
        assert isinstance(opened, RedisOnlineStore)
        assert opened.name == redis_url
    finally:
        opened.close()


def test_open_online_store_refuses_other_urls(tmp_path: Path) -> None:
    settings = resolve_settings(home=tmp_path, environ={})
    for url in ("sqlite:///", "memcached://127.0.0.1:1"):
        with pytest.raises(InvalidInput, match="is not an online store"):
            open_online_store(dataclasses.replace(settings, online_store=url))


@pytest.mark.redis
def test_the_redis_store_is_named_without_its_password(redis_url: str) -> None:
    url = redis_url.replace("redis://", "redis://:not-a-secret@")  # no auth: ignored by Redis
    url = url.replace("?", "?socket_timeout=5&")
    opened = RedisOnlineStore(url)
    try:
        assert "not-a-secret" not in opened.name
        assert opened.name.startswith("redis://127.0.0.1:")
        assert "prefix=lwtest-" in opened.name
    finally:
        opened.close()


def test_an_unreachable_redis_is_refused_naming_the_store() -> None:
    with pytest.raises(InvalidInput, match=r"redis://127\.0\.0\.1:1/0 cannot be reached"):
        RedisOnlineStore("redis://127.0.0.1:1/0")


def test_a_redis_that_never_answers_is_refused_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket
    import time

    from loopwright.features.online import redis as redis_store

    monkeypatch.setattr(redis_store, "TIMEOUT_S", 0.5)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # connections are accepted by the kernel, and never answered
    port = silent.getsockname()[1]
    started = time.monotonic()
    try:
        with pytest.raises(InvalidInput, match=rf"redis://127\.0\.0\.1:{port}/0 cannot be"):
            RedisOnlineStore(f"redis://127.0.0.1:{port}/0")
    finally:
        silent.close()
    assert time.monotonic() - started < 5


def test_a_sqlite_file_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match="cannot be opened"):
        SQLiteOnlineStore(tmp_path / "file" / "online.db")


def test_the_redis_header_refuses_times_past_its_width() -> None:
    from loopwright.features.online.redis import _pack_row

    assert len(_pack_row(253_402_300_799_999, -62_135_596_800_000, 1, {}).split(":")[0]) == 33
    for event, created in ((10**16, None), (-(10**15) - 1, None), (0, 10**16)):
        with pytest.raises(InvalidInput, match="outside the years 1-9999"):
            _pack_row(event, created, 1, {})
