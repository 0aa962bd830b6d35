"""A XeroConnector on a Xero simulator whose every API answer is checked against Xero's OpenAPI file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from syncd.connectors.base import Page
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.xero import XeroConnector
from syncd.connectors.xero.settings import XeroConnection
from syncd.settings import RateLimitSettings
from tests.contracts.xero.harness import ContractHarness

FAST_RETRIES = RetryPolicy(attempts=10, initial_s=0.01, max_s=0.3, jitter_s=0.01)
FAST_BUDGET = RateLimitSettings(window_s=0.2, window_max=400, daily_cap=1_000_000)


def xero_settings(harness: ContractHarness, **overrides: Any) -> XeroConnection:
    """Settings pointing at the simulator, as `syncd sandbox` prints them."""
    values: dict[str, Any] = {"system": "xero", **harness.sim.credentials(harness.base_url), "timeout_s": 5.0,
                              "rate_limit": FAST_BUDGET}  # fmt: skip
    values.update(overrides)
    return XeroConnection.model_validate(values)


@contextlib.asynccontextmanager
async def open_xero(harness: ContractHarness, **overrides: Any) -> AsyncIterator[XeroConnector]:
    """A started connector on a simulator whose minute and day are raised (only what a test sets refuses)."""
    harness.sim.apply_limits({"window_max": 1_000_000, "daily_cap": 10_000_000})
    storage = overrides.pop("storage", None)
    page_size = overrides.pop("page_size", 1000)
    connector = XeroConnector("xero", xero_settings(harness, **overrides), policy=FAST_RETRIES, page_size=page_size,
                              storage=storage)  # fmt: skip
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()


async def read_all(pages: AsyncIterator[Page]) -> list[Page]:
    """Every page of a changes() iteration."""
    return [page async for page in pages]
