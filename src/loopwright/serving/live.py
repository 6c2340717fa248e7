"""Live statistics of a deployment, read from its serving instances' ``/metrics``.

:func:`live_stats` scrapes every instance twice, ``interval`` seconds apart, and sums the
instances per variant and model version (``deployments show`` prints the result):

- ``requests``, ``errors`` (answered 5xx) and ``client_errors`` (4xx) count everything since
  each instance started; ``error_rate`` is ``errors / requests`` over the same span;
- ``requests_per_second`` is the growth of ``requests`` between the two scrapes divided by the
  time between them (with ``interval=0``: ``requests`` over the time since each instance
  started, summed);
- ``p50_ms``, ``p95_ms``, ``p99_ms`` are estimated from the summed latency histogram of the
  requests answered between the two scrapes (the histograms' difference) when at least
  :data:`MIN_WINDOW_REQUESTS` were, so a week-old server shows this minute's latency, not the
  week's; else from the histogram since start (``percentiles_window_seconds`` says which: 0 is
  since start). Estimated the way Prometheus' ``histogram_quantile`` does: find the bucket
  holding the rank ``q * requests`` and interpolate linearly between its bounds (0 below the
  first). Buckets grow
  by ~1.26x (:data:`~loopwright.serving.metrics.LATENCY_BUCKETS`), so the estimate is within a
  quarter of the true value; past the last finite bound (10 s) it reads as that bound.

An instance that does not answer (refused, timed out, not a metrics page) is listed in
``unreachable`` with the reason and left out of the sums; it never raises.

Example:
    >>> quantile(0.5, [(0.001, 0.0), (0.002, 10.0), (float("inf"), 10.0)])
    0.0015
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["MIN_WINDOW_REQUESTS", "LiveStats", "VariantStats", "live_stats", "quantile"]

# Fewer requests between the scrapes than this, and percentiles are taken since start: a P99 of
# a handful of requests says little.
MIN_WINDOW_REQUESTS = 20

_LATENCY = "loopwright_inference_duration_seconds"
_ERRORS = "loopwright_inference_errors"
_STARTED = "loopwright_serving_start_time_seconds"

# (variant, model, version)
_Key = tuple[str, str, str]


@dataclass(frozen=True)
class VariantStats:
    """One variant and model version of a deployment, summed over its instances."""

    deployment: str
    variant: str
    model: str
    version: str
    requests: int
    requests_per_second: float
    errors: int
    client_errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    instances: int
    percentiles_window_seconds: float = 0.0


@dataclass(frozen=True)
class LiveStats:
    """The variants of ``deployment`` (iterating a ``LiveStats`` gives them) and the instances
    that could not be read, as ``(url, reason)``.

    ``window_seconds`` is the time ``requests_per_second`` is measured over (``0``: since
    each instance started).
    """

    deployment: str
    variants: tuple[VariantStats, ...]
    unreachable: tuple[tuple[str, str], ...]
    window_seconds: float

    def __iter__(self) -> Iterator[VariantStats]:
        return iter(self.variants)

    def __len__(self) -> int:
        return len(self.variants)


@dataclass
class _Series:
    """What one scrape says about one (variant, model, version)."""

    requests: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> cumulative
    errors: float = 0.0
    client_errors: float = 0.0


@dataclass
class _Scrape:
    at: float
    started: float | None
    series: dict[_Key, _Series]


def live_stats(
    urls: Sequence[str], deployment: str, timeout: float = 2.0, *, interval: float = 1.0
) -> LiveStats:
    """Requests, throughput, error rate and P50/P95/P99 per variant of ``deployment``.

    Args:
        urls: the instances' base URLs (``http://host:port``; ``/metrics`` is appended).
        deployment: the deployment (for a model served on its own: the model's name).
        timeout: seconds to wait for each instance's answer.
        interval: seconds between the two scrapes that measure requests per second
            (``0``: one scrape, the rate since each instance started).
    """
    import httpx

    workers = max(1, min(16, len(urls)))
    with httpx.Client(timeout=timeout) as http, ThreadPoolExecutor(workers) as pool:

        def scrape_all() -> list[_Scrape | str]:
            return list(pool.map(lambda url: _scrape(http, url, deployment), urls))

        first = scrape_all()
        second = first
        if interval > 0:
            time.sleep(interval)
            second = scrape_all()
    now = time.time()
    unreachable: list[tuple[str, str]] = []
    totals: dict[_Key, _Series] = defaultdict(_Series)
    window: dict[_Key, _Series] = defaultdict(_Series)  # answered between the scrapes
    rates: dict[_Key, float] = defaultdict(float)
    instances: dict[_Key, int] = defaultdict(int)
    for url, before, after in zip(urls, first, second, strict=True):
        if isinstance(before, str) or isinstance(after, str):
            unreachable.append((url, before if isinstance(before, str) else str(after)))
            continue
        for key, series in after.series.items():
            total = totals[key]
            total.requests += series.requests
            total.errors += series.errors
            total.client_errors += series.client_errors
            _add(total, series.buckets)
            if after is not before:
                _add(window[key], _grown(series, before.series.get(key)))
            instances[key] += 1
            rates[key] += _rate(key, before, after, now)
    seconds = interval if interval > 0 else 0.0
    variants = tuple(
        _stats(deployment, key, totals[key], window.get(key), seconds, rates[key], instances[key])
        for key in sorted(totals)
    )
    return LiveStats(deployment, variants, tuple(unreachable), seconds)


def _add(total: _Series, buckets: dict[float, float]) -> None:
    for bound, count in buckets.items():
        total.buckets[bound] = total.buckets.get(bound, 0.0) + count


def _grown(after: _Series, before: _Series | None) -> dict[float, float]:
    """The buckets of the requests answered between two scrapes of one instance (all of
    ``after``'s when the instance restarted in between: its counts began again)."""
    if before is None or after.requests < before.requests:
        return after.buckets
    return {bound: count - before.buckets.get(bound, 0.0) for bound, count in after.buckets.items()}


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a histogram given as ``(upper bound, cumulative count)`` pairs in
    increasing order, the last bound ``inf`` (Prometheus' ``histogram_quantile``); ``None``
    for an empty histogram.

    Raises:
        ValueError: ``q`` is not within ``[0, 1]``.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile is within [0, 1], got {q}; the median is 0.5")
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank and count > below:  # q=0: the first bucket that holds anything
            if math.isinf(upper):
                return lower  # past the last finite bound: all that is known is "at least"
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _rate(key: _Key, before: _Scrape, after: _Scrape, now: float) -> float:
    if after is before:  # one scrape: since the instance started
        if after.started is None or now <= after.started:
            return 0.0
        return after.series[key].requests / (now - after.started)
    elapsed = after.at - before.at
    now_count = after.series[key].requests
    then = before.series.get(key)
    grown = now_count - (then.requests if then is not None else 0.0)
    if grown < 0:  # the instance restarted in between: its count began again from zero
        grown = now_count
    return grown / elapsed if elapsed > 0 else 0.0


def _stats(
    deployment: str,
    key: _Key,
    total: _Series,
    window: _Series | None,
    seconds: float,
    rate: float,
    instances: int,
) -> VariantStats:
    recent = window is not None and window.buckets and max(window.buckets.values())
    if window is not None and recent and recent >= MIN_WINDOW_REQUESTS:
        buckets, basis = sorted(window.buckets.items()), seconds
    else:
        buckets, basis = sorted(total.buckets.items()), 0.0

    def ms(q: float) -> float | None:
        value = quantile(q, buckets)
        return None if value is None else value * 1000

    requests = int(total.requests)
    return VariantStats(
        deployment=deployment,
        variant=key[0],
        model=key[1],
        version=key[2],
        requests=requests,
        requests_per_second=rate,
        errors=int(total.errors),
        client_errors=int(total.client_errors),
        error_rate=total.errors / requests if requests else 0.0,
        p50_ms=ms(0.50),
        p95_ms=ms(0.95),
        p99_ms=ms(0.99),
        instances=instances,
        percentiles_window_seconds=basis,
    )


def _scrape(http: httpx.Client, url: str, deployment: str) -> _Scrape | str:
    """One instance's series of ``deployment``, or why they could not be read."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    target = url.rstrip("/") + "/metrics"
    try:
        answer = http.get(target)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc or 'no answer'}"
    if answer.status_code != 200:
        return f"GET {target} answered {answer.status_code}"
    at = time.monotonic()
    series: dict[_Key, _Series] = defaultdict(_Series)
    started = None
    try:
        for family in text_string_to_metric_families(answer.text):
            if family.name not in (_LATENCY, _ERRORS, _STARTED):
                continue
            for sample in family.samples:
                labels = sample.labels
                if family.name == _STARTED:
                    started = sample.value
                    continue
                if labels.get("deployment") != deployment:
                    continue
                key = (labels["variant"], labels["model"], labels["version"])
                if sample.name == f"{_LATENCY}_count":
                    series[key].requests = sample.value
                elif sample.name == f"{_LATENCY}_bucket":
                    series[key].buckets[float(labels["le"])] = sample.value
                elif sample.name == f"{_ERRORS}_total":
                    if labels.get("status", "").startswith("5"):
                        series[key].errors += sample.value
                    else:
                        series[key].client_errors += sample.value
    except (ValueError, KeyError) as exc:
        return f"GET {target} is not a Loopwright metrics page ({type(exc).__name__}: {exc})"
    if started is None:
        return f"GET {target} is not a Loopwright serving instance's metrics page"
    return _Scrape(at, started, dict(series))
