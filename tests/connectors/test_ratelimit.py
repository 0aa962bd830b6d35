"""The RateLimiter: even pacing, a pause for everyone after a 429, the daily cap; and the budget targets
against the HubSpot sandbox (slow)."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from bench.ratelimit import run
from syncd.connectors.budget import DayWindow, Priority, PriorityLock, webhook_work
from syncd.connectors.ratelimit import Budget, RateLimiter
from syncd.errors import BudgetSpentError, RateLimitedError


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


class Clock:
    """A wall clock moved by hand (seconds since the epoch)."""

    def __init__(self, at: str) -> None:
        self.now = datetime.fromisoformat(at).timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta).total_seconds()


def daily(cap: int, clock: Clock, **budget: Any) -> RateLimiter:
    """A limiter fast enough to be no wait in a test, with a daily cap, counting days on `clock`."""
    return RateLimiter("daily", Budget(window_s=1.0, window_max=100_000, daily_cap=cap, **budget), wall_clock=clock)


async def spend_until_refused(limiter: RateLimiter) -> tuple[int, BudgetSpentError]:
    """Calls granted before the limiter refused one, and its refusal."""
    granted = 0
    while True:
        try:
            await limiter.acquire()
        except BudgetSpentError as refused:
            return granted, refused
        granted += 1


async def test_syncd_keeps_the_reserved_share_of_the_daily_cap_free_until_the_day_resets() -> None:
    clock = Clock("2024-06-03T20:00:00+00:00")
    limiter = daily(100, clock, webhook_share=0.0)
    granted, refused = await spend_until_refused(limiter)
    assert granted == 80  # 20% of the cap is left to the account's other integrations
    assert refused.retry_after == 4 * 3600  # until midnight UTC, the system's day
    clock.advance(hours=4)
    granted, _ = await spend_until_refused(limiter)
    assert granted == 80


async def test_the_day_ends_at_midnight_in_the_configured_time_zone() -> None:
    clock = Clock("2024-06-03T20:00:00+00:00")  # 16:00 in New York
    limiter = daily(10, clock, day=DayWindow(timezone="America/New_York"))
    _, refused = await spend_until_refused(limiter)
    assert refused.retry_after == 8 * 3600


async def test_a_day_the_clocks_go_back_lasts_twenty_five_hours() -> None:
    clock = Clock("2024-11-03T04:30:00+00:00")  # 00:30 EDT in New York; at 02:00 the clocks go back to 01:00 EST
    limiter = daily(10, clock, day=DayWindow(timezone="America/New_York"))
    _, refused = await spend_until_refused(limiter)
    assert refused.retry_after == 24.5 * 3600
    clock.advance(hours=24)  # 23:30 EST, the same calendar day: still spent
    _, refused = await spend_until_refused(limiter)
    assert refused.retry_after == 0.5 * 3600
    clock.advance(hours=1)  # the next day
    granted, _ = await spend_until_refused(limiter)
    assert granted == 8


async def test_a_rolling_day_frees_calls_as_they_age_out() -> None:
    clock = Clock("2024-06-03T20:00:00+00:00")
    limiter = daily(10, clock, reserve_share=0.0, webhook_share=0.0, day=DayWindow(rolling=True))
    for _ in range(5):
        await limiter.acquire()
    clock.advance(hours=12)
    granted, refused = await spend_until_refused(limiter)
    assert granted == 5
    # When the first five leave the 24 hours (counted by the minute).
    assert refused.retry_after is not None and 12 * 3600 <= refused.retry_after <= 12 * 3600 + 60
    clock.advance(hours=12, minutes=1)
    granted, _ = await spend_until_refused(limiter)
    assert granted == 5


async def test_polling_leaves_a_share_of_the_day_to_webhook_driven_work() -> None:
    limiter = daily(100, Clock("2024-06-03T12:00:00+00:00"), webhook_share=0.1)
    polled, _ = await spend_until_refused(limiter)
    with webhook_work():
        by_webhooks, _ = await spend_until_refused(limiter)
    assert (polled, by_webhooks) == (72, 8)  # of syncd's 80, polling stops at 72


async def test_what_the_system_reports_as_used_counts_against_the_day() -> None:
    limiter = daily(1000, Clock("2024-06-03T12:00:00+00:00"), webhook_share=0.0)
    # Another integration spent 700 of the account's 1,000 today: syncd may spend 100 more, not 800.
    limiter.observe(daily_cap=1000, daily_remaining=300)
    granted, _ = await spend_until_refused(limiter)
    assert granted == 100


async def test_a_daily_refusal_by_the_system_ends_the_day() -> None:
    limiter = daily(1000, Clock("2024-06-03T12:00:00+00:00"))
    raised = limiter.refused(RateLimitedError("daily limit", retry_after=60.0, connection="daily"), daily=True)
    assert isinstance(raised, BudgetSpentError) and raised.retry_after == 12 * 3600
    with pytest.raises(BudgetSpentError):
        await limiter.acquire()


async def test_the_estimate_says_how_many_days_work_needs_at_the_allowed_pace() -> None:
    clock = Clock("2024-06-03T00:00:00+00:00")
    # Zoho Books at 100 calls a minute and a 1,000 a day: syncd's share is 760 calls for polling.
    limiter = RateLimiter("books", Budget(window_s=60.0, window_max=100, daily_cap=1000), wall_clock=clock)
    for _ in range(160):
        limiter.usage.spend()
    found = limiter.estimate(2000)
    assert (found.left_today, found.per_day, found.fits_today) == (600, 760, False)
    # 600 today, 760 tomorrow, 640 on the third day.
    assert 2 < found.days < 3 and found.budgets == 3
    assert found.message().startswith("this work needs ~2000 calls; today's budget leaves 600; it will take ~2.")
    assert found.message().endswith("over 3 days' budgets")
    assert limiter.estimate(500).fits_today


async def test_webhook_driven_calls_are_granted_before_polling_calls_already_waiting() -> None:
    limiter = RateLimiter("order", Budget(window_s=1.0, window_max=100_000))
    granted: list[Priority] = []
    queued = asyncio.Event()

    def watch(event: str, priority: Priority) -> None:
        if event == "granted":
            granted.append(priority)
        elif priority is Priority.WEBHOOK:
            queued.set()

    limiter.watcher = watch
    limiter.pause(3600)  # nothing is granted until every caller waits

    async def webhook_call() -> None:
        with webhook_work():
            await limiter.acquire()

    polls = [asyncio.create_task(limiter.acquire()) for _ in range(3)]
    webhook = asyncio.create_task(webhook_call())
    await queued.wait()
    limiter.resume()
    await asyncio.gather(*polls, webhook)
    assert granted == [Priority.WEBHOOK, Priority.POLL, Priority.POLL, Priority.POLL]


async def test_the_mapping_lock_goes_to_webhook_work_before_the_next_poll() -> None:
    lock = PriorityLock()
    order: list[str] = []
    await lock.acquire()

    async def take(name: str) -> None:
        async with lock:
            order.append(name)

    async def take_for_webhook() -> None:
        with webhook_work():
            await take("webhook")

    poll = asyncio.create_task(take("poll"))
    webhook = asyncio.create_task(take_for_webhook())
    while len(lock._waiters) < 2:  # both queued behind the holder
        await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(poll, webhook)
    assert order == ["webhook", "poll"]
    assert not lock.locked()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_long_sync_meets_the_budget_targets_on_the_sandbox() -> None:
    # The real limit is 100 per 10 s; the same shape in 2 s windows keeps the run short.
    report = await run(seconds=20.0, window_s=2.0, window_max=20)
    assert report.rate_limited_pct <= 1.0, report
    assert report.achieved_pct >= 90.0, report
