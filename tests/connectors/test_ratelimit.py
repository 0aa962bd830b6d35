"""The RateLimiter: even pacing, a pause for everyone after a 429, the daily cap; and the budget targets
against the HubSpot sandbox (slow)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from bench.ratelimit import run
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.errors import RateLimitedError


async def test_calls_are_spaced_evenly_not_bursted() -> None:
    limiter = RateLimiter("pace", Budget(window_s=1.0, window_max=40, target=1.0))
    stamps: list[float] = []

    async def caller() -> None:
        for _ in range(5):
            await limiter.acquire()
            stamps.append(time.monotonic())

    await asyncio.gather(*(caller() for _ in range(4)))
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # 40 per second is one call every 25 ms; concurrency must not bunch calls together.
    assert min(gaps) >= 0.015
    assert 0.4 <= stamps[-1] - stamps[0] <= 0.8
    assert limiter.calls == 20


async def test_a_429_pauses_every_caller() -> None:
    limiter = RateLimiter("pause", Budget(window_s=1.0, window_max=1000))
    await limiter.acquire()
    limiter.throttled_by_system(0.3)
    started = time.monotonic()
    await asyncio.gather(limiter.acquire(), limiter.acquire())
    assert time.monotonic() - started >= 0.29
    assert limiter.throttled == 1


async def test_the_daily_cap_stops_calls_with_a_typed_error() -> None:
    limiter = RateLimiter("daily", Budget(window_s=1.0, window_max=1000, daily_cap=3))
    for _ in range(3):
        await limiter.acquire()
    with pytest.raises(RateLimitedError) as caught:
        await limiter.acquire()
    assert caught.value.retry_after is not None and caught.value.retry_after > 80_000


async def test_headers_reporting_a_spent_day_stop_calls() -> None:
    limiter = RateLimiter("headers", Budget(window_s=1.0, window_max=1000, daily_cap=100))
    limiter.observe(daily_remaining=0)
    with pytest.raises(RateLimitedError):
        await limiter.acquire()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_long_sync_meets_the_budget_targets_on_the_sandbox() -> None:
    # The real limit is 100 per 10 s; the same shape in 2 s windows keeps the run short.
    report = await run(seconds=20.0, window_s=2.0, window_max=20)
    assert report.rate_limited_pct <= 1.0, report
    assert report.achieved_pct >= 90.0, report
