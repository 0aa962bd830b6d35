"""Request quotas of the simulated services: a fixed window plus a daily cap."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from syncd.sandbox.clock import Clock

SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class QuotaDecision:
    """The outcome of spending one request against a quota, with what the rate-limit headers report."""

    allowed: bool
    policy: Literal["window", "daily"] | None
    window_remaining: int
    daily_remaining: int
    window_reset_s: float
    daily_used: int = 0


class QuotaCounter:
    """A fixed-window request limit plus a daily cap (UTC days), on an injected clock."""

    def __init__(
        self, *, window_s: float, window_max: int, daily_cap: int, clock: Clock = time.time
    ) -> None:
        self.window_s = window_s
        self.window_max = window_max
        self.daily_cap = daily_cap
        self.clock = clock
        self._window_index = -1
        self._window_used = 0
        self._day_index = -1
        self._daily_used = 0

    def apply(self, limits: Mapping[str, Any]) -> None:
        """Take the keys of a checked control-plane `limits` body it knows (window_s, window_max, daily_cap)."""
        if "window_s" in limits:
            self.window_s = float(limits["window_s"])
        if "window_max" in limits:
            self.window_max = int(limits["window_max"])
        if "daily_cap" in limits:
            self.daily_cap = int(limits["daily_cap"])

    def take(self) -> QuotaDecision:
        """Spend one request if both the window and the day allow it; a refused request spends nothing."""
        now = self.clock()
        self._roll(now)
        policy: Literal["window", "daily"] | None = None
        if self._daily_used >= self.daily_cap:
            policy = "daily"
        elif self._window_used >= self.window_max:
            policy = "window"
        else:
            self._window_used += 1
            self._daily_used += 1
        window_end = (self._window_index + 1) * self.window_s
        return QuotaDecision(
            allowed=policy is None,
            policy=policy,
            window_remaining=max(0, self.window_max - self._window_used),
            daily_remaining=max(0, self.daily_cap - self._daily_used),
            window_reset_s=max(0.0, window_end - now),
            daily_used=self._daily_used,
        )

    @property
    def daily_used(self) -> int:
        """Requests spent today (some APIs report it in a response header)."""
        self._roll(self.clock())
        return self._daily_used

    def clear(self) -> None:
        """Forget everything spent, as at a new day."""
        self._window_index = self._day_index = -1
        self._window_used = self._daily_used = 0

    def _roll(self, now: float) -> None:
        # Windows are aligned to the epoch so that an injected clock gives predictable boundaries.
        window_index = int(now // self.window_s) if self.window_s > 0 else 0
        if window_index != self._window_index:
            self._window_index = window_index
            self._window_used = 0
        day_index = int(now // SECONDS_PER_DAY)
        if day_index != self._day_index:
            self._day_index = day_index
            self._daily_used = 0
