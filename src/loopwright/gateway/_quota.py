"""Rate limits and budgets per user and route, counted in this process.

Requests and tokens per minute are sliding windows (the exact events of the last 60 s);
tokens and USD per UTC day start from the usage table's sum for the day the first time a
user shows up that day (:meth:`Quota.seed`), then count in memory, so the request path does no
I/O. The table is read off the counters' lock while other requests of that user may finish:
what they charge after the :class:`SeedTicket` is added to the sum of the rows made before it,
and a second seed of the same day is skipped (the first one counts). Each server process
counts its own requests: with several workers, a limit holds per worker (divide it by the
number of workers for a global one).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .entities import Limits

__all__ = ["DAY_MS", "Quota", "Refusal", "SeedTicket"]

DAY_MS = 86_400_000
WINDOW_S = 60.0


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused now and when to retry (seconds)."""

    reason: str
    retry_after: float


@dataclass
class _Counter:
    requests: deque[float] = field(default_factory=deque)
    tokens: deque[tuple[float, int]] = field(default_factory=deque)
    minute_tokens: int = 0
    day: int = -1
    day_tokens: int = 0
    day_usd: float = 0.0
    seeded: bool = False
    # Everything charged this day in this process, seeded or not: what a seed adds is the
    # part charged after its ticket.
    charged_tokens: int = 0
    charged_usd: float = 0.0


@dataclass(frozen=True)
class SeedTicket:
    """A seed in progress: the usage table's rows to sum (created in ``[day_start_ms, at_ms)``,
    UTC) and the counter's charges at ``at_ms`` (later ones are added to the sum, their rows
    left out of it). ``charged_before``: this process charged that user on that route earlier
    in the day (their rows may still wait in the usage queue: flush it before the read)."""

    day_start_ms: int
    at_ms: int
    tokens_mark: int
    usd_mark: float
    charged_before: bool


class Quota:
    """The counters of every (route, user) seen by this process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._lock = threading.Lock()

    def needs_seed(self, route: str, user: str, limits: Limits) -> SeedTicket | None:
        """A ticket to read the day's totals with, when a daily limit applies and this
        user's day is not counted yet; else None."""
        if not limits.daily:
            return None
        now = self._clock()
        with self._lock:
            counter = self._counters.setdefault((route, user), _Counter())
            self._roll(counter, now)
            if counter.seeded:
                return None
            return SeedTicket(
                counter.day * DAY_MS,
                int(now * 1000),
                counter.charged_tokens,
                counter.charged_usd,
                bool(counter.charged_tokens or counter.charged_usd),
            )

    def seed(self, route: str, user: str, ticket: SeedTicket, tokens: int, usd: float) -> None:
        """Start the ticket's day from the table's ``tokens`` and ``usd``, plus what was
        charged since the ticket; nothing when that day is seeded already or over."""
        now = self._clock()
        with self._lock:
            counter = self._counters.setdefault((route, user), _Counter())
            self._roll(counter, now)
            if counter.seeded or counter.day != ticket.day_start_ms // DAY_MS:
                return
            counter.seeded = True
            counter.day_tokens = tokens + counter.charged_tokens - ticket.tokens_mark
            counter.day_usd = usd + counter.charged_usd - ticket.usd_mark

    def admit(self, route: str, user: str, limits: Limits) -> Refusal | None:
        """Count a request now, or say why it is refused (and count nothing)."""
        now = self._clock()
        with self._lock:
            counter = self._counters.setdefault((route, user), _Counter())
            self._roll(counter, now)
            rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
            if rpm is not None and len(counter.requests) >= rpm:
                wait = counter.requests[0] + WINDOW_S - now
                return Refusal(f"rate limit: {rpm} requests per minute", max(wait, 0.001))
            if tpm is not None and counter.minute_tokens >= tpm:
                wait = counter.tokens[0][0] + WINDOW_S - now
                return Refusal(f"rate limit: {tpm} tokens per minute", max(wait, 0.001))
            tomorrow = (int(now * 1000) // DAY_MS + 1) * DAY_MS / 1000 - now
            if limits.tokens_per_day is not None and counter.day_tokens >= limits.tokens_per_day:
                return Refusal(f"budget: {limits.tokens_per_day} tokens per day used", tomorrow)
            if limits.usd_per_day is not None and counter.day_usd >= limits.usd_per_day:
                return Refusal(f"budget: {limits.usd_per_day} USD per day used", tomorrow)
            if rpm is not None:
                counter.requests.append(now)
            return None

    def charge(self, route: str, user: str, tokens: int, usd: float | None) -> None:
        """Count a finished request's tokens and cost."""
        now = self._clock()
        with self._lock:
            counter = self._counters.setdefault((route, user), _Counter())
            self._roll(counter, now)
            if tokens:
                counter.tokens.append((now, tokens))
                counter.minute_tokens += tokens
                counter.day_tokens += tokens
                counter.charged_tokens += tokens
            counter.day_usd += usd or 0.0
            counter.charged_usd += usd or 0.0

    @staticmethod
    def _roll(counter: _Counter, now: float) -> None:
        horizon = now - WINDOW_S
        requests, tokens = counter.requests, counter.tokens
        while requests and requests[0] <= horizon:
            requests.popleft()
        while tokens and tokens[0][0] <= horizon:
            counter.minute_tokens -= tokens.popleft()[1]
        day = int(now * 1000) // DAY_MS
        if counter.day != day:
            # A new UTC day starts from zero; a counter seeded from the table that day is exact.
            counter.day, counter.day_tokens, counter.day_usd = day, 0, 0.0
            counter.charged_tokens, counter.charged_usd = 0, 0.0
            counter.seeded = False
