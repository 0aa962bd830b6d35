"""Building HubSpot connectors against the sandbox, and a token store kept in memory, for connector tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from syncd.connectors.hubspot import HubSpotConnector
from syncd.connectors.hubspot.settings import HubSpotConnection
from syncd.connectors.retry import RetryPolicy
from syncd.sandbox.runner import Sandbox

# Fast but bounded retries: the faults are injected, the waiting need not be realistic.
FAST_RETRIES = RetryPolicy(attempts=10, initial_s=0.01, max_s=0.2, jitter_s=0.01)


def hubspot_settings(sandbox: Sandbox, **overrides: Any) -> HubSpotConnection:
    """Settings pointing at the sandbox's HubSpot simulator (a generous budget unless overridden)."""
    described = sandbox.descriptor["hubspot"]
    values: dict[str, Any] = {
        "system": "hubspot",
        "base_url": described["base_url"],
        "client_id": described["client_id"],
        "client_secret": described["client_secret"],
        "refresh_token": described["refresh_token"],
        "app_secret": described["app_secret"],
        "timeout_s": 2.0,
        "rate_limit": {"window_s": 1.0, "window_max": 2000},
    }
    values.update(overrides)
    return HubSpotConnection(**values)


@asynccontextmanager
async def hubspot_connector(sandbox: Sandbox, name: str = "hubspot-test", **kwargs: Any
                            ) -> AsyncIterator[HubSpotConnector]:
    """A started connector that is closed afterwards."""
    storage = kwargs.pop("storage", None)
    policy = kwargs.pop("retry_policy", FAST_RETRIES)
    connector = HubSpotConnector(name, hubspot_settings(sandbox, **kwargs), storage=storage, retry_policy=policy)
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()
