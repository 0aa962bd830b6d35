"""The one retry policy of every connector: backoff with jitter for transient failures, bounded, logged once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)

from syncd.errors import RetryableError, UnknownOutcomeError
from syncd.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    attempts: int = 6
    initial_s: float = 0.5
    max_s: float = 30.0
    jitter_s: float = 0.5
    # A system asking us to wait longer than this (a spent daily cap) is not retried in-line.
    longest_wait_s: float = 300.0


def _retryable_under(policy: RetryPolicy) -> Callable[[BaseException], bool]:
    """Which failures `policy` retries here and now."""

    def retryable(exc: BaseException) -> bool:
        # A write whose outcome is unknown is never retried blindly: the caller looks it up first.
        if not isinstance(exc, RetryableError) or isinstance(exc, UnknownOutcomeError):
            return False
        # A wait longer than the policy's longest (a spent daily cap) is the scheduler's business, not a
        # coroutine sleeping for hours: hand the error up with its retry_after.
        return exc.retry_after is None or exc.retry_after <= policy.longest_wait_s

    return retryable


class _Wait:
    """Exponential backoff with jitter, but never shorter than the system's Retry-After; counted from the
    attempts already `done` before tenacity took over."""

    def __init__(self, policy: RetryPolicy, done: int = 0) -> None:
        self._policy = policy
        self._done = done

    def delay(self, attempt: int, exc: BaseException | None) -> float:
        """How long to wait after failed attempt number `attempt` (from 1), which raised `exc`."""
        # As tenacity's wait_exponential(multiplier=initial_s, max=max_s) + wait_random(0, jitter_s).
        policy = self._policy
        delay = min(policy.max_s, policy.initial_s * 2.0 ** (attempt - 1)) + random.uniform(0, policy.jitter_s)
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            delay = max(delay, float(exc.retry_after))
        return delay

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self.delay(state.attempt_number + self._done, exc)


async def retrying(
    connection: str, what: str, call: Callable[[], Awaitable[T]], policy: RetryPolicy = RetryPolicy()
) -> T:
    """Run `call`, retrying transient failures; the first failure of a streak and its recovery are logged."""
    retryable = _retryable_under(policy)
    # The first attempt goes without the retry machinery, whose bookkeeping costs more than a loopback call.
    try:
        return await call()
    except Exception as exc:
        if policy.attempts <= 1 or not retryable(exc):
            raise
        log.warning("call failed; retrying with backoff", connection=connection, call=what, error=str(exc))
        await asyncio.sleep(_Wait(policy).delay(1, exc))
    failures = 1

    def before_sleep(state: RetryCallState) -> None:
        nonlocal failures
        failures += 1

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(policy.attempts - 1),
        wait=_Wait(policy, done=1),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            result = await call()
    log.info("call recovered", connection=connection, call=what, retries=failures)
    return result
