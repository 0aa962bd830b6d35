"""The one retry policy of every connector: backoff with jitter for transient failures, bounded, logged once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
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
    """Exponential backoff with jitter, but never shorter than the system's Retry-After."""

    def __init__(self, policy: RetryPolicy) -> None:
        # wait_exponential + wait_random rather than wait_exponential_jitter(initial=...): tenacity 9.2
        # deprecates `initial` (a DeprecationWarning, an error under our test settings) and 8.x lacks the
        # `multiplier` that replaces it; this sum is the same backoff on both.
        self._backoff = wait_exponential(multiplier=policy.initial_s, max=policy.max_s) + wait_random(
            0, policy.jitter_s
        )

    def __call__(self, state: RetryCallState) -> float:
        delay: float = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay


async def retrying(
    connection: str, what: str, call: Callable[[], Awaitable[T]], policy: RetryPolicy = RetryPolicy()
) -> T:
    """Run `call`, retrying transient failures; the first failure of a streak and its recovery are logged."""
    failures = 0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal failures
        failures += 1
        if failures == 1:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("call failed; retrying with backoff", connection=connection, call=what, error=str(exc))

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(_retryable_under(policy)),
        stop=stop_after_attempt(policy.attempts),
        wait=_Wait(policy),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            result = await call()
        if failures and attempt.retry_state.outcome and not attempt.retry_state.outcome.failed:
            log.info("call recovered", connection=connection, call=what, retries=failures)
    return result
