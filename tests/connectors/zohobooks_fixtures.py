"""Building a ZohoBooksConnector against the session sandbox, and a stand-in for the store's token adapter."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from syncd.connectors.base import Page, Record
from syncd.connectors.retry import RetryPolicy
from syncd.connectors.zohobooks import ZohoBooksConnector
from syncd.connectors.zohobooks.settings import ZohoBooksConnection
from syncd.sandbox.runner import Sandbox
from syncd.settings import RateLimitSettings

# Fast backoff so that fault tests take seconds; max_s covers the test budget's window (a 429's wait).
FAST_RETRIES = RetryPolicy(attempts=10, initial_s=0.01, max_s=0.3, jitter_s=0.01)
# Generous pacing for functional tests: the sandbox's per-minute window is raised to match.
FAST_BUDGET = RateLimitSettings(window_s=0.2, window_max=400, daily_cap=1_000_000)


def zoho_settings(sandbox: Sandbox, **overrides: Any) -> ZohoBooksConnection:
    """Settings pointing at the sandbox's Zoho Books, as `syncd sandbox` prints them."""
    creds = sandbox.descriptor["zohobooks"]
    values: dict[str, Any] = {
        "system": "zohobooks",
        "base_url": creds["base_url"],
        "accounts_url": creds["accounts_url"],
        "client_id": creds["client_id"],
        "client_secret": creds["client_secret"],
        "refresh_token": creds["refresh_token"],
        "organization_id": creds["organization_id"],
        "webhook_secret": creds["webhook_secret"],
        "timeout_s": 5.0,
        "rate_limit": FAST_BUDGET,
    }
    values.update(overrides)
    return ZohoBooksConnection.model_validate(values)


@contextlib.asynccontextmanager
async def open_zoho(sandbox: Sandbox, **overrides: Any) -> AsyncIterator[ZohoBooksConnector]:
    """A started connector on a sandbox whose limits are raised so that only injected faults refuse calls."""
    sandbox.simulators["zohobooks"].apply_limits({"window_max": 1_000_000, "daily_cap": 10_000_000})
    storage = overrides.pop("storage", None)
    page_size = overrides.pop("page_size", 10)
    connector = ZohoBooksConnector(
        "books",
        zoho_settings(sandbox, **overrides),
        policy=FAST_RETRIES,
        page_size=page_size,
        storage=storage,
    )
    await connector.start()
    try:
        yield connector
    finally:
        await connector.close()


async def read_all(pages: AsyncIterator[Page]) -> list[Page]:
    """Every page of a changes() iteration."""
    return [page async for page in pages]


def ids_of(pages: list[Page]) -> list[str]:
    """Record ids in the order they were read (repeats kept)."""
    return [r.id for p in pages for r in p.records]


def live(sandbox: Sandbox, obj: str) -> dict[str, Mapping[str, Any]]:
    """The sandbox's own view of the live records of an object."""
    rows = sandbox.simulators["zohobooks"].records(obj) or []
    return {str(r[_ID[obj]]): r for r in rows if not r["deleted"]}


def by_id(records: list[Record]) -> dict[str, Record]:
    """Records keyed by id."""
    return {r.id: r for r in records}


_ID = {
    "contacts": "contact_id",
    "invoices": "invoice_id",
    "customerpayments": "payment_id",
    "items": "item_id",
}
