"""A connection's daily API budget: the share of the system's daily quota syncd may spend, the day window it is
counted in, call priorities (webhook-driven work before polling) and the estimate of how long work will take."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from zoneinfo import ZoneInfo

from syncd.logs import get_logger

log = get_logger(__name__)

#: Seconds since the epoch; tests pass a clock they move by hand (and give the simulators the same one).
WallClock = Callable[[], float]
DAY_S = 86_400.0


class Priority(IntEnum):
    """Who a call is for; lower goes first."""

    WEBHOOK = 0  # a change a system told us about: someone is waiting for it
    POLL = 1  # the safety net and first syncs: may wait


_priority: contextvars.ContextVar[Priority] = contextvars.ContextVar("syncd_call_priority", default=Priority.POLL)


def current_priority() -> Priority:
    """The priority of the calls made from the running task (polling unless marked otherwise)."""
    return _priority.get()


@contextlib.contextmanager
def webhook_work() -> Iterator[None]:
    """Mark the calls made inside (and in tasks started inside) as webhook-driven: they go before polls."""
    token = _priority.set(Priority.WEBHOOK)
    try:
        yield
    finally:
        _priority.reset(token)


class PriorityWaiters:
    """Callers waiting for a turn: the best priority first, then first come, first served."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def add(self, priority: Priority) -> asyncio.Future[None]:
        """A future that completes when this caller's turn comes."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (int(priority), next(self._order), future))
        return future

    def __len__(self) -> int:
        return sum(1 for _, _, future in self._heap if not future.done())

    def pop_best(self) -> tuple[Priority, asyncio.Future[None]] | None:
        """The best waiter still waiting (its future, for the caller to complete); None when nobody waits."""
        while self._heap:
            priority, _, future = heapq.heappop(self._heap)
            if not future.done():  # a cancelled caller left
                return Priority(priority), future
        return None


class PriorityLock:
    """An asyncio lock that, when released, goes to webhook-driven work before polling (then in arrival order)."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters = PriorityWaiters()

    def locked(self) -> bool:
        """Whether someone holds the lock."""
        return self._locked

    async def acquire(self) -> None:
        """Wait for the lock, handed over by `release` to the best waiter."""
        if not self._locked and not len(self._waiters):
            self._locked = True
            return
        turn = self._waiters.add(current_priority())
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """Hand the lock to the best waiter, or free it."""
        best = self._waiters.pop_best()
        if best is None:
            self._locked = False
        else:
            best[1].set_result(None)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class DayWindow:
    """How a system counts its day: calendar days in a time zone, or a rolling 24 hours (some CRMs)."""

    rolling: bool = False
    timezone: str = "UTC"

    def span(self, now: float) -> tuple[int, float, float]:
        """The calendar day `now` falls in, in the window's time zone: its ordinal, and when it starts and ends
        (seconds since the epoch; a day is 23 or 25 hours long where the clocks change)."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now, zone).date()
        start, end = (datetime.combine(d, datetime.min.time(), zone) for d in (local, local + timedelta(days=1)))
        return local.toordinal(), start.astimezone(UTC).timestamp(), end.astimezone(UTC).timestamp()


# How long a usage figure reported by a rolling-window system is trusted: it shrinks as old calls age out,
# but only a new answer says by how much, so a spent day is probed again after this long.
ROLLING_REPORT_TRUST_S = 3600.0


class DailyUsage:
    """Calls spent in the current day window: our own count, raised by what the system reports as used."""

    def __init__(self, window: DayWindow, wall: WallClock) -> None:
        self.window = window
        self.wall = wall
        self._day = -1
        self._own = 0
        self._minutes: deque[list[int]] = deque()  # rolling windows: [minute, calls] buckets
        self._reported = 0
        self._reported_at = 0.0
        self._own_at_report = 0
        self._reported_day = -1
        self._span = (-1, 0.0, 0.0)  # the day last asked about: (ordinal, start, end)

    def _today(self, now: float) -> tuple[int, float, float]:
        """The window's calendar day of `now` (as `DayWindow.span`), its time-zone arithmetic done once a day
        rather than on every call counted."""
        if not self._span[1] <= now < self._span[2]:
            self._span = self.window.span(now)
        return self._span

    def spend(self) -> None:
        """Count one call made now."""
        now = self.wall()
        if self.window.rolling:
            minute = int(now // 60)
            if self._minutes and self._minutes[-1][0] == minute:
                self._minutes[-1][1] += 1
            else:
                self._minutes.append([minute, 1])
        else:
            self._roll(now)
            self._own += 1

    def report(self, used: int) -> None:
        """The system says `used` calls of the day are spent (by every integration of the account)."""
        now = self.wall()
        # Our calls made after the report add to it; those before are in it already.
        self._reported, self._reported_at, self._own_at_report = used, now, self._own_count(now)
        self._reported_day = -1 if self.window.rolling else self._today(now)[0]

    def used(self) -> int:
        """Calls spent in the current window, as far as we know."""
        now = self.wall()
        own = self._own_count(now)
        if self.window.rolling:
            trusted = now - self._reported_at < ROLLING_REPORT_TRUST_S
        else:
            trusted = self._reported_day == self._today(now)[0]
        if not trusted:
            return own
        return max(own, self._reported + max(0, own - self._own_at_report))

    def _own_count(self, now: float) -> int:
        if self.window.rolling:
            self._expire(now)
            return sum(calls for _, calls in self._minutes)
        self._roll(now)
        return self._own

    def seconds_to_reset(self) -> float:
        """How long until calls spent now stop counting (a calendar day's end; a rolling window's oldest calls)."""
        now = self.wall()
        if not self.window.rolling:
            return max(1.0, self._today(now)[2] - now)
        self._expire(now)
        waits = []
        if self._minutes:
            waits.append((self._minutes[0][0] + 1) * 60 + DAY_S - now)
        if now - self._reported_at < ROLLING_REPORT_TRUST_S:
            waits.append(self._reported_at + ROLLING_REPORT_TRUST_S - now)
        return max(1.0, min(waits, default=60.0))

    def _roll(self, now: float) -> None:
        day = self._today(now)[0]
        if day != self._day:
            self._day, self._own = day, 0

    def _expire(self, now: float) -> None:
        oldest = int((now - DAY_S) // 60)
        while self._minutes and self._minutes[0][0] <= oldest:
            self._minutes.popleft()


@dataclass(frozen=True)
class BudgetEstimate:
    """How a piece of work fits a connection's budget: calls needed, left today, and days at the allowed pace."""

    connection: str
    calls: int
    left_today: int | None  # None: no daily cap known
    per_day: int | None
    calls_per_s: float
    days: float  # from now until the last call, at the allowed pace
    budgets: int = 1  # the days whose budget the work spends (today included)

    @property
    def fits_today(self) -> bool:
        """Whether today's budget covers the work."""
        return self.left_today is None or self.calls <= self.left_today

    def message(self) -> str:
        """The estimate in words, as it is logged."""
        left = "no daily cap" if self.left_today is None else f"today's budget leaves {self.left_today}"
        pace = f"{self.calls_per_s * 60:.0f} calls/min"
        if self.per_day is not None:
            pace += f", {self.per_day} a day"
        hours = self.days * 24
        when = f"~{self.days:.1f} days" if self.days >= 1 else f"~{hours:.1f} hours" if hours >= 1 else \
            f"~{hours * 60:.0f} minutes"
        spread = "" if self.budgets == 1 else f", over {self.budgets} days' budgets"
        return (f"this work needs ~{self.calls} calls; {left}; it will take {when} at the allowed pace "
                f"({pace}){spread}")


def estimate(connection: str, calls: int, *, left_today: int | None, per_day: int | None,
             calls_per_s: float, seconds_to_reset: float) -> BudgetEstimate:
    """How long `calls` take at `calls_per_s` when only `left_today` remain today and `per_day` each day after."""
    pace_s = calls / calls_per_s
    if left_today is None or per_day is None or calls <= left_today:
        return BudgetEstimate(connection, calls, left_today, per_day, calls_per_s, pace_s / DAY_S)
    # Today's remainder, then as many further days as the rest needs, the last one only as long as its calls take.
    after_today = calls - left_today
    further_days = math.ceil(after_today / per_day)
    last_day_calls = after_today - (further_days - 1) * per_day
    days = seconds_to_reset / DAY_S + (further_days - 1) + (last_day_calls / calls_per_s) / DAY_S
    return BudgetEstimate(connection, calls, left_today, per_day, calls_per_s, days, 1 + further_days)


def spend_share(cap: int, reserve_share: float) -> int:
    """The calls of a `cap` syncd may spend when `reserve_share` of it is kept for other integrations."""
    return max(0, math.floor(cap * (1.0 - reserve_share)))

