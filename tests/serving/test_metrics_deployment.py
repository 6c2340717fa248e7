"""A served deployment's metrics: each variant and model version has its own series, and
``live_stats`` reads them back (the deployment, its models and fixtures as in
test_deployment_serving)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
from _served_model import MODEL, live
from test_deployment_serving import (  # noqa: F401 - fixtures used by name
    NAME,
    _body,
    _serve,
    client,
    settings,
    versions,
)

from loopwright.client import Client
from loopwright.config import Settings
from loopwright.serving.entities import SHADOW, Variant
from loopwright.serving.live import live_stats


def test_each_variant_is_counted_apart_and_live_stats_reads_them_back(
    client: Client,  # noqa: F811
    settings: Settings,  # noqa: F811
    versions: dict[int, Any],  # noqa: F811
) -> None:
    client.deployments.create(NAME, f"models:/{MODEL}@champion")
    client.deployments.set_traffic(
        NAME,
        [
            Variant("primary", f"models:/{MODEL}@champion", 0.6),
            Variant("canary", f"models:/{MODEL}/3", 0.4),  # v3 raises on blue rows
            Variant("twin", f"models:/{MODEL}/2", 1.0, SHADOW),
            Variant("narrow", f"models:/{MODEL}/3", 1.0, SHADOW),  # fails the blue copies
        ],
    )
    app, _ = _serve(settings)
    with live(app) as url, httpx.Client(base_url=url) as http:
        answers = [
            http.post(f"/v2/models/{NAME}/infer", json=_body(i, "blue" if i % 4 == 0 else "red"))
            for i in range(200)
        ]
        # An error answer names no variant: only the canary's model raises, so they are its.
        answered = Counter(
            a.headers["x-loopwright-variant"] for a in answers if a.status_code == 200
        )
        failed = sum(a.status_code == 500 for a in answers)
        # Each answered request is copied to the shadow after its answer: wait for the last.
        deadline = time.monotonic() + 30
        while True:
            stats = live_stats([url], NAME, interval=0)
            copies = [s.requests for s in stats if s.variant in ("narrow", "twin")]
            if copies == [200 - failed] * 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert failed > 0 and answered["primary"] > 0
    assert sum(answered.values()) + failed == 200
    assert stats.unreachable == ()
    rows = {(s.variant, s.model, s.version): s for s in stats}
    # The shadows' copies have their own series, under their variants' names; a copy the
    # shadow fails (narrow on the blue rows primary answered) is counted as its error.
    assert set(rows) == {
        ("primary", MODEL, "1"),
        ("canary", MODEL, "3"),
        ("twin", MODEL, "2"),
        ("narrow", MODEL, "3"),
    }
    blue_answered = sum(a.status_code == 200 for a in answers[::4])
    assert blue_answered > 0
    twin_stats, narrow_stats = rows["twin", MODEL, "2"], rows["narrow", MODEL, "3"]
    assert (twin_stats.requests, twin_stats.errors) == (200 - failed, 0)
    assert (narrow_stats.requests, narrow_stats.errors) == (200 - failed, blue_answered)
    primary, canary = rows["primary", MODEL, "1"], rows["canary", MODEL, "3"]
    assert (primary.requests, primary.errors) == (answered["primary"], 0)
    assert (canary.requests, canary.errors) == (answered["canary"] + failed, failed)
    assert canary.error_rate == failed / canary.requests
    for row in (primary, canary):
        assert row.p50_ms is not None and row.p99_ms is not None
        assert 0 < row.p50_ms <= row.p99_ms < 10_000
