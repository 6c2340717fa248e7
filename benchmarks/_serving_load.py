"""The serving benchmark's load generator: raw asyncio HTTP/1.1 keep-alive connections.

    python benchmarks/_serving_load.py --url http://127.0.0.1:8080/v2/models/gbc/infer \\
        --body body.json [--connections 32] [--seconds 10] [--warmup 2]

Each connection sends the same POST again as soon as the previous answer is read (a closed
loop, like wrk), for ``--warmup`` seconds unrecorded and then ``--seconds`` recorded; prints
one JSON object: requests, ok, errors (non-2xx answers and failed connections, by cause),
seconds, req_per_s and latency percentiles in ms. A hand-written client, not httpx or
aiohttp: their per-request cost (~0.3 ms of CPU) would cap what one client core can send.
Stdlib only, so it runs from any environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["Tally", "drive", "percentile"]


@dataclass
class Tally:
    """What the connections recorded after the warm-up."""

    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: Counter[str] = field(default_factory=Counter)
    recording: bool = False


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted ``values`` (``share`` in 0..1)."""
    if not values:
        return math.nan
    return values[min(len(values) - 1, max(0, math.ceil(share * len(values)) - 1))]


def request_bytes(url: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return host, port, head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Reads one response (Content-Length or chunked body); returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(host: str, port: int, message: bytes, stop_at: float, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    writer = None
    while loop.time() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            start = loop.time()
            writer.write(message)
            status = await _read_response(reader)
            elapsed = loop.time() - start
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            if tally.recording:
                tally.errors[type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)  # a refused connection must not spin
            continue
        if not tally.recording:
            continue
        if 200 <= status < 300:
            tally.latencies.append(elapsed)
        else:
            tally.errors[f"HTTP {status}"] += 1
    if writer is not None:
        writer.close()


async def drive(
    url: str, body: bytes, *, connections: int, seconds: float, warmup: float
) -> dict[str, object]:
    """Runs the closed loop and returns the figures (see the module docstring)."""
    host, port, message = request_bytes(url, body)
    loop = asyncio.get_running_loop()
    tally = Tally()
    begin = loop.time()
    stop_at = begin + warmup + seconds
    tasks = [
        asyncio.create_task(_connection(host, port, message, stop_at, tally))
        for _ in range(connections)
    ]
    await asyncio.sleep(warmup)
    tally.recording = True
    recorded_from = loop.time()
    await asyncio.gather(*tasks)
    elapsed = loop.time() - recorded_from
    latencies = sorted(tally.latencies)
    errors = sum(tally.errors.values())
    return {
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "error_causes": dict(tally.errors),
        "seconds": elapsed,
        "req_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else math.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="file holding the JSON request body")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    with open(args.body, "rb") as file:
        body = file.read()
    figures = asyncio.run(
        drive(
            args.url,
            body,
            connections=args.connections,
            seconds=args.seconds,
            warmup=args.warmup,
        )
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
