"""One rate limiter per connection: spends the system's budget evenly, webhook-driven calls first, within the
daily share left to syncd, corrected by what the system reports."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from syncd.connectors.budget import (
    DAY_S,
    BudgetEstimate,
    DailyUsage,
    DayWindow,
    Priority,
    PriorityWaiters,
    WallClock,
    current_priority,
    estimate,
    spend_share,
)
from syncd.errors import BudgetSpentError, RateLimitedError
from syncd.logs import get_logger
from syncd.settings import RateLimitSettings

log = get_logger(__name__)

#: What a limiter tells its watcher: a call queued for a turn, or granted one, and the call's priority.
LimiterEvent = Literal["queued", "granted"]
Watcher = Callable[[LimiterEvent, Priority], None]


@dataclass(frozen=True)
class Budget:
    """A connection's allowance: `window_max` calls per `window_s` seconds and at most `daily_cap` a day, of
    which `reserve_share` is left to the account's other integrations and `webhook_share` (of syncd's part)
    to webhook-driven work, so a long first sync never leaves live changes waiting for tomorrow."""

    window_s: float
    window_max: int
    daily_cap: int | None = None
    # Fraction of the window's allowance to aim for: calls are spaced evenly, so a fixed window on the system's
    # side sees at most its maximum; the rest is headroom for clock and network jitter.
    target: float = 0.98
    reserve_share: float = 0.2
    webhook_share: float = 0.05
    day: DayWindow = field(default_factory=DayWindow)
    # A cap the operator configured bounds us even if the system allows more; a documented default is only a
    # guess that the system's own figure replaces.
    cap_configured: bool = False

    @property
    def calls_per_s(self) -> float:
        """The pace calls are spaced at."""
        return self.window_max * self.target / self.window_s

    def configured(self, settings: RateLimitSettings | None) -> Budget:
        """This budget (a system's documented default) as a connection's `rate_limit` table overrides it."""
        if settings is None:
            return self
        return replace(
            self,
            window_s=settings.window_s,
            window_max=settings.window_max,
            daily_cap=settings.daily_cap if settings.daily_cap is not None else self.daily_cap,
            cap_configured=settings.daily_cap is not None,
            reserve_share=settings.reserve_share,
            webhook_share=settings.webhook_share,
            day=DayWindow(self.day.rolling, settings.day_timezone),
        )


class RateLimiter:
    """Grants calls one at a time at the budget's even pace (no bursts into 429s), webhook-driven calls before
    polling ones, pauses everyone after a 429, and refuses calls once the day's share is spent."""

    def __init__(self, connection: str, budget: Budget, clock: Callable[[], float] = time.monotonic,
                 wall_clock: WallClock = time.time) -> None:
        self.connection = connection
        self.budget = budget
        self._clock = clock
        self.usage = DailyUsage(budget.day, wall_clock)
        self._waiters = PriorityWaiters()
        self._next_slot = -math.inf
        self._pause_until = -math.inf
        self._changed: asyncio.Event | None = None
        self._pump: asyncio.Task[None] | None = None
        self._spent_logged = False
        self.watcher: Watcher | None = None  # sees every call queued and granted (tests, metrics)
        self.calls = 0
        self.throttled = 0

    @property
    def wall_clock(self) -> WallClock:
        """The time source of day windows (tests hand in the clock they give the simulators)."""
        return self.usage.wall

    @wall_clock.setter
    def wall_clock(self, clock: WallClock) -> None:
        self.usage.wall = clock

    # --- calls ---------------------------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Wait for this call's turn; raise `BudgetSpentError` (with the wait until the day resets) when the
        day's share for calls of this priority is spent."""
        priority = current_priority()
        spent = self._spent_error(priority)
        if spent is not None:
            raise spent
        self._notify("queued", priority)
        now = self._clock()
        if not self._waiters and now >= max(self._next_slot, self._pause_until):
            # Nobody ahead and the slot free: the turn is this call's now, as the pump would grant it (without
            # a future and a wake-up per call, which a fast system's thousands of calls would each cost).
            self._granted(priority, now)
            return
        turn = self._waiters.add(priority)
        self._wake_pump()
        try:
            await turn
        except asyncio.CancelledError:
            self._wake_pump()  # one waiter fewer: the pump may have nothing left to do
            raise

    def _wake_pump(self) -> None:
        if self._changed is None:
            self._changed = asyncio.Event()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._grant_turns(), name=f"rate limiter {self.connection}")
        else:
            self._changed.set()

    async def _grant_turns(self) -> None:
        """Hand out turns one slot apart, best priority first, for as long as anyone waits."""
        assert self._changed is not None
        while True:
            now = self._clock()
            ready_at = max(self._next_slot, self._pause_until)
            if now < ready_at:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), ready_at - now)
                continue
            best = self._waiters.pop_best()
            if best is None:
                return
            priority, turn = best
            spent = self._spent_error(priority)
            if spent is not None:
                # The day ran out while this call waited: it fails now, and takes no slot.
                turn.set_exception(spent)
                continue
            turn.set_result(None)
            self._granted(priority, now)

    def _granted(self, priority: Priority, now: float) -> None:
        """Count a turn given at `now` and set when the next may be."""
        # Counted at the grant, in grant order, so concurrent callers can never overshoot the day.
        self.usage.spend()
        self.calls += 1
        interval = 1.0 / self.budget.calls_per_s
        # A grant made late (a busy loop) lets the next come up to a quarter slot sooner, so lateness does not
        # pile up into a lower rate; never more, so the target's headroom still covers any window.
        self._next_slot = max(now - interval / 4, self._next_slot) + interval
        self._notify("granted", priority)

    def _notify(self, event: LimiterEvent, priority: Priority) -> None:
        if self.watcher is not None:
            self.watcher(event, priority)

    # --- the day's budget ----------------------------------------------------------------------------------
    def allowance(self, priority: Priority = Priority.POLL) -> int | None:
        """Calls syncd may make today for work of `priority` (None: no daily cap known)."""
        cap = self.budget.daily_cap
        if cap is None:
            return None
        mine = spend_share(cap, self.budget.reserve_share)
        if priority is Priority.POLL:
            mine -= math.floor(mine * self.budget.webhook_share)
        return mine

    def left_today(self, priority: Priority = Priority.POLL) -> int | None:
        """Calls still allowed in the current day window for work of `priority` (None: no daily cap known)."""
        allowance = self.allowance(priority)
        return None if allowance is None else max(0, allowance - self.usage.used())

    def _spent_error(self, priority: Priority) -> BudgetSpentError | None:
        """The error that refuses a call of `priority` when its share of the day is spent (logged once)."""
        left = self.left_today(priority)
        if left is None or left > 0:
            self._spent_logged = False
            return None
        retry = self.usage.seconds_to_reset()
        if not self._spent_logged:
            self._spent_logged = True
            log.warning("daily API budget spent; this connection's calls wait until it resets",
                        connection=self.connection, priority=priority.name.lower(), used=self.usage.used(),
                        allowed=self.allowance(priority), daily_cap=self.budget.daily_cap,
                        resets_in_s=round(retry))
        return BudgetSpentError(
            f"daily API budget spent ({self.allowance(priority)} of {self.budget.daily_cap} calls, "
            f"{self.budget.reserve_share:.0%} kept for other integrations); resets in {retry / 3600:.1f} h",
            retry_after=retry,
            connection=self.connection,
        )

    def estimate(self, calls: int) -> BudgetEstimate:
        """How work of `calls` polling calls fits today's budget and the days after; logged (a warning when it
        does not fit today)."""
        reset_s = self.usage.seconds_to_reset()
        pace = self.budget.calls_per_s
        allowance = self.allowance(Priority.POLL)
        left = self.left_today(Priority.POLL)
        per_day = None
        if allowance is not None and left is not None:
            # The window's pace may allow fewer calls than the daily share before the day ends.
            per_day = min(allowance, math.floor(pace * DAY_S))
            left = min(left, math.floor(pace * reset_s))
        result = estimate(self.connection, calls, left_today=left, per_day=per_day, calls_per_s=pace,
                          seconds_to_reset=reset_s)
        say = log.info if result.fits_today else log.warning
        say(result.message(), connection=self.connection, calls=calls, left_today=left, per_day=per_day,
            days=round(result.days, 2))
        return result

    # --- what the system says ------------------------------------------------------------------------------
    def observe(self, *, window_remaining: int | None = None, window_reset_s: float | None = None,
                daily_remaining: int | None = None, daily_used: int | None = None,
                daily_cap: int | None = None) -> None:
        """Correct our view with what the system reported in its headers (its figures count every integration
        of the account, so they can only bring our day's end closer)."""
        # The system's own allocation bounds ours, but a lower configured cap is the operator's choice and stays.
        known = self.budget.daily_cap
        if daily_cap is not None and (known is None or daily_cap < known or not self.budget.cap_configured):
            self.budget = replace(self.budget, daily_cap=daily_cap)
        if daily_used is None and daily_remaining is not None:
            cap = daily_cap if daily_cap is not None else self.budget.daily_cap
            if cap is not None:
                daily_used = cap - daily_remaining
        if daily_used is not None:
            self.usage.report(daily_used)
        if window_remaining is not None and window_remaining <= 0 and window_reset_s:
            # The window is used up: the next call must not come early. Our own pacing already places it in
            # the next window, so hold one slot (not the whole interval, which would waste a window each time
            # the pace meets the maximum exactly); a 429 from others' calls then pauses for its Retry-After.
            self.pause(min(window_reset_s, 1.0 / self.budget.calls_per_s))

    def refused(self, error: RateLimitedError, *, daily: bool) -> RateLimitedError:
        """The system refused a call for its quota: after a window refusal everyone waits the window out;
        after a daily one nothing more goes today. Returns the error to raise (`BudgetSpentError` for a day)."""
        if not daily:
            self.throttled_by_system(error.retry_after)
            return error
        self.throttled += 1
        cap = self.budget.daily_cap
        if cap is None:
            # Without a known cap, what we spent so far is as much as the system allows today.
            cap = max(1, self.usage.used())
            self.budget = replace(self.budget, daily_cap=cap, reserve_share=0.0)
        self.usage.report(cap)
        return self.spent_error() or error

    def spent_error(self) -> BudgetSpentError | None:
        """The error a polling call gets now if the day is spent (after headers said so, for instance)."""
        return self._spent_error(Priority.POLL)

    def throttled_by_system(self, retry_after: float | None) -> None:
        """The system answered 429: everyone waits `retry_after` (or one window) before the next call."""
        self.throttled += 1
        self.pause(retry_after if retry_after is not None else self.budget.window_s)

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now."""
        self._pause_until = max(self._pause_until, self._clock() + seconds)
        if self._changed is not None:
            self._changed.set()

    def resume(self) -> None:
        """Lift a pause at once."""
        self._pause_until = -math.inf
        if self._changed is not None:
            self._changed.set()
