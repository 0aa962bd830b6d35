"""The one retry policy: transient failures retried with backoff, everything else handed up at once."""

from __future__ import annotations

import pytest

from syncd.connectors.retry import RetryPolicy, retrying
from syncd.errors import RateLimitedError, RetryableError, SkippableError, UnknownOutcomeError

FAST = RetryPolicy(attempts=4, initial_s=0.001, max_s=0.05, jitter_s=0.001)


class Flaky:
    """Fails with the given errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def test_transient_failures_are_retried_until_success() -> None:
    call = Flaky(RetryableError("503"), RateLimitedError("429", retry_after=0.01))
    assert await retrying("hs", "get", call, FAST) == "done"
    assert call.calls == 3


async def test_retries_are_bounded() -> None:
    call = Flaky(*(RetryableError(f"503 #{i}") for i in range(10)))
    with pytest.raises(RetryableError, match="503 #3"):
        await retrying("hs", "get", call, FAST)
    assert call.calls == FAST.attempts


@pytest.mark.parametrize("error", [SkippableError("bad email"), UnknownOutcomeError("timed out after send")])
async def test_other_errors_and_unknown_outcomes_are_not_retried(error: Exception) -> None:
    call = Flaky(error)
    with pytest.raises(type(error)):
        await retrying("hs", "create", call, FAST)
    assert call.calls == 1


async def test_a_wait_longer_than_the_policy_allows_is_handed_up() -> None:
    call = Flaky(RateLimitedError("daily cap spent", retry_after=3600))
    with pytest.raises(RateLimitedError) as caught:
        await retrying("hs", "get", call, FAST)
    assert call.calls == 1 and caught.value.retry_after == 3600
