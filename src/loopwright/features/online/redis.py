"""The online store on Redis, for several servers sharing one store.

One string per (view, entity key), ``<prefix><view>:<key>``, holding the row: a 32-character
header (event time and created time, each offset and zero-padded to 16 digits so the header
compares as text in time order) and the packed values (the same JSON as SQLite's). A lookup is
one MGET per view. Writes go through a Lua script, one call per batch of rows: it compares
headers server-side, so an older row never replaces a newer one even when writers race, and
no WATCH round trips are needed. ``<prefix>newest`` is a hash of each view's newest event time.

The script touches many keys, so a Redis Cluster would need the keys of a batch in one slot;
this store targets a single server (or a replicated primary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ...errors import InvalidInput
from .base import OnlineRow, encode_key, pack_values, unpack_values

if TYPE_CHECKING:
    import redis

__all__ = ["RedisOnlineStore"]

DEFAULT_PREFIX = "lw:"
# Offsets keep header fields non-negative (times before 1970 included); 10**15 ms is 31,000
# years. A missing created time is 0, before any real one.
_OFFSET = 10**15
_HEADER = 32
_BATCH = 10_000
TIMEOUT_S = 5.0  # connecting, and each answer: a hung Redis fails a request after this
# KEYS: the rows' keys, then the newest-hash key. ARGV: view, newest event time, then the rows.
_WRITE = """
local n = #KEYS - 1
local written = 0
for i = 1, n do
    local row = ARGV[i + 2]
    local current = redis.call('GETRANGE', KEYS[i], 0, 31)
    if current == '' or string.sub(row, 1, 32) >= current then
        redis.call('SET', KEYS[i], row)
        written = written + 1
    end
end
local newest = tonumber(redis.call('HGET', KEYS[n + 1], ARGV[1]) or '-1e18')
if tonumber(ARGV[2]) > newest then
    redis.call('HSET', KEYS[n + 1], ARGV[1], ARGV[2])
end
return written
"""


class RedisOnlineStore:
    """An :class:`~loopwright.features.online.base.OnlineStore` on a Redis server.

    ``url``: ``redis://[user:password@]host:port/db``, optionally ``?prefix=team-a:`` to keep
    several stores on one server apart (default ``lw:``). Other query parameters are redis-py's.
    """

    def __init__(self, url: str) -> None:
        import redis

        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        self.prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
        rest = urlencode([(k, v) for k, v in query if k != "prefix"])
        client_url = urlunsplit(parts._replace(query=rest))
        # The name is recorded with every materialization: no credentials in it.
        shown = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
        self.name = shown if self.prefix == DEFAULT_PREFIX else f"{shown}?prefix={self.prefix}"
        try:
            # Timeouts: a Redis that accepts but never answers must fail a request, not hang
            # it (and every worker thread after it).
            self._client: redis.Redis = redis.Redis.from_url(
                client_url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
            )
            self._client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise InvalidInput(
                f"online store {self.name} cannot be reached ({exc}); start Redis there or set "
                "online_store to another redis://host:port/db (or unset it for SQLite)"
            ) from exc
        self._write_script = self._client.register_script(_WRITE)
        self._newest_key = f"{self.prefix}newest"

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}{view}:{key}"

    def write(
        self,
        view: str,
        keys: list[tuple[Any, ...]],
        event_ms: list[int],
        created_ms: list[int | None],
        values: list[dict[str, Any]],
        view_version: int,
    ) -> int:
        written = 0
        for start in range(0, len(keys), _BATCH):
            stop = start + _BATCH
            batch_keys = [self._key(view, encode_key(key)) for key in keys[start:stop]]
            rows = [
                _pack_row(event, created, view_version, value)
                for event, created, value in zip(
                    event_ms[start:stop], created_ms[start:stop], values[start:stop], strict=True
                )
            ]
            newest = max(event_ms[start:stop])
            written += int(
                self._write_script(keys=[*batch_keys, self._newest_key], args=[view, newest, *rows])
            )
        return written

    def read(self, view: str, keys: Sequence[tuple[Any, ...]]) -> list[OnlineRow | None]:
        if not keys:
            return []
        stored = self._client.mget([self._key(view, encode_key(key)) for key in keys])
        # Bytes: the client is made without decode_responses.
        return [None if raw is None else _unpack_row(raw) for raw in stored]  # type: ignore[arg-type]

    def newest_event_ms(self, view: str) -> int | None:
        raw = self._client.hget(self._newest_key, view)
        return None if raw is None else int(raw)

    def close(self) -> None:
        self._client.close()


def _pack_row(event_ms: int, created_ms: int | None, view_version: int, values: Any) -> str:
    created = 0 if created_ms is None else created_ms + _OFFSET
    event = event_ms + _OFFSET
    # The Lua script compares the fixed-width header as text: a field past 16 digits (or
    # negative) would shift it and order rows wrongly, so such a time is refused, not stored.
    if not (0 <= event < 10**16 and 0 <= created < 10**16):
        raise InvalidInput(
            f"event time {event_ms} ms / created time {created_ms} ms is outside the years "
            "1-9999 the Redis online store holds; give UTC milliseconds since 1970"
        )
    return f"{event:016d}{created:016d}{view_version}:{pack_values(values)}"


def _unpack_row(raw: bytes) -> OnlineRow:
    colon = raw.index(b":", _HEADER)
    return OnlineRow(
        int(raw[:16]) - _OFFSET, unpack_values(raw[colon + 1 :]), int(raw[_HEADER:colon])
    )
