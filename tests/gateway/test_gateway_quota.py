"""Limits and budgets on a fake clock: sliding minutes, UTC days, seeding from stored usage."""

from __future__ import annotations

from loopwright.gateway._quota import DAY_MS, Quota
from loopwright.gateway.entities import Limits


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_slide() -> None:
    clock = Clock(1000.0)
    quota, limits = Quota(clock), Limits(requests_per_minute=2)
    assert quota.admit("r", "u", limits) is None
    clock.now += 10
    assert quota.admit("r", "u", limits) is None
    refused = quota.admit("r", "u", limits)
    assert refused is not None and abs(refused.retry_after - 50) < 1e-6
    assert quota.admit("r", "other", limits) is None  # per user
    assert quota.admit("other-route", "u", limits) is None  # and per route
    clock.now += 50.001
    assert quota.admit("r", "u", limits) is None  # the first request left the window


def test_tokens_per_minute_count_after_the_answer() -> None:
    clock = Clock(0.0)
    quota, limits = Quota(clock), Limits(tokens_per_minute=100)
    assert quota.admit("r", "u", limits) is None
    quota.charge("r", "u", 120, None)
    refused = quota.admit("r", "u", limits)
    assert refused is not None and "100 tokens per minute" in refused.reason
    clock.now += 60.5
    assert quota.admit("r", "u", limits) is None


def test_daily_budgets_start_from_stored_usage_and_reset_at_midnight() -> None:
    clock = Clock(DAY_MS / 1000 * 20_000 + 3600)  # 01:00 UTC
    quota = Quota(clock)
    limits = Limits(tokens_per_day=1000, usd_per_day=1.0)
    day_start = quota.needs_seed("r", "u", limits)
    assert day_start == 20_000 * DAY_MS
    quota.seed("r", "u", day_start, 990, 0.5)
    assert quota.needs_seed("r", "u", limits) is None
    assert quota.admit("r", "u", limits) is None
    quota.charge("r", "u", 10, 0.6)
    refused = quota.admit("r", "u", limits)
    assert refused is not None and "1000 tokens per day" in refused.reason
    assert abs(refused.retry_after - 23 * 3600) < 1e-3
    clock.now += 23 * 3600
    assert quota.needs_seed("r", "u", limits) == 20_001 * DAY_MS  # a new day reads again
    assert quota.admit("r", "u", limits) is None
    assert quota.needs_seed("r", "u", Limits(requests_per_minute=5)) is None
