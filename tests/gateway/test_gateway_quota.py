"""Limits and budgets on a fake clock: sliding minutes, UTC days, seeding from stored usage
(once a day, keeping what requests in flight charge); and through the gateway with a slow
day-totals read and two first requests at once."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from _llm_stub import Stub

from loopwright.config import resolve_settings
from loopwright.gateway._quota import DAY_MS, Quota
from loopwright.gateway.entities import Limits
from loopwright.gateway.proxy import Gateway
from loopwright.gateway.service import GatewayService
from loopwright.store.home import open_store


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
    ticket = quota.needs_seed("r", "u", limits)
    assert ticket is not None and ticket.day_start_ms == 20_000 * DAY_MS
    quota.seed("r", "u", ticket, 990, 0.5)
    assert quota.needs_seed("r", "u", limits) is None
    assert quota.admit("r", "u", limits) is None
    quota.charge("r", "u", 10, 0.6)
    refused = quota.admit("r", "u", limits)
    assert refused is not None and "1000 tokens per day" in refused.reason
    assert abs(refused.retry_after - 23 * 3600) < 1e-3
    clock.now += 23 * 3600
    again = quota.needs_seed("r", "u", limits)
    assert again is not None and again.day_start_ms == 20_001 * DAY_MS  # a new day reads again
    assert quota.admit("r", "u", limits) is None
    assert quota.needs_seed("r", "u", Limits(requests_per_minute=5)) is None


def test_a_seed_keeps_what_requests_in_flight_charged_and_is_done_once() -> None:
    """Two first requests of the day read the table while a third finishes: its charge (its
    row made after the tickets, so not in the sum) is kept, and the second seed is skipped."""
    clock = Clock(DAY_MS / 1000 * 20_000 + 3600)
    quota, limits = Quota(clock), Limits(tokens_per_day=1000)
    first = quota.needs_seed("r", "u", limits)
    clock.now += 0.1
    second = quota.needs_seed("r", "u", limits)  # the first read is still under way
    assert first is not None and second is not None and second.at_ms > first.at_ms
    quota.charge("r", "u", 40, 0.01)  # a request in flight finishes meanwhile
    quota.seed("r", "u", first, 900, 0.5)  # the table before the first ticket
    quota.charge("r", "u", 30, 0.02)
    quota.seed("r", "u", second, 900, 0.5)  # skipped: the day is counted
    assert quota.needs_seed("r", "u", limits) is None
    quota.charge("r", "u", 29, None)  # 900 + 40 + 30 + 29 = 999: still admitted
    assert quota.admit("r", "u", limits) is None
    quota.charge("r", "u", 1, None)
    refused = quota.admit("r", "u", limits)
    assert refused is not None and "1000 tokens per day" in refused.reason


def test_charges_before_the_ticket_come_from_the_table_and_a_stale_ticket_is_ignored() -> None:
    clock = Clock(DAY_MS / 1000 * 20_000 + 3600)
    quota = Quota(clock)
    quota.charge("r", "u", 70, None)  # before the route had a budget: its row is in the table
    limits = Limits(tokens_per_day=100)
    ticket = quota.needs_seed("r", "u", limits)
    assert ticket is not None and ticket.charged_before  # the gateway flushes usage first
    quota.seed("r", "u", ticket, 70, 0.0)  # not 140: the charge is the table's row
    quota.charge("r", "u", 29, None)
    assert quota.admit("r", "u", limits) is None
    quota.charge("r", "u", 1, None)
    assert quota.admit("r", "u", limits) is not None
    # A ticket of yesterday seeds nothing today.
    late = Quota(clock)
    stale = late.needs_seed("r", "u", limits)
    assert stale is not None and not stale.charged_before
    clock.now += 23 * 3600
    late.seed("r", "u", stale, 10_000, 0.0)
    assert late.admit("r", "u", limits) is None  # today's counter starts from zero
    assert late.needs_seed("r", "u", limits) is not None  # and today still needs its seed


class _SlowTotals(GatewayService):
    """The gateway's service with a slow day-totals read (a busy database), counting reads."""

    reads: list[tuple[int, int | None]]

    def _day_totals(
        self, route: str, user: str, since_ms: int, until_ms: int | None = None
    ) -> tuple[int, float]:
        self.reads.append((since_ms, until_ms))
        time.sleep(0.2)
        return super()._day_totals(route, user, since_ms, until_ms)


def test_concurrent_first_requests_of_the_day_seed_once_and_count_queued_rows(
    tmp_path: Path, stub: Stub
) -> None:
    """A request charged before the route had a budget (its usage row still queued), then two
    first requests of the budgeted day at once: the queued row is flushed into the sum, one
    seed counts, and both requests' charges stay. Each request is 6 tokens ('hi there')."""

    async def scenario() -> list[int]:
        with open_store(resolve_settings(home=tmp_path / "home", user="ada")) as store:
            service = _SlowTotals(store)
            service.reads = []
            target = {"name": "primary", "base_url": stub.base(), "model": "m"}
            service.create_route("chat", {"targets": [target]})
            gateway = Gateway(service, usage_interval=60, refresh_s=0)
            body = json.dumps(
                {"model": "chat", "messages": [{"role": "user", "content": "hi there"}]}
            ).encode()

            async def ask() -> int:
                reply = await gateway.handle("chat", body, user="u", role="editor", headers={})
                return reply.status

            statuses = [await ask()]  # 6 tokens, its row waits in the queue (60 s interval)
            service.update_route("chat", {"targets": [target], "limits": {"tokens_per_day": 18}})
            gateway.invalidate()
            statuses += await asyncio.gather(ask(), ask())  # both read the table, slowly
            statuses.append(await ask())  # 6 + 6 + 6 = 18 used: refused
            assert len(service.reads) == 2 and all(until for _, until in service.reads)
            await gateway.aclose()
            return statuses

    assert asyncio.run(scenario()) == [200, 200, 200, 429]
