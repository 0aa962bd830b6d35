"""One rate limiter per connection: spends the system's budget evenly, corrected by what the system reports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from syncd.errors import RateLimitedError
from syncd.logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Budget:
    """A connection's allowance: `window_max` calls per `window_s` seconds, and at most `daily_cap` a day."""

    window_s: float
    window_max: int
    daily_cap: int | None = None
    # Fraction of the allowance to aim for: a little headroom absorbs clock skew between us and the system.
    target: float = 0.95


class RateLimiter:
    """Paces calls evenly at the budget's rate (no bursts into 429s) and pauses everyone after a 429."""

    def __init__(self, connection: str, budget: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self.connection = connection
        self.budget = budget
        self._clock = clock
        self._pause_until = 0.0
        self._daily_used = 0
        self._day_started = clock()
        self._limiter = self._make_limiter(budget)
        self.calls = 0
        self.throttled = 0

    @staticmethod
    def _make_limiter(budget: Budget) -> AsyncLimiter:
        # A leaky bucket of one: calls are spaced by window_s / (window_max * target), never bunched, so a
        # fixed-window counter on the system's side never sees more than its maximum in one window.
        rate = budget.window_max * budget.target / budget.window_s
        return AsyncLimiter(1, 1.0 / rate)

    async def acquire(self) -> None:
        """Wait for this call's turn; raise `RateLimitedError` when the daily cap is spent."""
        while True:
            wait = self._pause_until - self._clock()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._roll_day()
        if self.budget.daily_cap is not None and self._daily_used >= self.budget.daily_cap:
            retry = 86_400.0 - (self._clock() - self._day_started)
            raise RateLimitedError(
                f"daily API budget of {self.budget.daily_cap} calls is spent",
                retry_after=retry,
                connection=self.connection,
            )
        await self._limiter.acquire()
        self._daily_used += 1
        self.calls += 1

    def _roll_day(self) -> None:
        if self._clock() - self._day_started >= 86_400.0:
            self._day_started = self._clock()
            self._daily_used = 0

    def observe(self, *, window_remaining: int | None = None, window_reset_s: float | None = None,
                daily_remaining: int | None = None, daily_used: int | None = None,
                daily_cap: int | None = None) -> None:
        """Correct our view with what the system reported in its headers."""
        if daily_used is not None:
            self._daily_used = max(self._daily_used, daily_used)
        # The system's own allocation bounds ours, but a lower configured cap (budget left for other
        # integrations of the same account) is the operator's choice and stays.
        if daily_cap is not None and (self.budget.daily_cap is None or daily_cap < self.budget.daily_cap):
            self.budget = Budget(self.budget.window_s, self.budget.window_max, daily_cap, self.budget.target)
        if daily_remaining is not None and self.budget.daily_cap is not None:
            self._daily_used = max(self._daily_used, self.budget.daily_cap - daily_remaining)
        if window_remaining is not None and window_remaining <= 0 and window_reset_s:
            self.pause(window_reset_s)

    def throttled_by_system(self, retry_after: float | None) -> None:
        """The system answered 429: everyone waits `retry_after` (or one window) before the next call."""
        self.throttled += 1
        self.pause(retry_after if retry_after is not None else self.budget.window_s)

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now."""
        self._pause_until = max(self._pause_until, self._clock() + seconds)
